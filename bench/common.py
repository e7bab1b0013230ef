"""Shared by the benchmarks: the model to measure and a sentence of a given length."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from attnstep.paths import DEFAULT_CHECKPOINT  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "multi30k"


def load_model(path: Path = DEFAULT_CHECKPOINT):
    from attnstep.checkpoint import load_checkpoint

    if not path.is_dir():
        raise SystemExit(f"bench: no checkpoint at {path}; pass one or train it first")
    return load_checkpoint(path)


def captions(words: int) -> list[str]:
    """The first real test-set captions that together have at least ``words`` tokens."""
    from attnstep.data import read_lines
    from attnstep.text import tokenize

    chosen, count = [], 0
    for line in read_lines(DATA, "test_2016_flickr", "fr"):
        chosen.append(line)
        count += len(tokenize(line))
        if count >= words:
            return chosen
    raise SystemExit("bench: not enough test sentences")


def long_sentence(words: int) -> str:
    """Real test-set captions run together into one source of exactly ``words`` tokens."""
    from attnstep.text import detokenize, tokenize

    return detokenize([t.surface for line in captions(words) for t in tokenize(line)][:words])


def long_caption(words: int) -> str:
    """The first real test-set caption with at least ``words`` tokens, cut to exactly ``words``."""
    from attnstep.data import read_lines
    from attnstep.text import detokenize, tokenize

    for line in read_lines(DATA, "test_2016_flickr", "fr"):
        tokens = tokenize(line)
        if len(tokens) >= words:
            return detokenize([t.surface for t in tokens[:words]])
    raise SystemExit(f"bench: no test caption has {words} tokens")
