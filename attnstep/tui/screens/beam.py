"""The beam view (``b``): a beam search a step at a time, its hypotheses, and the attention of one.

A screen of its own over a trace made with ``--beam K``. It reads only ``Trace.beam``, so it
works in replay too and never asks the model for anything. → / ← move through the search's
steps and ↑ / ↓ select a hypothesis; the selection follows its line, to its first extension
on →, to the hypothesis it extends on ←. Three panels: the step's hypotheses (prefix, score,
normalized score, status), the selected one's attention row a_t over the source words, and its
whole attention history, one row per word it wrote. The titles say how the search normalized for
length: attnstep's beam by GNMT's α, a Transformer's (generate's) by its length_penalty.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen

from attnstep.report.glyphs import bar, fit_columns, num
from attnstep.text.subword import WORD_START
from attnstep.text.words import detokenize
from attnstep.trace.records import ALIVE, FINISHED, GNMT, PRUNED, Beam, Hypothesis, Trace, default_view
from attnstep.tui.bars import Bar
from attnstep.tui.keybar import KeyBar
from attnstep.tui.lines import LinesView, fit
from attnstep.tui.safe import visible
from attnstep.tui.stages import quote

NUMBERS_WIDTH = 26  # " log p  score   norm" after the prefix
BAR_WIDTH = 10


@dataclass(frozen=True)
class BeamView:
    """What the beam screen shows: beam step ``t`` of ``beam``, the search that made ``trace``, with
    hypothesis ``selected`` chosen."""

    trace: Trace
    beam: Beam  # trace.beam
    t: int
    selected: int

    @property
    def hypotheses(self) -> tuple[Hypothesis, ...]:
        return self.beam.steps[self.t]

    @property
    def hypothesis(self) -> Hypothesis:
        return self.hypotheses[self.selected]

    @property
    def history(self) -> tuple[Hypothesis, ...]:
        return self.beam.history(self.t, self.selected)

    @property
    def best_path(self) -> tuple[int, ...]:
        """Indices, step by step, of the hypothesis whose records are the trace's steps."""
        return self.beam.lineage(len(self.trace.steps) - 1, self.beam.best)

    def on_best_path(self, t: int, index: int) -> bool:
        path = self.best_path
        return t < len(path) and path[t] == index

    def is_best(self, t: int, index: int) -> bool:
        """Whether hypothesis ``index`` of beam step ``t`` is the best one itself, the end of the best path."""
        return t == len(self.trace.steps) - 1 and index == self.beam.best

    def prefix(self, index: int) -> str:
        """Hypothesis ``index``'s words so far, detokenized as the translation is (a finished one's end token
        left out, as the translation leaves it)."""
        tokens = [h.token for h in self.beam.history(self.t, index) if h.status != FINISHED]
        return "".join(tokens).replace(WORD_START, " ").strip() if self.trace.subword else detokenize(tokens)


def normalization(beam: Beam) -> str:
    """How the search's normalized scores were computed, as a title says it."""
    if beam.normalization == GNMT:
        return f"normalized = score / ((5 + length) / 6)^{beam.alpha:g}"
    after = " after the fixed prefix" if beam.start else ""
    return f"generate's: normalized = score{after} / length{after}^{beam.alpha:g}"


def searched_view(trace: Trace) -> str:
    """ ", layer 5/6, mean of 8 heads": whose weights a Transformer's hypotheses keep, its default view's
    whichever head a shows (trace.reader checks it so); "" for an RNN's."""
    architecture = trace.architecture
    return "" if architecture is None else f", {default_view(architecture).label(architecture)}"


def tail(text: str, width: int) -> Text:
    """The end of ``text`` in ``width`` cells (a hypothesis's newest words matter most), "…" where cut."""
    text = visible(text)
    if cell_len(text) <= width:
        return fit(text, width)
    while cell_len(text) > width - 1:
        text = text[1:]
    return fit("…" + text, width)


class FollowingPanel(LinesView[BeamView]):
    """A beam panel that brings one line into view after each move (see :meth:`followed`)."""

    def followed(self, view: BeamView) -> int:
        """The line to keep in view: the selected hypothesis's, or the current step's."""
        raise NotImplementedError

    def show(self, view: BeamView | None) -> None:
        super().show(view)
        if view is not None:
            self.scroll_into_view(self.followed(view))


class HypothesesPanel(FollowingPanel):
    def build(self, view: BeamView | None) -> list[Text]:
        if view is None:
            return []
        beam = view.beam
        fixed = " · a fixed prefix: one hypothesis" if view.t < beam.start else ""
        self.set_titles(
            f"Beam step {view.t + 1}: hypotheses, best score first{fixed}",
            f"K = {beam.width} · {normalization(beam)}",
        )
        label, chosen = self.style_of("label"), self.style_of("chosen")
        width = max(12, min(60, self.size.width - 2 - 11 - NUMBERS_WIDTH - 9))  # 60: the numbers stay near the words
        lines = [
            Text.assemble(
                fit("   #  from", 11, label),
                fit("prefix", width, label),
                fit("log p", 7, label, right=True),
                fit("score", 7, label, right=True),
                fit("norm", 7, label, right=True),
                "  ",
                ("status", label),
            )
        ]
        for i, h in enumerate(view.hypotheses):
            marker = ("▶" if i == view.selected else " ") + (
                "★" if view.is_best(view.t, i) else "•" if view.on_best_path(view.t, i) else " "
            )
            row = Text.assemble(
                fit(f"{marker} #{i + 1}", 6),
                fit("—" if h.parent is None else f"#{h.parent + 1}", 5),
                tail(view.prefix(i) + (f" {h.token}" if h.status == FINISHED else ""), width),
                f"{num(h.logprob):>7}{num(h.score):>7}{num(h.normalized):>7}  ",
                (h.status, chosen if h.status == FINISHED else self.style_of("dim") if h.status != ALIVE else ""),
            )
            if i == view.selected:
                row.stylize(self.style_of("cursor"))
            lines.append(row)
        lines.append(Text("▶ selected · • on the best one's path · ★ the best: the main view's steps", style=label))
        return lines

    def followed(self, view: BeamView) -> int:
        return view.selected + 1  # below the column headings


class RowPanel(LinesView[BeamView]):
    """The selected hypothesis's a_t: one line per source word, its weight as a number and a bar."""

    def build(self, view: BeamView | None) -> list[Text]:
        if view is None:
            return []
        h = view.hypothesis
        self.set_titles(f"a_t of #{view.selected + 1}{searched_view(view.trace)}")
        source = view.trace.source
        if not view.trace.checkpoint.attends:
            return [Text("No attention: this model has no a_t.", style=self.style_of("label"))]
        word_width = max(4, self.size.width - 2 - BAR_WIDTH - 6)
        best = max(range(len(source)), key=lambda i: h.weights[i])
        lines = []
        for i, (token, weight) in enumerate(zip(source, h.weights)):
            row = Text.assemble(
                fit(token.surface, word_width), f" {num(weight)} ", (bar(weight, BAR_WIDTH), self.style_of("bar"))
            )
            if i == best:
                row.stylize(self.style_of("current"), 0, word_width)
            lines.append(row)
        return lines


class HistoryPanel(FollowingPanel):
    """The selected hypothesis's attention history: a row per word it wrote, a column per source word."""

    def build(self, view: BeamView | None) -> list[Text]:
        if view is None:
            return []
        attends = view.trace.checkpoint.attends
        self.set_titles(
            f"History of #{view.selected + 1}{searched_view(view.trace)}: its words × source words",
            self.legend() if attends else "",
        )
        label = self.style_of("label")
        source = view.trace.source if attends else ()  # no attention: its words alone
        history = view.history
        label_width = min(10, max([5, *(cell_len(visible(h.token)) for h in history)])) + 2
        room = self.scrollable_content_region.width - label_width
        widths = fit_columns([cell_len(visible(t.surface)) for t in source], room, glyphs=not self.shows_ramp)
        header = Text.assemble(fit("", label_width))
        for token, width in zip(source, widths):
            header.append_text(fit(token.surface, width, label))
            header.append(" ")
        lines = [header]
        for t, h in enumerate(history):
            current = t == view.t
            row = Text.assemble(("▶" if current else " ", self.style_of("current")), fit(h.token, label_width - 2), " ")
            for weight, width in zip(h.weights, widths):
                row.append_text(self.weight_cell(weight, width))
                row.append(" ")
            lines.append(row)
        return lines

    def followed(self, view: BeamView) -> int:
        return view.t + 1  # below the source words


class BeamStatus(Bar[BeamView]):
    def line(self, view: BeamView | None) -> Text:
        if view is None:
            return Text()
        beam = view.beam
        finished = sum(h.status == FINISHED for step in beam.steps[: view.t + 1] for h in step)
        # Counted as the main view counts them, the translation's steps; the search may run on after it.
        steps, searched = len(view.trace.steps), len(beam.steps)
        at = f"step {view.t + 1} of {steps}" if view.t < steps else f"step {view.t + 1}, past the translation's {steps}"
        return Text.assemble(
            ("beam search", "bold"),
            f" · K = {beam.width} · {'α' if beam.normalization == GNMT else 'length_penalty'} = {beam.alpha:g}   ",
            (at, "bold"),
            f" · the search ran {searched}" if searched != steps else "",
            f" · {finished} finished so far",
        )


class BeamNarration(Bar[BeamView]):
    def build(self, view: BeamView | None) -> list[Text]:
        return list(Text(narrate_beam(view) if view else "").wrap(self.app.console, max(1, self.size.width)))


def narrate_beam(view: BeamView) -> str:
    """One or two sentences on the selected hypothesis: where it comes from, its numbers, what became of it."""
    h, t = view.hypothesis, view.t
    beam = view.beam
    origin = f"from {visible(view.trace.steps[0].input_token)}" if h.parent is None else f"extends #{h.parent + 1}"
    last = t + 1 == len(beam.steps)
    fate = {
        ALIVE: "alive when the length limit ended the search"
        if last
        else "alive: the search extends it at the next step",
        FINISHED: f"finished: it ends with {visible(h.token)} and leaves the beam",
        # generate's search ends once no running hypothesis can beat the finished ones
        PRUNED: "pruned: the search ended, none of the running hypotheses could beat the finished ones"
        if last
        else "pruned: none of its extensions ranked among the best, so its line ends here",
    }[h.status]
    if beam.normalization == GNMT or not beam.start:
        over = f" over {t + 1} tokens"
    elif t >= beam.start:  # generate's lengths and scores count what follows a fixed prefix
        over = f" over the {t + 1 - beam.start} tokens after the fixed prefix"
    else:
        over = " (a fixed prefix's: not normalized)"
    best = " ★ The best: the main view's steps." if view.is_best(t, view.selected) else ""
    return (
        f"#{view.selected + 1} {origin} with {quote(h.token)} (log p = {num(h.logprob)}): score {num(h.score)}, "
        f"normalized {num(h.normalized)}{over}; {fate}.{best}"
    )


class BeamScreen(ModalScreen[None]):
    """The beam search of the current trace, step by step (b in the main view).

    Modal, so that the main view's keys (force, new sentence…) do not act on a trace this screen
    is not showing.
    """

    CSS_PATH = Path(__file__).with_name("beam.tcss")
    # priority: ↑ ↓ → ← move the selection even when a panel has the focus (Tab moves it, for
    # scrolling a long sentence's grid sideways with Shift+← →).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,l", "step(1)", "next step", priority=True),
        Binding("left,h", "step(-1)", "previous step", priority=True),
        Binding("down,j", "select(1)", "next hypothesis", priority=True),
        Binding("up,k", "select(-1)", "previous hypothesis", show=False, priority=True),
        Binding("escape,b,q", "close", "back to the steps"),
    ]

    def __init__(self, trace: Trace, beam: Beam, t: int) -> None:
        super().__init__()
        view = BeamView(trace, beam, max(0, min(t, len(beam.steps) - 1)), 0)
        # Open on the best hypothesis's line where it exists at this step, as the main view shows it.
        path = view.best_path
        self.view = replace(view, selected=path[view.t]) if view.t < len(path) else view

    def compose(self) -> ComposeResult:
        yield BeamStatus(id="beam-status")
        yield HypothesesPanel(id="beam-hypotheses", classes="panel")
        with Horizontal(id="beam-attention"):
            yield RowPanel(id="beam-row", classes="panel")
            yield HistoryPanel(id="beam-history", classes="panel")
        yield BeamNarration(id="beam-narration")
        yield KeyBar()

    def on_mount(self) -> None:
        self.show_view()

    def show_view(self) -> None:
        for widget in self.query(LinesView):
            widget.show(self.view)

    def action_step(self, delta: int) -> None:
        view, beam = self.view, self.view.beam
        t = view.t + delta
        if not 0 <= t < len(beam.steps):
            return
        if delta < 0:
            selected = view.hypothesis.parent
            assert selected is not None  # only step 0's hypotheses have no parent, and here view.t >= 1
        else:  # its first extension, else the step's best
            selected = next((i for i, h in enumerate(beam.steps[t]) if h.parent == view.selected), 0)
        self.view = replace(view, t=t, selected=selected)
        self.show_view()

    def action_select(self, delta: int) -> None:
        view = self.view
        selected = max(0, min(len(view.hypotheses) - 1, view.selected + delta))
        if selected != view.selected:
            self.view = replace(view, selected=selected)
            self.show_view()

    def action_close(self) -> None:
        self.dismiss()
