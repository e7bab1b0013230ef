"""``dump --input`` with all vectors as NumPy arrays (``--format npz``) vs as JSON Lines vs plain
batched greedy decoding, on test_2016_flickr.

Baseline: tokenize, batch (length-sorted, as dump does) and ``Seq2Seq.greedy`` — translations only.
Measured: ``attnstep dump --input``'s pipeline (same batches, all vectors) writing JSON Lines, and
writing one .npz archive (its arrays spooled, then the archive written to /dev/null, as the JSON
lines are made and not stored). Runs alternate; each round's ratios are taken, and their medians
reported. Then the cost of writing alone: the first 100 sentences' traces, decoded once, made into
JSON lines and into an archive (what the ratio's difference comes from, less shaken by other load).

    python bench/npz_dump.py [--checkpoint DIR] [--rounds 3] [--batch-size 64] [--threads 1] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from common import DEFAULT_CHECKPOINT, data_option, plain_greedy_seconds, test_captions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch's threads (1: steadier on a shared machine)")
    data_option(parser)
    args = parser.parse_args()

    import torch

    from attnstep.commands.dump import json_format, npz_format, rendered_lines, trace_lines
    from attnstep.engine.stepper import load_stepper

    # as `attnstep dump --threads N` loads it
    stepper = load_stepper(args.checkpoint, top_k=5, vectors=True, threads=args.threads)
    checkpoint = stepper.checkpoint
    sentences = test_captions(args.data, checkpoint.meta["source_language"])

    def json_lines() -> tuple[float, int]:
        start = time.perf_counter()
        size = sum(len(line) for line in trace_lines(stepper, sentences, args.batch_size, None))
        return time.perf_counter() - start, size

    def npz() -> tuple[float, int]:
        start = time.perf_counter()
        form = npz_format()
        for _ in rendered_lines(stepper, sentences, args.batch_size, form):
            pass
        with open(os.devnull, "wb") as sink:
            size = form.end(sink)
        return time.perf_counter() - start, size

    def writing(count: int = 100) -> tuple[float, float]:
        """Seconds per sentence to make JSON lines of decoded traces, and to make an archive of them."""
        traces = stepper.decode_batch([stepper.source_tokens(s) for s in sentences[:count]])
        lines, archive = json_format(None, indent=False), npz_format()
        start = time.perf_counter()
        for number, trace in enumerate(traces, 1):
            lines.render(number, trace)
        middle = time.perf_counter()
        for number, trace in enumerate(traces, 1):
            archive.render(number, trace)
        with open(os.devnull, "wb") as sink:
            archive.end(sink)
        return (middle - start) / count, (time.perf_counter() - middle) / count

    load_before = os.getloadavg()[0]
    rounds = []  # (plain, JSON, npz) seconds
    for _ in range(args.rounds):
        seconds, json_bytes = json_lines()
        plain_s = plain_greedy_seconds(stepper, sentences, args.batch_size)
        npz_s, npz_bytes = npz()
        rounds.append((plain_s, seconds, npz_s))
    json_write, npz_write = writing()
    n = len(sentences)
    plain_s, json_s, npz_s = (statistics.median(r[i] for r in rounds) for i in range(3))
    json_ratio = statistics.median(r[0] / r[1] for r in rounds)
    npz_ratio = statistics.median(r[0] / r[2] for r in rounds)
    print(
        f"checkpoint {checkpoint.name}, {n} sentences of test_2016_flickr, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads, {args.rounds} alternating rounds (medians), "
        f"load average {load_before:.1f} → {os.getloadavg()[0]:.1f}"
    )
    print(f"plain batched greedy (baseline): {n / plain_s:7.1f} sentences/s")
    print(
        f"dump, all vectors, JSON Lines:   {n / json_s:7.1f} sentences/s  ({json_bytes / n / 1024:.0f} KiB/sentence)  ratio {json_ratio:.2f}"
    )
    print(
        f"dump, all vectors, npz:          {n / npz_s:7.1f} sentences/s  ({npz_bytes / n / 1024:.0f} KiB/sentence)  ratio {npz_ratio:.2f}"
    )
    print(f"writing alone, per sentence: JSON {json_write * 1e3:.2f} ms, npz {npz_write * 1e3:.2f} ms")
    print("target: npz ratio >= 0.5")


if __name__ == "__main__":
    main()
