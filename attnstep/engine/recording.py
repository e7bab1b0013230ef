"""What the greedy loop (stepper.py) and the beam search (beam.py) share: a sentence's place in a
batch, and the way from a decoder step's tensors to :class:`~attnstep.trace.records.Step` records,
with one copy out of torch per step: :class:`Columns` for an RNN's step, :class:`LayerColumns` for
a Transformer's (every layer and head)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch

from attnstep.errors import AttnstepError
from attnstep.model.family import StepOutput
from attnstep.model.marian.model import DecoderStep
from attnstep.model.toolkits.decoder import StackedStepOutput
from attnstep.trace.records import Candidate, Edit, Floats, HeadStep, LayerStep, SourceToken, Step, View

Choice = tuple[int, bool]  # (target token id, forced by the user)


@dataclass(frozen=True)
class Row:
    """Per-sentence bookkeeping inside a batch."""

    source: tuple[SourceToken, ...]
    prefix: tuple[Choice, ...]  # choices to make at steps 0..len-1 instead of the model's
    limit: int  # maximum number of steps
    min_length: int = 0  # <eos> is not chosen at steps before this one
    edits: Mapping[int, Edit] = field(default_factory=dict)  # step → the user's edit of its attention weights


class Numbers(NamedTuple):
    """One sentence's numbers at one step, out of torch (see :class:`Columns`)."""

    data: bytes  # the step's whole table as float32 bytes: the vectors are spans of it, not copies
    start: int  # where the sentence's row starts in data, in floats
    tail: tuple[float, ...]  # the row from e_t on, as floats
    top_ids: list[int]  # the top-k candidates' ids


class Pick(NamedTuple):
    """What step t of a sentence did: the token it read, the one it took and that one's log-probability."""

    t: int
    input_id: int
    chosen_id: int
    logprob: float
    forced: bool  # by the user


@dataclass(frozen=True)
class Columns:
    """Where each quantity sits in a step's row of numbers:
    [h_t | C_t | h~_t | query term (concat/additive) | every layer's h_t | every layer's c_t |
     e_t (S) | a_t (S) | top-k log-probs | ...], the layers' states those of a toolkit's stacked RNN
    (L·H numbers where L > 1) and LSTM (L·H cell numbers), with vectors.

    The vectors, the first V numbers ([h_t; C_t] is the first H + M), leave torch as float32
    bytes; the rest, from e_t on (the row's "tail"), as Python floats. One copy out of torch per
    step: per-tensor copies would cost more than the decoder step itself at batch size 1.
    """

    vocab: Sequence[str]  # target tokens by id, to name the records' tokens
    H: int  # h_t (0 without vectors)
    M: int  # C_t (0 without vectors)
    V: int  # where the vectors end
    S: int  # padded source length (0 for a model without attention: nothing is scored)
    k: int  # top-k candidates
    Q: int  # the scorer's query term (0 but for concat/additive with vectors)
    stack: int = 0  # every layer's h_t, L·H numbers (0 but for a stacked RNN's, with vectors)
    cells: int = 0  # every layer's c_t, L·H numbers (0 but for an LSTM's, with vectors)
    L: int = 1  # the RNN's layers
    grows: ClassVar[bool] = False  # the same columns at every step: measured once per batch

    @property
    def top(self) -> int:
        """Where the top-k log-probabilities start in a row's tail."""
        return 2 * self.S

    @classmethod
    def of(cls, output: StepOutput, vocab: Sequence[str], k: int, vectors: bool, queried: bool) -> Columns:
        """The columns of a batch's steps, measured on its first step's output."""
        H = output.hidden.size(1) if vectors else 0
        M = output.concat.size(1) - H if vectors else 0
        Q = output.query.size(1) if queried else 0
        stacked = output if isinstance(output, StackedStepOutput) else None
        L = 1 if stacked is None else stacked.layers.size(1)
        stack = stacked.layers[0].numel() if stacked is not None and vectors and L > 1 else 0
        cells = stacked.cells[0].numel() if stacked is not None and vectors else 0  # 0 for a GRU's
        V = H + M + (output.attentional.size(1) if vectors else 0) + Q + stack + cells
        return cls(vocab, H, M, V, output.scores.size(1), k, Q, stack, cells, L)

    def numbers(self, output: StepOutput, top_logprobs: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        """A step's rows of numbers, with ``extra`` columns appended: (B, C)."""
        vectors = [output.concat, output.attentional] if self.H else []  # concat is [h_t; C_t]
        if self.Q:
            vectors.append(output.query)
        if isinstance(output, StackedStepOutput):
            vectors += [output.layers.flatten(1)] if self.stack else []  # (B, L·H)
            vectors += [output.cells.flatten(1)] if self.cells else []  # (B, L·H)
        return torch.cat([*vectors, output.scores, output.weights, top_logprobs, *extra], dim=1)

    def split(self, table: torch.Tensor, top_ids: list[list[int]]) -> list[Numbers]:
        return split_rows(table, top_ids, self.V)

    def record(self, n: int, numbers: Numbers, pick: Pick) -> Step:
        """The record of a sentence's step from its numbers; ``n`` is the sentence's own source length."""
        vocab = self.vocab
        data, start, tail, top_ids = numbers
        H, M, S = start + self.H, start + self.H + self.M, self.S  # where h_t and C_t end in data; S in the tail
        Q = start + self.V - self.cells - self.stack  # where the query term ends, and the layers' h_t start
        C = Q + self.stack  # where the layers' c_t start
        n = min(n, S)  # no scores or weights without attention
        # NaN anywhere in the step (state, scores, context) reaches every logit, and so the
        # log-normaliser: one finite log-probability vouches for the whole row.
        check_finite(pick.logprob)
        vectors = self.H > 0
        return Step(
            index=pick.t,
            input_token=vocab[pick.input_id],
            input_id=pick.input_id,
            scores=tail[:n],
            weights=tail[S : S + n],
            hidden=Floats(data, start, H) if vectors else None,
            context=Floats(data, H, M) if vectors else None,
            concat=Floats(data, start, M) if vectors else None,
            attentional=Floats(data, M, Q - self.Q) if vectors else None,
            candidates=candidates(vocab, top_ids, tail[2 * S : 2 * S + self.k]),
            chosen_token=vocab[pick.chosen_id],
            chosen_id=pick.chosen_id,
            chosen_logprob=pick.logprob,
            forced=pick.forced,
            query=Floats(data, Q - self.Q, Q) if self.Q else None,
            cell=Floats(data, C + self.cells - self.cells // self.L, C + self.cells) if self.cells else None,
            layer_states=self._layers(data, Q) if self.stack else (),
            layer_cells=self._layers(data, C) if self.cells and self.L > 1 else (),
        )

    def _layers(self, data: bytes, at: int) -> tuple[Floats, ...]:
        """The L layers' vectors (each size / L numbers) from ``at`` in data, bottom first."""
        size = (self.stack or self.cells) // self.L
        return tuple(Floats(data, at + j * size, at + (j + 1) * size) for j in range(self.L))


@dataclass(frozen=True)
class LayerColumns:
    """Where each quantity sits in a Transformer step's row of numbers (a
    :class:`~attnstep.model.marian.model.DecoderStep`), with vectors:
    [E[y] | position | per layer: x, self_output, joined, cross_output, output, q per head, c per head]
    (each D numbers), then the tail: per layer [cross scores (h × S) | cross weights (h × S) |
    self weights (h × T)], then the top-k log-probabilities. T, the tokens read so far, grows by one
    a step, so the columns are measured at every step (:attr:`grows`).
    """

    vocab: Sequence[str]
    L: int  # decoder layers
    h: int  # heads
    d: int  # numbers per head
    S: int  # padded source length
    T: int  # target positions read so far, this one included
    k: int
    vectors: bool
    view: View  # which cross-attention the step's scores and weights show
    grows: ClassVar[bool] = True

    @classmethod
    def of(cls, output: DecoderStep, vocab: Sequence[str], k: int, vectors: bool, view: View) -> LayerColumns:
        cross, own = output.layers[0].cross_attention, output.layers[0].self_attention
        _, h, S = cross.weights.shape
        return cls(vocab, len(output.layers), h, cross.query.size(2), S, own.weights.size(2), k, vectors, view)

    @property
    def D(self) -> int:
        return self.h * self.d

    @property
    def V(self) -> int:
        """Where the vectors end (0 without them)."""
        return self.D * (2 + 7 * self.L) if self.vectors else 0

    @property
    def width(self) -> int:
        """A layer's numbers in the tail."""
        return self.h * (2 * self.S + self.T)

    @property
    def top(self) -> int:
        return self.L * self.width

    def numbers(self, output: DecoderStep, top_logprobs: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        """A step's rows of numbers, with ``extra`` columns appended: (B, C)."""
        columns: list[torch.Tensor] = []
        if self.vectors:
            x = output.token_embedding + output.position  # (B, D) what the first layer reads
            columns += [output.token_embedding, output.position.expand_as(x)]
            for layer in output.layers:
                own, cross, ffn = layer.self_attention, layer.cross_attention, layer.feed_forward
                columns += [x, own.normed, cross.output, cross.normed, ffn.normed]  # (B, D) each
                columns += [cross.query.flatten(1), cross.context.flatten(1)]  # (B, h·d) each
                x = ffn.normed
        for layer in output.layers:
            own, cross = layer.self_attention, layer.cross_attention
            columns += [cross.scores.flatten(1), cross.weights.flatten(1), own.weights.flatten(1)]  # (B, h·N) each
        return torch.cat([*columns, top_logprobs, *extra], dim=1)

    def split(self, table: torch.Tensor, top_ids: list[list[int]]) -> list[Numbers]:
        return split_rows(table, top_ids, self.V)

    def record(self, n: int, numbers: Numbers, pick: Pick) -> Step:
        """The record of a sentence's step; ``n`` is its own source length (padding is left out)."""
        data, start, tail, top_ids = numbers
        check_finite(pick.logprob)
        D, d, h, S, T = self.D, self.d, self.h, self.S, self.T

        def span(at: int, size: int) -> Floats | None:  # numbers at..at+size of the row's vectors
            return Floats(data, start + at, start + at + size) if self.vectors else None

        layers = []
        for layer in range(self.L):
            b, v = layer * self.width, D * (2 + 7 * layer)  # where the layer's tail and vectors start
            heads = tuple(
                HeadStep(
                    tail[b + j * S : b + j * S + n],
                    tail[b + (h + j) * S : b + (h + j) * S + n],
                    span(v + 5 * D + j * d, d),
                    span(v + 6 * D + j * d, d),
                )
                for j in range(h)
            )
            own = b + 2 * h * S
            self_weights = tuple(tail[own + j * T : own + (j + 1) * T] for j in range(h))
            parts = (span(v + i * D, D) for i in range(5))
            layers.append(LayerStep(heads, self_weights, *parts))
        scores, weights = layers[self.view.layer].attention(self.view.head)
        return Step(
            index=pick.t,
            input_token=self.vocab[pick.input_id],
            input_id=pick.input_id,
            scores=scores,
            weights=weights,
            hidden=layers[-1].output,  # the top layer's output: what the output layer reads
            context=None,
            concat=None,
            attentional=None,
            candidates=candidates(self.vocab, top_ids, tail[self.top : self.top + self.k]),
            chosen_token=self.vocab[pick.chosen_id],
            chosen_id=pick.chosen_id,
            chosen_logprob=pick.logprob,
            forced=pick.forced,
            layers=tuple(layers),
            embedding=span(0, D),
            position=span(D, D),
        )


def split_rows(table: torch.Tensor, top_ids: list[list[int]], vectors_end: int) -> list[Numbers]:
    """Each row of a step's (B, C) numbers, with its top-k ids: the one copy out of torch."""
    raw = table.cpu().numpy().tobytes()
    numbers = memoryview(raw).cast("f")
    width = table.size(1)
    starts = range(0, len(numbers), width)
    return [
        Numbers(raw, i, tuple(numbers[i + vectors_end : i + width].tolist()), ids) for i, ids in zip(starts, top_ids)
    ]


def candidates(vocab: Sequence[str], top_ids: list[int], logprobs: Sequence[float]) -> tuple[Candidate, ...]:
    return tuple(Candidate(vocab[i], i, math.exp(logprob)) for i, logprob in zip(top_ids, logprobs))


def check_finite(logprob: float) -> None:
    """Refuse a log-probability that is NaN or infinite: the model that computed it is broken."""
    if not math.isfinite(logprob):
        raise AttnstepError("the model produced NaN or infinite values; the checkpoint is unusable")


def floats(tensor: torch.Tensor) -> tuple[Floats, ...]:
    """The rows of a float32 (R, D) tensor, as Floats: one copy out of torch."""
    raw = tensor.cpu().contiguous().numpy().tobytes()
    width = tensor.size(1)
    return tuple(Floats(raw, i, i + width) for i in range(0, len(raw) // 4, width))
