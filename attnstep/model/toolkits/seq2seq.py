"""A JoeyNMT or OpenNMT-py RNN model as a :class:`~attnstep.model.family.Family`: encode once, step the decoder.

The decoder's first state, from the encoder's final states (each toolkit its own way):

    JoeyNMT      the top encoder layer's [h→_n; h←_1], and for every decoder layer
                 bridge: tanh(W_b [h→_n; h←_1] + b_b)   last: [h→_n; h←_1] (its first half when twice
                 the size)   zero: 0; an LSTM's c starts as the same vector
    OpenNMT-py   each encoder layer's final states to the decoder layer of the same number
                 ([h→_n; h←_1] per layer for brnn); bridge: relu(W_b · + b_b) over them first,
                 one W_b for h and one for an LSTM's c; h~_0 = 0
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from attnstep.model.family import Family, Reweigh, Specials
from attnstep.model.rnn.attention import ConcatScorer
from attnstep.model.toolkits.config import JOEYNMT, RecurrentConfig
from attnstep.model.toolkits.decoder import (
    FORMULAS,
    SCORER_NAMES,
    TRACE_NAMES,
    Decoder,
    DecoderState,
    Memory,
    StackedStepOutput,
)
from attnstep.model.toolkits.encoder import Encoder

TOOLKIT_SPECIALS = Specials(start=2, end=3, pad=1)  # <unk> 0, <pad> 1, <s> 2, </s> 3 in both toolkits' vocabularies


class ToolkitSeq2Seq(nn.Module, Family[Memory, DecoderState]):
    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        states = 2 if config.cell == "lstm" else 1
        if config.init == "bridge" and config.toolkit == JOEYNMT:
            self.bridge = nn.ModuleList([nn.Linear(config.memory_dim, config.dec_hidden)])
        elif config.init == "bridge":  # OpenNMT-py: one per state, over (layers × per-direction size) numbers
            width = config.enc_hidden * config.enc_layers
            self.bridge = nn.ModuleList(nn.Linear(width, width) for _ in range(states))

    @property
    def attention(self) -> str:
        return TRACE_NAMES[self.config.attention]

    @property
    def formula(self) -> str:
        return FORMULAS[self.config.attention]

    @property
    def scorer_name(self) -> str:
        """The scorer as the toolkit names it ("OpenNMT-py mlp"): ``attention`` is attnstep's equivalent."""
        return SCORER_NAMES[self.config.attention]

    @property
    def attentional_formula(self) -> str:
        """h~_t as the toolkit computes it (see decoder.py)."""
        if self.config.toolkit == JOEYNMT:
            return "h̃_t = tanh(W_c[h_t; C_t] + b_c)"
        return "h̃_t = W_c[C_t; h_t] + b_c" if self.config.attention == "mlp" else "h̃_t = tanh(W_c[C_t; h_t])"

    @property
    def output_formula(self) -> str:
        return f"p(y_t) = softmax(W_s h̃_t{' + b_s' if self.config.output_bias else ''})"

    @property
    def display_names(self) -> dict[str, str]:
        """The scorer's name and the last layers' formulas as the trace's CheckpointInfo keeps them."""
        return {
            "scorer": self.scorer_name,
            "attentional_formula": self.attentional_formula,
            "output_formula": self.output_formula,
        }

    @property
    def v_a(self) -> Tensor | None:
        scorer = self.decoder.scorer
        return scorer.v_a.weight[0] if isinstance(scorer, ConcatScorer) else None  # (A,)

    @property
    def specials(self) -> Specials:
        return TOOLKIT_SPECIALS

    def encode(self, src: Tensor, lengths: Tensor) -> tuple[Memory, DecoderState]:
        states, final_h, final_c = self.encoder(src, lengths)  # (B, S, M), (L·D, B, He) each
        memory = Memory(states, self.decoder.scorer.prepare(states), src != self.config.src_pad)
        if self.config.toolkit == JOEYNMT:
            hidden, cell = self._joeynmt_start(final_h)  # (B, L, H) each
        else:
            hidden, cell = self._opennmt_start(final_h, final_c)
        if self.config.cell == "gru":
            cell = hidden[:, :, :0]  # (B, L, 0)
        width = self.config.out_dim if self.config.input_feeding else 0
        return memory, DecoderState(hidden, cell, states.new_zeros(states.size(0), width))

    def _joeynmt_start(self, final_h: Tensor) -> tuple[Tensor, Tensor]:
        config = self.config
        directions = 2 if config.bidirectional else 1
        top = final_h.view(config.enc_layers, directions, -1, config.enc_hidden)[-1]  # (D, B, He)
        final = torch.cat(list(top), dim=-1)  # (B, M) [h→_n; h←_1]
        if config.init == "bridge":
            first = torch.tanh(self.bridge[0](final))  # (B, H)
        elif config.init == "last":
            first = final[:, : config.dec_hidden]  # (B, H) the forward half when the encoder is twice the size
        else:
            first = final.new_zeros(final.size(0), config.dec_hidden)  # (B, H)
        hidden = first.unsqueeze(1).expand(-1, config.dec_layers, -1).contiguous()  # (B, L, H) every layer alike
        return hidden, hidden

    def _opennmt_start(self, final_h: Tensor, final_c: Tensor | None) -> tuple[Tensor, Tensor]:
        finals = [final_h] if final_c is None else [final_h, final_c]  # (L·D, B, He) each
        if self.config.init == "bridge":
            finals = [self._bottle(linear, state) for linear, state in zip(self.bridge, finals)]
        if self.config.bidirectional:  # layer k's [h→; h←]: rows 2k and 2k + 1
            finals = [torch.cat([state[0::2], state[1::2]], dim=2) for state in finals]  # (L, B, H)
        per_batch = [state.transpose(0, 1).contiguous() for state in finals]  # (B, L, H)
        return per_batch[0], per_batch[-1]

    def _bottle(self, linear: nn.Module, state: Tensor) -> Tensor:
        """OpenNMT-py's bridge: relu(W_b s + b_b) over the final states viewed as rows of L·He numbers,
        exactly as its RNNEncoder._bridge reshapes them (for brnn a row mixes directions and layers)."""
        rows = state.transpose(0, 1).contiguous()  # (B, L·D, He)
        width = self.config.enc_hidden * self.config.enc_layers
        mixed = F.relu(linear(rows.view(-1, width)))  # (B·D, L·He)
        return mixed.view(rows.shape).transpose(0, 1).contiguous()  # (L·D, B, He)

    def step(
        self, prev_tokens: Tensor, state: DecoderState, memory: Memory, reweigh: Reweigh | None = None
    ) -> tuple[StackedStepOutput, DecoderState]:
        return self.decoder.step(prev_tokens, state, memory, reweigh)

    def encoder_vectors(self, memory: Memory) -> tuple[Tensor, Tensor | None]:
        distinct = self.config.attention != "dot"  # dot's keys are the states themselves
        return memory.states, memory.keys if distinct else None  # (B, S, M), (B, S, K)
