"""Corpus translation and sacreBLEU scoring (greedy or beam decoding, detokenized output vs raw references)."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

import sacrebleu
import torch
from rich.console import Console
from sacrebleu.metrics.base import Metric
from sacrebleu.significance import PairedTest, Result

from attnstep.data.corpus import CorpusSpec, NearTwins, Pair, hold_out, read_corpus, read_text_lines
from attnstep.data.downloads import check_splits, locate
from attnstep.data.files import STDOUT
from attnstep.data.files import output as open_output
from attnstep.data.multi30k import read_parallel
from attnstep.engine.batch import pad
from attnstep.engine.checkpoint import Checkpoint, read_config
from attnstep.engine.device import use_device
from attnstep.engine.marian_checkpoint import MarianCheckpoint, load_any
from attnstep.engine.stepper import Stepper
from attnstep.engine.toolkit_checkpoint import ToolkitCheckpoint
from attnstep.errors import AttnstepError
from attnstep.model import Seq2Seq
from attnstep.report.by_length import Bucket, Series, length_buckets, show, source_length
from attnstep.report.plot import bleu_chart, check_picture_path, write_picture
from attnstep.report.progress import Meter
from attnstep.report.visible import visible
from attnstep.text.codec import Codec, MarianCodec
from attnstep.text.toolkit import ToolkitCodec
from attnstep.text.words import UNK_ID, Replacements, is_control, replace_controls
from attnstep.trace.records import SourceToken


@dataclass
class Translations:
    texts: list[str]  # detokenized, one per input sentence
    with_unknown: int  # how many of them contain the <unk> token (a subword model's decoder renders it " ⁇ ")


def _source_ids(codec: Codec | MarianCodec | ToolkitCodec, sentences: list[str]) -> list[list[int]]:
    # A blank line has no ids (not even the </s> a JoeyNMT or Marian source ends with): it is not
    # decoded, and its translation is empty (see _in_batches).
    return [codec.corpus_source(s)[: codec.max_source_tokens] if s.strip() else [] for s in sentences]


def _by_length(ids: list[list[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``ids`` in batches of similar length, so that little work is spent on padding;
    a blank sentence's (no ids) in none."""
    order = sorted((i for i in range(len(ids)) if ids[i]), key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


Progress = Callable[[int], None]  # told how many sentences are done, after each batch
# A batch's translations, given the indices of its sentences: each one's text and whether it holds <unk>.
BatchDecoder = Callable[[list[int]], Iterable[tuple[str, bool]]]


def _in_batches(ids: list[list[int]], batch_size: int, decode: BatchDecoder, progress: Progress | None) -> Translations:
    """Every sentence translated by ``decode``, in batches of similar length, in the sentences' order;
    a blank one as an empty line, which keeps the hypotheses aligned with the references."""
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
        src, lengths = pad([ids[i] for i in chunk], next(model.parameters()).device)
        for hypothesis in model.greedy(src, lengths):
            yield codec.detokenize([tokens[t] for t in hypothesis]), UNK_ID in hypothesis

    model.eval()
    with torch.no_grad():
        return _in_batches(ids, batch_size, decode, progress)


Loaded = Checkpoint | MarianCheckpoint | ToolkitCheckpoint  # what load_any loads


def engine_translate_corpus(
    checkpoint: Loaded,
    sentences: list[str],
    width: int | None,
    alpha: float,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> Translations:
    """Translations by the engine's decoding (:class:`~attnstep.engine.stepper.Stepper`) without vectors: a beam
    search of ``width``, or greedy (None), with the model's own lengths and end token, as dump decodes."""
    stepper = Stepper(checkpoint, top_k=1, vectors=False, beam=width, alpha=alpha)
    ids = _source_ids(checkpoint.codec, sentences)
    names = checkpoint.src_vocab.tokens
    unknown = checkpoint.tokenizer.unk_id if isinstance(checkpoint, MarianCheckpoint) else UNK_ID

    def decode(chunk: list[int]) -> Iterator[tuple[str, bool]]:
        sources = [tuple(SourceToken(names[t], names[t], t) for t in ids[i]) for i in chunk]
        for trace in stepper.decode_batch(sources):
            yield trace.translation, any(s.chosen_id == unknown for s in trace.steps)

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


@dataclass
class MetricScore:
    metric: str  # BLEU, chrF or TER
    score: float
    signature: str  # sacreBLEU's, which says the case, tokenization and version


def eval_metrics(*, lowercase: bool) -> dict[str, Metric]:
    """sacreBLEU's BLEU, chrF and TER, all with or all without case (TER's own default ignores case)."""
    return {
        "BLEU": sacrebleu.metrics.BLEU(lowercase=lowercase),
        "chrF": sacrebleu.metrics.CHRF(lowercase=lowercase),
        "TER": sacrebleu.metrics.TER(case_sensitive=not lowercase),
    }


def corpus_scores(hypotheses: list[str], references: list[str], *, cased: bool) -> list[MetricScore]:
    """BLEU, chrF and TER, cased for a subword model, which also gets case-insensitive BLEU."""
    scored = list(eval_metrics(lowercase=not cased).items())
    if cased:
        scored.append(("BLEU", sacrebleu.metrics.BLEU(lowercase=True)))
    return [
        MetricScore(name, metric.corpus_score(hypotheses, [references]).score, str(metric.get_signature()))
        for name, metric in scored
    ]


BOOTSTRAP_RESAMPLES = 1000  # sacreBLEU's default for --paired-bs; its seed is 12345 unless $SACREBLEU_SEED


def paired_bootstrap(named: list[tuple[str, Sequence[str]]], references: list[str], *, lowercase: bool) -> dict:
    """sacreBLEU's paired bootstrap resampling of each system against the first (the baseline): per
    metric its signature and each system's score, resampled mean, 95% confidence interval and p-value."""
    metrics = eval_metrics(lowercase=lowercase)
    signatures, results = PairedTest(named, metrics, [references], test_type="bs", n_samples=BOOTSTRAP_RESAMPLES)()
    return {
        "baseline": named[0][0],
        "resamples": BOOTSTRAP_RESAMPLES,
        "metrics": {
            metric: {
                "signature": str(signatures[metric]),
                "systems": [
                    {"name": name} | {key: _number(getattr(r, key)) for key in ("score", "mean", "ci", "p_value")}
                    for (name, _), r in zip(named, results[metric])
                    if isinstance(r, Result)
                ],
            }
            for metric in results
            if metric != "System"
        },
    }


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)  # sacreBLEU's means and intervals are NumPy's float32


def _print_paired(test: dict, to: IO[str]) -> None:
    print(
        f"paired bootstrap resampling against {visible(test['baseline'])} ({test['resamples']} resamples; "
        "score (resampled mean ± 95% CI), p-value: * where p < 0.05)",
        file=to,
    )
    for metric, each in test["metrics"].items():
        print(f"{metric}  {each['signature']}", file=to)
        width = max(len(visible(system["name"])) for system in each["systems"])
        for system in each["systems"]:
            line = f"  {visible(system['name']):<{width}}  {system['score']:6.2f} ({system['mean']:.2f} ± {system['ci']:.2f})"
            if system["p_value"] is not None:
                line += f"  p = {system['p_value']:.4f}{'*' if system['p_value'] < 0.05 else ''}"
            print(line, file=to)


@dataclass(frozen=True)
class EvalSet:
    """The sentences ``attnstep eval`` is asked to score: the pairs a checkpoint's training held out
    (``heldout``), else a ``corpus``, else ``splits`` of the ``data`` folder."""

    splits: tuple[str, ...]  # several are one set, in order; each must be in ``data``
    data: Path
    corpus: str | None  # FILE.tsv[.gz], or a path with {lang}
    tsv_columns: str  # the languages of a .tsv corpus's columns, "en,fr"
    heldout: str | None  # val or test
    heldout_corpus: str | None  # where the held-out set's corpus is, if not where training read it


def evaluation_set(meta: dict, languages: list[str], chosen: EvalSet) -> tuple[str, list[Pair]]:
    """(name, pairs) of the set ``chosen`` names, for a checkpoint with ``meta`` translating ``languages``."""
    if chosen.heldout is not None:
        return _heldout_set(meta, languages, chosen.heldout, chosen.heldout_corpus)
    src, tgt = languages
    if chosen.corpus is not None:
        spec = CorpusSpec.parse(chosen.corpus)
        return Path(spec.path).name, read_corpus(spec, src, tgt, tuple(chosen.tsv_columns.split(",")))
    check_splits(chosen.data, chosen.splits, languages)
    pairs: list[Pair] = []
    for split in chosen.splits:
        sources, references = read_parallel(chosen.data, split, src, tgt)
        pairs += zip(sources, references)
    return "+".join(chosen.splits), pairs


def _heldout_set(meta: dict, languages: list[str], heldout: str, corpus: str | None) -> tuple[str, list[Pair]]:
    """The validation or test pairs that training held out, re-derived from the recipe the checkpoint
    records (corpus, columns, size, seed): the split depends only on that corpus, found where the recipe
    says or in the data cache unless ``corpus`` names it."""
    recipe = meta.get("heldout")
    if corpus is None and isinstance(recipe, dict) and isinstance(recipe.get("corpus"), str):
        corpus = str(locate(CorpusSpec.parse(recipe["corpus"]).path, "--heldout-corpus"))
    if heldout not in ("val", "test"):
        raise AttnstepError(f"--heldout must be val or test, not {heldout!r}")
    if not isinstance(recipe, dict):
        raise AttnstepError("this checkpoint's training held nothing out; use --split or --corpus")
    src, tgt = languages
    spec = CorpusSpec(CorpusSpec.parse(corpus or recipe["corpus"]).path)
    pairs = read_corpus(spec, src, tgt, tuple(recipe["tsv_columns"].split(",")))
    held = hold_out(pairs, recipe["size"], recipe["size"], recipe["seed"])
    label, chosen = f"{Path(spec.path).name} held-out {heldout}", held.val if heldout == "val" else held.test
    if "near_twins" not in recipe:
        # Trained before near-twins of the held-out sentences were kept out of training: only the pairs
        # with none in the corpus's training part measure translation rather than recall.
        twins = NearTwins.of(held.train)
        honest = [pair for pair in chosen if not twins.twin_of(pair)]
        label += f", the {len(honest)} of {len(chosen)} pairs with no near-twin in training"
        chosen = honest
    return label, chosen


def _metered(translate: Callable[..., Translations], count: int, what: str, label: str) -> Translations:
    """``translate(progress=…)`` with a progress bar, then a line saying what was translated."""
    with Meter(count, label) as meter:
        translations = translate(progress=meter.update)
    meter.finish(f"translated {count} sentences of {what} ({label})")
    return translations


def _languages(path: Path, meta: dict, given: str | None) -> list[str]:
    """``given`` ("SRC,TGT", --languages), else the languages ``meta`` names; one line where neither says them."""
    if given is not None:
        languages = [language.strip() for language in given.split(",")]
        if len(languages) != 2 or not all(languages):
            raise AttnstepError(f"--languages takes two languages, SRC,TGT (e.g. fr,en), not {given!r}")
        return languages
    named = [meta.get(key) for key in ("source_language", "target_language")]
    languages = [language for language in named if isinstance(language, str) and language]
    if len(languages) != 2:
        raise AttnstepError(f"{path} does not say which languages it translates: give them with --languages SRC,TGT")
    return languages


def _cased(ckpt: Loaded) -> bool:
    """Whether the model writes upper case, and is scored with case: attnstep's subword models, a Marian
    folder's, and a toolkit model whose configuration does not lower-case the target side."""
    if isinstance(ckpt, ToolkitCheckpoint):
        return not ckpt.codec.target.lowercase
    return isinstance(ckpt, MarianCheckpoint) or ckpt.subword is not None  # attnstep's word models write lower case


def _checkpoints(paths: list[Path], device: torch.device, given: str | None) -> Iterator[tuple[Loaded, list[str]]]:
    """Each checkpoint with its languages, loaded onto ``device`` when its turn comes; all must translate the same way."""
    expected = None
    for path in paths:
        ckpt = load_any(path, device)
        languages = _languages(path, ckpt.meta, given)
        if expected is not None and languages != expected:
            raise AttnstepError(f"{path} translates {'→'.join(languages)}, not {'→'.join(expected)} as {paths[0]} does")
        expected = languages
        yield ckpt, languages


@dataclass
class _Output:
    """Translations to score: one decoding of a checkpoint, or a --hyp file's lines."""

    name: str  # the checkpoint's, or the file's path
    cased: bool  # a subword model's, which writes upper case too
    decoding: str
    texts: list[str]
    with_unknown: int | None = None  # how many hold <unk>; unknown for a file


def _decode(ckpt: Loaded, sources: list[str], what: str, beam: int | None, alpha: float) -> list[_Output]:
    """The sentences translated greedily, and with a beam of width ``beam`` if given: attnstep's own models
    greedily by ``Seq2Seq.greedy``'s plain loop, the others (and every beam) by the engine's decoding."""
    if isinstance(ckpt, Checkpoint):
        greedy = partial(translate_corpus, ckpt.model, ckpt.codec, sources)
    else:
        greedy = partial(engine_translate_corpus, ckpt, sources, None, alpha)
    decodings = {"greedy": _metered(greedy, len(sources), what, "greedy")}
    if beam is not None:
        label = f"beam {beam}, alpha {alpha:g}"
        if isinstance(ckpt, MarianCheckpoint):  # generate's beam search, with the folder's length_penalty
            label = f"beam {beam}, length penalty {ckpt.generation.length_penalty:g}"
        searched = partial(engine_translate_corpus, ckpt, sources, beam, alpha)
        decodings[label] = _metered(searched, len(sources), what, label)
    cased = _cased(ckpt)
    return [_Output(ckpt.name, cased, label, t.texts, t.with_unknown) for label, t in decodings.items()]


def _hypotheses_model(path: Path) -> tuple[dict, bool]:
    """(meta, cased) of the checkpoint that --hyp files are scored for: an attnstep checkpoint's from its
    config.json alone, without loading the model; any other kind's (a toolkit's, a Marian folder) loaded."""
    try:
        meta = read_config(path)
    except AttnstepError:  # not attnstep's (or broken: then loading it says why in one line)
        ckpt = load_any(path)
        return ckpt.meta, _cased(ckpt)
    return meta, meta.get("format_version") == 2  # a subword model's files, as _cased says of a loaded one


def _hypotheses(path: Path, references: list[str], set_name: str) -> list[str]:
    lines = read_text_lines(path)
    if len(lines) != len(references):
        raise AttnstepError(
            f"{path} has {len(lines)} lines; {set_name} has {len(references)} references, one a line for each"
        )
    return lines


def _scored(output: _Output, set_name: str, references: list[str]) -> dict:
    """One output's scores, as --json gives them."""
    return {
        "name": output.name,
        "decoding": output.decoding,
        "set": set_name,
        "sentences": len(output.texts),
        "scores": [vars(each) for each in corpus_scores(output.texts, references, cased=output.cased)],
        "with_unknown": output.with_unknown,
    }


def _print_scores(scored: dict, to: IO[str]) -> None:
    """BLEU, chrF and TER of one output, each with its signature."""
    what = f"{visible(scored['name'])} on {visible(scored['set'])}"
    print(f"{what} ({scored['sentences']} sentences, {visible(scored['decoding'])})", file=to)
    for each in scored["scores"]:
        print(f"{each['metric']} = {each['score']:.2f}  {each['signature']}", file=to)
    if scored["with_unknown"] is not None:
        print(f"<unk> in {scored['with_unknown']} of {scored['sentences']} outputs", file=to)


def _show_by_length(
    finals: list[_Output], names: list[str], pairs: list[Pair], set_name: str, plot: Path | None, to: IO[str]
) -> None:
    """BLEU per source-length bucket of every output, as a table and a chart, and in ``plot``."""
    buckets = length_buckets([source_length(s) for s, _ in pairs])
    # A word model writes lower case only: compared with one, every output is scored without case.
    lowercase = not all(final.cased for final in finals)
    references = [t for _, t in pairs]
    series = [
        Series(name, bleu_by_bucket(final.texts, references, buckets, lowercase=lowercase))
        for name, final in zip(names, finals)
    ]
    case = "case-insensitive" if lowercase else "cased"
    title = f"BLEU by source length on {set_name} ({finals[-1].decoding}, {case})"
    show(Console(highlight=False, file=to), buckets, series, title)
    if plot is not None:
        write_picture(bleu_chart(buckets, series, title), plot)
        print(f"chart written to {visible(str(plot))}", file=to)


def _for_the_model(sources: list[str]) -> list[str]:
    """The sources with their control characters replaced (see replace_controls), said on stderr."""
    replacements = Replacements()
    cleaned = []
    for number, sentence in enumerate(sources, start=1):
        text, was = replace_controls(sentence)
        if was:
            replacements.add(number, sum(map(is_control, was)))
        cleaned.append(text)
    if replacements.lines:
        print(f"attnstep: {replacements}", file=sys.stderr)
    return cleaned


def _check_options(
    paths: list[Path],
    hypotheses: list[Path],
    *,
    output: Path | None,
    heldout: str | None,
    beam: int | None,
    by_length: bool,
    paired_bs: bool,
    as_json: bool,
    device: str = "cpu",
    threads: int = 0,
) -> None:
    if len(paths) > 1 and (output is not None or heldout is not None):
        raise AttnstepError("--output and --heldout go with one checkpoint (a held-out set is one training run's)")
    if len(paths) > 1 and hypotheses:
        raise AttnstepError("--hyp goes with one checkpoint: its languages and case say how the files are scored")
    if hypotheses and (output is not None or beam is not None):
        raise AttnstepError("--hyp scores translations made already: --output and --beam go with translating")
    if paired_bs and len(paths) + len(hypotheses) - bool(hypotheses) < 2:
        raise AttnstepError("--paired-bs compares two or more checkpoints (or --hyp files); the first is the baseline")
    if as_json and (by_length or (output is not None and str(output) == STDOUT)):
        raise AttnstepError("--json is the whole of stdout: it goes without --by-length, --plot and -o -")


def run_eval(
    paths: list[Path],
    chosen: EvalSet,
    *,
    output: Path | None,
    beam: int | None,
    alpha: float,
    by_length: bool,
    plot: Path | None,
    hypotheses: list[Path],
    paired_bs: bool,
    as_json: bool,
    device: str = "cpu",
    threads: int = 0,
    languages: str | None = None,
) -> None:
    """``attnstep eval``: translate the ``chosen`` set once per checkpoint (greedy, and with ``beam``), or read each of
    ``hypotheses`` instead, and print the scores; with ``by_length`` BLEU per source-length bucket as a
    table, a chart and ``plot``; with ``paired_bs`` sacreBLEU's paired bootstrap test of the last outputs
    against the first; with ``as_json``, all of it as one JSON object."""
    _check_options(
        paths,
        hypotheses,
        output=output,
        heldout=chosen.heldout,
        beam=beam,
        by_length=by_length,
        paired_bs=paired_bs,
        as_json=as_json,
    )
    if plot is not None:
        check_picture_path(plot)  # before any translating
    checkpoints = _checkpoints([] if hypotheses else paths, use_device(device, threads), languages)
    if hypotheses:
        meta, cased = _hypotheses_model(paths[0])
        said = _languages(paths[0], meta, languages)
    else:
        first, said = next(checkpoints)
        meta, cased, checkpoints = first.meta, _cased(first), itertools.chain([(first, said)], checkpoints)
    # The sentences, read once for every checkpoint.
    set_name, pairs = evaluation_set(meta, said, chosen)
    references = [t for _, t in pairs]
    finals = [_Output(str(path), cased, f"from {path}", _hypotheses(path, references, set_name)) for path in hypotheses]
    # Translations on stdout (-o -) keep it for themselves, a line per sentence: the scores go to stderr.
    scores_to = sys.stderr if output is not None and str(output) == STDOUT else sys.stdout
    report: dict = {"set": set_name, "sentences": len(pairs), "outputs": [], "paired_bs": None}

    def scored(each: _Output) -> None:
        report["outputs"].append(_scored(each, set_name, references))
        if not as_json:
            _print_scores(report["outputs"][-1], scores_to)

    for final in finals:
        scored(final)
    sources = [] if hypotheses else _for_the_model([s for s, _ in pairs])
    # Opened before any translating, so that an output that cannot be written fails at once.
    with contextlib.nullcontext() if output is None else open_output(output, "w") as written:
        for ckpt, _ in checkpoints:
            decodings = _decode(
                ckpt, sources, f"{set_name} with {ckpt.name}" if len(paths) > 1 else set_name, beam, alpha
            )
            finals.append(decodings[-1])  # the beam's when there is one
            if written is not None:
                written.write("".join(text + "\n" for text in decodings[-1].texts))
                written.flush()  # stdout's translations come before the scores on stderr
            for each in decodings:
                scored(each)
    names = [final.name for final in finals]
    names = names if len(set(names)) == len(names) else [str(path) for path in (hypotheses or paths)]
    if by_length:
        _show_by_length(finals, names, pairs, set_name, plot, scores_to)
    if paired_bs:
        lowercase = not all(final.cased for final in finals)
        report["paired_bs"] = paired_bootstrap(
            [(name, final.texts) for name, final in zip(names, finals)], references, lowercase=lowercase
        )
        if not as_json:
            _print_paired(report["paired_bs"], scores_to)
    if as_json:
        print(json.dumps(report, ensure_ascii=False), file=scores_to)
