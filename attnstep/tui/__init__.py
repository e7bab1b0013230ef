"""The Textual app (``attnstep translate`` / ``attnstep replay``): what the CLI and the SSH server call.

Nothing here imports torch or any engine module: a source of traces is handed in (the local
one is :mod:`attnstep.commands.translate`) and called by a worker inside the app; replay has none.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from attnstep.data.model_card import DEFAULT_EXAMPLES
from attnstep.trace.records import Trace
from attnstep.tui.trace_source import SourceFactory

if TYPE_CHECKING:
    from attnstep.tui.app import AttnstepApp


def make_app(
    *,
    source_factory: SourceFactory | None = None,
    trace: Trace | None = None,
    sentence: str | None = None,
    examples: tuple[str, ...] = DEFAULT_EXAMPLES,
    origin: str = "",
    reference: str | None = None,
    other_factory: SourceFactory | None = None,
    other_origin: str = "",
) -> AttnstepApp:
    """The one way to build the app: a source of traces (None for replay), or a trace to replay.

    ``reference``: the opening sentence's given translation, forced and scored instead of decoded.
    ``other_factory``: a second model (named ``other_origin``) whose decoding of the same sentence
    c sets beside this one's.
    """
    from attnstep.tui.app import AttnstepApp

    return AttnstepApp(
        source_factory=source_factory,
        trace=trace,
        sentence=sentence,
        examples=examples,
        origin=origin,
        reference=reference,
        other_factory=other_factory,
        other_origin=other_origin,
    )


def replay_app(trace: Trace, origin: str) -> AttnstepApp:
    return make_app(trace=trace, origin=f"replay of {origin}")


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
