"""Where the app gets its traces: a small protocol, and the local implementation over a Stepper.

The app never holds a model. It asks a :class:`TraceSource` for a new trace when the
decoding must change (a new sentence, a forced word) and otherwise only moves a cursor, so
a source may equally be a model in another process (the SSH server). Calls may block; the
app makes them from a thread worker. Replay has no source at all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Protocol

from attnstep.trace import Trace

# Shown in the new-sentence box when the checkpoint's model card lists none; the first two
# need adjective–noun reordering (French puts most adjectives after the noun).
DEFAULT_EXAMPLES = (
    "Une voiture rouge est garée devant la maison.",
    "Un chien noir court dans la rue.",
    "Une femme avec un chapeau bleu lit un livre.",
    "Deux enfants jouent dans le parc.",
    "Un homme fait du vélo sur une route de montagne.",
)
MAX_EXAMPLES = 12


class TraceSource(Protocol):
    def translate(self, sentence: str) -> Trace: ...

    def force(self, trace: Trace, t: int, word: str) -> Trace: ...

    def unforce(self, trace: Trace, t: int) -> Trace: ...

    def score_reference(self, sentence: str, reference: str) -> Trace: ...  # translate --target only


SourceFactory = Callable[[], TraceSource]


def local_source(checkpoint: Path, top_k: int, beam: int | None = None) -> SourceFactory:
    """A factory that imports torch and loads ``checkpoint``: slow, so the app calls it in a worker."""

    def load() -> TraceSource:
        from attnstep.checkpoint import load_checkpoint
        from attnstep.stepper import Stepper

        return Stepper(load_checkpoint(checkpoint), top_k=top_k, beam=beam)

    return load


_EXAMPLE_HEADING = re.compile(r"^#+\s*example", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")


def model_card_examples(checkpoint: Path) -> tuple[str, ...]:
    """Source sentences listed under an "Examples" heading of the checkpoint's README.md.

    A bullet may hold just the sentence or ``source → translation``; backticks and quotes
    around it are dropped. Falls back to :data:`DEFAULT_EXAMPLES`.
    """
    try:
        lines = (checkpoint / "README.md").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return DEFAULT_EXAMPLES
    examples: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("#"):
            inside = bool(_EXAMPLE_HEADING.match(line))
            continue
        match = _BULLET.match(line) if inside else None
        if match:
            sentence = re.split(r"\s*(?:→|->)\s*", match.group(1))[0].strip().strip("`\"“”'*").strip()
            if sentence:
                examples.append(sentence)
    return tuple(examples[:MAX_EXAMPLES]) or DEFAULT_EXAMPLES
