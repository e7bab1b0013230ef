"""One training update of the shipped default's architecture, against the same update unrolled through
``Decoder.step`` at every position.

The baseline is how training worked until 2026-12-02: teacher forcing called the one-step function T
times, so the embedding lookup and the output layer (V = 8,000 rows) ran once per position, each adding
its own gradient for their shared weights, and the padded positions got logits too. Training now
embeds the whole batch once, unrolls only the recurrent and attention part, and scores the real target
tokens in one pass of the output layer (``Decoder.unroll``). The two compute the same loss (checked
below before timing); only the work differs.

Both models start from the same seeded weights; the batches are real test_2016_flickr caption pairs
(French → English, the default's SentencePiece models), 64 a batch in training's length-sorted order.
Rounds alternate between the two; medians.

    python bench/train_step.py [--checkpoint checkpoints/fr-en] [--data DIR] [--rounds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import time
from pathlib import Path

import torch
from common import data_option, load_model, test_captions
from torch.nn import functional as F

from attnstep.commands.train import _batches, _train_step
from attnstep.commands.train_settings import TrainSettings
from attnstep.data.paths import DEFAULT_CHECKPOINT
from attnstep.engine.batch import pad, pad_target
from attnstep.model.rnn.seq2seq import Seq2Seq
from attnstep.text.words import PAD_ID


def unrolled_step(model: Seq2Seq, optimizer: torch.optim.Optimizer, batch, settings: TrainSettings) -> float:
    """The baseline update: ``model.step`` at every position, logits for every (padded) position."""
    src, lengths = pad([s for s, _ in batch])
    tgt_in, gold = pad_target([t for _, t in batch])
    memory, state = model.encode(src, lengths)
    logits = []
    for t in range(tgt_in.size(1)):
        output, state = model.step(tgt_in[:, t], state, memory)
        logits.append(output.logits)  # (B, V)
    stacked = torch.stack(logits, dim=1)  # (B, T, V)
    loss = F.cross_entropy(
        stacked.reshape(-1, stacked.size(-1)),
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
    return loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    data_option(parser)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=8, help="batches per round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    checkpoint = load_model(args.checkpoint)
    codec = checkpoint.codec
    source = test_captions(args.data, checkpoint.meta.get("source_language", "fr"))
    target = test_captions(args.data, checkpoint.meta.get("target_language", "en"))
    pairs = [(codec.corpus_source(s), codec.corpus_target(t)) for s, t in zip(source, target)]
    settings = TrainSettings()
    batches = [[pairs[i] for i in b] for b in _batches(pairs, settings.batch_size, random.Random(1))]
    batches = [b for b in batches if len(b) == settings.batch_size][: args.batches]
    padded = sum(pad_target([t for _, t in b])[1].numel() for b in batches)
    real = sum(len(t) + 1 for b in batches for _, t in b)

    torch.manual_seed(1)
    fresh = Seq2Seq(checkpoint.config)
    models = {"unrolled": fresh, "now": copy.deepcopy(fresh)}
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=settings.lr) for name, m in models.items()}
    # The losses are compared without dropout, whose masks the two draw in another order; on copies, with
    # a learning rate of 0, so that the timed models start alike.
    unrolled_copy, now_copy = (copy.deepcopy(m).eval() for m in models.values())
    loss_unrolled = unrolled_step(
        unrolled_copy, torch.optim.SGD(unrolled_copy.parameters(), lr=0), batches[0], settings
    )
    loss_now, _ = _train_step(now_copy, torch.optim.SGD(now_copy.parameters(), lr=0), batches[0], settings)
    print(f"loss on the first batch, no dropout: {loss_now:.4f} now, {loss_unrolled:.4f} unrolled")
    for model in models.values():
        model.train()

    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            started = time.perf_counter()
            for batch in batches:
                if name == "unrolled":
                    unrolled_step(model, optimizers[name], batch, settings)
                else:
                    _train_step(model, optimizers[name], batch, settings)
            times[name].append((time.perf_counter() - started) / len(batches))
    unrolled, now = (statistics.median(times[n]) * 1000 for n in ("unrolled", "now"))
    print(
        f"{len(batches)} batches of {settings.batch_size} caption pairs, {real / padded:.0%} of target positions real, "
        f"{args.threads} thread(s), {args.rounds} alternating rounds"
    )
    print(f"one update: {now:.1f} ms now vs {unrolled:.1f} ms unrolled through step: ×{unrolled / now:.2f} faster")


if __name__ == "__main__":
    main()
