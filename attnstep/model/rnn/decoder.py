"""The attention decoder, one time step at a time.

``Decoder.step`` is the seam everything else uses: greedy decoding loops it, and the stepper
records what it returns. Training's ``Decoder.unroll`` runs the same step at every position, with
the embedding and output layers applied to the whole sequence at once. It follows Luong et al. 2015 (eq. 5–6):

    h_t  = GRU([y_{t-1}; h~_{t-1}], h_{t-1})          input feeding
    e_t  = score(h_t, h_i)   a_t = softmax(e_t)   C_t = Σ_i a_ti h_i
    h~_t = tanh(W_c [h_t; C_t])                       attentional vector
    p(y_t) = softmax(W_s h~_t)

For Bahdanau attention ("additive") the order changes (Bahdanau et al. 2014, appendix A):
the previous state s_{t-1} is scored, and the context enters the RNN instead of input feeding:

    e_t = score(s_{t-1}, h_i) ...   s_t = GRU([y_{t-1}; C_t], s_{t-1})   then as above.

Its output layer is Luong's attentional layer, not Bahdanau's: the paper computes
t̃ = U_o s_{t-1} + V_o E y_{t-1} + C_o C_t, keeps the larger of each pair of its numbers (a
maxout layer, Goodfellow et al. 2013) and scores words with W_o t. Here the same [s_t; C_t]
goes through tanh(W_c ·) as for the other scorers, so the zoo differs only in how it attends.

Without attention ("none"; Cho et al. 2014) nothing is scored: e_t and a_t are empty, and the
context is the same at every step, c = [h→_n; h←_1], the encoder's final states.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from attnstep.model.family import Reweigh
from attnstep.model.rnn.attention import attend, make_scorer
from attnstep.model.rnn.config import ModelConfig
from attnstep.text.words import PAD_ID


class DecoderState(NamedTuple):
    hidden: Tensor  # (B, H) h_{t-1}
    feed: Tensor  # (B, O) h~_{t-1}, fed back into the RNN (Luong); unused zeros for additive


class Memory(NamedTuple):
    """What the encoder hands over, computed once per batch of sentences."""

    states: Tensor  # (B, S, M) all encoder states h_i
    keys: Tensor  # (B, S, K) the scorer's per-sentence transform of h_i
    mask: Tensor  # (B, S) True at real tokens, False at padding
    summary: Tensor  # (B, M) [h→_n; h←_1]: the only context a model without attention gets


class StepOutput(NamedTuple):
    """Every intermediate of one decoder step, for the whole batch."""

    hidden: Tensor  # (B, H) h_t
    query: Tensor  # (B, K) the scorer's query term: W_q q for concat/additive (q = h_t, or s_{t-1}), else h_t
    scores: Tensor  # (B, S) raw scores e_t (padding not masked); (B, 0) without attention
    weights: Tensor  # (B, S) a_t = softmax(e_t), 0 at padding; (B, 0) without attention
    context: Tensor  # (B, M) C_t
    concat: Tensor  # (B, H + M) [h_t; C_t]
    attentional: Tensor  # (B, O) h~_t = tanh(W_c [h_t; C_t])
    logits: Tensor  # (B, V) W_s h~_t + b


class Attended(NamedTuple):
    """A step's intermediates up to h~_t: :class:`StepOutput` but the logits."""

    hidden: Tensor
    query: Tensor
    scores: Tensor
    weights: Tensor
    context: Tensor
    concat: Tensor
    attentional: Tensor


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.feeds_context = config.attention == "additive"
        rnn_extra = config.memory_dim if self.feeds_context else config.out_dim
        self.embedding = nn.Embedding(config.tgt_vocab_size, config.emb_dim, padding_idx=PAD_ID)
        self.rnn = nn.GRUCell(config.emb_dim + rnn_extra, config.dec_hidden)
        self.scorer = make_scorer(config)
        self.W_c = nn.Linear(config.dec_hidden + config.memory_dim, config.out_dim, bias=False)
        self.W_s = None if config.tie_embeddings else nn.Linear(config.out_dim, config.tgt_vocab_size, bias=False)
        self.out_bias = nn.Parameter(torch.zeros(config.tgt_vocab_size))
        self.dropout = nn.Dropout(config.dropout)

    def initial_state(self, first_hidden: Tensor) -> DecoderState:
        feed = first_hidden.new_zeros(first_hidden.size(0), self.config.out_dim)  # (B, O)
        return DecoderState(first_hidden, feed)

    def step(
        self, prev_tokens: Tensor, state: DecoderState, memory: Memory, reweigh: Reweigh | None = None
    ) -> tuple[StepOutput, DecoderState]:
        """One time step for a batch: prev_tokens (B,) are the words chosen at the previous step; ``reweigh``
        edits a_t (Bahdanau's C_t then enters the RNN, Luong's h~_t the next step's input feeding)."""
        embedded = self.dropout(self.embedding(prev_tokens))  # (B, E)
        attended = self._attend(embedded, state, memory, reweigh)
        output = StepOutput(*attended, self.logits(attended.attentional))
        return output, DecoderState(attended.hidden, attended.attentional)

    def unroll(self, tgt_in: Tensor, state: DecoderState, memory: Memory) -> Tensor:
        """Teacher forcing: ``step`` at every position of tgt_in (B, T), whose attentional vectors h~_t (B, T, O)
        it returns. The embedding and the output layer stay outside the loop: one pass over the whole batch
        instead of T, and one gradient for their (V, E) weights instead of T summed."""
        embedded = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        vectors = []
        for t in range(tgt_in.size(1)):
            attended = self._attend(embedded[:, t], state, memory, None)
            state = DecoderState(attended.hidden, attended.attentional)
            vectors.append(attended.attentional)  # (B, O)
        return torch.stack(vectors, dim=1)  # (B, T, O)

    def logits(self, attentional: Tensor) -> Tensor:
        """(..., O) h~_t -> (..., V) W_s h~_t + b."""
        output_weight = self.embedding.weight if self.W_s is None else self.W_s.weight  # (V, O)
        return F.linear(self.dropout(attentional), output_weight, self.out_bias)  # (..., V)

    def _attend(self, embedded: Tensor, state: DecoderState, memory: Memory, reweigh: Reweigh | None) -> Attended:
        if self.feeds_context:
            assert self.scorer is not None  # additive is a scorer
            term, scores, weights, context = attend(
                self.scorer, state.hidden, memory.states, memory.keys, memory.mask, reweigh
            )
            hidden = self.rnn(torch.cat([embedded, context], dim=-1), state.hidden)  # (B, H)
        else:
            hidden = self.rnn(torch.cat([embedded, state.feed], dim=-1), state.hidden)  # (B, H)
            if self.scorer is None:
                term = scores = weights = hidden[:, :0]  # (B, 0): nothing is scored
                context = memory.summary  # (B, M) the same at every step
            else:
                term, scores, weights, context = attend(
                    self.scorer, hidden, memory.states, memory.keys, memory.mask, reweigh
                )
        concat = torch.cat([hidden, context], dim=-1)  # (B, H + M)
        attentional = torch.tanh(self.W_c(concat))  # (B, O)
        return Attended(hidden, term, scores, weights, context, concat, attentional)
