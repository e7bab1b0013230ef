"""How long a shipped checkpoint takes to load, against reading its weights file alone.

Each run is a fresh Python process that has imported torch (what every command that loads a model
has done already). It times, in order: the first ``load_checkpoint`` of the process, which also
imports the loader's own modules (SentencePiece, the vocabularies, the model code); a second
``load_checkpoint`` of the same folder; and the baseline, ``safetensors.torch.load_file`` of its
``model.safetensors``, the bytes without building anything. Medians over ``--runs`` processes.

Target (issue 25): each checkpoint loads in ≤ 1 s.

    python bench/checkpoint_load.py [--checkpoint DIR ...] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from common import ROOT

from attnstep.data.paths import checkpoints_dir, shipped_names

CHILD = """
import json, sys, time
import torch
started = time.perf_counter()
from attnstep.engine.checkpoint import load_checkpoint
load_checkpoint(sys.argv[1])
first = time.perf_counter() - started
started = time.perf_counter()
load_checkpoint(sys.argv[1])
again = time.perf_counter() - started
from safetensors.torch import load_file
started = time.perf_counter()
load_file(sys.argv[1] + "/model.safetensors")
print(json.dumps({"first": first, "again": again, "weights": time.perf_counter() - started}))
"""


def timings(folder: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, action="append", help="default: every shipped checkpoint")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folders = args.checkpoint or [checkpoints_dir() / name for name in shipped_names()]
    runs: dict[Path, list[dict[str, float]]] = {folder: [] for folder in folders}
    for _ in range(args.runs):  # interleaved, so a busy moment hits every checkpoint alike
        for folder in folders:
            runs[folder].append(timings(folder))
    print(f"{args.runs} processes each, medians (first load includes importing the loader):")
    for folder, measured in runs.items():
        first, again, weights = (
            statistics.median(run[key] for run in measured) for key in ("first", "again", "weights")
        )
        size = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
        print(
            f"  {folder.name:<12} {size:5.1f} MB  first {first:.3f} s  again {again:.3f} s  "
            f"weights file alone {weights:.3f} s  (again ×{again / weights:.1f} the file)"
        )


if __name__ == "__main__":
    main()
