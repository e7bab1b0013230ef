"""The Textual app (``attnstep translate`` / ``attnstep replay``): what the CLI and the SSH server call.

Nothing here imports torch or any engine module: a source of traces is handed in (the local
one is :mod:`attnstep.commands.translate`) and called by a worker inside the app; replay has none.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TypeVar, overload

from attnstep.trace.records import Trace

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

    from attnstep.tui.app import AppOptions, AttnstepApp

AppT = TypeVar("AppT", bound="AttnstepApp")


@overload
def make_app(app_class: None = None, /, **options: Unpack[AppOptions]) -> AttnstepApp: ...
@overload
def make_app(app_class: type[AppT], /, **options: Unpack[AppOptions]) -> AppT: ...
def make_app(app_class: type[AttnstepApp] | None = None, /, **options: Unpack[AppOptions]) -> AttnstepApp:
    """The one way to build the app, for the CLI, the tests and the SSH server's sessions.

    ``app_class`` is a subclass to build instead (the served app). Textual is imported here, when
    an app is built, not when this package is: :func:`no_terminal` answers without it.
    """
    from attnstep.tui.app import AttnstepApp

    return (app_class or AttnstepApp)(**options)


def replay_app(trace: Trace, origin: str) -> AttnstepApp:
    return make_app(trace=trace, origin=f"replay of {origin}")


def run_replay(trace: Trace, origin: str) -> tuple[int, str | None]:
    if missing := no_terminal("replay", "`attnstep plot TRACE.json -o FILE.svg` draws its alignment without one"):
        return 1, missing
    app = replay_app(trace, origin)
    app.run()
    return app.return_code or 0, app.error_message


def no_terminal(command: str, without_one: str) -> str | None:
    """Why the app cannot run here, if it cannot: Textual reads keys from stdin and draws on
    stderr, and without a terminal there it would wait forever."""
    if all(stream is not None and stream.isatty() for stream in (sys.__stdin__, sys.__stderr__)):
        return None
    return f"attnstep {command} needs a terminal (stdin and stderr): run it in one; {without_one}"
