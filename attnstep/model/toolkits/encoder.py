"""The toolkits' RNN encoder: embeddings, then a GRU or LSTM of one or more layers, one- or two-directional.

Both toolkits run torch's own ``nn.GRU``/``nn.LSTM`` over the packed batch, so the names of its
weights are theirs (``weight_ih_l0``, ``weight_hh_l0_reverse``…) and the loaders copy them unrenamed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnstep.model.toolkits.config import RecurrentConfig


def make_rnn(cell: str, input_size: int, hidden: int, layers: int, bidirectional: bool = False) -> nn.GRU | nn.LSTM:
    kind = nn.GRU if cell == "gru" else nn.LSTM
    return kind(input_size, hidden, layers, batch_first=True, bidirectional=bidirectional)


class Embedding(nn.Embedding):
    """A lookup table, times √d where JoeyNMT's ``scale: true`` says so.

    Its weights are left unset (``_weight``): they are always a checkpoint's, and the random ones
    nn.Embedding would draw cost 3 s when built on the meta device, where normal_ imports torch._dynamo."""

    def __init__(self, vocab_size: int, dim: int, pad: int, scale: bool):
        super().__init__(vocab_size, dim, padding_idx=pad, _weight=torch.empty(vocab_size, dim))
        self.factor = math.sqrt(dim) if scale else 1.0

    def forward(self, ids: Tensor) -> Tensor:
        embedded = super().forward(ids)  # (..., E)
        return embedded * self.factor if self.factor != 1.0 else embedded


class Encoder(nn.Module):
    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.embedding = Embedding(config.src_vocab_size, config.src_emb, config.src_pad, config.scale_embeddings)
        self.rnn = make_rnn(config.cell, config.src_emb, config.enc_hidden, config.enc_layers, config.bidirectional)

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """src (B, S) ids, lengths (B,) → every top-layer state h_i (B, S, M), and the final states of every
        layer and direction, (L·D, B, He) in torch's order (layer by layer, forward first), h and an LSTM's c."""
        embedded = self.embedding(src)  # (B, S, E)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_states, final = self.rnn(packed)
        states, _ = pad_packed_sequence(packed_states, batch_first=True, total_length=src.size(1))  # (B, S, M)
        if isinstance(final, tuple):  # LSTM: (h_n, c_n), each (L·D, B, He)
            return states, final[0], final[1]
        return states, final, None  # (B, S, M), (L·D, B, He)
