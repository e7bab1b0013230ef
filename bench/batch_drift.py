"""How far `dump` output moves with the batch a sentence is decoded in, and with torch's thread count.

Runs `attnstep dump --input`'s pipeline on the first --sentences test captions three ways:
batch 1 and batch --batch-size with one thread, then batch --batch-size with --threads threads,
and compares every number of every trace (scores, weights, vectors, probabilities) between the
first two and between the last two: how many lines are byte-identical, how many sentences chose
other words, and the largest absolute difference. The same flags and threads give the same
bytes, in one process or two (the tests check that); this measures what changing them does.

    python bench/batch_drift.py [--checkpoint DIR] [--sentences 200] [--batch-size 64] [--threads 2] [--data DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
from common import DEFAULT_CHECKPOINT, data_option, test_captions

from attnstep.engine.checkpoint import numbers_in


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    data_option(parser)
    args = parser.parse_args()

    import torch

    from attnstep.commands.dump import trace_lines
    from attnstep.engine.stepper import load_stepper

    stepper = load_stepper(args.checkpoint, top_k=5, vectors=True)
    sentences = test_captions(args.data, stepper.checkpoint.meta["source_language"])[: args.sentences]

    def traces(batch_size: int, threads: int) -> list[bytes]:
        torch.set_num_threads(threads)
        return list(trace_lines(stepper, sentences, batch_size, None))

    def compare(name: str, first: list[bytes], second: list[bytes]) -> None:
        largest, other_words, identical = 0.0, 0, 0
        for a, b in zip(first, second):
            identical += a == b
            x, y = orjson.loads(a), orjson.loads(b)
            if x["output_tokens"] != y["output_tokens"]:
                other_words += 1
                continue
            largest = max([largest, *(abs(p - q) for p, q in zip(numbers_in(x), numbers_in(y)))])
        print(
            f"{name:<46} byte-identical {identical}/{len(first)}   other words in {other_words}   "
            f"largest difference {largest:.2e}"
        )

    alone, batched = traces(1, 1), traces(args.batch_size, 1)
    compare(f"batch 1 vs batch {args.batch_size} (1 thread)", alone, batched)
    compare(f"1 vs {args.threads} threads (batch {args.batch_size})", batched, traces(args.batch_size, args.threads))


if __name__ == "__main__":
    main()
