"""Alignments read off a trace: the matrix a picture draws, and Pharaoh links for alignment tools.

Rows are what the decoder wrote, columns the source: row j holds the attention weights a_ji of
output token j over the source tokens. ``words=True`` gathers a subword model's pieces into
the words a person reads, as the app's word view does (:func:`attnstep.trace.word_view.word_alignment`:
a word's column sums its pieces' weights, a word's row is the mean of its pieces' rows); a
word-level model's tokens already are words.

Which attention: an RNN has one; a Transformer has h heads in each of L decoder layers, and its
alignment is its trace's :class:`~attnstep.trace.records.View` — one head, or the mean of a
layer's heads (by default the penultimate layer's mean, :func:`~attnstep.trace.records.default_view`).
:class:`ViewChoice` reads ``--align-layer N`` and ``--align-head N|mean`` (1-based, as
:meth:`View.label` says them) and :attr:`Alignment.attention` says which attention it is.

Pharaoh links are what fast_align writes and OpenNMT, Moses and awesome-align read: one
sentence per line, ``i-j`` for source token i and target token j, 0-based. The target tokens
are the translation's own: the final ``<eos>`` step aligns no word of the output, so it is
left out, as fast_align leaves out its NULL word. Each target token is linked to the source
token it attends to most (the first of equal weights); a threshold adds every other link at
least that strong.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnstep.errors import AttnstepError
from attnstep.trace.records import Architecture, Trace, Vector, View, default_view
from attnstep.trace.word_view import word_alignment

NOTHING_TO_ALIGN = "this model has no attention, so there is no alignment"
MEAN = "mean"  # --align-head mean: the mean of the layer's heads


class ViewChoiceError(AttnstepError):
    """An --align-layer or --align-head that the model or trace has no such attention for: a usage error."""


@dataclass(frozen=True)
class Alignment:
    source: tuple[str, ...]  # column labels: source tokens or words
    target: tuple[str, ...]  # row labels: output tokens or words, "<eos>" last when kept
    rows: tuple[Vector, ...]  # rows[j][i]: the weight of source i for target j
    marks: tuple[str, ...]  # per row: "*" forced by the user, "≠" the model's own choice differs (a given translation)
    finished: bool  # the decoding ended with <eos> (else at the length limit)
    attention: str  # which attention the weights are: "general attention", "cross-attention, layer 5/6, head 3/8"


def alignment(trace: Trace, *, words: bool = False, eos: bool = True) -> Alignment:
    """The trace's alignment in tokens, or in words (``words``); ``eos`` keeps the final <eos> step's row."""
    if not trace.checkpoint.attends:  # its steps have no weights
        raise AttnstepError(NOTHING_TO_ALIGN)
    steps = trace.steps
    if words and trace.subword:
        grouped = word_alignment(trace, eos=eos)
        source = tuple(w.text for w in trace.source_words)
        target = [word.text for word, _ in grouped]
        rows = [row for _, row in grouped]
        marks = [_word_mark(trace, steps[w.start : w.end]) for w, _ in grouped]
    else:
        kept = steps if eos or not trace.finished else steps[:-1]
        source = tuple(t.surface for t in trace.source)
        target = [s.chosen_token for s in kept]
        rows = [s.weights for s in kept]
        marks = [trace.mark(s) for s in kept]
    return Alignment(source, tuple(target), tuple(rows), tuple(marks), trace.finished, attention_shown(trace))


def attention_shown(trace: Trace) -> str:
    """Which attention a trace's steps' weights are: an RNN's one ("general attention"), or a
    Transformer's view ("cross-attention, layer 1/2, mean of 4 heads")."""
    if trace.architecture is not None and trace.view is not None:
        return f"cross-attention, {trace.view.label(trace.architecture)}"
    return f"{trace.checkpoint.attention} attention"


def _word_mark(trace: Trace, pieces) -> str:
    """A word is marked when one of its pieces is: forcing a piece changed the word."""
    return next((mark for mark in (trace.mark(s) for s in pieces) if mark), "")


def pharaoh_links(rows: tuple[Vector, ...], threshold: float | None = None) -> list[tuple[int, int]]:
    """(i, j) links: each row j's strongest source i, and with ``threshold`` every i whose weight reaches it;
    in target order, then source order."""
    links = set()
    for j, row in enumerate(rows):
        links.add((max(range(len(row)), key=row.__getitem__), j))
        if threshold is not None:
            links.update((i, j) for i, weight in enumerate(row) if weight >= threshold)
    return sorted(links, key=lambda link: (link[1], link[0]))


def pharaoh_line(trace: Trace, *, words: bool = False, threshold: float | None = None) -> str:
    """One sentence's links as fast_align writes them: ``0-0 2-1 1-2`` (no newline; empty for an empty output)."""
    rows = alignment(trace, words=words, eos=False).rows
    return " ".join(f"{i}-{j}" for i, j in pharaoh_links(rows, threshold))


@dataclass(frozen=True)
class ViewChoice:
    """``--align-layer N`` and ``--align-head N|mean`` as given, 1-based as :meth:`View.label` says
    them (None: not given)."""

    layer: int | None = None
    head: str | None = None

    def view(self, architecture: Architecture | None, current: View | None) -> View | None:
        """The view chosen, each part left as ``current`` has it (by default, the default view) where
        not given; None when nothing is. Anything the architecture lacks, or any choice for an RNN,
        is a ViewChoiceError."""
        if self.layer is None and self.head is None:
            return None
        if architecture is None:
            raise ViewChoiceError(
                "--align-layer and --align-head choose among a Transformer's layers and heads; "
                "this is an RNN model, with one attention"
            )
        base = current or default_view(architecture)
        if self.layer is not None and not 1 <= self.layer <= architecture.layers:
            raise ViewChoiceError(
                f"--align-layer must be 1 to {architecture.layers} (the decoder's layers), not {self.layer}"
            )
        head = base.head
        if self.head is not None:
            number = int(self.head) if self.head.isascii() and self.head.isdigit() else None
            if self.head != MEAN and (number is None or not 1 <= number <= architecture.heads):
                raise ViewChoiceError(
                    f"--align-head must be a head, 1 to {architecture.heads}, or {MEAN} (their mean), not {self.head!r}"
                )
            head = None if number is None else number - 1
        return View(base.layer if self.layer is None else self.layer - 1, head)

    def applied(self, trace: Trace) -> Trace:
        """``trace`` with the alignment chosen."""
        view = self.view(trace.architecture, trace.view)
        return trace if view is None else trace.with_view(view)


AS_RECORDED = ViewChoice()  # neither option given: the alignment a trace was recorded with
