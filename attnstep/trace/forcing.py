"""Which step of a trace can be forced: one rule for the engine and for a served session's remote source."""

from __future__ import annotations

from attnstep.errors import AttnstepError
from attnstep.trace.records import Trace


def check_forceable(trace: Trace, t: int) -> None:
    """Refuse to force step ``t`` where there is none: past the end, or after the trace's <eos>."""
    if not 0 <= t <= len(trace.steps) or (t == len(trace.steps) and trace.finished):
        raise AttnstepError(f"there is no step {t} to force in this trace")
