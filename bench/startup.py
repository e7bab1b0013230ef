"""Launch → first frame, for `attnstep translate` and `attnstep replay`, against `import textual`.

Each command is started in a pseudo-terminal at 160×48 and timed until its status line is on
screen (the first frame); translate is also timed until the model has loaded and the sentence
is decoded ("step 0 of"). The floor is `python -c "import textual"`, started the same way in the
same run and timed until it prints that it is done. Medians over ``--runs`` launches.

Targets (issue 3): first frame ≤ 0.6 s for translate, ≤ 0.5 s for replay.

    python bench/startup.py [--checkpoint DIR] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from common import DEFAULT_CHECKPOINT
from terminal import CLI, Terminal, python
from tui_latency import checkpoint_or_tiny

SENTENCE = "Une voiture rouge est garée devant la maison."
FLOOR, FLOOR_MARK = python("-c", "import textual; print('textual imported')"), "textual imported"


def first_frame(argv: list[str], marks: list[str]) -> list[float]:
    """Seconds from launch until each of ``marks`` is on screen, in order."""
    term = Terminal(argv)
    try:
        return [term.wait_for(mark) - term.started for mark in marks]
    finally:
        term.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    checkpoint = checkpoint_or_tiny(args.checkpoint)
    trace_file = Path(tempfile.mkdtemp()) / "trace.json"
    subprocess.run(
        python(*CLI, "dump", SENTENCE, "--checkpoint", str(checkpoint), "--output", str(trace_file)), check=True
    )

    floor, translate, ready, replay = [], [], [], []
    for _ in range(args.runs):  # interleaved, so a busy moment hits every kind alike
        floor.append(first_frame(FLOOR, [FLOOR_MARK])[0])
        frame, decoded = first_frame(
            python(*CLI, "translate", SENTENCE, "--checkpoint", str(checkpoint)), ["attnstep ·", "step 0 of"]
        )
        translate.append(frame)
        ready.append(decoded)
        replay.append(first_frame(python(*CLI, "replay", str(trace_file)), ["step 0 of"])[0])

    base = statistics.median(floor)
    print(f"checkpoint {checkpoint.name}, {args.runs} runs each, medians:")
    print(f"python -c 'import textual'          {base:5.2f} s")
    for name, times, target in (
        ("translate → first frame", translate, 0.6),
        ("translate → model loaded, decoded", ready, None),
        ("replay → first frame", replay, 0.5),
    ):
        median = statistics.median(times)
        verdict = "" if target is None else f"   target ≤ {target} s: {'met' if median <= target else 'MISSED'}"
        print(f"{name:<36}{median:5.2f} s   ×{median / base:.2f} import textual{verdict}")


if __name__ == "__main__":
    main()
