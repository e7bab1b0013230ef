"""``attnstep translate``: the stepping app over a checkpoint on this machine.

The engine side of the app's :class:`~attnstep.tui.trace_source.TraceSource` contract: the app
(``attnstep.tui``) imports no engine module, and is handed a factory that builds a
:class:`~attnstep.engine.stepper.Stepper`. The factory imports torch and loads the weights, which
takes seconds, so the app calls it in a worker after its first frame.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from attnstep.errors import AttnstepError

if TYPE_CHECKING:
    from attnstep.engine.stepper import Stepper
    from attnstep.tui.app import AttnstepApp


def local_source(
    checkpoint: Path, top_k: int, beam: int | None = None, device: str = "cpu", threads: int = 0
) -> Callable[[], Stepper]:
    """A factory that imports torch and loads ``checkpoint`` onto ``device`` (a Stepper is a TraceSource)."""

    def load() -> Stepper:
        from attnstep.engine.device import use_device
        from attnstep.engine.marian_checkpoint import load_any
        from attnstep.engine.stepper import Stepper

        # One thread unless told: a sentence is a batch of one, too small for intra-op threads to pay off,
        # and they wait on each other when the cores are busy (a base-size Marian's 31 steps: 0.8 s on one
        # thread, 3.8-10 s on two, on the loaded 2-core development machine).
        return Stepper(load_any(checkpoint, use_device(device, threads or 1)), top_k=top_k, beam=beam)

    return load


def translate_app(
    checkpoint: Path,
    sentence: str | None = None,
    top_k: int = 5,
    beam: int | None = None,
    reference: str | None = None,
    other: Path | None = None,
    device: str = "cpu",
    threads: int = 0,
) -> AttnstepApp:
    """The app over a local checkpoint, opening on ``sentence`` (or ``reference``, its given
    translation, scored) or on the model card's examples; ``other``, a second checkpoint for c."""
    from attnstep.data.model_card import model_card_examples, source_language
    from attnstep.data.paths import display_name
    from attnstep.tui import make_app

    return make_app(
        source_factory=local_source(checkpoint, top_k, beam, device, threads),
        sentence=sentence,
        examples=model_card_examples(checkpoint),
        source_language=source_language(checkpoint),
        origin=display_name(checkpoint),
        reference=reference,
        other_factory=None if other is None else local_source(other, top_k, device=device, threads=threads),
        other_origin="" if other is None else display_name(other),
    )


def translate_input_problem(sentence: str | None, reference: str | None) -> str | None:
    """What is wrong with the sentence or reference given on the command line, before any screen or model."""
    from attnstep.text.words import check_sentence

    if reference is not None and sentence is None:
        return "--target needs the SENTENCE it translates"
    for text, what in ((sentence, ""), (reference, "the reference: ")):
        if text is None:
            continue
        try:
            check_sentence(text)
        except AttnstepError as exc:
            return what + str(exc)
        if not text.strip():
            return what + "the sentence is empty: type some words to translate"
    return None


def run_translate(
    checkpoints: list[Path],
    sentence: str | None,
    top_k: int,
    beam: int | None = None,
    reference: str | None = None,
    device: str = "cpu",
    threads: int = 0,
) -> None:
    """``attnstep translate``: the app over the first checkpoint, with the second (if any) for c, on ``device``."""
    from attnstep.tui import no_terminal

    problem = translate_input_problem(sentence, reference)
    if problem:
        raise AttnstepError(problem)
    if len(checkpoints) > 2:
        raise AttnstepError(
            "give at most two --checkpoint options: the model to step through and one to compare it with (c)"
        )
    if device == "cuda":  # refused before the screen opens; else torch is first imported in the app's worker
        from attnstep.engine.device import use_device

        use_device(device, threads)
    if missing := no_terminal("translate", "`attnstep dump SENTENCE` writes its trace as JSON without one"):
        raise AttnstepError(missing)
    other = checkpoints[1] if len(checkpoints) == 2 else None
    app = translate_app(checkpoints[0], sentence, top_k, beam, reference, other, device, threads)
    app.run()
    check_app_ended_well(app.return_code, app.error_message)


def check_app_ended_well(code: int | None, message: str | None) -> None:
    """An app that stopped with an error (a model that would not load) ends the command with its message."""
    if code:
        raise AttnstepError(message or "the app stopped with an error")
