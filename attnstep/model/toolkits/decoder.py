"""The toolkits' attention decoder, one time step at a time (JoeyNMT's ``RecurrentDecoder._forward_step``,
OpenNMT-py's ``InputFeedRNNDecoder``/``StdRNNDecoder`` with ``GlobalAttention``).

Both follow Luong et al. 2015: the stacked RNN reads y_{t-1} (and, with input feeding, h~_{t-1}),
its top layer's new state h_t is the query, and the attentional vector comes from h_t and C_t:

    JoeyNMT      h~_t = tanh(W_c [h_t; C_t] + b_c)        logits = W_s h~_t
    OpenNMT-py   h~_t = tanh(W_c [C_t; h_t])  (dot, general)
                 h~_t = W_c [C_t; h_t] + b_c  (mlp)        logits = W_s h~_t + b_s

JoeyNMT's bahdanau scorer, v_aᵀ tanh(W_a h_t + U_a h_i), reads this post-RNN h_t too, unlike
Bahdanau et al. 2014's s_{t-1}: the toolkit's formulation is the one computed and shown.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from attnstep.model.family import Reweigh
from attnstep.model.rnn.attention import ConcatScorer, DotScorer, GeneralScorer, Scorer, attend
from attnstep.model.toolkits.config import JOEYNMT, RecurrentConfig
from attnstep.model.toolkits.encoder import Embedding

FORMULAS = {
    "bahdanau": "score(h_t, h_i) = v_aᵀ tanh(W_a h_t + U_a h_i)  (JoeyNMT bahdanau: h_t after the RNN step)",
    "luong": "score(h_t, h_i) = h_tᵀ W_a h_i  (JoeyNMT luong)",
    "dot": "score(h_t, h_i) = h_tᵀ h_i  (OpenNMT-py dot)",
    "general": "score(h_t, h_i) = (W_a h_t)ᵀ h_i  (OpenNMT-py general)",
    "mlp": "score(h_t, h_i) = v_aᵀ tanh(W_a h_t + b + U_a h_i)  (OpenNMT-py mlp)",
}
# Each as its toolkit names it, for the app's status line and pictures.
SCORER_NAMES = {
    "bahdanau": "JoeyNMT bahdanau (MLP)",
    "luong": "JoeyNMT luong (bilinear)",
    "dot": "OpenNMT-py dot",
    "general": "OpenNMT-py general",
    "mlp": "OpenNMT-py mlp",
}
# The trace's name for each: the scorer of attnstep's own it computes the same as (post-RNN query).
TRACE_NAMES = {"bahdanau": "concat", "luong": "general", "dot": "dot", "general": "general", "mlp": "concat"}


class StackedStepOutput(NamedTuple):
    """A toolkit decoder's step: attnstep's RNN step's intermediates (StepOutput's, in its order), and what
    only these RNNs have, every stacked layer's state and an LSTM's cell states, for the trace."""

    hidden: Tensor  # (B, H) h_t: the top layer's
    query: Tensor  # (B, K) the scorer's query term (W_a h_t + b for mlp and bahdanau), else h_t
    scores: Tensor  # (B, S) e_t
    weights: Tensor  # (B, S) a_t
    context: Tensor  # (B, M) C_t
    concat: Tensor  # (B, H + M) [h_t; C_t]
    attentional: Tensor  # (B, O) h~_t
    logits: Tensor  # (B, V)
    layers: Tensor  # (B, L, H) every layer's h_t, bottom first (the last is ``hidden``)
    cells: Tensor  # (B, L, H) an LSTM's c_t per layer; (B, L, 0) for a GRU


class DecoderState(NamedTuple):
    hidden: Tensor  # (B, L, H) every layer's h_{t-1}
    cell: Tensor  # (B, L, H) an LSTM's c_{t-1} per layer; (B, L, 0) for a GRU
    feed: Tensor  # (B, O) h~_{t-1}, read at the next step with input feeding; (B, 0) without


class Memory(NamedTuple):
    states: Tensor  # (B, S, M) the encoder's top-layer states h_i
    keys: Tensor  # (B, S, K) the scorer's transform of h_i, once per sentence
    mask: Tensor  # (B, S) True at real tokens


def make_scorer(config: RecurrentConfig) -> Scorer:
    """The scorer, as one of attnstep's (prepare keys once, a query term per step, score)."""
    H, M = config.dec_hidden, config.memory_dim
    if config.attention == "bahdanau":  # JoeyNMT: key_layer, query_layer, energy_layer, none with a bias
        return ConcatScorer(H, M, H, query_bias=False, key_bias=False)
    if config.attention == "mlp":  # OpenNMT-py: linear_context, linear_query (with a bias), v
        return ConcatScorer(H, M, H, query_bias=True, key_bias=False)
    if config.attention == "dot":
        return DotScorer()
    # JoeyNMT's luong is h_tᵀ (W_a h_i); OpenNMT-py's general (W h_t)ᵀ h_i, the same with W_a = Wᵀ
    return GeneralScorer(H, M)


class Decoder(nn.Module):
    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        self.embedding = Embedding(config.tgt_vocab_size, config.tgt_emb, config.tgt_pad, config.scale_embeddings)
        cell = nn.GRUCell if config.cell == "gru" else nn.LSTMCell
        first = config.tgt_emb + (config.out_dim if config.input_feeding else 0)
        self.cells = nn.ModuleList(
            cell(first if k == 0 else config.dec_hidden, config.dec_hidden) for k in range(config.dec_layers)
        )
        self.scorer = make_scorer(config)
        joey = config.toolkit == JOEYNMT
        self.W_c = nn.Linear(
            config.dec_hidden + config.memory_dim, config.out_dim, bias=joey or config.attention == "mlp"
        )
        self.tanh = joey or config.attention != "mlp"  # OpenNMT-py's mlp has no tanh on h~_t
        self.W_s = nn.Linear(config.out_dim, config.tgt_vocab_size, bias=config.output_bias)

    def rnn(self, inputs: Tensor, state: DecoderState) -> tuple[Tensor, Tensor]:
        """The stacked RNN's step: each layer reads the one below; returns every layer's h_t and c_t."""
        hidden, cells = [], []
        for k, cell in enumerate(self.cells):
            if isinstance(cell, nn.LSTMCell):
                h, c = cell(inputs, (state.hidden[:, k], state.cell[:, k]))  # (B, H) each
                cells.append(c)
            else:
                h = cell(inputs, state.hidden[:, k])  # (B, H)
            hidden.append(h)
            inputs = h
        stacked = torch.stack(hidden, dim=1)  # (B, L, H)
        return stacked, torch.stack(cells, dim=1) if cells else stacked[:, :, :0]  # (B, L, H), (B, L, H or 0)

    def step(
        self, prev_tokens: Tensor, state: DecoderState, memory: Memory, reweigh: Reweigh | None = None
    ) -> tuple[StackedStepOutput, DecoderState]:
        embedded = self.embedding(prev_tokens)  # (B, E)
        inputs = torch.cat([embedded, state.feed], dim=-1) if self.config.input_feeding else embedded  # (B, E + O)
        layers, cells = self.rnn(inputs, state)  # (B, L, H), (B, L, H or 0)
        hidden = layers[:, -1]  # (B, H) the top layer's h_t: the query
        term, scores, weights, context = attend(self.scorer, hidden, memory.states, memory.keys, memory.mask, reweigh)
        concat = torch.cat([hidden, context], dim=-1)  # (B, H + M) [h_t; C_t]
        # (B, O); OpenNMT-py's W_c reads [C_t; h_t]
        joined = self.W_c(concat if self.config.toolkit == JOEYNMT else torch.cat([context, hidden], dim=-1))
        attentional = torch.tanh(joined) if self.tanh else joined  # (B, O) h~_t
        logits = self.W_s(attentional)  # (B, V)
        feed = attentional if self.config.input_feeding else state.feed  # (B, O) or (B, 0)
        output = StackedStepOutput(hidden, term, scores, weights, context, concat, attentional, logits, layers, cells)
        return output, DecoderState(layers, cells, feed)
