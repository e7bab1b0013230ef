"""Encoder + attention decoder: teacher-forced training (``Decoder.unroll``) and batched greedy decoding
(``Decoder.step``), one step function under both;
the engine drives it through :class:`~attnstep.model.family.Family`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnstep.model.family import ATTNSTEP_SPECIALS, Family, Reweigh, Specials
from attnstep.model.rnn.attention import FORMULAS, ConcatScorer
from attnstep.model.rnn.config import ModelConfig
from attnstep.model.rnn.decoder import Decoder, DecoderState, Memory, StepOutput
from attnstep.model.rnn.encoder import Encoder


def max_output_length(source_length: int) -> int:
    """Decoding stops here if no <eos> came: generous for captions (target ≈ source length)."""
    return 2 * source_length + 10


class Seq2Seq(nn.Module, Family[Memory, DecoderState]):
    def __init__(self, config: ModelConfig, specials: Specials = ATTNSTEP_SPECIALS):
        super().__init__()
        self.config = config
        self._specials = specials  # another toolkit's checkpoint numbers them its own way
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    @property
    def attention(self) -> str:
        return self.config.attention

    @property
    def formula(self) -> str:
        return FORMULAS[self.config.attention]

    @property
    def v_a(self) -> Tensor | None:
        scorer = self.decoder.scorer  # concat and additive score with v_aᵀ tanh(…)
        return scorer.v_a.weight[0] if isinstance(scorer, ConcatScorer) else None  # (A,)

    @property
    def specials(self) -> Specials:
        return self._specials

    def encode(self, src: Tensor, lengths: Tensor) -> tuple[Memory, DecoderState]:
        states, summary, first_hidden = self.encoder(src, lengths)  # (B, S, M), (B, M), (B, H)
        scorer = self.decoder.scorer
        keys = states[:, :, :0] if scorer is None else scorer.prepare(states)  # (B, S, K); K = 0 without attention
        memory = Memory(states, keys, src != self.specials.pad, summary)
        return memory, self.decoder.initial_state(first_hidden)

    def step(
        self, prev_tokens: Tensor, state: DecoderState, memory: Memory, reweigh: Reweigh | None = None
    ) -> tuple[StepOutput, DecoderState]:
        return self.decoder.step(prev_tokens, state, memory, reweigh)

    def encoder_vectors(self, memory: Memory) -> tuple[Tensor, Tensor | None]:
        distinct = self.config.attention not in ("dot", "none")  # dot's keys are the states; none has none
        return memory.states, memory.keys if distinct else None  # (B, S, M), (B, S, K)

    def forward(self, src: Tensor, lengths: Tensor, tgt_in: Tensor, where: Tensor | None = None) -> Tensor:
        """Teacher forcing: tgt_in (B, T) starts with <bos>; returns logits (B, T, V), or (N, V) at the N
        positions that ``where`` (B, T, bool) marks, sparing the output layer the padding."""
        memory, state = self.encode(src, lengths)
        vectors = self.decoder.unroll(tgt_in, state, memory)  # (B, T, O)
        return self.decoder.logits(vectors if where is None else vectors[where])  # (B, T, V) or (N, V)

    @torch.no_grad()
    def greedy(self, src: Tensor, lengths: Tensor) -> list[list[int]]:
        """Plain batched greedy decoding: token ids per sentence, without <eos>."""
        memory, state = self.encode(src, lengths)
        batch = src.size(0)
        start, end, _ = self.specials
        prev = torch.full((batch,), start, dtype=torch.long, device=src.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
        limits = torch.tensor([max_output_length(int(n)) for n in lengths], device=src.device)
        outputs: list[Tensor] = []
        for t in range(int(limits.max())):
            output, state = self.step(prev, state, memory)
            prev = output.logits.argmax(dim=-1)  # (B,)
            outputs.append(prev)
            finished |= (prev == end) | (t + 1 >= limits)
            if bool(finished.all()):
                break
        rows = torch.stack(outputs, dim=1).tolist()  # (B, T)
        result = []
        for row, limit in zip(rows, limits.tolist()):
            row = row[:limit]
            result.append(row[: row.index(end)] if end in row else row)
        return result
