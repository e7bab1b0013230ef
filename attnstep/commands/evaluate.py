"""Corpus translation and sacreBLEU scoring (greedy or beam decoding, detokenized output vs raw references)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import sacrebleu
import torch
from rich.console import Console

from attnstep.data.corpus import CorpusSpec, Pair, hold_out, read_corpus
from attnstep.data.downloads import check_splits, locate
from attnstep.data.files import output as open_output
from attnstep.data.multi30k import read_parallel
from attnstep.engine.batch import pad
from attnstep.engine.checkpoint import Checkpoint, load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.errors import AttnstepError
from attnstep.model import Seq2Seq
from attnstep.report.by_length import Bucket, Series, length_buckets, show, source_length
from attnstep.report.plot import bleu_chart, check_picture_path, write_picture
from attnstep.report.progress import Meter
from attnstep.report.visible import visible
from attnstep.text.codec import Codec
from attnstep.text.words import UNK_ID
from attnstep.trace.records import SourceToken


@dataclass
class Translations:
    texts: list[str]  # detokenized, one per input sentence
    with_unknown: int  # how many of them contain the <unk> token (a subword model's decoder renders it " ⁇ ")


def _source_ids(codec: Codec, sentences: list[str]) -> list[list[int]]:
    # An empty line still gets a translation (of "."), so hypotheses stay aligned with references.
    return [codec.corpus_source(s)[: codec.max_source_tokens] or codec.corpus_source(".") for s in sentences]


def _by_length(ids: list[list[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``ids`` in batches of similar length, so that little work is spent on padding."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


Progress = Callable[[int], None]  # told how many sentences are done, after each batch
# A batch's translations, given the indices of its sentences: each one's text and whether it holds <unk>.
BatchDecoder = Callable[[list[int]], Iterable[tuple[str, bool]]]


def _in_batches(ids: list[list[int]], batch_size: int, decode: BatchDecoder, progress: Progress | None) -> Translations:
    """Every sentence translated by ``decode``, in batches of similar length, in the sentences' order."""
    out: list[str] = [""] * len(ids)
    with_unknown = done = 0
    for chunk in _by_length(ids, batch_size):
        for i, (text, unknown) in zip(chunk, decode(chunk)):
            out[i] = text
            with_unknown += unknown
        done += len(chunk)
        if progress is not None:
            progress(done)
    return Translations(out, with_unknown)


def translate_corpus(
    model: Seq2Seq, codec: Codec, sentences: list[str], batch_size: int = 128, progress: Progress | None = None
) -> Translations:
    """Greedy translations (the plain batched loop of ``Seq2Seq.greedy``)."""
    ids = _source_ids(codec, sentences)
    tokens = codec.target_tokens

    def decode(chunk: list[int]) -> Iterator[tuple[str, bool]]:
        src, lengths = pad([ids[i] for i in chunk])
        for hypothesis in model.greedy(src, lengths):
            yield codec.detokenize([tokens[t] for t in hypothesis]), UNK_ID in hypothesis

    model.eval()
    with torch.no_grad():
        return _in_batches(ids, batch_size, decode, progress)


def beam_translate_corpus(
    checkpoint: Checkpoint,
    sentences: list[str],
    width: int,
    alpha: float,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> Translations:
    """Beam search translations: the engine's search (:class:`~attnstep.engine.stepper.Stepper`) without vectors."""
    stepper = Stepper(checkpoint, top_k=1, vectors=False, beam=width, alpha=alpha)
    ids = _source_ids(checkpoint.codec, sentences)
    names = checkpoint.src_vocab.tokens

    def decode(chunk: list[int]) -> Iterator[tuple[str, bool]]:
        sources = [tuple(SourceToken(names[t], names[t], t) for t in ids[i]) for i in chunk]
        for trace in stepper.decode_batch(sources):
            yield trace.translation, any(s.chosen_id == UNK_ID for s in trace.steps)

    return _in_batches(ids, batch_size, decode, progress)


@dataclass
class Scores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str


def score(hypotheses: list[str], references: list[str], *, lowercase: bool = True) -> Scores:
    """sacreBLEU on detokenized text; lowercase=True for word models, which only ever write lower case."""
    bleu = sacrebleu.metrics.BLEU(lowercase=lowercase)
    chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return Scores(bleu_score.score, chrf_score.score, str(bleu.get_signature()), str(chrf.get_signature()))


def bleu_by_bucket(
    hypotheses: list[str], references: list[str], buckets: list[Bucket], *, lowercase: bool
) -> tuple[float | None, ...]:
    """sacreBLEU's corpus BLEU of each bucket's sentences alone (None for an empty bucket)."""
    bleu = sacrebleu.metrics.BLEU(lowercase=lowercase)
    return tuple(
        bleu.corpus_score([hypotheses[i] for i in b.members], [[references[i] for i in b.members]]).score
        if b.members
        else None
        for b in buckets
    )


def evaluation_set(
    meta: dict,
    languages: list[str],
    *,
    splits: list[str],
    data: Path,
    corpus: str | None,
    tsv_columns: str,
    heldout: str | None,
    heldout_corpus: str | None,
) -> tuple[str, list[Pair]]:
    """(name, pairs) of what ``attnstep eval`` was asked to score; several splits are one set, in order.

    ``heldout`` re-derives the validation or test pairs that training held out, from the recipe
    the checkpoint records (corpus, columns, size, seed): the split depends only on that corpus.
    """
    src, tgt = languages
    if heldout is not None:
        if heldout not in ("val", "test"):
            raise AttnstepError(f"--heldout must be val or test, not {heldout!r}")
        recipe = meta.get("heldout")
        if not isinstance(recipe, dict):
            raise AttnstepError("this checkpoint's training held nothing out; use --split or --corpus")
        spec = CorpusSpec(CorpusSpec.parse(heldout_corpus or recipe["corpus"]).path)
        pairs = read_corpus(spec, src, tgt, tuple(recipe["tsv_columns"].split(",")))
        held = hold_out(pairs, recipe["size"], recipe["size"], recipe["seed"])
        return f"{Path(spec.path).name} held-out {heldout}", held.val if heldout == "val" else held.test
    if corpus is not None:
        spec = CorpusSpec.parse(corpus)
        return Path(spec.path).name, read_corpus(spec, src, tgt, tuple(tsv_columns.split(",")))
    pairs = []
    for split in splits:
        sources, references = read_parallel(data, split, src, tgt)
        pairs += zip(sources, references)
    return "+".join(splits), pairs


def _metered(translate: Callable[..., Translations], count: int, what: str, label: str) -> Translations:
    """``translate(progress=…)`` with a progress bar, then a line saying what was translated."""
    with Meter(count, label) as meter:
        translations = translate(progress=meter.update)
    meter.finish(f"translated {count} sentences of {what} ({label})")
    return translations


def run_eval(
    paths: list[Path],
    *,
    splits: list[str],
    data: Path,
    corpus: str | None,
    tsv_columns: str,
    heldout: str | None,
    heldout_corpus: str | None,
    output: Path | None,
    beam: int | None,
    alpha: float,
    by_length: bool,
    plot: Path | None,
) -> None:
    """``attnstep eval``: translate the set once per checkpoint (greedy, and with ``beam``), print the
    scores, and with ``by_length`` BLEU per source-length bucket as a table, a chart and ``plot``."""
    several = len(paths) > 1
    finals: list[tuple[str, bool, list[str]]] = []  # per checkpoint: name, cased, the translations --by-length scores
    if several and (output is not None or heldout is not None):
        raise AttnstepError("--output and --heldout go with one checkpoint (a held-out set is one training run's)")
    if plot is not None:
        check_picture_path(plot)  # before any translating
    expected = None
    for path in paths:
        ckpt = load_checkpoint(path)
        named = [ckpt.meta.get(key) for key in ("source_language", "target_language")]
        languages = [language for language in named if isinstance(language, str) and language]
        if len(languages) != 2:
            raise AttnstepError(f"{path}/config.json does not name its source_language and target_language")
        if expected is None:  # the sentences, read once for every checkpoint
            expected = languages
            if corpus is None and heldout is None:
                check_splits(data, splits, languages)
            recipe = ckpt.meta.get("heldout")
            if (
                heldout is not None
                and heldout_corpus is None
                and isinstance(recipe, dict)
                and isinstance(recipe.get("corpus"), str)
            ):
                heldout_corpus = str(locate(CorpusSpec.parse(recipe["corpus"]).path, "--heldout-corpus"))
            name, pairs = evaluation_set(
                ckpt.meta,
                languages,
                splits=splits,
                data=data,
                corpus=corpus,
                tsv_columns=tsv_columns,
                heldout=heldout,
                heldout_corpus=heldout_corpus,
            )
            sources, references = [s for s, _ in pairs], [t for _, t in pairs]
        elif languages != expected:
            raise AttnstepError(f"{path} translates {'→'.join(languages)}, not {'→'.join(expected)} as {paths[0]} does")
        which = f" with {ckpt.name}" if several else ""

        greedy = partial(translate_corpus, ckpt.model, ckpt.codec, sources)
        decodings = {"greedy": _metered(greedy, len(sources), f"{name}{which}", "greedy")}
        if beam is not None:
            label = f"beam {beam}, alpha {alpha:g}"
            searched = partial(beam_translate_corpus, ckpt, sources, beam, alpha)
            decodings[label] = _metered(searched, len(sources), f"{name}{which}", label)
        if output is not None:
            with open_output(output, "w") as handle:
                handle.write("".join(h + "\n" for h in list(decodings.values())[-1].texts))
        cased = ckpt.subword is not None  # word models write lower case only
        for decoding, translations in decodings.items():
            hypotheses = translations.texts
            result = score(hypotheses, references, lowercase=not cased)
            print(f"{visible(ckpt.name)} on {visible(name)} ({len(sources)} sentences, {decoding})")
            print(f"BLEU = {result.bleu:.2f}  {result.bleu_signature}")
            print(f"chrF = {result.chrf:.2f}  {result.chrf_signature}")
            if cased:
                lower = score(hypotheses, references, lowercase=True)
                print(f"BLEU = {lower.bleu:.2f}  {lower.bleu_signature}")
            print(f"<unk> in {translations.with_unknown} of {len(hypotheses)} outputs")
        finals.append((ckpt.name, cased, list(decodings.values())[-1].texts))
    if by_length:
        buckets = length_buckets([source_length(s) for s in sources])
        # A word model writes lower case only: compared with one, every checkpoint is scored without case.
        lowercase = not all(cased for _, cased, _ in finals)
        names = [n for n, _, _ in finals]
        names = names if len(set(names)) == len(names) else [str(path) for path in paths]
        series = [
            Series(n, bleu_by_bucket(texts, references, buckets, lowercase=lowercase))
            for n, (_, _, texts) in zip(names, finals)
        ]
        title = (
            f"BLEU by source length on {name} ({list(decodings)[-1]}, {'case-insensitive' if lowercase else 'cased'})"
        )
        show(Console(highlight=False), buckets, series, title)
        if plot is not None:
            write_picture(bleu_chart(buckets, series, title), plot)
            print(f"chart written to {visible(str(plot))}")
