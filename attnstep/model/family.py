"""The seam between the engine and a model family: all that the stepper and the beam search use of a model.

A family is its config, its torch modules and one decoder step function that returns every
intermediate a trace records; attnstep's RNN family (:mod:`attnstep.model.rnn`) is the first.
The engine encodes a batch once and then steps the decoder; the memory and the decoder state
go back to the family unread, except that beam search reorders their rows with :func:`select`.

A Transformer's step (:class:`EncoderDecoder`; Marian in :mod:`attnstep.model.marian`) differs in
three ways: its state is a cache that grows by one position per step (the keys and values of the
tokens so far, per layer) instead of a fixed-size h_t; it attends L times per step, once per
decoder layer, with h heads each, so there is no single a_t; and it starts from a decoder start
token of its own and has its own end and padding ids. Its step returns one frozen record of
everything, which the family defines; the engine reads only the log-probabilities to decode.
M2M100/NLLB or mBART would be one more module satisfying the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol, TypeVar

from torch import Tensor

from attnstep.text.words import BOS_ID, EOS_ID, PAD_ID

MemoryT = TypeVar("MemoryT", bound=tuple[Tensor, ...])
StateT = TypeVar("StateT", bound=tuple[Tensor, ...])
RowsT = TypeVar("RowsT", bound=tuple[Tensor, ...])


class Specials(NamedTuple):
    """A model's own ids for what decoding needs: the decoder's first input, the end, the padding."""

    start: int  # read at the first step (<bos>; Marian's decoder start token)
    end: int  # ends an output (<eos>, </s>)
    pad: int  # fills a batch's shorter rows


ATTNSTEP_SPECIALS = Specials(BOS_ID, EOS_ID, PAD_ID)  # attnstep's checkpoints (text/words.py's ids)

# An edit of a step's attention (the user's, or the probe experiment's): called where the step has its
# weights, with (decoder layer, scores, weights): an RNN's layer 0 and (B, S) each, a Transformer's
# cross-attention of each layer and (B, h, S) each; it returns the weights the step goes on with, the
# same shape (the rows and heads it leaves alone as they were). The rest of the step, and its next
# state, are computed from them: the one seam for "what if it had looked elsewhere".
Reweigh = Callable[[int, Tensor, Tensor], Tensor]


class StepOutput(Protocol):
    """What one decoder step hands the engine for the whole batch: every intermediate a trace records."""

    @property
    def hidden(self) -> Tensor: ...  # (B, H) h_t

    @property
    def query(self) -> Tensor: ...  # (B, Q) the scorer's query term, recorded where the family has a v_a

    @property
    def scores(self) -> Tensor: ...  # (B, S) raw scores e_t; (B, 0) without attention

    @property
    def weights(self) -> Tensor: ...  # (B, S) a_t = softmax(e_t), 0 at padding; (B, 0) without attention

    @property
    def concat(self) -> Tensor: ...  # (B, H + M) [h_t; C_t]

    @property
    def attentional(self) -> Tensor: ...  # (B, O) h~_t, what the output layer reads

    @property
    def logits(self) -> Tensor: ...  # (B, V) scores over the target vocabulary, before the softmax


class Family(Protocol[MemoryT, StateT]):
    """What the engine needs of a model: encode a batch, step its decoder, say how it attends.

    ``MemoryT`` and ``StateT`` are the family's own NamedTuples of batch-first tensors.
    """

    @property
    def attention(self) -> str: ...  # the attention's name, as a trace records it ("general", "none"…)

    @property
    def formula(self) -> str: ...  # its score function, as a trace shows it

    @property
    def v_a(self) -> Tensor | None: ...  # (A,) v_a of a v_aᵀ tanh(…) score; None for scores without one

    @property
    def specials(self) -> Specials: ...  # its start, end and padding ids

    def encode(self, src: Tensor, lengths: Tensor) -> tuple[MemoryT, StateT]:
        """src (B, S) padded ids, lengths (B,) → the encoder's memory and the decoder's first state."""
        ...

    def step(
        self, prev_tokens: Tensor, state: StateT, memory: MemoryT, reweigh: Reweigh | None = None
    ) -> tuple[StepOutput, StateT]:
        """One decoder step for the batch: prev_tokens (B,) are the tokens chosen at the previous step;
        ``reweigh`` replaces its attention weights (see :data:`Reweigh`)."""
        ...

    def encoder_vectors(self, memory: MemoryT) -> tuple[Tensor, Tensor | None]:
        """What a trace shows per source token: the encoder states h_i (B, S, M), and the scorer's keys
        (B, S, K) where they are more than those states (None for dot's, and without attention)."""
        ...


class LayeredFamily(Family[MemoryT, StateT], Protocol):
    """A Transformer's family: it also has keys and values per decoder layer and head for a trace."""

    def cross_vectors(self, memory: MemoryT) -> tuple[Tensor, Tensor]:
        """Each decoder layer's cross-attention keys and values per head: (B, L, h, S, d) each."""
        ...


class TransformerStep(Protocol):
    """The part of a Transformer family's step record that decoding reads; the record holds far more."""

    @property
    def log_probs(self) -> Tensor: ...  # (B, V) log softmax of the logits over the target vocabulary


CacheT = TypeVar("CacheT", bound=tuple[Tensor, ...])
StepT_co = TypeVar("StepT_co", bound=TransformerStep, covariant=True)


class EncoderDecoder(Protocol[MemoryT, CacheT, StepT_co]):
    """What decoding needs of a Transformer encoder–decoder; memory and cache are batch-first NamedTuples."""

    def encode(self, src: Tensor, mask: Tensor) -> MemoryT:
        """src (B, S) right-padded ids, mask (B, S) True at real tokens → the encoder's memory."""
        ...

    def empty_cache(self, batch: int) -> CacheT:
        """The decoder's cache before its first step: no tokens read yet."""
        ...

    def step(self, prev_tokens: Tensor, cache: CacheT, memory: MemoryT) -> tuple[StepT_co, CacheT]:
        """One decoder position for the batch: prev_tokens (B,) are read there (the start token first)."""
        ...


def select(rows: RowsT, index: Tensor) -> RowsT:
    """A family's memory or decoder state at the batch rows ``index`` (B',)."""
    return type(rows)(*(tensor.index_select(0, index) for tensor in rows))
