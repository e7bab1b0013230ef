"""``attnstep replay``: the stepping app over a saved trace, without a model (so without torch)."""

from __future__ import annotations

from pathlib import Path

from attnstep.commands.translate import check_app_ended_well
from attnstep.trace.reader import load


def replay(trace_file: Path) -> None:
    from attnstep.tui import run_replay

    check_app_ended_well(*run_replay(load(trace_file), origin=str(trace_file)))
