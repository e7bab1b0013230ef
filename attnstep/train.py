"""Training on parallel text, with validation BLEU each epoch, best-checkpoint keeping and resume.

What makes the shipped model better than a plain bi-GRU baseline, all standard practice:
dropout on embeddings and on the attentional vector, label smoothing (Szegedy et al. 2016),
an output layer tied to the target embeddings (Press & Wolf 2017), gradient clipping, and
halving the learning rate whenever validation BLEU stops improving, stopping early after
``patience`` epochs without a new best.

Resume: after every epoch the model, Adam's moments and the schedule are written to the
work directory (safetensors + JSON, no pickle). Shuffling and dropout are seeded from the
epoch number, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from attnstep.batch import pad, pad_target
from attnstep.checkpoint import save_checkpoint
from attnstep.data import read_parallel
from attnstep.display import visible
from attnstep.errors import AttnstepError
from attnstep.evaluate import score, translate_corpus
from attnstep.model import ModelConfig, Seq2Seq
from attnstep.text import PAD_ID, Vocab, tokenize_lenient


@dataclass
class TrainSettings:
    data: str
    src: str = "fr"
    tgt: str = "en"
    epochs: int = 20  # upper bound; early stopping usually ends sooner
    batch_size: int = 64
    lr: float = 1e-3
    lr_decay: float = 0.5  # multiply the learning rate by this when val BLEU does not improve
    patience: int = 3  # stop after this many epochs without a new best val BLEU
    label_smoothing: float = 0.1
    clip: float = 1.0  # gradient norm
    min_freq: int = 2  # words seen fewer times in training become <unk>
    max_len: int = 50  # training pairs longer than this (tokens) are skipped
    seed: int = 1
    model: dict = field(default_factory=dict)  # ModelConfig overrides, e.g. {"attention": "dot"}


def _batches(pairs: list[tuple[list[int], list[int]]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar source length (less padding), in a shuffled order."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(pairs[i][0]))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _save_state(work: Path, model: Seq2Seq, optimizer: torch.optim.Optimizer, progress: dict) -> None:
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


def _load_state(work: Path, model: Seq2Seq, optimizer: torch.optim.Optimizer) -> dict:
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


def train(settings: TrainSettings, out: Path, work: Path, console: Console, command: str) -> dict:
    data_dir = Path(settings.data)
    train_src, train_tgt = read_parallel(data_dir, "train", settings.src, settings.tgt)
    val_src, val_tgt = read_parallel(data_dir, "val", settings.src, settings.tgt)
    work.mkdir(parents=True, exist_ok=True)
    settings_file = work / "settings.json"
    # A resumed run may train for more epochs, but anything else would silently mix two experiments.
    comparable = {k: v for k, v in asdict(settings).items() if k != "epochs"}
    if settings_file.exists():
        previous = {k: v for k, v in json.loads(settings_file.read_text()).items() if k != "epochs"}
        if previous != comparable:
            raise AttnstepError(f"{work} holds a run with other settings; use another --work directory or the same settings")
    settings_file.write_text(json.dumps(asdict(settings), indent=2))

    src_tokens = [tokenize_lenient(s) for s in train_src]
    tgt_tokens = [tokenize_lenient(s) for s in train_tgt]
    src_vocab = Vocab.build(src_tokens, min_freq=settings.min_freq)
    tgt_vocab = Vocab.build(tgt_tokens, min_freq=settings.min_freq)
    pairs = [
        (src_vocab.ids(s), tgt_vocab.ids(t))
        for s, t in zip(src_tokens, tgt_tokens)
        if 0 < len(s) <= settings.max_len and 0 < len(t) <= settings.max_len
    ]
    torch.manual_seed(settings.seed)
    config = ModelConfig(src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), **settings.model)
    model = Seq2Seq(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    progress = {"epoch": 0, "lr": settings.lr, "best_bleu": -1.0, "best_epoch": 0, "history": [], "seconds": 0.0}
    if (work / "state.json").exists():
        progress = _load_state(work, model, optimizer)
        console.print(f"resuming after epoch {progress['epoch']} (best val BLEU {progress['best_bleu']:.2f})")
    console.print(
        f"{len(pairs)} training pairs · vocab {settings.src} {len(src_vocab)} / {settings.tgt} {len(tgt_vocab)} · "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters · attention {config.attention}"
    )

    while progress["epoch"] < settings.epochs and progress["epoch"] - progress["best_epoch"] < settings.patience:
        epoch = progress["epoch"] + 1
        started = time.monotonic()
        torch.manual_seed(settings.seed * 1000 + epoch)
        batches = _batches(pairs, settings.batch_size, random.Random(settings.seed * 1000 + epoch))
        model.train()
        total_loss, total_tokens = 0.0, 0
        with Progress(
            TextColumn(f"epoch {epoch}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
        ) as bar:
            task = bar.add_task("train", total=len(batches), loss=0.0)
            for indices in batches:
                src, lengths = pad([pairs[i][0] for i in indices])
                tgt_in, gold = pad_target([pairs[i][1] for i in indices])
                logits = model(src, lengths, tgt_in)  # (B, T, V)
                loss = F.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), gold.reshape(-1),
                    ignore_index=PAD_ID, label_smoothing=settings.label_smoothing, reduction="sum",
                )
                tokens = int((gold != PAD_ID).sum())
                optimizer.zero_grad()
                (loss / tokens).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
                optimizer.step()
                total_loss, total_tokens = total_loss + loss.item(), total_tokens + tokens
                bar.update(task, advance=1, loss=total_loss / total_tokens)

        hypotheses = translate_corpus(model, src_vocab, tgt_vocab, val_src)
        val = score(hypotheses, val_tgt)
        seconds = time.monotonic() - started
        progress["seconds"] += seconds
        progress["history"].append(
            {"epoch": epoch, "train_loss": round(total_loss / total_tokens, 4), "val_bleu": round(val.bleu, 2),
             "lr": progress["lr"], "seconds": round(seconds, 1)}
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
                "tokenizer": {"name": "attnstep-words", "lowercase": True, "normalization": "NFC"},
                "provenance": {
                    "data": f"Multi30k task 1 ({settings.src}→{settings.tgt}), {len(pairs)} training pairs",
                    "command": command,
                    "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                    "epoch": epoch,
                    "train_seconds": round(progress["seconds"], 1),
                    "settings": asdict(settings),
                },
                "metrics": {"val_bleu": round(val.bleu, 2), "val_chrf": round(val.chrf, 2), "bleu_signature": val.bleu_signature},
            }
            save_checkpoint(out, model, src_vocab, tgt_vocab, meta)
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


def command_line() -> str:
    return " ".join(["attnstep", *sys.argv[1:]])
