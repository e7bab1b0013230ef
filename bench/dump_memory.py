"""Peak memory of ``attnstep dump --input`` as the file grows: it must not grow with the number of lines.

Each size is one fresh ``attnstep dump -i FILE -o OUT`` process, all vectors, on the first test
captions, as many as the smallest size, repeated to make N lines: every file has the same mix of
sentence lengths, so only the number of lines differs. Its peak RSS is the kernel's (wait4's
ru_maxrss). The figure is the ratio of the largest file's peak to the smallest's, in one run.

Target (issue 8): ratio ≤ 1.1 between 100 and 1000 lines.

    python bench/dump_memory.py [--checkpoint DIR] [--lines 100 1000] [--data DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import tempfile
import time
from pathlib import Path

from common import DEFAULT_CHECKPOINT, data_option, test_captions
from terminal import CLI, python


def dump_peak(lines: list[str], checkpoint: Path, folder: Path) -> tuple[float, int, float]:
    """(peak RSS in MB, output bytes, seconds) of one `attnstep dump -i` over ``lines``."""
    source, out = folder / f"{len(lines)}.txt", folder / f"{len(lines)}.jsonl"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    started = time.perf_counter()
    process = subprocess.Popen(python(*CLI, "dump", "-i", str(source), "-o", str(out), "--checkpoint", str(checkpoint)))
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: attnstep dump failed on {len(lines)} lines")
    size = out.stat().st_size
    out.unlink()
    return usage.ru_maxrss / 1024, size, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--lines", type=int, nargs="+", default=[100, 1000])
    data_option(parser)
    args = parser.parse_args()
    captions = test_captions(args.data)[: min(args.lines)]
    peaks = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in sorted(args.lines):
            peak, size, seconds = dump_peak(
                list(itertools.islice(itertools.cycle(captions), n)), args.checkpoint, Path(folder)
            )
            peaks[n] = peak
            print(f"{n:6d} lines: peak RSS {peak:6.0f} MB   output {size / 1e6:7.1f} MB   {seconds:5.1f} s")
    smallest, largest = min(peaks), max(peaks)
    ratio = peaks[largest] / peaks[smallest]
    print(
        f"peak RSS ratio {largest} vs {smallest} lines: ×{ratio:.2f}   target ≤ 1.1: {'met' if ratio <= 1.1 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
