"""Bidirectional GRU encoder: returns *all* hidden states h_1..h_n, not just the last one."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnstep.model.rnn.config import ModelConfig
from attnstep.text.words import PAD_ID


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embedding = nn.Embedding(config.src_vocab_size, config.emb_dim, padding_idx=PAD_ID)
        self.rnn = nn.GRU(config.emb_dim, config.enc_hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(config.memory_dim, config.dec_hidden)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """src (B, S) token ids, lengths (B,) → states (B, S, 2·He), the final states [h→_n; h←_1] (B, 2·He)
        and the decoder's first state (B, H)."""
        embedded = self.dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_states, final = self.rnn(packed)  # final: (2, B, He)
        states, _ = pad_packed_sequence(packed_states, batch_first=True, total_length=src.size(1))  # (B, S, 2·He)
        summary = torch.cat([final[0], final[1]], dim=-1)  # (B, 2·He) last forward, first backward
        return states, summary, torch.tanh(self.bridge(summary))  # (B, S, 2·He), (B, 2·He), (B, H)
