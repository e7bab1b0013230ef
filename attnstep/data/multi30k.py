"""Reading Multi30k-style parallel text: ``{split}.{lang}[.gz]``, one sentence a line, line N ↔ line N."""

from __future__ import annotations

from pathlib import Path

from attnstep.data.corpus import read_text_lines
from attnstep.errors import AttnstepError


def split_sentences(data_dir: Path, split: str, lang: str) -> list[str]:
    """One language's side of a split: ``{split}.{lang}.gz`` if there is one, else ``{split}.{lang}``,
    split at "\\n" only, as :func:`~attnstep.data.corpus.read_text_lines` explains."""
    zipped = data_dir / f"{split}.{lang}.gz"
    return read_text_lines(zipped if zipped.is_file() else data_dir / f"{split}.{lang}")


def read_parallel(data_dir: Path, split: str, src: str, tgt: str) -> tuple[list[str], list[str]]:
    sources, targets = split_sentences(data_dir, split, src), split_sentences(data_dir, split, tgt)
    if len(sources) != len(targets):
        raise AttnstepError(
            f"{split}.{src} has {len(sources)} lines but {split}.{tgt} has {len(targets)}: they must align"
        )
    return sources, targets
