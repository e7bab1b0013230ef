"""The worked score (``w``): how one source word's score e_ti and weight a_ti come out of the vectors.

For Luong dot/general, e_ti = h_t · k_i with k_i = h_i (dot) or W_a h_i (general): a sum of
products h_t[j]·k_i[j], of which the largest are listed with their partial sum. For concat
and Bahdanau additive, e_ti = v_a · tanh(q_t + k_i), with q_t the query term (W_q h_t, or
W_a s_{t-1}) and k_i = W_k h_i + b (U_a h_i + b in Bahdanau's notation, as its formula writes
it): the products are v_a[j]·tanh(…)[j]. Then the softmax: exp(e_ti), Z = Σ_i exp(e_ti),
a_ti = exp(e_ti)/Z. For a Transformer's head in view, e_i = q·k_i/√d: the head's query
q = W_q x + b_q and the token's key k_i = W_k m_i + b_k (Trace.cross_keys); for a layer's mean
of heads, each head's weight and their mean, which no softmax makes. Everything comes from the
trace, so replay shows it too; the arithmetic is plain Python, apart from the screen, so tests
can check it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from attnstep.report.glyphs import norm, num
from attnstep.trace.records import EDIT_MARK, Trace, Vector
from attnstep.tui.edited import what_was_edited
from attnstep.tui.lines import first_numbers
from attnstep.tui.safe import visible
from attnstep.tui.screens.dialogs import Dialog
from attnstep.tui.stages import quote, source_word, viewed_layer

TOP_TERMS = 8  # products listed, largest |value| first
SHOWN = 6  # first components of each vector listed
MAX_WIDTH = 140  # the dialog's widest (app.tcss)
RAW_EXP_LIMIT = 30.0  # above this score, exp(e) is shown relative to the largest score
Row = tuple[str, str, Sequence[float]]  # (name, what it is, vector)


@dataclass(frozen=True)
class Vectors:
    """The named vectors whose componentwise products add up to e_ti."""

    rows: tuple[Row, ...]  # in the order they are shown
    factors: tuple[str, str]  # the two rows whose products are summed, e.g. ("h_t", "k")
    terms: Vector  # the products, one per component j
    divisor: float = 1.0  # e = Σ_j terms / divisor: √d for a Transformer's scaled dot product

    @property
    def top(self) -> list[int]:
        """Components j of the largest products, largest |value| first."""
        return sorted(range(len(self.terms)), key=lambda j: -abs(self.terms[j]))[:TOP_TERMS]


@dataclass(frozen=True)
class WorkedScore:
    trace: Trace
    t: int  # step index
    i: int  # source token index
    vectors: Vectors | None  # None: the trace has no vectors (or no keys) to show the products with
    missing: str  # why vectors is None

    @property
    def score(self) -> float:
        return self.trace.steps[self.t].scores[self.i]

    @property
    def shift(self) -> float:
        """What is subtracted from every score before exp: 0, or the largest score when exp would overflow the page."""
        largest = max(self.trace.steps[self.t].scores)
        return largest if largest > RAW_EXP_LIMIT else 0.0

    @property
    def exps(self) -> list[float]:
        return [math.exp(e - self.shift) for e in self.trace.steps[self.t].scores]


def worked_score(trace: Trace, t: int, i: int) -> WorkedScore:
    """The arithmetic of e_ti for the trace's scorer, from the trace's own numbers."""
    step, attention = trace.steps[t], trace.checkpoint.attention
    if trace.architecture is not None:
        return _worked_head(trace, t, i)
    if trace.encoder_states is None or step.hidden is None:
        return WorkedScore(trace, t, i, None, "this trace has no vectors (written with --no-vectors)")
    if attention in ("dot", "general"):
        keys = trace.encoder_states if attention == "dot" else trace.keys
        if keys is None:
            return WorkedScore(trace, t, i, None, "this trace does not carry the scorer's keys W_a h_i")
        key = keys[i]
        rows: tuple[Row, ...] = (
            ("k", f"h_{i + 1}" if attention == "dot" else f"W_a h_{i + 1}", key),
            ("h_t", "", step.hidden),
        )
        return WorkedScore(trace, t, i, Vectors(rows, ("h_t", "k"), tuple(q * k for q, k in zip(step.hidden, key))), "")
    if trace.keys is None or step.query is None or trace.v_a is None:
        return WorkedScore(trace, t, i, None, "this trace does not carry the scorer's keys and query terms")
    query = "W_a s_{t-1}" if attention == "additive" else "W_q h_t"
    hidden = tuple(math.tanh(q + k) for q, k in zip(step.query, trace.keys[i]))
    terms = tuple(v * x for v, x in zip(trace.v_a, hidden))
    rows = (
        ("k", f"{'U_a' if attention == 'additive' else 'W_k'} h_{i + 1} + b", trace.keys[i]),
        ("q", query, step.query),
        ("tanh(q + k)", "", hidden),
        ("v_a", "", trace.v_a),
    )
    return WorkedScore(trace, t, i, Vectors(rows, ("v_a", "tanh(q + k)"), terms), "")


def _worked_head(trace: Trace, t: int, i: int) -> WorkedScore:
    """A Transformer's e_i = q·k_i/√d for the head in view (none for a layer's mean: see mean_lines)."""
    _, layer, head, record = viewed_layer(trace, trace.steps[t])
    if head is None:
        return WorkedScore(trace, t, i, None, "a layer's mean of heads has no score of its own")
    query = record.cross[head].query
    if trace.cross_keys is None or query is None:
        return WorkedScore(trace, t, i, None, "this trace has no vectors (written with --no-vectors)")
    key = trace.cross_keys[layer][head][i]
    rows: tuple[Row, ...] = (
        ("k", f"W_k m_{i + 1} + b_k, head {head + 1}'s key", key),
        ("q", f"W_q x + b_q, head {head + 1}'s query", query),
    )
    terms = tuple(q * k for q, k in zip(query, key))
    return WorkedScore(trace, t, i, Vectors(rows, ("q", "k"), terms, math.sqrt(len(key))), "")


def mean_lines(work: WorkedScore, words: list[str]) -> list[Text]:
    """A layer's mean: each head's score and softmax weight of the word, and the mean of the weights."""
    trace, step, i = work.trace, work.trace.steps[work.t], work.i
    _, _, _, record = viewed_layer(trace, step)
    weights = [h.weights[i] for h in record.cross]
    out = [
        Text(
            f"  The mean of heads is no softmax of one score: each head weighs {quote(words[i])} by the softmax of "
            "its own scores, and the weights are averaged.",
            style="dim",
        )
    ]
    for n, h in enumerate(record.cross):
        out.append(Text(f"  head {n + 1:<3} e = q·k/√d {h.scores[i]:>7.2f}   a {num(h.weights[i])}"))
    total = " + ".join(num(w) for w in weights)
    out.append(Text.assemble(f"  a = ({total}) / {len(weights)} = ", (num(sum(weights) / len(weights)), "bold")))
    out.append(
        Text(
            f"      recorded in the trace: a {num(step.weights[i])}; a shows one head, whose score this works out",
            style="dim",
        )
    )
    return out


def signed(value: float) -> str:
    return f"{value:+.2f}"


def big(value: float) -> str:
    """A positive number of any size in a few cells: 17.64, 3.2e+05, 1.1e-09."""
    return f"{value:.2f}" if 0.01 <= value < 1e5 else f"{value:.2g}"


def fitted(head: str, items: list[str], width: int, tail: str = "") -> tuple[Text, int]:
    """``head`` and as many of ``items`` as fit in ``width`` cells, then "…" if some did not; and how many fit."""
    line = Text(head)
    shown = 0
    for n, item in enumerate(items):
        last = n == len(items) - 1
        item, rest = (item.rstrip(), "") if last else (item, " …")  # the last needs no room after it
        if line.cell_len + len(item) + len(rest) + len(tail) > width:
            line.append("…")
            break
        line.append(item)
        shown += 1
    line.append(tail)
    return line, shown


def lines(work: WorkedScore, width: int) -> list[Text]:
    """The worked score as lines of text about ``width`` cells wide (untrusted words made safe)."""
    trace, step, i = work.trace, work.trace.steps[work.t], work.i
    words = [visible(source_word(token)) for token in trace.source]
    heads = trace.view_label
    out = [
        Text.assemble(
            ("How ", "bold"),
            (quote(words[i]), "bold"),
            (f" got its weight at step {work.t + 1}", "bold"),
            ("   " + visible(trace.checkpoint.formula), "dim"),
            (f"   {heads}" if heads else "", "bold"),
        )
    ]
    if trace.view is not None and trace.view.head is None:
        return out + mean_lines(work, words) + edited_lines(work, words)
    if work.vectors is None:
        out.append(Text(f"The products behind e are not shown: {work.missing}. From the scores alone:", style="dim"))
    else:
        vectors = work.vectors
        labels = [f"{name} = {what}" if what else name for name, what, _ in vectors.rows]
        label_width = max(map(len, labels)) + 2
        shown = max(2, min(SHOWN, (width - label_width - 30) // 7))  # components that fit beside the label
        for label, (name, _, vector) in zip(labels, vectors.rows):
            numbers = first_numbers(vector, shown)
            out.append(
                Text(f"  {label:<{label_width}}[{numbers}]  ‖{name}‖ {num(norm(vector))}, {len(vector)} numbers")
            )
        a, b = vectors.factors
        every = len(vectors.terms) <= TOP_TERMS  # if they fit, the line lists them all
        terms, listed = fitted(
            f"  {'terms' if every else 'largest terms'} {a}[j]·{b}[j]{', largest first' if every else ''}:  ",
            [f"j={j} {signed(vectors.terms[j])}  " for j in vectors.top],
            width,
        )
        out.append(terms)
        top_listed = vectors.top[:listed]  # the partial sum is of the terms the line above lists
        top, total = sum(vectors.terms[j] for j in top_listed), sum(vectors.terms)
        if vectors.divisor == 1.0:
            out.append(Text.assemble(f"  e = Σ_j {a}[j]·{b}[j] = ", (num(total), "bold")))
        else:
            out.append(
                Text.assemble(
                    f"  e = Σ_j {a}[j]·{b}[j] / √d = {num(total)} / √{len(vectors.terms)} = ",
                    (num(total / vectors.divisor), "bold"),
                )
            )
        left = len(vectors.terms) - len(top_listed)
        if left:  # with every term listed, e above is their sum already
            out.append(
                Text(
                    f"      the {len(top_listed)} largest give {num(top)}; the other {left} give {num(total - top)}",
                    style="dim",
                )
            )
    exps, shift = work.exps, work.shift
    z = sum(exps)
    exp_e, exp_ei = ("exp(e)", "exp(e_i)") if not shift else (f"exp(e − {num(shift)})", f"exp(e_i − {num(shift)})")
    if shift:
        out.append(
            Text(
                f"  (scores above {RAW_EXP_LIMIT:g}: each exp is of e minus the largest score, {num(shift)}; the weights are the same)",
                style="dim",
            )
        )
    out.append(Text.assemble(f"  {exp_e} = ", (big(exps[i]), "bold")))
    largest = sorted(range(len(exps)), key=lambda j: -exps[j])
    sums, _ = fitted(
        f"  Z = Σ_i {exp_ei} = {big(z)}   (",
        [f"{words[j]} {big(exps[j])}" + (" · " if n < len(exps) - 1 else "") for n, j in enumerate(largest)],
        width,
        ")",
    )
    out.append(sums)
    out.append(
        Text.assemble(
            f"  a = {exp_e} / Z = {big(exps[i])} / {big(z)} = ",
            (num(exps[i] / z), "bold"),
            f"      Σ_i a_i = {num(sum(step.weights))}",
        )
    )
    out.append(Text(f"      recorded in the trace: e {num(step.scores[i])}, a {num(step.weights[i])}", style="dim"))
    return out + edited_lines(work, words)


def edited_lines(work: WorkedScore, words: list[str]) -> list[Text]:
    """An edited step's weights are the user's, not the softmax's: what the step used instead, and why."""
    step, i = work.trace.steps[work.t], work.i
    if step.edit is None:
        return []
    own = step.edit.before.weights[i]
    return [
        Text.assemble(
            (f"  {EDIT_MARK} then the {what_was_edited(work.trace, step)}: ", "bold"),
            f"a' = {num(step.weights[i])} for {quote(words[i])}, where the model's own a is {num(own)}; "
            "C_t and the rest of the step are computed from a'.",
        )
    ]


class WorkedScoreDialog(Dialog):
    """The worked score of one source word at the current step; ↑/↓ move to another word."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,w", "cancel", "close"),
        Binding("up,k", "word(-1)", "word above"),
        Binding("down,j", "word(1)", "word below"),
    ]

    def __init__(self, trace: Trace, t: int, i: int) -> None:
        super().__init__()
        self.trace, self.t, self.i = trace, t, i

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog worked"):
            yield Static(id="work")
            yield Static(Text("↑/↓ another word · Esc close", style="dim"))

    def on_mount(self) -> None:
        self.show_word()

    def action_word(self, delta: int) -> None:
        self.i = max(0, min(len(self.trace.source) - 1, self.i + delta))
        self.show_word()

    def show_word(self) -> None:
        work = worked_score(self.trace, self.t, self.i)
        width = min(self.app.size.width, MAX_WIDTH) - 8  # the dialog's borders and padding
        self.query_one("#work", Static).update(Text("\n").join(lines(work, max(40, width))))
