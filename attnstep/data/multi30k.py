"""Reading Multi30k-style parallel text: ``{split}.{lang}.gz``, one sentence a line, line N ↔ line N."""

from __future__ import annotations

import gzip
from pathlib import Path

from attnstep.errors import AttnstepError


def read_lines(data_dir: Path, split: str, lang: str) -> list[str]:
    plain, zipped = data_dir / f"{split}.{lang}", data_dir / f"{split}.{lang}.gz"
    try:
        if zipped.is_file():
            with gzip.open(zipped, "rt", encoding="utf-8") as handle:
                return [line.rstrip("\n") for line in handle]
        return plain.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise AttnstepError(f"cannot read {split}.{lang} from {data_dir}: {exc}") from None


def read_parallel(data_dir: Path, split: str, src: str, tgt: str) -> tuple[list[str], list[str]]:
    sources, targets = read_lines(data_dir, split, src), read_lines(data_dir, split, tgt)
    if len(sources) != len(targets):
        raise AttnstepError(
            f"{split}.{src} has {len(sources)} lines but {split}.{tgt} has {len(targets)}: they must align"
        )
    return sources, targets
