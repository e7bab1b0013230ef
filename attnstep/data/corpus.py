"""Parallel corpora as ``attnstep train`` and ``eval`` read them, and the held-out split.

A corpus is named by a spec string, so that several can be given at once:

- ``PATH.tsv`` or ``PATH.tsv.gz``: one pair a line, tab-separated; which column holds which
  language is given by ``--tsv-columns`` (Tatoeba's ``fra-eng.tsv.gz`` is ``en,fr``);
- ``DIR/train.{lang}.gz`` (any path with ``{lang}``): two line-aligned files, ``{lang}`` replaced
  by the source and target language codes (Multi30k, the WMT test sets);
- either followed by ``*N`` to repeat the corpus N times (upsampling a small domain).

Files ending in ``.gz`` are decompressed as they are read. Nothing here imports torch.
"""

from __future__ import annotations

import gzip
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from attnstep.errors import AttnstepError

Pair = tuple[str, str]
_REPEAT = re.compile(r"^(?P<path>.+?)\*(?P<times>\d+)$")


@dataclass(frozen=True)
class CorpusSpec:
    path: str  # a .tsv[.gz] file, or a path with {lang}
    times: int = 1  # how many times the pairs are repeated in training

    @classmethod
    def parse(cls, spec: str) -> CorpusSpec:
        match = _REPEAT.match(spec)
        path, times = (match["path"], int(match["times"])) if match else (spec, 1)
        if times < 1:
            raise AttnstepError(f"corpus {spec!r}: the repeat count after * must be at least 1")
        if "{lang}" not in path and not _is_tsv(path):
            raise AttnstepError(
                f"corpus {spec!r}: give a .tsv/.tsv.gz file or a path with {{lang}} for line-aligned files "
                "(e.g. data/train.{lang}.gz)"
            )
        return cls(path, times)

    def __str__(self) -> str:
        return self.path if self.times == 1 else f"{self.path}*{self.times}"


def _is_tsv(path: str) -> bool:
    return path.endswith((".tsv", ".tsv.gz"))


def read_text_lines(path: Path) -> list[str]:
    """All lines of a UTF-8 text file, gzip-compressed or not, without their line ends."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
        # Split on "\n" only: str.splitlines would also split on U+2028 or U+0085 inside a
        # sentence and shift every later line against its translation.
        lines = data.decode("utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [line.rstrip("\r") for line in lines]
    except UnicodeDecodeError as exc:
        number, line_start = data.count(b"\n", 0, exc.start) + 1, data.rfind(b"\n", 0, exc.start) + 1
        raise AttnstepError(
            f"cannot read {path}: line {number} is not UTF-8 "
            f"(byte 0x{data[exc.start]:02X} at byte {exc.start - line_start + 1})"
        ) from None
    except FileNotFoundError:
        raise AttnstepError(f"cannot read {path}: no such file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise AttnstepError(f"cannot read {path}: {exc}") from None


def read_corpus(spec: CorpusSpec, src: str, tgt: str, tsv_columns: tuple[str, ...] = ("src", "tgt")) -> list[Pair]:
    """The (source, target) pairs of one corpus, once each (``times`` is applied by the caller)."""
    if _is_tsv(spec.path):
        columns = tuple(src if c == "src" else tgt if c == "tgt" else c for c in tsv_columns)
        if sorted(columns) != sorted((src, tgt)):
            raise AttnstepError(f"--tsv-columns {','.join(tsv_columns)} must name {src} and {tgt} once each")
        source_column = columns.index(src)
        pairs = []
        for number, line in enumerate(read_text_lines(Path(spec.path)), 1):
            fields = line.split("\t")
            if len(fields) < 2:
                raise AttnstepError(f"{spec.path} line {number} has no tab: expected two columns ({','.join(columns)})")
            pairs.append((fields[source_column].strip(), fields[1 - source_column].strip()))
        return pairs
    sources = read_text_lines(Path(spec.path.replace("{lang}", src)))
    targets = read_text_lines(Path(spec.path.replace("{lang}", tgt)))
    if len(sources) != len(targets):
        raise AttnstepError(
            f"{spec.path.replace('{lang}', src)} has {len(sources)} lines but "
            f"{spec.path.replace('{lang}', tgt)} has {len(targets)}: they must align"
        )
    return [(s.strip(), t.strip()) for s, t in zip(sources, targets)]


@dataclass(frozen=True)
class HeldOut:
    """A validation and a test set taken from one corpus, disjoint from its training part."""

    train: list[Pair]
    val: list[Pair]
    test: list[Pair]


def hold_out(pairs: list[Pair], val_size: int, test_size: int, seed: int) -> HeldOut:
    """Split off validation and test pairs that share no sentence, on either side, with training.

    Tatoeba lists the same English sentence with several French translations (and the reverse), so
    pairs are grouped by the sentences they share (connected components), and whole groups are
    held out, in a seeded random order, until each set is full. A held-out sentence therefore never
    occurs in training on either side — and common sentences are not excluded from the sets, as
    they would be if only pairs with unique sides were held out.
    """
    parent = list(range(len(pairs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[tuple[int, str], int] = {}
    for i, (source, target) in enumerate(pairs):
        for key in ((0, source), (1, target)):
            j = first_seen.setdefault(key, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(pairs)):
        groups.setdefault(find(i), []).append(i)
    order = sorted(groups.values(), key=lambda members: members[0])
    random.Random(seed).shuffle(order)
    val: list[int] = []
    test: list[int] = []
    held = set()
    for members in order:
        # A group larger than a few pairs is a cluster of stock phrases; holding one out would
        # remove a whole family of everyday sentences from training.
        if len(members) > 8:
            continue
        if len(val) < val_size:
            val.extend(members)
        elif len(test) < test_size:
            test.extend(members)
        else:
            break
        held.update(members)
    return HeldOut(
        train=[p for i, p in enumerate(pairs) if i not in held],
        val=[pairs[i] for i in val],
        test=[pairs[i] for i in test],
    )


_PUNCTUATION = re.compile(r"[^\w\s]|_")
NEAR_TWIN_RULE = (
    "two sentences are near-twins when, lower-cased and without punctuation, they are equal once at most one "
    "word is removed from each (a word of a sentence of three words or more)"
)


def near_twin_keys(sentence: str) -> set[str]:
    """Keys that two sentences share exactly when they are near-twins (:data:`NEAR_TWIN_RULE`).

    Tatoeba keeps many variants of one sentence ("Tom is tired." / "Tom was tired." / "Tom is very
    tired."): a held-out sentence with a variant in training measures recall, not translation. The keys
    are the normalised sentence and, for three words or more, each way of leaving one word out, so a
    word changed, added or removed gives a shared key; one- and two-word sentences are too short for
    a word's difference to make them twins, and keep their own key only.
    """
    words = _PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", sentence).casefold()).split()
    keys = {" ".join(words)}
    if len(words) >= 3:
        keys.update(" ".join(words[:i] + words[i + 1 :]) for i in range(len(words)))
    return keys


@dataclass(frozen=True)
class NearTwins:
    """The near-twin keys of a set of pairs' sources and targets, to find other pairs that repeat one."""

    source_keys: frozenset[str]
    target_keys: frozenset[str]

    @classmethod
    def of(cls, pairs: list[Pair]) -> NearTwins:
        return cls(
            frozenset(key for source, _ in pairs for key in near_twin_keys(source)),
            frozenset(key for _, target in pairs for key in near_twin_keys(target)),
        )

    def twin_of(self, pair: Pair) -> bool:
        """Whether the pair's source or target is a near-twin of one of the set's (same side)."""
        source, target = pair
        return not self.source_keys.isdisjoint(near_twin_keys(source)) or not self.target_keys.isdisjoint(
            near_twin_keys(target)
        )
