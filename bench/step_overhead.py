"""One instrumented engine step vs one plain decoder step.

Baseline: ``Seq2Seq.step`` + argmax, batch 1, on precomputed encoder memory.
Measured: the next record from ``Stepper.iter_steps`` decoding greedily, as the app does (the
same step, plus log-softmax, top-k, and copying every intermediate into an immutable record of
Python floats). The source is a real 30-word test caption; the baseline is fed the words the
engine chose, so both do the same steps. Each round times both back to back; the figure is the
median of the rounds' ratios.

    python bench/step_overhead.py [--checkpoint DIR] [--rounds 41] [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import DEFAULT_CHECKPOINT, data_option, load_model, long_caption


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--words", type=int, default=30)
    data_option(parser)
    args = parser.parse_args()

    import torch

    from attnstep.batch import pad
    from attnstep.stepper import Stepper
    from attnstep.text import BOS_ID

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
    # This machine's speed drifts by up to 2x over seconds (shared cores and cache), so each round
    # times both, back to back and in alternating order, and the ratio is taken within the round.
    engine, plain = [], []
    for round_ in range(args.rounds):
        pair = (engine_step_times, plain_step_times) if round_ % 2 == 0 else (plain_step_times, engine_step_times)
        times = {f: f() for f in pair}
        engine.append(times[engine_step_times])
        plain.append(times[plain_step_times])
    ratios = sorted(e / p for e, p in zip(engine, plain))
    quartiles = statistics.quantiles(ratios, n=4)
    e, p = statistics.median(engine), statistics.median(plain)
    print(f"checkpoint {checkpoint.name} ({checkpoint.config.attention}), {len(source_ids)}-token source, {steps} steps, "
          f"{args.rounds} interleaved rounds, 1 thread")
    print(f"plain decoder step (baseline): {p * 1e6:8.1f} µs median")
    print(f"instrumented engine step:      {e * 1e6:8.1f} µs median")
    print(f"ratio engine/plain, median of the rounds' ratios: {statistics.median(ratios):.2f}  (target <= 1.2; "
          f"middle half of the rounds {quartiles[0]:.2f}-{quartiles[2]:.2f})")


if __name__ == "__main__":
    main()
