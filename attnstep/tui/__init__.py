"""The Textual app (``attnstep translate`` / ``attnstep replay``): what the CLI and the SSH server call.

Nothing here imports torch or any engine module: a source of traces is handed in (the local
one is :mod:`attnstep.commands.translate`) and called by a worker inside the app; replay has none.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from attnstep.trace.records import Trace

if TYPE_CHECKING:
    from attnstep.tui.app import AttnstepApp


def replay_app(trace: Trace, origin: str) -> AttnstepApp:
    # Textual is imported only here, once the app is to run: no_terminal answers without it.
    from attnstep.tui.app import AttnstepApp

    return AttnstepApp(trace=trace, origin=f"replay of {origin}")


def run_replay(trace: Trace, origin: str) -> tuple[int, str | None]:
    if missing := no_terminal("replay"):
        return 1, missing
    app = replay_app(trace, origin)
    app.run()
    return app.return_code or 0, app.error_message


def no_terminal(command: str) -> str | None:
    """Why the app cannot run here, if it cannot: Textual reads keys from stdin and draws on
    stderr, and without a terminal there it would wait forever."""
    if all(stream is not None and stream.isatty() for stream in (sys.__stdin__, sys.__stderr__)):
        return None
    return f"attnstep {command} needs a terminal (stdin and stderr); `attnstep dump` writes a trace as JSON without one"
