"""``attnstep probe``: does the attention explain the translation? Each step of each sentence's greedy
decoding, its attention manipulated at that step only (:meth:`~attnstep.engine.stepper.Stepper.probe`):
zero the largest weight and renormalise (Serrano & Smith 2019), zero a weight chosen at random (the
baseline: a manipulation that should matter less), uniform weights (Wiegreffe & Pinter 2019), a random
permutation (Jain & Wallace 2019; Moradi, Kambhatla & Sarkar 2019 for NMT). For each: how often the
step's word changes, and the Jensen–Shannon divergence of its distribution (bits, 0 to 1); split by
the kind of word the model wrote (content or function word, by :data:`FUNCTION_WORDS` for an English
target) and by source-length bucket (eval --by-length's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from attnstep.engine.edit import MANIPULATIONS, Probed
from attnstep.engine.stepper import Stepper, load_stepper
from attnstep.errors import AttnstepError
from attnstep.report.by_length import Series, length_buckets, show, source_length
from attnstep.report.plot import bleu_chart, check_picture_path, write_picture
from attnstep.report.visible import visible

# English function words (closed classes: articles, determiners, pronouns, prepositions, conjunctions,
# auxiliaries and modals, particles), the split Moradi et al. 2019 report on; every other word is a
# content word, punctuation and the end token neither.
_FUNCTION_WORDS = """a an the this that these those some any each every no all both either neither another such
    i me my mine you your yours he him his she her hers it its we us our ours they them their theirs
    myself yourself himself herself itself ourselves themselves who whom whose which what where when
    why how there here
    of in on at by for with from to into onto upon over under above below between among through
    across along around behind beside besides near off out up down about against during without
    within toward towards after before since until till via per than like as
    and or but nor so yet if because while although though whether unless
    is are was were be been being am 's 're 'm do does did has have had having will would shall
    should can could may might must 'll 'd 've not n't
    """
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())
KINDS = ("content", "function")
LABELS = {
    "zero-max": "zero the largest",
    "zero-random": "zero one at random",
    "uniform": "uniform",
    "permute": "permute",
}


def word_kind(token: str) -> str | None:
    """content, function, or None (punctuation, an end or other special token) for an English token,
    a subword piece read without its marks ("▁" before, "@@" after)."""
    word = token.removeprefix("▁").removesuffix("@@").lower()
    if (
        not word
        or (word.startswith("<") and word.endswith(">"))
        or word == "</s>"
        or not any(c.isalnum() for c in word)
    ):
        return None
    return "function" if word in FUNCTION_WORDS else "content"


@dataclass
class Tally:
    """Steps, and per manipulation the steps whose word changed and the summed divergence."""

    steps: int = 0
    changed: list[int] = field(default_factory=lambda: [0] * len(MANIPULATIONS))
    divergence: list[float] = field(default_factory=lambda: [0.0] * len(MANIPULATIONS))

    def add(self, probed: Probed) -> None:
        self.steps += 1
        for k in range(len(MANIPULATIONS)):
            self.changed[k] += probed.changed[k]
            self.divergence[k] += probed.divergence[k]

    def rate(self, k: int) -> float | None:
        """Percent of steps whose word changed (None without steps)."""
        return 100 * self.changed[k] / self.steps if self.steps else None

    def mean_divergence(self, k: int) -> float | None:
        return self.divergence[k] / self.steps if self.steps else None


@dataclass
class Result:
    """One checkpoint's probe: every step, by word kind, by source-length bucket (None: it has no attention)."""

    name: str
    attention: str
    english: bool
    all: Tally | None = None
    kinds: dict[str, Tally] = field(default_factory=dict)
    buckets: list[Tally] = field(default_factory=list)


def probe_checkpoint(stepper: Stepper, name: str, sentences: Sequence[str], *, batch_size: int, seed: int) -> Result:
    """The probe of one checkpoint over ``sentences``, in batches of consecutive sentences."""
    info = stepper.info
    result = Result(name, info.attention, info.target_language in ("en", ""))
    if not info.attends:
        return result  # nothing to edit: said so in the table and the JSON
    buckets = length_buckets([source_length(s) for s in sentences])
    bucket_of = {i: b for b, bucket in enumerate(buckets) for i in bucket.members}
    result.all, result.kinds = Tally(), {kind: Tally() for kind in KINDS}
    result.buckets = [Tally() for _ in buckets]
    vocab = stepper.codec.target_tokens
    for first in range(0, len(sentences), batch_size):
        sources = [stepper.source_tokens(s) for s in sentences[first : first + batch_size]]
        for probed in stepper.probe(sources, seed=seed, first=first):
            result.all.add(probed)
            result.buckets[bucket_of[probed.sentence]].add(probed)
            kind = word_kind(vocab[probed.chosen_id]) if result.english else None
            if kind is not None:
                result.kinds[kind].add(probed)
    return result


def run_probe(
    checkpoints: Sequence[Path],
    sentences_in: Callable[[str], tuple[str, list[str]]],
    *,
    batch_size: int = 64,
    seed: int = 0,
    as_json: bool = False,
    plot: Path | None = None,
    device: str = "cpu",
    threads: int = 0,
    to: IO[str],
) -> list[Result]:
    """Probe every checkpoint on the sentences ``sentences_in`` gives for the first one's source language
    ((the set's name, its sentences)), and report: a table and a chart, or one JSON object."""
    if plot is not None:
        check_picture_path(plot)  # before any decoding
    results: list[Result] = []
    for path in checkpoints:
        stepper = load_stepper(path, top_k=1, vectors=False, device=device, threads=threads)
        language = stepper.info.source_language
        if not results:
            set_name, read = sentences_in(language)
            sentences = [s for s in read if s.strip()]
            if not sentences:
                raise AttnstepError(f"{set_name} has no sentences to probe")
            first_language = language
        elif language != first_language:
            raise AttnstepError(f"{path} reads {language!r}, not {first_language!r} as {checkpoints[0]} does")
        results.append(probe_checkpoint(stepper, path.name, sentences, batch_size=batch_size, seed=seed))
        del stepper
    buckets = length_buckets([source_length(s) for s in sentences])
    if as_json:
        to.write(json.dumps(_json(results, buckets, set_name, len(sentences), seed), ensure_ascii=False) + "\n")
        return results
    console = Console(file=to, highlight=False)
    title = (
        f"Attention probe on {set_name}: {len(sentences)} sentences, each greedy step manipulated alone (seed {seed})"
    )
    console.print(Text(visible(title), style="bold"), soft_wrap=True)
    console.print(_table(results))
    for r in results:
        if r.all is None:
            console.print(Text(f"{visible(r.name)}: no attention, nothing to edit"), soft_wrap=True)
        elif not r.english:
            console.print(Text(f"{visible(r.name)}: not an English target: no content/function split"), soft_wrap=True)
    probed = [r for r in results if r.all is not None]
    if probed:
        series = [Series(r.name, tuple(t.rate(0) for t in r.buckets)) for r in probed]
        chart_title = f"Word changed when the largest weight is zeroed (%), by source length, on {set_name}"
        show(console, buckets, series, chart_title, quantity="changed %")
        if plot is not None:
            write_picture(bleu_chart(buckets, series, chart_title, quantity="changed %"), plot)
            print(f"chart written to {visible(str(plot))}", file=to)
    return results


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _table(results: list[Result]) -> Table:
    """A row per checkpoint and manipulation: steps, % changed, mean JSD, % changed of content and function words."""
    grid = Table()
    for column in ("checkpoint", "manipulation", "steps", "changed %", "JSD", "content %", "function %"):
        grid.add_column(column, justify="left" if column in ("checkpoint", "manipulation") else "right")
    for r in results:
        if r.all is None:
            grid.add_row(Text(visible(r.name)), "none: no attention", "–", "–", "–", "–", "–")
            continue
        for k, name in enumerate(MANIPULATIONS):
            divergence = r.all.mean_divergence(k)
            grid.add_row(
                Text(visible(r.name)) if k == 0 else "",
                LABELS[name],
                str(r.all.steps),
                _percent(r.all.rate(k)),
                "–" if divergence is None else f"{divergence:.4f}",
                *(_percent(r.kinds[kind].rate(k)) if r.english else "–" for kind in KINDS),
            )
    return grid


def _json(results: list[Result], buckets, set_name: str, count: int, seed: int) -> dict[str, Any]:
    def tally(t: Tally) -> dict[str, Any]:
        return {
            "steps": t.steps,
            **{
                name: {"changed": t.changed[k], "rate": t.rate(k), "divergence": t.mean_divergence(k)}
                for k, name in enumerate(MANIPULATIONS)
            },
        }

    checkpoints = []
    for r in results:
        entry: dict[str, Any] = {"name": r.name, "attention": r.attention}
        if r.all is None:
            entry["probed"] = False  # no attention: nothing to edit
        else:
            entry |= {"probed": True, "all": tally(r.all)}
            if r.english:
                entry["kinds"] = {kind: tally(t) for kind, t in r.kinds.items()}
            entry["buckets"] = [{"label": b.label, **tally(t)} for b, t in zip(buckets, r.buckets)]
        checkpoints.append(entry)
    return {
        "set": set_name,
        "sentences": count,
        "seed": seed,
        "manipulations": list(MANIPULATIONS),
        "divergence": "Jensen-Shannon, bits",
        "function_words": sorted(FUNCTION_WORDS),
        "checkpoints": checkpoints,
    }
