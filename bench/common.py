"""Shared by the benchmarks: the model to measure, the test captions, and a sentence of a given length."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from attnstep.data.downloads import default_data_dir  # noqa: E402
from attnstep.data.paths import DEFAULT_CHECKPOINT  # noqa: E402


def data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data_dir("multi30k"),
        help="Multi30k folder (default: where `attnstep data get multi30k` puts it)",
    )


def load_model(path: Path = DEFAULT_CHECKPOINT):
    from attnstep.engine.checkpoint import load_checkpoint

    if not path.is_dir():
        raise SystemExit(f"bench: no checkpoint at {path}; pass one or train it first")
    return load_checkpoint(path)


def test_captions(data: Path, language: str = "fr") -> list[str]:
    """test_2016_flickr's source side; without it the bench ends with one line naming the command that fetches it."""
    from attnstep.data.downloads import check_splits
    from attnstep.data.multi30k import split_sentences
    from attnstep.errors import AttnstepError

    try:
        check_splits(data, ["test_2016_flickr"], [language])
        return split_sentences(data, "test_2016_flickr", language)
    except AttnstepError as exc:
        raise SystemExit(f"bench: {exc}") from None


def captions(words: int, data: Path) -> list[str]:
    """The first real test-set captions that together have at least ``words`` tokens."""
    from attnstep.text.words import tokenize

    chosen, count = [], 0
    for line in test_captions(data):
        chosen.append(line)
        count += len(tokenize(line))
        if count >= words:
            return chosen
    raise SystemExit("bench: not enough test sentences")


def long_sentence(words: int, data: Path) -> str:
    """Real test-set captions run together into one source of exactly ``words`` tokens."""
    from attnstep.text.words import detokenize, tokenize

    return detokenize([t.surface for line in captions(words, data) for t in tokenize(line)][:words])


def long_caption(words: int, data: Path) -> str:
    """The first real test-set caption with at least ``words`` tokens, cut to exactly ``words``."""
    from attnstep.text.words import detokenize, tokenize

    for line in test_captions(data):
        tokens = tokenize(line)
        if len(tokens) >= words:
            return detokenize([t.surface for t in tokens[:words]])
    raise SystemExit(f"bench: no test caption has {words} tokens")
