"""How fast `attnstep probe` runs: the probe experiment (issue 23) on --sentences test captions with one
checkpoint, in steps per second, against plain greedy decoding of the same sentences.

The probe makes, at each greedy step, the step itself and one forward pass per manipulation (four), each
batched over --batch-size sentences, and moves every active row's weights through Python to edit them.
Plain greedy decoding is Seq2Seq.greedy's loop (no records), the engine's greedy decoding (records, no
vectors, top-5) is shown beside it. Each is timed --repeats times; the best time counts.

    python bench/probe_speed.py [--checkpoint checkpoints/zoo/general] [--sentences 1000] [--batch-size 64] [--data DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import ROOT, data_option, test_captions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "zoo" / "general")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    data_option(parser)
    args = parser.parse_args()

    import torch

    from attnstep.engine.batch import pad
    from attnstep.engine.stepper import load_stepper

    stepper = load_stepper(args.checkpoint, top_k=5, vectors=False, threads=args.threads)
    sentences = [s for s in test_captions(args.data, stepper.info.source_language)[: args.sentences] if s.strip()]
    sources = [stepper.source_tokens(s) for s in sentences]
    chunks = [range(i, min(i + args.batch_size, len(sources))) for i in range(0, len(sources), args.batch_size)]

    def best(run) -> tuple[float, object]:
        times, out = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = run()
            times.append(time.perf_counter() - start)
        return min(times), out

    def probe():
        return [p for chunk in chunks for p in stepper.probe([sources[i] for i in chunk], first=chunk.start)]

    def plain():
        model = stepper.checkpoint.family
        with torch.no_grad():
            for chunk in chunks:
                src, lengths = pad([[t.id for t in sources[i]] for i in chunk], stepper.device, stepper.specials.pad)
                model.greedy(src, lengths)

    def engine():
        return [t for chunk in chunks for t in stepper.decode_batch([sources[i] for i in chunk])]

    probe_time, probed = best(probe)
    plain_time, _ = best(plain)
    engine_time, traces = best(engine)
    steps = len(probed)  # type: ignore[arg-type]
    assert steps == sum(len(t.steps) for t in traces)  # type: ignore[union-attr]
    print(f"{args.checkpoint.name}: {len(sentences)} sentences, {steps} greedy steps, batch {args.batch_size}")
    print(f"probe (4 manipulations a step)  {probe_time:7.2f} s  {steps / probe_time:8.0f} steps/s")
    print(f"plain greedy (Seq2Seq.greedy)   {plain_time:7.2f} s  {steps / plain_time:8.0f} steps/s")
    print(f"engine greedy (records)         {engine_time:7.2f} s  {steps / engine_time:8.0f} steps/s")
    print(
        f"probe / plain greedy: {probe_time / plain_time:.1f}x the time; probe / engine: {probe_time / engine_time:.1f}x"
    )


if __name__ == "__main__":
    main()
