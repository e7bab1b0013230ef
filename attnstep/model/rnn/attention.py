"""Attention scorers: how well each encoder state h_i matches the decoder's query.

Luong, Pham & Manning 2015, eq. 8:
    dot      score(h_t, h_i) = h_tᵀ h_i
    general  score(h_t, h_i) = h_tᵀ W_a h_i
    concat   score(h_t, h_i) = v_aᵀ tanh(W_a [h_t; h_i] + b)
Bahdanau, Cho & Bengio 2014, appendix A.1.2 (the same form as concat, but the query is the
previous decoder state s_{t-1}; the decoder decides which state it passes in):
    additive score(s_{t-1}, h_i) = v_aᵀ tanh(W_a s_{t-1} + U_a h_i + b)
The papers write both without the bias b; these models learn one (a bias on U_a h_i), and the
formula shown says so. "none" is the encoder–decoder without attention (Cho et al. 2014,
Sutskever et al. 2014): nothing is scored, and the decoder gets the encoder's final states.

Each scorer splits its work in three: ``prepare`` transforms the encoder states once per
sentence into keys (W_a h_i does not depend on t), ``query_term`` transforms the query once
per step (W_q h_t for concat and additive, the query itself otherwise), and ``forward``
scores that term against the keys. Keys and query terms are what a worked score shows.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnstep.model.family import Reweigh
from attnstep.model.rnn.config import ModelConfig

FORMULAS = {
    "dot": "score(h_t, h_i) = h_tᵀ h_i",
    "general": "score(h_t, h_i) = h_tᵀ W_a h_i",
    "concat": "score(h_t, h_i) = v_aᵀ tanh(W_a [h_t; h_i] + b)",
    "additive": "score(s_{t-1}, h_i) = v_aᵀ tanh(W_a s_{t-1} + U_a h_i + b)",
    "none": "no attention: C_t = c = [h→_n; h←_1], the encoder's final states, at every step",
}


class DotScorer(nn.Module):
    def prepare(self, memory: Tensor) -> Tensor:
        return memory  # (B, S, M)

    def query_term(self, query: Tensor) -> Tensor:
        return query  # (B, H)

    def forward(self, term: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(keys, term.unsqueeze(2)).squeeze(2)  # (B, S)


class GeneralScorer(DotScorer):
    """h_tᵀ (W_a h_i): a dot product with keys W_a h_i computed once per sentence."""

    def __init__(self, query_dim: int, memory_dim: int):
        super().__init__()
        self.W_a = nn.Linear(memory_dim, query_dim, bias=False)

    def prepare(self, memory: Tensor) -> Tensor:
        return self.W_a(memory)  # (B, S, H)


class ConcatScorer(nn.Module):
    """v_aᵀ tanh(W_a [q; h_i]), computed as v_aᵀ tanh(W_q q + W_k h_i) so W_k h_i is done once.

    attnstep's models learn the bias b on W_k; JoeyNMT's bahdanau has none, OpenNMT-py's mlp has it on W_q."""

    def __init__(
        self, query_dim: int, memory_dim: int, attn_dim: int, *, query_bias: bool = False, key_bias: bool = True
    ):
        super().__init__()
        self.W_q = nn.Linear(query_dim, attn_dim, bias=query_bias)
        self.W_k = nn.Linear(memory_dim, attn_dim, bias=key_bias)
        self.v_a = nn.Linear(attn_dim, 1, bias=False)

    def prepare(self, memory: Tensor) -> Tensor:
        return self.W_k(memory)  # (B, S, A)

    def query_term(self, query: Tensor) -> Tensor:
        return self.W_q(query)  # (B, A)

    def forward(self, term: Tensor, keys: Tensor) -> Tensor:
        hidden = torch.tanh(keys + term.unsqueeze(1))  # (B, S, A)
        return self.v_a(hidden).squeeze(2)  # (B, S)


Scorer = DotScorer | ConcatScorer  # GeneralScorer is a DotScorer with keys of its own


def make_scorer(config: ModelConfig) -> Scorer | None:
    if config.attention == "none":
        return None
    if config.attention == "dot":
        return DotScorer()
    if config.attention == "general":
        return GeneralScorer(config.dec_hidden, config.memory_dim)
    return ConcatScorer(config.dec_hidden, config.memory_dim, config.attn_dim)


def attend(
    scorer: Scorer, query: Tensor, memory: Tensor, keys: Tensor, mask: Tensor, reweigh: Reweigh | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Score, softmax and sum: returns the query term, raw scores e_t, weights a_t and context C_t = Σ_i a_ti h_i;
    with ``reweigh``, the weights are its a'_t and C_t = Σ_i a'_ti h_i."""
    term = scorer.query_term(query)  # (B, K)
    scores = scorer(term, keys)  # (B, S)
    masked = scores.masked_fill(~mask, float("-inf"))  # (B, S) padding gets no weight
    weights = torch.softmax(masked, dim=-1)  # (B, S)
    if reweigh is not None:
        weights = reweigh(0, scores, weights)  # (B, S) a'_t
    context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, M)
    return term, scores, weights, context
