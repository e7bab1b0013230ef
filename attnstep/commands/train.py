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

A time budget (``--max-minutes``) ends training mid-epoch; that last, partial epoch is
validated and kept if it is the best, so a run fits a fixed wall-clock allowance.

Resume: after every epoch the model, Adam's moments and the schedule are written to the
work directory (safetensors + JSON, no pickle). Shuffling and dropout are seeded from the
epoch number, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import MISSING, asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TypedDict

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from attnstep.commands.evaluate import score, translate_corpus
from attnstep.commands.train_settings import TOKENIZERS, TrainSettings
from attnstep.data.corpus import CorpusSpec, Pair, hold_out, read_corpus
from attnstep.data.downloads import check_splits
from attnstep.data.multi30k import read_parallel
from attnstep.engine.batch import pad, pad_target
from attnstep.engine.checkpoint import STORAGE_TYPES, check_writable_checkpoint, save_checkpoint
from attnstep.errors import AttnstepError
from attnstep.model import ModelConfig, Seq2Seq
from attnstep.report.visible import visible
from attnstep.text.codec import SubwordCodec, WordCodec
from attnstep.text.subword import SubwordModel, train_subword
from attnstep.text.words import PAD_ID, SPECIALS, Vocab, tokenize_lenient


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


class RunProgress(TypedDict):
    """Where a run stands after each epoch: kept in state.json for a resumed run."""

    epoch: int  # epochs done
    lr: float  # the learning rate now, after any halvings
    best_bleu: float  # the best val BLEU so far (-1 before the first epoch)
    best_epoch: int  # the epoch that reached it, saved to --out
    history: list[dict]  # one entry per epoch: loss, val BLEU and chrF, lr, seconds
    seconds: float  # training time in all, resumes included


def _save_state(work: Path, model: Seq2Seq, optimizer: torch.optim.Optimizer, progress: RunProgress) -> None:
    """Everything needed to resume, written atomically and without pickle."""
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    steps = {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            if name == "step":
                steps[str(index)] = float(value)
            else:
                tensors[f"adam.{index}.{name}"] = value.contiguous()
    save_file(tensors, work / "state.safetensors.tmp")
    os.replace(work / "state.safetensors.tmp", work / "state.safetensors")
    (work / "state.json.tmp").write_text(json.dumps({**progress, "adam_steps": steps}, indent=2))
    os.replace(work / "state.json.tmp", work / "state.json")


def _load_state(work: Path, model: Seq2Seq, optimizer: torch.optim.Optimizer) -> RunProgress:
    progress = json.loads((work / "state.json").read_text())
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
    return progress


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
    if not settings.corpora:
        raise AttnstepError("give --data DIR or at least one --corpus")
    if settings.holdout < 1:
        raise AttnstepError("with --corpus, give --holdout N: validation pairs to hold out of the first corpus")
    columns = tuple(settings.tsv_columns.split(","))
    if len(columns) != 2:
        raise AttnstepError(f"--tsv-columns must name two columns, e.g. en,fr, not {settings.tsv_columns!r}")
    specs = [CorpusSpec.parse(spec) for spec in settings.corpora]
    corpora = [read_corpus(spec, settings.src, settings.tgt, columns) for spec in specs]
    held = hold_out(corpora[0], settings.holdout, settings.holdout, settings.seed)
    held_sentences = {sentence for pair in held.val + held.test for sentence in pair}
    train_pairs: list[Pair] = []
    parts = []
    for index, (spec, pairs) in enumerate(zip(specs, corpora)):
        if index == 0:
            pairs = held.train
        # No held-out sentence may be seen in training, from whichever corpus.
        pairs = [(s, t) for s, t in pairs if s and t and s not in held_sentences and t not in held_sentences]
        train_pairs.extend(pairs * spec.times)
        parts.append(f"{spec.path} ({len(pairs)} pairs" + (f", ×{spec.times})" if spec.times > 1 else ")"))
    return Data(train_pairs, held.val, held.test, "; ".join(parts))


def build_codec(settings: TrainSettings, data: Data, work: Path, console: Console) -> WordCodec | SubwordCodec:
    """The run's vocabularies: counted words, or SentencePiece models trained once and kept in ``work``."""
    if settings.tokenizer == "words":
        src_vocab = Vocab.build((tokenize_lenient(s) for s, _ in data.train), min_freq=settings.min_freq)
        tgt_vocab = Vocab.build((tokenize_lenient(t) for _, t in data.train), min_freq=settings.min_freq)
        return WordCodec(src_vocab, tgt_vocab)
    models = []
    for side, name in ((0, "source.spm"), (1, "target.spm")):
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


def check_model_settings(settings: TrainSettings) -> None:
    """Refuse bad model or optimizer settings before anything is written: a rejected run must not
    leave a settings.json that blocks the corrected one."""
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
    another type, and model settings left at their defaults compare equal to the defaults written out."""
    unchecked = ("epochs", "max_minutes", "dtype")
    defaults = {f.name: f.default for f in fields(ModelConfig) if f.default is not MISSING}
    return {
        **{k: v for k, v in settings.items() if k not in unchecked},
        "model": {**defaults, **settings.get("model", {})},
    }


def train(settings: TrainSettings, out: Path, work: Path, console: Console, command: str) -> RunProgress:
    if settings.tokenizer not in TOKENIZERS:
        raise AttnstepError(f"--tokenizer must be {' or '.join(TOKENIZERS)}, not {settings.tokenizer!r}")
    check_model_settings(settings)
    data = load_data(settings)
    work.mkdir(parents=True, exist_ok=True)
    settings_file = work / "settings.json"
    # A resumed run may train for longer, but anything else would silently mix two experiments.
    if settings_file.exists() and _comparable(json.loads(settings_file.read_text())) != _comparable(asdict(settings)):
        raise AttnstepError(
            f"{work} holds a run with other settings; use another --work directory or the same settings"
        )
    settings_file.write_text(json.dumps(asdict(settings), indent=2))

    codec = build_codec(settings, data, work, console)
    pairs = []
    for source, target in data.train:
        s, t = codec.corpus_source(source), codec.corpus_target(target)
        if 0 < len(s) <= settings.max_len and 0 < len(t) <= settings.max_len:
            pairs.append((s, t))
    src_vocab, tgt_vocab = _vocabularies(codec)
    val_src, val_tgt = [s for s, _ in data.val], [t for _, t in data.val]
    cased = isinstance(codec, SubwordCodec)
    torch.manual_seed(settings.seed)
    config = ModelConfig(src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), **settings.model)
    model = Seq2Seq(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    progress = RunProgress(epoch=0, lr=settings.lr, best_bleu=-1.0, best_epoch=0, history=[], seconds=0.0)
    if (work / "state.json").exists():
        progress = _load_state(work, model, optimizer)
        console.print(f"resuming after epoch {progress['epoch']} (best val BLEU {progress['best_bleu']:.2f})")
    console.print(
        f"{len(pairs)} training pairs · vocab {settings.src} {len(src_vocab)} / {settings.tgt} {len(tgt_vocab)} · "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters · attention {config.attention}"
    )

    budget = settings.max_minutes * 60 or math.inf
    while (
        progress["epoch"] < settings.epochs
        and progress["epoch"] - progress["best_epoch"] < settings.patience
        and progress["seconds"] < budget
    ):
        epoch = progress["epoch"] + 1
        started = time.monotonic()
        torch.manual_seed(settings.seed * 1000 + epoch)
        batches = _batches(pairs, settings.batch_size, random.Random(settings.seed * 1000 + epoch))
        model.train()
        total_loss, total_tokens = 0.0, 0
        with Progress(
            TextColumn(f"epoch {epoch}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("train", total=len(batches), loss=0.0)
            for indices in batches:
                src, lengths = pad([pairs[i][0] for i in indices])
                tgt_in, gold = pad_target([pairs[i][1] for i in indices])
                logits = model(src, lengths, tgt_in)  # (B, T, V)
                loss = F.cross_entropy(
                    logits.reshape(-1, logits.size(-1)),
                    gold.reshape(-1),
                    ignore_index=PAD_ID,
                    label_smoothing=settings.label_smoothing,
                    reduction="sum",
                )
                tokens = int((gold != PAD_ID).sum())
                optimizer.zero_grad()
                (loss / tokens).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
                optimizer.step()
                total_loss, total_tokens = total_loss + loss.item(), total_tokens + tokens
                bar.update(task, advance=1, loss=total_loss / total_tokens)
                if progress["seconds"] + time.monotonic() - started > budget:
                    console.print(f"time budget of {settings.max_minutes:g} min reached inside epoch {epoch}")
                    break

        hypotheses = translate_corpus(model, codec, val_src).texts
        val = score(hypotheses, val_tgt, lowercase=not cased)
        seconds = time.monotonic() - started
        progress["seconds"] += seconds
        progress["history"].append(
            {
                "epoch": epoch,
                "train_loss": round(total_loss / total_tokens, 4),
                "val_bleu": round(val.bleu, 2),
                "lr": progress["lr"],
                "seconds": round(seconds, 1),
            }
        )
        improved = val.bleu > progress["best_bleu"]
        console.print(
            f"epoch {epoch}: loss {total_loss / total_tokens:.3f} · val BLEU {val.bleu:.2f} · chrF {val.chrf:.1f} · "
            f"lr {progress['lr']:g} · {seconds:.0f}s" + (" · new best, saved" if improved else "")
        )
        progress["epoch"] = epoch
        if improved:
            progress["best_bleu"], progress["best_epoch"] = val.bleu, epoch
            meta = {
                "source_language": settings.src,
                "target_language": settings.tgt,
                "tokenizer": _tokenizer_card(codec),
                "provenance": {
                    "data": f"{data.description}, {len(pairs)} training pairs",
                    "command": command,
                    "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                    "epoch": epoch,
                    "train_seconds": round(progress["seconds"], 1),
                    "settings": asdict(settings),
                },
                "metrics": {
                    "val_bleu": round(val.bleu, 2),
                    "val_chrf": round(val.chrf, 2),
                    "bleu_signature": val.bleu_signature,
                },
            }
            if settings.corpora:
                meta["heldout"] = {
                    "corpus": settings.corpora[0],
                    "tsv_columns": settings.tsv_columns,
                    "size": settings.holdout,
                    "seed": settings.seed,
                }
            subword = (codec.src_model, codec.tgt_model) if isinstance(codec, SubwordCodec) else None
            if settings.dtype != "float32":
                meta["storage_dtype"] = settings.dtype
            save_checkpoint(
                out, model, src_vocab, tgt_vocab, meta, dtype=STORAGE_TYPES[settings.dtype], subword=subword
            )
        else:
            progress["lr"] *= settings.lr_decay
            for group in optimizer.param_groups:
                group["lr"] = progress["lr"]
        _save_state(work, model, optimizer, progress)
    console.print(
        f"done: best val BLEU {progress['best_bleu']:.2f} at epoch {progress['best_epoch']}, "
        f"{progress['seconds'] / 60:.1f} min of training; checkpoint in {visible(str(out))}"
    )
    return progress


def run_train(settings: TrainSettings, out: Path, work: Path, threads: int) -> None:
    """``attnstep train``: refuse missing splits or an --out that cannot be replaced before anything is
    written, then train on ``threads`` CPU threads (0: torch's default)."""
    if settings.data:
        check_splits(Path(settings.data), ["train", "val"], [settings.src, settings.tgt])
    check_writable_checkpoint(out)
    if threads:
        torch.set_num_threads(threads)
    try:
        train(settings, out, work, Console(highlight=False, markup=False), command_line())
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
