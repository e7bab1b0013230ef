"""One instrumented engine step vs one plain decoder step.

Baseline: ``Seq2Seq.step`` + argmax, batch 1, on precomputed encoder memory.
Measured: the next record from ``Stepper.iter_steps`` decoding greedily, as the app does (the
same step, plus log-softmax, top-k, and copying every intermediate out of torch into an
immutable record). The source is a real 30-word test caption; the baseline is fed the words the
engine chose, so both do the same steps.

This machine's speed drifts by up to 2x within seconds (shared cores and cache), and a process's
ratio depends on where its memory happens to land, so: each round times both, back to back in
alternating order, and takes their ratio; a process reports the median of its rounds' ratios;
the figure is the median over several processes.

    python bench/step_overhead.py [--checkpoint DIR] [--processes 5] [--rounds 41] [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import DEFAULT_CHECKPOINT, data_option, load_model, long_caption


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--words", type=int, default=30)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--one-process", action="store_true", help=argparse.SUPPRESS)  # what each process runs
    data_option(parser)
    args = parser.parse_args()
    if not args.one_process:
        measure_in_processes(args)
        return

    import torch

    from attnstep.engine.batch import pad
    from attnstep.engine.stepper import Stepper
    from attnstep.text.words import BOS_ID

    torch.set_num_threads(1)
    checkpoint = load_model(args.checkpoint)
    stepper = Stepper(checkpoint)
    model = checkpoint.model
    sentence = long_caption(args.words, args.data)
    reference = [s.chosen_id for s in stepper.translate(sentence).steps]
    source_ids = [t.id for t in stepper.source_tokens(sentence)]
    steps = len(reference)

    def engine_step_times() -> float:
        records = stepper.iter_steps(sentence)
        next(records)  # step 0 also encodes the sentence: not a step's cost
        start = time.perf_counter()
        count = sum(1 for _ in records)
        return (time.perf_counter() - start) / count

    @torch.no_grad()
    def plain_step_times() -> float:
        src, lengths = pad([source_ids])
        memory, state = model.encode(src, lengths)
        output, state = model.step(torch.tensor([BOS_ID]), state, memory)
        start = time.perf_counter()
        for token in reference[:-1]:
            output, state = model.step(torch.tensor([token]), state, memory)
            output.logits.argmax(-1)
        return (time.perf_counter() - start) / (len(reference) - 1)

    engine_step_times(), plain_step_times()  # warm-up
    engine, plain = [], []
    for round_ in range(args.rounds):
        pair = (engine_step_times, plain_step_times) if round_ % 2 == 0 else (plain_step_times, engine_step_times)
        times = {f: f() for f in pair}
        engine.append(times[engine_step_times])
        plain.append(times[plain_step_times])
    ratio = statistics.median(e / p for e, p in zip(engine, plain))
    print(
        f"checkpoint {checkpoint.name} ({checkpoint.config.attention}), {len(source_ids)}-token source, {steps} steps, "
        f"{args.rounds} rounds, 1 thread"
    )
    print(f"{ratio} {statistics.median(plain)} {statistics.median(engine)}")


def measure_in_processes(args: argparse.Namespace) -> None:
    command = [
        sys.executable,
        __file__,
        "--one-process",
        "--checkpoint",
        str(args.checkpoint),
        "--rounds",
        str(args.rounds),
        "--words",
        str(args.words),
        "--data",
        str(args.data),
    ]
    results = []
    for _ in range(args.processes):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "bench: a process failed")
        setting, numbers = done.stdout.strip().splitlines()[-2:]
        results.append(tuple(map(float, numbers.split())))
    ratios = sorted(r for r, _, _ in results)
    print(setting + f", {args.processes} processes")
    print(f"plain decoder step (baseline): {statistics.median(p for _, p, _ in results) * 1e6:8.1f} µs median")
    print(f"instrumented engine step:      {statistics.median(e for _, _, e in results) * 1e6:8.1f} µs median")
    print("each process's median ratio: " + ", ".join(f"{r:.2f}" for r in ratios))
    print(f"ratio engine/plain: {statistics.median(ratios):.2f}  (median of the processes; target <= 1.2)")


if __name__ == "__main__":
    main()
