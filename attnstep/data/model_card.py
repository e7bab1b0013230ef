"""A checkpoint's model card (its README.md), read without torch: the example sentences it lists.

Used by ``attnstep translate`` and by each SSH session, which open the new-sentence box on them.
"""

from __future__ import annotations

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
