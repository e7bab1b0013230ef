"""The word view: a subword model's piece weights gathered into the words a person reads.

A trace's ``words`` and ``output_words`` group its tokens and steps into words (see
:mod:`attnstep.trace.records`); a word-level model's tokens already are words.
"""

from __future__ import annotations

from attnstep.trace.records import Floats, Step, Trace, Vector, Word


def word_weights(trace: Trace, weights: Vector) -> Vector:
    """One step's attention over the user's words: the weights of each word's pieces summed."""
    return tuple(sum(weights[w.start : w.end]) for w in trace.source_words)


def word_alignment(
    trace: Trace, steps: tuple[Step, ...] | None = None, *, eos: bool = False
) -> list[tuple[Word, Vector]]:
    """Rows of the word-level grid: one per output word written so far, columns = the user's words.

    A target word's row is the mean of its pieces' rows (each piece row sums to 1, so the
    word row does too); a column sums its word's pieces. A word whose pieces are not all
    among ``steps`` yet (decoding has reached only part of it) gets the mean of those shown.
    ``eos`` adds the final step's row, once it is among ``steps``, as a word of its own: the end token that
    finished the decoding (<eos>, a toolkit's or Marian's </s>).
    """
    steps = trace.steps if steps is None else steps
    words = list(trace.target_words)
    if eos and trace.finished:
        words.append(Word(trace.end_token, len(trace.steps) - 1, len(trace.steps)))
    rows = []
    for word in words:
        shown = [word_weights(trace, s.weights) for s in steps[word.start : word.end]]
        if shown:
            rows.append((word, tuple(sum(column) / len(shown) for column in zip(*shown))))
    return rows


def word_states(trace: Trace) -> tuple[Floats, ...] | None:
    """Each user's word's encoder state as the mean of its pieces' h_i (None when the trace has no vectors)."""
    states = trace.encoder_states
    if states is None:
        return None
    return tuple(
        Floats.of(sum(column) / (w.end - w.start) for column in zip(*states[w.start : w.end]))
        for w in trace.source_words
    )
