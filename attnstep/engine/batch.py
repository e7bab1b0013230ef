"""Turning lists of token ids into padded tensors."""

from __future__ import annotations

import torch

from attnstep.text.words import BOS_ID, EOS_ID, PAD_ID


def pad(
    sequences: list[list[int]], device: torch.device | str = "cpu", pad_id: int = PAD_ID
) -> tuple[torch.Tensor, torch.Tensor]:
    """→ ids (B, S) padded with ``pad_id``, on ``device``; lengths (B,), on the CPU, where packing wants them."""
    lengths = torch.tensor([len(s) for s in sequences])
    ids = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    return ids.to(device), lengths


def pad_target(sequences: list[list[int]], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forcing pair: decoder inputs <bos> y_1..y_n and gold outputs y_1..y_n <eos>, each (B, T)."""
    inputs, _ = pad([[BOS_ID, *s] for s in sequences], device)
    gold, _ = pad([[*s, EOS_ID] for s in sequences], device)
    return inputs, gold
