"""Marian as the engine's :class:`~attnstep.model.family.Family`: what the stepper's one greedy loop drives.

The stepper encodes a batch from padded ids and lengths and then steps with (memory, state); here the
state is the :class:`~attnstep.model.marian.model.DecoderCache`, which grows by a position a step, and
the step's record is the :class:`~attnstep.model.marian.model.DecoderStep` with every layer and head.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnstep.model.family import Reweigh, Specials
from attnstep.model.marian.model import DecoderCache, DecoderStep, Marian, Memory

ATTENTION = "multi-head"  # as a trace names it (trace.records.MULTI_HEAD)
FORMULA = "e_i = q·k_i / √d"


def real_tokens(src: Tensor, lengths: Tensor) -> Tensor:
    """The mask (B, S) of a right-padded batch src (B, S) with lengths (B,): True at its real tokens."""
    return torch.arange(src.size(1), device=src.device)[None, :] < lengths.to(src.device)[:, None]


class MarianFamily(nn.Module):
    """A :class:`Marian` behind the Family protocol (``Family[Memory, DecoderCache]``)."""

    attention = ATTENTION
    formula = FORMULA
    v_a = None  # scaled dot-product: no v_aᵀ tanh(…) term

    def __init__(self, marian: Marian):
        super().__init__()
        self.marian = marian
        config = marian.config
        # Its decoder starts from decoder_start_token_id (<pad> in opus-mt), which is also what pads a batch.
        self._specials = Specials(config.decoder_start_token_id, config.eos_token_id, config.pad_token_id)

    @property
    def specials(self) -> Specials:
        return self._specials

    def encode(self, src: Tensor, lengths: Tensor) -> tuple[Memory, DecoderCache]:
        """src (B, S) right-padded ids, lengths (B,) → the encoded source and an empty cache."""
        return self.marian.encode(src, real_tokens(src, lengths)), self.marian.empty_cache(src.size(0))

    def step(
        self, prev_tokens: Tensor, state: DecoderCache, memory: Memory, reweigh: Reweigh | None = None
    ) -> tuple[DecoderStep, DecoderCache]:
        return self.marian.step(prev_tokens, state, memory, reweigh)

    def encoder_vectors(self, memory: Memory) -> tuple[Tensor, Tensor | None]:
        return memory.states, None  # (B, S, D); the keys are per layer and head: cross_vectors

    def cross_vectors(self, memory: Memory) -> tuple[Tensor, Tensor]:
        """Each decoder layer's cross-attention keys and values per head: (B, L, h, S, d) each."""
        return memory.keys, memory.values
