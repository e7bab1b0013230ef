"""The Textual app (``attnstep translate`` / ``attnstep replay``): what the CLI and the SSH server call.

Nothing here imports torch: the local model is loaded by a worker inside the app, and
replay never loads one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from attnstep.errors import AttnstepError
from attnstep.trace import Trace
from attnstep.tui.source import DEFAULT_EXAMPLES, SourceFactory, local_source, model_card_examples

if TYPE_CHECKING:
    from attnstep.tui.app import AttnstepApp


def make_app(
    *,
    source_factory: SourceFactory | None = None,
    trace: Trace | None = None,
    sentence: str | None = None,
    examples: tuple[str, ...] = DEFAULT_EXAMPLES,
    origin: str = "",
) -> "AttnstepApp":
    """The one way to build the app: a source of traces (None for replay), or a trace to replay."""
    from attnstep.tui.app import AttnstepApp

    return AttnstepApp(source_factory=source_factory, trace=trace, sentence=sentence, examples=examples, origin=origin)


def translate_app(checkpoint: Path, sentence: str | None = None, top_k: int = 5) -> "AttnstepApp":
    """The app over a local checkpoint, loaded in a worker after the first frame."""
    return make_app(
        source_factory=local_source(checkpoint, top_k),
        sentence=sentence,
        examples=model_card_examples(checkpoint),
        origin=checkpoint.name,
    )


def replay_app(trace: Trace, origin: str) -> "AttnstepApp":
    return make_app(trace=trace, origin=f"replay of {origin}")


def run_translate(checkpoint: Path, sentence: str | None, top_k: int) -> tuple[int, str | None]:
    if sentence is not None:
        from attnstep.text import tokenize

        try:
            tokenize(sentence)  # refuse a bad sentence before the screen is taken over
        except AttnstepError as exc:
            return 1, str(exc)
    app = translate_app(checkpoint, sentence, top_k)
    app.run()
    return app.return_code or 0, app.error_message


def run_replay(trace: Trace, origin: str) -> tuple[int, str | None]:
    app = replay_app(trace, origin)
    app.run()
    return app.return_code or 0, app.error_message
