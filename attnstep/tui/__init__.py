"""The Textual app (``attnstep translate`` / ``attnstep replay``): what the CLI and the SSH server call.

Nothing here imports torch: the local model is loaded by a worker inside the app, and
replay never loads one.
"""

from __future__ import annotations

import sys
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
    reference: str | None = None,
) -> "AttnstepApp":
    """The one way to build the app: a source of traces (None for replay), or a trace to replay.

    ``reference``: the opening sentence's given translation, forced and scored instead of decoded.
    """
    from attnstep.tui.app import AttnstepApp

    return AttnstepApp(source_factory=source_factory, trace=trace, sentence=sentence, examples=examples, origin=origin,
                       reference=reference)


def translate_app(
    checkpoint: Path, sentence: str | None = None, top_k: int = 5, beam: int | None = None, reference: str | None = None
) -> "AttnstepApp":
    """The app over a local checkpoint, loaded in a worker after the first frame."""
    return make_app(
        source_factory=local_source(checkpoint, top_k, beam),
        sentence=sentence,
        examples=model_card_examples(checkpoint),
        origin=checkpoint.name,
        reference=reference,
    )


def replay_app(trace: Trace, origin: str) -> "AttnstepApp":
    return make_app(trace=trace, origin=f"replay of {origin}")


def run_translate(
    checkpoint: Path, sentence: str | None, top_k: int, beam: int | None = None, reference: str | None = None
) -> tuple[int, str | None]:
    from attnstep.text import tokenize

    if reference is not None and sentence is None:
        return 1, "--target needs the SENTENCE it translates"
    # Refuse bad input before the screen is taken over.
    for text, what in ((sentence, ""), (reference, "the reference: ")):
        if text is None:
            continue
        try:
            tokenize(text)
        except AttnstepError as exc:
            return 1, what + str(exc)
    if missing := no_terminal("translate"):
        return 1, missing
    app = translate_app(checkpoint, sentence, top_k, beam, reference)
    app.run()
    return app.return_code or 0, app.error_message


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
