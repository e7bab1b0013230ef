"""Which step of a trace can be forced, and where a forced word begins: one rule for the engine, a
served session's remote source and the app."""

from __future__ import annotations

from attnstep.errors import AttnstepError
from attnstep.text.subword import WORD_START
from attnstep.trace.records import Trace


def check_forceable(trace: Trace, t: int) -> None:
    """Refuse to force step ``t`` where there is none: past the end, or after the trace's <eos>."""
    if not 0 <= t <= len(trace.steps) or (t == len(trace.steps) and trace.finished):
        raise AttnstepError(f"there is no step {t} to force in this trace")


def forced_word_start(trace: Trace, t: int) -> int:
    """Where the forced word that step ``t`` is part of begins: a word a subword model writes as
    several pieces is forced piece by piece, and undone as a whole."""
    steps = trace.steps
    while t > 0 and trace.subword and steps[t - 1].forced and not steps[t].chosen_token.startswith(WORD_START):
        t -= 1
    return t
