"""Training on parallel text, with validation BLEU each epoch, best-checkpoint keeping and resume.

What makes the shipped model better than a plain bi-GRU baseline, all standard practice:
dropout on embeddings and on the attentional vector, label smoothing (Szegedy et al. 2016),
an output layer tied to the target embeddings (Press & Wolf 2017), gradient clipping, and
halving the learning rate whenever validation BLEU stops improving, stopping early after
``patience`` epochs without a new best.

Data: a Multi30k-style folder (``--data``), or any number of corpora (``--corpus``, see
:mod:`attnstep.data.corpus`) with validation and test pairs held out of the first one. With
``--tokenizer subword`` the SentencePiece models are trained on the training text as the first
part of the run and stored in the work directory, so a resumed run uses the same pieces.

A run may start from a checkpoint (``--init``) instead of random weights: its vocabularies and
pieces, its weights, and its validation BLEU as the score to beat. Its held-out split must be the
run's, so that no validation or test pair was ever trained on; a shipped model can so go on training
on a machine where the run that made it is gone (Adam's moments start again from zero).

A time budget (``--max-minutes``) ends training mid-epoch; that last, partial epoch is
validated and kept if it is the best, so a run fits a fixed wall-clock allowance.

Resume: after every epoch, and every few minutes inside one (an epoch of a large corpus on two
cores takes most of an hour, and a stopped run should lose minutes, not the epoch), the model,
Adam's moments, the schedule and the random generators' states are written to the work directory
(safetensors + JSON, no pickle). Shuffling is seeded from the epoch number and a run stopped inside
an epoch goes on from the next batch with the dropout generator where it was, so a resumed run
continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TypedDict

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors.torch import load_file
from torch.nn import functional as F

from attnstep.commands.evaluate import Scores, score, translate_corpus
from attnstep.commands.train_settings import TOKENIZERS, TrainSettings
from attnstep.data.corpus import NEAR_TWIN_RULE, CorpusSpec, NearTwins, Pair, hold_out, read_corpus
from attnstep.data.downloads import check_splits
from attnstep.data.multi30k import read_parallel
from attnstep.data.paths import resolve_checkpoint
from attnstep.engine.batch import pad, pad_target
from attnstep.engine.checkpoint import (
    STORAGE_TYPES,
    Checkpoint,
    check_writable_checkpoint,
    load_checkpoint,
    save_checkpoint,
    write_safetensors,
)
from attnstep.engine.device import skeleton, use_device
from attnstep.errors import AttnstepError
from attnstep.model import ModelConfig, Seq2Seq
from attnstep.report.visible import visible
from attnstep.text.codec import SubwordCodec, WordCodec
from attnstep.text.subword import SubwordModel, train_subword
from attnstep.text.words import PAD_ID, SPECIALS, Vocab, tokenize_lenient

SUBWORD_FILES = ("source.spm", "target.spm")  # a subword run's SentencePiece models, kept in its work folder
EPOCHS_FOLDER = "epochs"  # in the work folder: epoch-N.safetensors, the weights after each of the last epochs


def _batches(pairs: list[tuple[list[int], list[int]]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar source length (less padding), in a shuffled order."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(pairs[i][0]))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


class EpochSoFar(TypedDict):
    """How far the epoch after the last finished one had gone when the state was saved inside it."""

    batches: int  # batches trained, in the epoch's seeded order
    loss: float  # their summed loss
    tokens: int  # and target tokens
    seconds: float


class RunProgress(TypedDict):
    """Where a run stands: kept in state.json for a resumed run."""

    epoch: int  # epochs done
    lr: float  # the learning rate now, after any halvings
    best_bleu: float  # the best val BLEU so far (-1 before the first epoch)
    best_epoch: int  # the epoch that reached it, saved to --out
    history: list[dict]  # one entry per epoch: loss, val BLEU and chrF, lr, seconds
    seconds: float  # training time in finished epochs, resumes included
    within: EpochSoFar | None  # the next epoch's part already trained, if it was saved inside it


def _rng_states(device: torch.device) -> dict[str, torch.Tensor]:
    """The generators dropout draws from (byte tensors), so a run resumed inside an epoch draws what it would have."""
    states = {"rng.cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["rng.cuda"] = torch.cuda.get_rng_state(device)
    return states


def _save_state(work: Path, model: Seq2Seq, optimizer: torch.optim.Optimizer, progress: RunProgress) -> None:
    """Everything needed to resume, written atomically and without pickle."""
    tensors = {f"model.{k}": v.cpu().contiguous() for k, v in model.state_dict().items()}
    tensors |= _rng_states(next(model.parameters()).device)
    steps = {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            if name == "step":
                steps[str(index)] = float(value)
            else:
                tensors[f"adam.{index}.{name}"] = value.cpu().contiguous()
    # Both files are complete before either replaces its old one, so a failure (a full disk)
    # leaves the last state whole, never new weights beside old progress.
    temporary = (work / "state.safetensors.tmp", work / "state.json.tmp")
    try:
        write_safetensors(tensors, temporary[0])
        temporary[1].write_text(json.dumps({**progress, "adam_steps": steps}, indent=2))
        os.replace(temporary[0], work / "state.safetensors")
        os.replace(temporary[1], work / "state.json")
    except OSError as exc:
        for name in temporary:
            name.unlink(missing_ok=True)
        raise AttnstepError(f"cannot save the run's state in {work}: {exc.strerror or exc}") from None


def epoch_weights(work: Path) -> dict[int, Path]:
    """The weights kept after each of a run's last epochs, by epoch number."""
    found = {}
    for path in (work / EPOCHS_FOLDER).glob("epoch-*.safetensors"):
        number = path.name.removeprefix("epoch-").removesuffix(".safetensors")
        if number.isdigit():
            found[int(number)] = path
    return dict(sorted(found.items()))


def _keep_epoch(work: Path, model: Seq2Seq, epoch: int, keep: int) -> None:
    """The model's weights after ``epoch`` (float32, atomically), and only the last ``keep`` epochs' kept."""
    if keep < 1:
        return
    folder = work / EPOCHS_FOLDER
    folder.mkdir(exist_ok=True)
    final = folder / f"epoch-{epoch}.safetensors"
    temporary = final.with_suffix(".tmp")
    try:
        write_safetensors({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, temporary)
        os.replace(temporary, final)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise AttnstepError(f"cannot keep epoch {epoch}'s weights in {folder}: {exc.strerror or exc}") from None
    for old in [path for number, path in epoch_weights(work).items() if number <= epoch - keep]:
        old.unlink(missing_ok=True)


def _load_state(work: Path, model: Seq2Seq, optimizer: torch.optim.Optimizer) -> tuple[RunProgress, dict]:
    """The run's progress, with the model and optimizer as it left them; the generators' states to restore
    if it stopped inside an epoch."""
    progress = json.loads((work / "state.json").read_text())
    progress.setdefault("within", None)  # a state saved before runs could stop inside an epoch
    tensors = load_file(work / "state.safetensors")
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    state_dict = optimizer.state_dict()
    for index_text, step in progress.pop("adam_steps").items():
        index = int(index_text)
        state_dict["state"][index] = {
            "step": torch.tensor(step),
            "exp_avg": tensors[f"adam.{index}.exp_avg"],
            "exp_avg_sq": tensors[f"adam.{index}.exp_avg_sq"],
        }
    for group in state_dict["param_groups"]:
        group["lr"] = progress["lr"]
    optimizer.load_state_dict(state_dict)
    return progress, {k: v for k, v in tensors.items() if k.startswith("rng.")}


@dataclass
class Data:
    train: list[Pair]  # with upsampled corpora repeated
    val: list[Pair]
    test: list[Pair]
    description: str  # for the model card


def load_data(settings: TrainSettings) -> Data:
    """The training pairs and the validation (and test) pairs the settings name."""
    if settings.data:
        data_dir = Path(settings.data)
        training = list(zip(*read_parallel(data_dir, "train", settings.src, settings.tgt)))
        validation = list(zip(*read_parallel(data_dir, "val", settings.src, settings.tgt)))
        return Data(training, validation, [], f"Multi30k task 1 ({settings.src}→{settings.tgt})")
    return _load_corpora(settings, _corpus_columns(settings))


def _corpus_columns(settings: TrainSettings) -> tuple[str, str]:
    """The columns of a .tsv corpus, after refusing corpus settings that would hold nothing out."""
    if not settings.corpora:
        raise AttnstepError("give --data DIR or at least one --corpus")
    if settings.holdout < 1:
        raise AttnstepError("with --corpus, give --holdout N: validation pairs to hold out of the first corpus")
    columns = tuple(settings.tsv_columns.split(","))
    if len(columns) != 2:
        raise AttnstepError(f"--tsv-columns must name two columns, e.g. en,fr, not {settings.tsv_columns!r}")
    return columns[0], columns[1]


def _load_corpora(settings: TrainSettings, columns: tuple[str, str]) -> Data:
    """Every corpus's pairs for training, upsampled as its spec says, less the pairs held out of the first."""
    specs = [CorpusSpec.parse(spec) for spec in settings.corpora]
    corpora = [read_corpus(spec, settings.src, settings.tgt, columns) for spec in specs]
    held = hold_out(corpora[0], settings.holdout, settings.holdout, settings.seed)
    twins = NearTwins.of(held.val + held.test)
    train_pairs: list[Pair] = []
    parts = []
    for spec, pairs in zip(specs, [held.train, *corpora[1:]]):
        # No held-out sentence, nor a near-twin of one, may be seen in training, from whichever corpus.
        unseen = [(s, t) for s, t in pairs if s and t and not twins.twin_of((s, t))]
        train_pairs.extend(unseen * spec.times)
        parts.append(f"{spec.path} ({len(unseen)} pairs" + (f", ×{spec.times})" if spec.times > 1 else ")"))
    return Data(train_pairs, held.val, held.test, "; ".join(parts))


def build_codec(
    settings: TrainSettings, data: Data, work: Path, console: Console, initial: Checkpoint | None = None
) -> WordCodec | SubwordCodec:
    """The run's vocabularies: the ``initial`` checkpoint's, counted words, or SentencePiece models trained
    once and kept in ``work``."""
    if initial is not None:
        return initial.codec
    if settings.tokenizer == "words":
        src_vocab = Vocab.build((tokenize_lenient(s) for s, _ in data.train), min_freq=settings.min_freq)
        tgt_vocab = Vocab.build((tokenize_lenient(t) for _, t in data.train), min_freq=settings.min_freq)
        return WordCodec(src_vocab, tgt_vocab)
    models = []
    for side, name in enumerate(SUBWORD_FILES):
        path = work / name
        if not path.exists():
            console.print(f"training the {('source', 'target')[side]} subword model ({settings.vocab_size} pieces)")
            # Each sentence once: upsampling a corpus should not skew the pieces towards it.
            sentences = sorted({pair[side] for pair in data.train})
            model = train_subword(sentences, settings.vocab_size, seed=settings.seed, threads=torch.get_num_threads())
            path.with_suffix(".tmp").write_bytes(model.serialized())
            os.replace(path.with_suffix(".tmp"), path)
        models.append(SubwordModel.load(path))
    return SubwordCodec(models[0], models[1])


def _held_out_split(heldout: dict | None, folder_of_splits: bool) -> dict | None:
    """What decides the pairs a run validates and tests on, from its card's ``heldout`` record: the corpus
    file (by name: the split is drawn from its content), its columns, the size, the seed and the near-twin
    rule; or, for a folder of splits, just that (its val split is a file). None: not known."""
    if heldout:
        return {**heldout, "corpus": Path(heldout["corpus"]).name}
    return {"folder of splits": True} if folder_of_splits else None


def _initial_checkpoint(settings: TrainSettings, device: torch.device) -> Checkpoint:
    """``--init``'s checkpoint, after refusing one that translates other languages, has another tokenizer or
    model shape than the settings, or was trained with another held-out split."""
    initial = load_checkpoint(resolve_checkpoint(settings.init), device)
    name = visible(settings.init)
    languages = (initial.meta.get("source_language"), initial.meta.get("target_language"))
    if languages != (settings.src, settings.tgt):
        translates = "→".join(map(str, languages))
        raise AttnstepError(f"--init {name} translates {translates}, not {settings.src}→{settings.tgt}")
    tokenizer = "subword" if initial.subword else "words"
    if tokenizer != settings.tokenizer:
        raise AttnstepError(f"--init {name} reads {tokenizer}: give --tokenizer {tokenizer}")
    wanted = _model_config(settings, initial.codec)
    shape = sorted({f.name for f in fields(ModelConfig)} - {"dropout"})  # dropout is training's, not the weights'
    if changes := [
        f"{k} {getattr(initial.config, k)}" for k in shape if getattr(initial.config, k) != getattr(wanted, k)
    ]:
        raise AttnstepError(f"--init {name} is a model of another shape ({', '.join(changes)}): give the same options")
    trained_with = initial.meta.get("provenance", {}).get("settings", {})
    theirs = _held_out_split(initial.meta.get("heldout"), bool(trained_with.get("data")))
    if theirs != _held_out_split(_card_heldout(settings), bool(settings.data)):
        raise AttnstepError(
            f"--init {name} was not trained with this run's held-out split, so its weights may have seen "
            "this run's validation or test pairs"
        )
    return initial


def check_settings(settings: TrainSettings) -> None:
    """Refuse bad tokenizer, model or optimizer settings before anything is written: a rejected run must
    not leave a settings.json that blocks the corrected one."""
    if settings.tokenizer not in TOKENIZERS:
        raise AttnstepError(f"--tokenizer must be {' or '.join(TOKENIZERS)}, not {settings.tokenizer!r}")
    try:
        ModelConfig(src_vocab_size=len(SPECIALS) + 1, tgt_vocab_size=len(SPECIALS) + 1, **settings.model)
    except (TypeError, ValueError) as exc:
        raise AttnstepError(f"invalid model settings: {exc}") from None
    if settings.dtype not in STORAGE_TYPES:
        raise AttnstepError(f"--dtype must be one of {', '.join(STORAGE_TYPES)}, not {settings.dtype!r}")
    if not settings.lr > 0:
        raise AttnstepError(f"--lr must be a positive number, not {settings.lr}")


def _comparable(settings: dict) -> dict:
    """The settings that define an experiment: a resumed run may train longer or store its weights in
    another type, and settings left at their defaults compare equal to the defaults written out: so do
    options that a run's attnstep did not have yet, which its settings.json lacks."""
    unchecked = ("epochs", "max_minutes", "save_minutes", "keep_epochs", "dtype")
    defaults = {f.name: f.default for f in fields(ModelConfig) if f.default is not MISSING}
    return {
        **{k: v for k, v in {**asdict(TrainSettings()), **settings}.items() if k not in unchecked},
        "model": {**defaults, **settings.get("model", {})},
    }


def _as_options(settings: dict) -> dict[str, object]:
    """Comparable settings by the options that set them (``--batch-size``), model settings among them."""
    comparable = _comparable(settings)
    flat = {**comparable, **comparable.pop("model")}
    return {"--corpus" if key == "corpora" else "--" + key.replace("_", "-"): value for key, value in flat.items()}


def _differences(old: dict, new: dict) -> str:
    """What a run's settings change from another's: ``--batch-size 4 → 2, --attention "dot" → "general"``."""
    before, after = _as_options(old), _as_options(new)
    return ", ".join(
        f"{option} {json.dumps(before.get(option))} → {json.dumps(after.get(option))}"
        for option in sorted(before.keys() | after.keys())
        if before.get(option) != after.get(option)
    )


def _claim_work(settings: TrainSettings, work: Path) -> None:
    """Write the settings to ``work``, or check that they are the ones its run has trained with."""
    work.mkdir(parents=True, exist_ok=True)
    settings_file = work / "settings.json"
    if settings_file.exists() and (changes := _differences(json.loads(settings_file.read_text()), asdict(settings))):
        # A resumed run may train for longer, but anything else would silently mix two experiments.
        if (work / "state.json").exists():
            raise AttnstepError(
                f"{work} holds a run with other settings ({changes}); use another --work directory or the same settings"
            )
        # The run there stopped before its first epoch: nothing to resume, and its subword models
        # may have been made for other settings.
        for name in SUBWORD_FILES:
            (work / name).unlink(missing_ok=True)
    settings_file.write_text(json.dumps(asdict(settings), indent=2))


def _encoded_pairs(
    codec: WordCodec | SubwordCodec, pairs: list[Pair], max_len: int
) -> list[tuple[list[int], list[int]]]:
    """The training pairs as ids, less those with an empty side or a side over ``max_len``."""
    encoded = []
    for source, target in pairs:
        s, t = codec.corpus_source(source), codec.corpus_target(target)
        if 0 < len(s) <= max_len and 0 < len(t) <= max_len:
            encoded.append((s, t))
    return encoded


def _model_config(settings: TrainSettings, codec: WordCodec | SubwordCodec) -> ModelConfig:
    """The model the settings describe, its embeddings sized to the run's vocabularies."""
    src_vocab, tgt_vocab = _vocabularies(codec)
    return ModelConfig(src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), **settings.model)


def _start_or_resume(
    settings: TrainSettings,
    codec: WordCodec | SubwordCodec,
    work: Path,
    console: Console,
    device: torch.device,
    initial: Checkpoint | None,
    val: list[Pair],
) -> tuple[Seq2Seq, torch.optim.Optimizer, RunProgress, dict]:
    """A new seeded model, or the ``initial`` checkpoint's weights with its val BLEU to beat, and an optimizer
    on ``device``; or the ones a run in ``work`` left, with the generators' states it saved (none for a new run)."""
    torch.manual_seed(settings.seed)
    model = Seq2Seq(_model_config(settings, codec)).to(device)  # seeded on the CPU: the same weights on any device
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    progress = RunProgress(epoch=0, lr=settings.lr, best_bleu=-1.0, best_epoch=0, history=[], seconds=0.0, within=None)
    if (work / "state.json").exists():
        progress, rng_states = _load_state(work, model, optimizer)
        where = f"after epoch {progress['epoch']}"
        if within := progress["within"]:
            where = f"inside epoch {progress['epoch'] + 1}, after batch {within['batches']}"
        best = f"best val BLEU {progress['best_bleu']:.2f}" if progress["best_bleu"] >= 0 else "no epoch finished yet"
        console.print(f"resuming {where} ({best})")
        return model, optimizer, progress, rng_states
    if initial is not None:
        model.load_state_dict(initial.model.state_dict())
        start = _validate(model, codec, val)
        progress["best_bleu"] = start.bleu
        progress["history"].append({"epoch": 0, "val_bleu": round(start.bleu, 2), "init": initial.digest})
        console.print(f"starting from {visible(settings.init)}: val BLEU {start.bleu:.2f} · chrF {start.chrf:.1f}")
    return model, optimizer, progress, {}


def _run_summary(settings: TrainSettings, pairs: int, model: Seq2Seq) -> str:
    config = model.config
    return (
        f"{pairs} training pairs · vocab {settings.src} {config.src_vocab_size} / {settings.tgt} "
        f"{config.tgt_vocab_size} · {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters · "
        f"attention {config.attention}"
    )


def _budget_seconds(settings: TrainSettings) -> float:
    return settings.max_minutes * 60 or math.inf


def _keep_training(progress: RunProgress, settings: TrainSettings) -> bool:
    """Epochs, patience and time left."""
    return (
        progress["epoch"] < settings.epochs
        and progress["epoch"] - progress["best_epoch"] < settings.patience
        and progress["seconds"] < _budget_seconds(settings)
    )


def _epoch_bar(epoch: int, console: Console) -> Progress:
    return Progress(
        TextColumn(f"epoch {epoch}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _train_step(
    model: Seq2Seq, optimizer: torch.optim.Optimizer, batch: list[tuple[list[int], list[int]]], settings: TrainSettings
) -> tuple[float, int]:
    """One update on ``batch``: its summed loss and its number of target tokens."""
    device = next(model.parameters()).device
    src, lengths = pad([s for s, _ in batch], device)
    tgt_in, gold = pad_target([t for _, t in batch], device)
    real = gold != PAD_ID  # (B, T)
    logits = model(src, lengths, tgt_in, where=real)  # (N, V), N real target tokens
    loss = F.cross_entropy(logits, gold[real], label_smoothing=settings.label_smoothing, reduction="sum")
    tokens = logits.size(0)
    optimizer.zero_grad()
    (loss / tokens).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
    optimizer.step()
    return loss.item(), tokens


def _train_epoch(
    model: Seq2Seq,
    optimizer: torch.optim.Optimizer,
    pairs: list[tuple[list[int], list[int]]],
    settings: TrainSettings,
    console: Console,
    progress: RunProgress,
    *,
    rng_states: dict,
    save: Callable[[], None],
) -> tuple[float, float]:
    """The epoch after ``progress``'s last one, in seeded, shuffled batches, from the batch a stopped run had
    reached (restoring its generators' ``rng_states``), saving the run every ``settings.save_minutes`` and cut
    short when the time budget runs out: its loss per target token and its training seconds."""
    epoch, started = progress["epoch"] + 1, time.monotonic()
    so_far = progress["within"] or EpochSoFar(batches=0, loss=0.0, tokens=0, seconds=0.0)
    before = so_far["seconds"]  # this epoch's training time before the run was stopped

    def seconds() -> float:
        return before + time.monotonic() - started

    torch.manual_seed(settings.seed * 1000 + epoch)
    if so_far["batches"]:
        torch.set_rng_state(rng_states["rng.cpu"])
        # A run moved to another kind of device draws other dropout masks from here on: it cannot be helped.
        if "rng.cuda" in rng_states and next(model.parameters()).device.type == "cuda":
            torch.cuda.set_rng_state(rng_states["rng.cuda"], next(model.parameters()).device)
    batches = _batches(pairs, settings.batch_size, random.Random(settings.seed * 1000 + epoch))
    model.train()
    saved = started
    with _epoch_bar(epoch, console) as bar:
        task = bar.add_task("train", total=len(batches), completed=so_far["batches"], loss=0.0)
        for indices in batches[so_far["batches"] :]:
            loss, tokens = _train_step(model, optimizer, [pairs[i] for i in indices], settings)
            so_far = EpochSoFar(
                batches=so_far["batches"] + 1,
                loss=so_far["loss"] + loss,
                tokens=so_far["tokens"] + tokens,
                seconds=seconds(),
            )
            bar.update(task, advance=1, loss=so_far["loss"] / so_far["tokens"])
            if progress["seconds"] + seconds() > _budget_seconds(settings):
                console.print(f"time budget of {settings.max_minutes:g} min reached inside epoch {epoch}")
                break
            if settings.save_minutes and time.monotonic() - saved >= settings.save_minutes * 60:
                progress["within"] = so_far
                save()
                saved = time.monotonic()
    progress["within"] = None
    return so_far["loss"] / so_far["tokens"], seconds()


def _validate(model: Seq2Seq, codec: WordCodec | SubwordCodec, pairs: list[Pair]) -> Scores:
    hypotheses = translate_corpus(model, codec, [s for s, _ in pairs]).texts
    return score(hypotheses, [t for _, t in pairs], lowercase=not isinstance(codec, SubwordCodec))


def _record_epoch(
    progress: RunProgress, epoch: int, loss: float, val: Scores, seconds: float, console: Console
) -> bool:
    """The epoch added to the history and printed; whether its val BLEU is a new best."""
    progress["seconds"] += seconds
    progress["history"].append(
        {
            "epoch": epoch,
            "train_loss": round(loss, 4),
            "val_bleu": round(val.bleu, 2),
            "lr": progress["lr"],
            "seconds": round(seconds, 1),
        }
    )
    improved = val.bleu > progress["best_bleu"]
    console.print(
        f"epoch {epoch}: loss {loss:.3f} · val BLEU {val.bleu:.2f} · chrF {val.chrf:.1f} · "
        f"lr {progress['lr']:g} · {seconds:.0f}s" + (" · new best, saved" if improved else "")
    )
    progress["epoch"] = epoch
    if improved:
        progress["best_bleu"], progress["best_epoch"] = val.bleu, epoch
    return improved


def _card(
    settings: TrainSettings,
    codec: WordCodec | SubwordCodec,
    data: str,
    command: str,
    progress: RunProgress,
    val: Scores,
) -> dict:
    """The checkpoint's config.json beyond the model's settings: what it translates and how it was trained."""
    meta = {
        "source_language": settings.src,
        "target_language": settings.tgt,
        "tokenizer": _tokenizer_card(codec),
        "provenance": {
            "data": data,
            "command": command,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "epoch": progress["epoch"],
            "train_seconds": round(progress["seconds"], 1),
            "settings": asdict(settings),
        },
        "metrics": {
            "val_bleu": round(val.bleu, 2),
            "val_chrf": round(val.chrf, 2),
            "bleu_signature": val.bleu_signature,
        },
    }
    if heldout := _card_heldout(settings):
        meta["heldout"] = heldout
    if settings.dtype != "float32":
        meta["storage_dtype"] = settings.dtype
    return meta


def _trained(checkpoint: Checkpoint) -> dict:
    """How long the checkpoint a run started from had trained, itself included, from its card."""
    provenance = checkpoint.meta.get("provenance", {})
    before = provenance.get("init", {})
    return {
        "epochs": provenance.get("epoch", 0) + before.get("epochs", 0),
        "train_seconds": round(provenance.get("train_seconds", 0.0) + before.get("train_seconds", 0.0), 1),
    }


def _card_heldout(settings: TrainSettings) -> dict | None:
    """How a corpus run's held-out pairs were drawn, for its card (``eval --heldout`` draws them again)."""
    if not settings.corpora:
        return None
    return {
        "corpus": settings.corpora[0],
        "tsv_columns": settings.tsv_columns,
        "size": settings.holdout,
        "seed": settings.seed,
        "near_twins": NEAR_TWIN_RULE,  # what was kept out of training besides the held-out sentences
    }


def _save_best(out: Path, model: Seq2Seq, codec: WordCodec | SubwordCodec, meta: dict, dtype: str) -> None:
    src_vocab, tgt_vocab = _vocabularies(codec)
    subword = (codec.src_model, codec.tgt_model) if isinstance(codec, SubwordCodec) else None
    save_checkpoint(out, model, src_vocab, tgt_vocab, meta, dtype=STORAGE_TYPES[dtype], subword=subword)


def _decay_learning_rate(optimizer: torch.optim.Optimizer, progress: RunProgress, factor: float) -> None:
    progress["lr"] *= factor
    for group in optimizer.param_groups:
        group["lr"] = progress["lr"]


def train(
    settings: TrainSettings,
    out: Path,
    work: Path,
    console: Console,
    command: str,
    device: torch.device = torch.device("cpu"),  # noqa: B008 (a constant: torch.device is immutable)
) -> RunProgress:
    """A run in ``work``, new or resumed, on ``device``, epoch by epoch until it stops; each new best is saved to ``out``."""
    check_settings(settings)
    data = load_data(settings)
    initial = _initial_checkpoint(settings, device) if settings.init else None
    _claim_work(settings, work)
    codec = build_codec(settings, data, work, console, initial)
    pairs = _encoded_pairs(codec, data.train, settings.max_len)
    model, optimizer, progress, rng_states = _start_or_resume(settings, codec, work, console, device, initial, data.val)
    console.print(_run_summary(settings, len(pairs), model))
    while _keep_training(progress, settings):
        epoch = progress["epoch"] + 1
        loss, seconds = _train_epoch(
            model,
            optimizer,
            pairs,
            settings,
            console,
            progress,
            rng_states=rng_states,
            save=lambda: _save_state(work, model, optimizer, progress),
        )
        rng_states = {}
        val = _validate(model, codec, data.val)
        if _record_epoch(progress, epoch, loss, val, seconds, console):
            card = _card(settings, codec, f"{data.description}, {len(pairs)} training pairs", command, progress, val)
            if initial is not None:
                card["provenance"]["init"] = {
                    "checkpoint": settings.init,
                    "digest": initial.digest,
                    **_trained(initial),
                }
            _save_best(out, model, codec, card, settings.dtype)
        else:
            _decay_learning_rate(optimizer, progress, settings.lr_decay)
        _keep_epoch(work, model, epoch, settings.keep_epochs)
        _save_state(work, model, optimizer, progress)
    if initial is not None and not progress["best_epoch"]:
        console.print(f"no epoch beat {visible(settings.init)}'s val BLEU {progress['best_bleu']:.2f}: nothing saved")
        return progress
    console.print(
        f"done: best val BLEU {progress['best_bleu']:.2f} at epoch {progress['best_epoch']}, "
        f"{progress['seconds'] / 60:.1f} min of training; checkpoint in {visible(str(out))}"
    )
    return progress


def run_train(settings: TrainSettings, out: Path, work: Path, threads: int = 0, device: str = "cpu") -> None:
    """``attnstep train``: refuse missing splits, an --out that cannot be replaced or a missing GPU before
    anything is written, then train on ``device`` with ``threads`` CPU threads (0: torch's default)."""
    if settings.data:
        check_splits(Path(settings.data), ["train", "val"], [settings.src, settings.tgt])
    check_writable_checkpoint(out)
    on = use_device(device, threads)
    try:
        # A log line stays one line in a file or a pipe, where Rich would wrap it at 80 columns.
        train(settings, out, work, Console(highlight=False, markup=False, soft_wrap=True), command_line(), on)
    except ValueError as exc:
        raise AttnstepError(str(exc)) from None


def average_epochs(work: Path, out: Path, last: int, console: Console, device: torch.device) -> Scores:
    """The mean of the weights after a run's ``last`` kept epochs (checkpoint averaging: Junczys-Dowmunt et
    al. 2016, Vaswani et al. 2017), validated as training validates and saved to ``out`` as a checkpoint
    whose card names the epochs; its val scores."""
    if not (work / "settings.json").is_file() or not (work / "state.json").is_file():
        raise AttnstepError(f"{work} holds no training run (no settings.json and state.json there)")
    kept = epoch_weights(work)
    if last < 2 or last > len(kept):
        raise AttnstepError(
            f"--last must be from 2 to the {len(kept)} epochs whose weights {work / EPOCHS_FOLDER} keeps, not {last}"
        )
    check_writable_checkpoint(out)
    stored = json.loads((work / "settings.json").read_text())
    known = {f.name for f in fields(TrainSettings)}
    settings = TrainSettings(**{k: v for k, v in stored.items() if k in known})
    progress: RunProgress = json.loads((work / "state.json").read_text())
    data = load_data(settings)
    initial = _initial_checkpoint(settings, device) if settings.init else None
    codec = build_codec(settings, data, work, console, initial)
    epochs = list(kept)[-last:]
    tensors = [load_file(kept[epoch]) for epoch in epochs]
    averaged = {name: torch.stack([t[name] for t in tensors]).mean(dim=0) for name in tensors[0]}
    with skeleton():  # given the averaged weights: no random ones to overwrite
        model = Seq2Seq(_model_config(settings, codec))
    model.load_state_dict(averaged, assign=True)
    model.to(device).eval()
    val = _validate(model, codec, data.val)
    console.print(
        f"average of epochs {', '.join(map(str, epochs))}: val BLEU {val.bleu:.2f} · chrF {val.chrf:.1f}; "
        f"the best single epoch, {progress['best_epoch']}: val BLEU {progress['best_bleu']:.2f}"
    )
    card = _card(settings, codec, data.description, command_line(), progress, val)
    card["provenance"]["averaged_epochs"] = epochs
    _save_best(out, model, codec, card, settings.dtype)
    console.print(f"checkpoint in {visible(str(out))}")
    return val


def run_average(work: Path, out: Path, last: int, threads: int = 0, device: str = "cpu") -> None:
    """``attnstep average``, on ``device`` with ``threads`` CPU threads (0: torch's default)."""
    console = Console(highlight=False, markup=False, soft_wrap=True)
    try:
        average_epochs(work, out, last, console, use_device(device, threads))
    except ValueError as exc:
        raise AttnstepError(str(exc)) from None


def command_line() -> str:
    return " ".join(["attnstep", *sys.argv[1:]])


def _vocabularies(codec: WordCodec | SubwordCodec) -> tuple[Vocab, Vocab]:
    if isinstance(codec, WordCodec):
        return codec.src_vocab, codec.tgt_vocab
    return Vocab(codec.src_model.pieces), Vocab(codec.tgt_model.pieces)


def _tokenizer_card(codec: WordCodec | SubwordCodec) -> dict:
    if isinstance(codec, WordCodec):
        return {"name": "attnstep-words", "lowercase": True, "normalization": "NFC"}
    return {
        "name": "sentencepiece",
        "model_type": "unigram",
        "byte_fallback": True,
        "lowercase": False,
        "normalization": "nmt_nfkc",
        "source_pieces": len(codec.src_model),
        "target_pieces": len(codec.tgt_model),
    }
