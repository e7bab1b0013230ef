"""Editing a step's attention inside a batched decoder step: the family's :data:`~attnstep.model.family.Reweigh`
for the rows of a batch that have an edit at this step.

The weights a'_t are made by :func:`~attnstep.trace.edits.edited_weights` (one definition for the engine,
the app and the probe) from the scores and weights the step itself computed, where it computed them: an
RNN's before C_t (Bahdanau's before the RNN), a Transformer's at the edited layer, whose scores do not
depend on the edit. Padding keeps no weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from attnstep.trace.edits import edited_weights
from attnstep.trace.records import Edit, Vector


@dataclass
class Reweighing:
    """A step's edits for some rows of its batch: (batch row, edit, the row's source length) each. Called
    as the family's Reweigh; afterwards ``own`` and ``edited`` hold each edited row's weights per head."""

    edits: Sequence[tuple[int, Edit, int]]
    own: dict[int, tuple[Vector, ...]] = field(default_factory=dict)  # batch row → a_t per edited head
    edited: dict[int, tuple[Vector, ...]] = field(default_factory=dict)  # batch row → a'_t, as float32 used

    def __call__(self, layer: int, scores: Tensor, weights: Tensor) -> Tensor:
        """(B, S) for an RNN (layer 0), (B, h, S) for a Transformer's layer → the weights, edited rows replaced."""
        mine = [(b, edit, n) for b, edit, n in self.edits if (edit.layer or 0) == layer]
        if not mine:
            return weights
        weights = weights.clone()  # (B, S) or (B, h, S)
        for b, edit, n in mine:
            if weights.dim() == 2:  # an RNN's one a_t
                heads: list[tuple[Tensor, Tensor]] = [(scores[b, :n], weights[b, :n])]
            else:
                chosen = range(weights.size(1)) if edit.head is None else (edit.head,)
                heads = [(scores[b, j, :n], weights[b, j, :n]) for j in chosen]
            own, made = [], []
            for head_scores, head_weights in heads:
                before = head_weights.tolist()  # (n,)
                after = torch.tensor(
                    edited_weights(edit, head_scores.tolist(), before), dtype=weights.dtype, device=weights.device
                )  # (n,)
                head_weights.copy_(after)  # a view of the cloned weights: the step attends with it
                own.append(tuple(before))
                made.append(tuple(after.tolist()))
            self.own[b], self.edited[b] = tuple(own), tuple(made)
        return weights
