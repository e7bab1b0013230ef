"""``attnstep dump --input --beam 5`` vs greedy ``dump --input`` on test_2016_flickr, in one run.

Each measurement is the real command in a fresh process (model loading included, the same for
both), its JSON Lines sent to /dev/null; greedy and beam runs alternate, and medians are
compared. Peak RSS is each process's own (``wait4``): what "bounded memory" means here is that it
does not grow with the file, since sentences are decoded a batch at a time.

    python bench/beam_dump.py [--checkpoint DIR] [--beam 5] [--rounds 3] [--no-vectors-only] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DEFAULT_CHECKPOINT, ROOT, data_option, test_captions


def run(command: list[str]) -> tuple[float, int]:
    """(seconds, peak RSS in MiB) of one command, its stdout discarded."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed")
    return seconds, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-vectors-only", action="store_true", help="skip the (JSON-bound) runs with every vector")
    data_option(parser)
    args = parser.parse_args()

    sentences = test_captions(args.data)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(sentences) + "\n")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as quarter:
        quarter.write("\n".join(sentences[: len(sentences) // 4]) + "\n")

    def dump(path: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "attnstep", "dump", "--input", path, "--checkpoint", args.checkpoint, *extra]

    kinds = [["--no-vectors"]] + ([] if args.no_vectors_only else [[]])
    print(
        f"checkpoint {Path(args.checkpoint).name}, {len(sentences)} sentences of test_2016_flickr, batch 64, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, median of {args.rounds} alternating rounds"
    )
    try:
        for extra in kinds:
            greedy, beam = [], []
            for _ in range(args.rounds):
                greedy.append(run(dump(handle.name, *extra)))
                beam.append(run(dump(handle.name, *extra, "--beam", str(args.beam))))
            g = statistics.median(s for s, _ in greedy)
            b = statistics.median(s for s, _ in beam)
            label = "--no-vectors" if extra else "all vectors"
            print(
                f"{label:>12}: greedy {len(sentences) / g:6.1f} sentences/s (peak {max(m for _, m in greedy)} MiB), "
                f"beam {args.beam} {len(sentences) / b:6.1f} sentences/s (peak {max(m for _, m in beam)} MiB): "
                f"ratio {g / b:.2f}"
            )
        _, small = run(dump(quarter.name, "--no-vectors", "--beam", str(args.beam)))
        print(f"peak RSS of beam {args.beam} --no-vectors on the first {len(sentences) // 4} sentences: {small} MiB")
    finally:
        os.unlink(handle.name)
        os.unlink(quarter.name)
    print(f"load average while measuring: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
