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


def plain_greedy_seconds(stepper, sentences: list[str], batch_size: int) -> float:
    """The dump benches' baseline: the model's own batched greedy decoding of ``sentences``, in dump's
    windows and length-sorted batches, recording nothing; its seconds."""
    import time

    from attnstep.commands.dump import WINDOW
    from attnstep.engine.batch import pad

    start = time.perf_counter()
    for w in range(0, len(sentences), WINDOW):
        window = [[t.id for t in stepper.source_tokens(s)] for s in sentences[w : w + WINDOW]]
        order = sorted(range(len(window)), key=lambda i: len(window[i]))
        for b in range(0, len(order), batch_size):
            src, lengths = pad([window[i] for i in order[b : b + batch_size]])
            stepper.checkpoint.model.greedy(src, lengths)
    return time.perf_counter() - start
