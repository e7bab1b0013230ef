"""Editing a step's attention inside a batched decoder step: the family's :data:`~attnstep.model.family.Reweigh`
for the rows of a batch that have an edit at this step; and the probe experiment's manipulations and
measures (``Stepper.probe``).

The weights a'_t are made by :func:`~attnstep.trace.edits.edited_weights` (one definition for the engine,
the app and the probe) from the scores and weights the step itself computed, where it computed them: an
RNN's before C_t (Bahdanau's before the RNN), a Transformer's at the edited layer, whose scores do not
depend on the edit. Padding keeps no weight.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from attnstep.errors import AttnstepError
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


# The probe experiment's manipulations (Serrano & Smith 2019; Jain & Wallace 2019; Moradi et al. 2019):
# each makes, of a step's weights a_t (a Transformer's: the mean of the probed layer's heads), one edit
# of that step only. zero-random is the baseline: a weight chosen at random, not the largest.
MANIPULATIONS = ("zero-max", "zero-random", "uniform", "permute")


def manipulation(name: str, weights: Sequence[float], rng: random.Random) -> Edit:
    """The edit ``name`` makes of a step whose weights are ``weights``; ``rng`` draws the random ones."""
    if name == "zero-max":
        return Edit("zero", tokens=(max(range(len(weights)), key=weights.__getitem__),))
    if name == "zero-random":
        return Edit("zero", tokens=(rng.randrange(len(weights)),))
    if name == "uniform":
        return Edit("uniform")
    if name == "permute":
        return Edit("permute", seed=rng.randrange(2**31))
    raise AttnstepError(f"unknown manipulation {name!r} (one of {', '.join(MANIPULATIONS)})")


def probe_random(seed: int, sentence: int, t: int, name: str) -> random.Random:
    """The draws of one manipulation of one step: the same whatever the batching (a string seeds by its bytes)."""
    return random.Random(f"{seed}/{sentence}/{t}/{name}")


@dataclass(frozen=True)
class Probed:
    """One step of a sentence's greedy decoding, and what each manipulation of its attention did there."""

    sentence: int  # index among the sources probed
    step: int
    chosen_id: int  # the model's own choice
    changed: tuple[bool, ...]  # per manipulation (MANIPULATIONS' order): the edited step chose another word
    divergence: tuple[float, ...]  # per manipulation: JSD(p ‖ p'), in bits (0 to 1)


def jensen_shannon(logp: Tensor, logq: Tensor) -> Tensor:
    """JSD(p ‖ q) in bits of each row of two (B, V) log-distributions: ½ KL(p ‖ m) + ½ KL(q ‖ m), m = ½ (p + q)."""
    p, q = logp.exp(), logq.exp()  # (B, V)
    # m is 0 only where p and q underflowed to 0, whose terms are then 0: a finite log keeps them so
    logm = ((p + q) / 2).clamp_min(torch.finfo(p.dtype).tiny).log()  # (B, V)
    kl = (p * (logp - logm)).sum(-1) + (q * (logq - logm)).sum(-1)  # (B,) 2 JSD, in nats
    return (kl / (2 * math.log(2))).clamp(0.0, 1.0)  # (B,)
