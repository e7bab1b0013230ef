"""Batched ``dump`` throughput vs plain batched greedy decoding, on test_2016_flickr.

Baseline: tokenize, batch (length-sorted, as dump does) and ``Seq2Seq.greedy`` — translations only.
Measured: ``attnstep dump --input``'s pipeline (same batches) producing JSON Lines, with all
vectors and with ``--no-vectors``. Runs alternate; medians are compared.

    python bench/dump_throughput.py [--checkpoint DIR] [--rounds 3] [--batch-size 64] [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import DEFAULT_CHECKPOINT, data_option, plain_greedy_seconds, test_captions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    data_option(parser)
    args = parser.parse_args()

    import torch

    from attnstep.commands.dump import trace_lines
    from attnstep.engine.stepper import Stepper, load_stepper

    full = load_stepper(args.checkpoint, top_k=5, vectors=True)  # as `attnstep dump` loads it
    lean = load_stepper(args.checkpoint, top_k=5, vectors=False)
    checkpoint = full.checkpoint
    sentences = test_captions(args.data, checkpoint.meta["source_language"])

    def dump(stepper: Stepper) -> tuple[float, int]:
        start = time.perf_counter()
        size = sum(len(line) for line in trace_lines(stepper, sentences, args.batch_size, None))
        return time.perf_counter() - start, size

    plain_times, full_times, lean_times = [], [], []
    for _ in range(args.rounds):
        plain_times.append(plain_greedy_seconds(full, sentences, args.batch_size))
        seconds, full_bytes = dump(full)
        full_times.append(seconds)
        seconds, lean_bytes = dump(lean)
        lean_times.append(seconds)
    n = len(sentences)
    plain_s, full_s, lean_s = (statistics.median(x) for x in (plain_times, full_times, lean_times))
    print(
        f"checkpoint {checkpoint.name}, {n} sentences of test_2016_flickr, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads, median of {args.rounds} alternating rounds"
    )
    print(f"plain batched greedy (baseline): {n / plain_s:7.1f} sentences/s")
    print(
        f"dump, all vectors:               {n / full_s:7.1f} sentences/s  ({full_bytes / n / 1024:.0f} KiB/sentence)  ratio {plain_s / full_s:.2f}"
    )
    print(
        f"dump --no-vectors:               {n / lean_s:7.1f} sentences/s  ({lean_bytes / n / 1024:.1f} KiB/sentence)  ratio {plain_s / lean_s:.2f}"
    )
    print("target: ratio >= 0.7")


if __name__ == "__main__":
    main()
