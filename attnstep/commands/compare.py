"""``attnstep compare``: one sentence through several checkpoints, side by side."""

from __future__ import annotations

from rich.console import Group

from attnstep.data.paths import resolve_checkpoint
from attnstep.engine.stepper import load_stepper
from attnstep.errors import AttnstepError
from attnstep.report.compare import comparison


def compare(sentence: str, checkpoints: list[str]) -> Group:
    """What :func:`~attnstep.report.compare.comparison` shows of each checkpoint's greedy translation."""
    if len(checkpoints) < 2:
        raise AttnstepError("give two or more --checkpoint options to compare")
    traces = [
        load_stepper(resolve_checkpoint(name), top_k=1, vectors=False).translate(sentence) for name in checkpoints
    ]
    return comparison(checkpoints, traces)
