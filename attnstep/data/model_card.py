"""What the new-sentence box says of a checkpoint, read without torch: the language it translates
from (its config.json, or an opus-mt-xx-yy folder's name) and the example sentences its model card
(README.md) lists.

Used by ``attnstep translate`` and by each SSH session, which open the new-sentence box on them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

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
# Source languages' names for the box's prompt; another code is shown as it is.
LANGUAGE_NAMES = {
    "cs": "Czech",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "it": "Italian",
    "nl": "Dutch",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
}
OPUS_MT_NAME = re.compile(r"opus-mt-([a-z]{2,3})-([a-z]{2,3})")  # a Marian folder's languages, source first

_EXAMPLE_HEADING = re.compile(r"^#+\s*example", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")


def model_card_examples(checkpoint: Path) -> tuple[str, ...]:
    """Source sentences listed under an "Examples" heading of the checkpoint's README.md.

    A bullet may hold just the sentence or ``source → translation``; backticks and quotes
    around it are dropped. Falls back to :data:`DEFAULT_EXAMPLES` for a model from French or from a
    language it does not name, to none for a model from another language.
    """
    fallback = DEFAULT_EXAMPLES if source_language(checkpoint) in ("", LANGUAGE_NAMES["fr"]) else ()
    try:
        lines = (checkpoint / "README.md").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return fallback
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
    return tuple(examples[:MAX_EXAMPLES]) or fallback


def source_language(checkpoint: Path) -> str:
    """The language the checkpoint translates from, by name ("German"), or "" where it does not say."""
    try:
        config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
        code = config.get("source_language", "") if isinstance(config, dict) else ""
    except (OSError, UnicodeDecodeError, ValueError):
        code = ""
    if not code and (named := OPUS_MT_NAME.fullmatch(checkpoint.name)):
        code = named[1]
    return LANGUAGE_NAMES.get(code, code) if isinstance(code, str) else ""
