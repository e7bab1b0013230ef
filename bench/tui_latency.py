"""Keypress → finished frame in a real terminal, for the stepping app and for a trivial Textual app.

The app runs in a pseudo-terminal at 160×48 on a 40-word source sentence. Each step-forward
(→) and step-back (←) key is written to the terminal; the bench waits (up to 10 s) for the new
step counter ("step N of") to be on screen, then reads until the output goes quiet. The latency
is the time to the last byte of that frame, however late it comes, and the bytes are what the
terminal had to draw; a frame that never shows its counter is counted as an error. A trivial
Textual app (one line that counts key presses, "step N of 30") runs the same way in the same
run as the floor. Then, at the last step, the full-screen alignment map is opened (m) and closed
ten times: its line gives the opening. Also prints the app's peak RSS.

Targets (issue 3): median ≤ 30 ms, p95 ≤ 60 ms, ≤ 8 KB per step, peak RSS ≤ 400 MB.

    python bench/tui_latency.py [--checkpoint DIR] [--words 40] [--rounds 2] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import DEFAULT_CHECKPOINT, ROOT, data_option, long_sentence
from terminal import CLI, Terminal, python

QUIET = 0.15  # seconds without output that end a frame (Textual paints at most every ~16 ms)
RIGHT, LEFT = b"\x1b[C", b"\x1b[D"
MAP_OPENINGS = 10
MAP_TITLE = "Alignment a_ti"  # on screen while the map is open
MAP_TIMEOUT = 10.0

FLOOR_APP = """
from textual.app import App
from textual.widgets import Static

class Floor(App):
    BINDINGS = [("right", "count(1)"), ("left", "count(-1)"), ("q", "quit")]
    n = 0
    def compose(self):
        yield Static("step 0 of 30", id="n")
    def action_count(self, d):
        self.n += d
        self.query_one("#n", Static).update(f"step {self.n} of 30")

Floor().run()
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(term: Terminal, keys: list[bytes]) -> tuple[list[float], list[int], int]:
    """Latency and bytes of each key's frame, and how many frames never came (errors)."""
    latencies, sizes, errors, position = [], [], 0, 0
    for key in keys:
        position += 1 if key == RIGHT else -1
        answer = term.press(key, f"step {position} of ", QUIET)
        if answer is None:
            errors += 1
            term.quiet(QUIET)
            continue
        latencies.append(answer[0])
        sizes.append(answer[1])
    return latencies, sizes, errors


def until(term: Terminal, text: str, present: bool) -> tuple[float, int]:
    """Read until ``text`` is (or is no longer) on screen, then until quiet: (seconds from the call
    to the last byte, bytes). Waiting for the content rather than for a quiet spell also catches a
    frame slower than the quiet window."""
    start, size, last = time.perf_counter(), 0, 0.0
    while (text in term.text()) != present:
        chunk, last = term.read(MAP_TIMEOUT)
        if not chunk:
            raise SystemExit(f"bench: {text!r} did not {'appear' if present else 'go'} within {MAP_TIMEOUT} s")
        size += len(chunk)
    more, quiet_last = term.quiet(QUIET)
    return (quiet_last if more else last) - start, size + more


def measure_map(term: Terminal, openings: int) -> tuple[list[float], list[int]]:
    """m opens the full-screen map and m closes it again; the openings are measured."""
    latencies, sizes = [], []
    for _ in range(openings):
        os.write(term.fd, b"m")
        latency, size = until(term, MAP_TITLE, True)
        latencies.append(latency)
        sizes.append(size)
        os.write(term.fd, b"m")
        until(term, MAP_TITLE, False)
    return latencies, sizes


def report(name: str, latencies: list[float], sizes: list[int], errors: int) -> tuple[float, float, float]:
    median, p95 = statistics.median(latencies) * 1000, percentile(latencies, 0.95) * 1000
    per_step = statistics.mean(sizes) / 1024
    print(
        f"{name:<22} median {median:6.1f} ms   p95 {p95:6.1f} ms   {per_step:5.1f} KB/step   "
        f"({len(latencies)} keys, {errors} frames never came)"
    )
    return median, p95, per_step


def checkpoint_or_tiny(path: Path) -> Path:
    if path.is_dir():
        return path
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import build_tiny_checkpoint

    print(f"(no checkpoint at {path}: using a tiny untrained one)")
    return build_tiny_checkpoint(Path(tempfile.mkdtemp()) / "tiny")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="forward-then-back sweeps over the sentence")
    data_option(parser)
    args = parser.parse_args()
    checkpoint = checkpoint_or_tiny(args.checkpoint)
    sentence = long_sentence(args.words, args.data)

    app = Terminal(python(*CLI, "translate", sentence, "--checkpoint", str(checkpoint)))
    app.wait_for("step 0 of")
    app.quiet(0.5)
    total = int(app.text().split("step 0 of ")[1].split()[0])
    steps = min(total, 30)
    keys = ([RIGHT] * steps + [LEFT] * steps) * args.rounds
    app_latencies, app_sizes, app_errors = measure(app, keys)
    # The full-screen map (m) at the end of the decoding, where it is largest; m again closes it.
    app.press(b"e", f"step {total} of ", QUIET)
    map_latencies, map_sizes = measure_map(app, MAP_OPENINGS)
    rss = app.peak_rss_mb()
    app.close()

    floor = Terminal(python("-c", FLOOR_APP))
    floor.wait_for("step 0 of")
    floor.quiet(0.5)
    floor_latencies, floor_sizes, floor_errors = measure(floor, keys)
    floor.close()

    print(
        f"attnstep translate at 160×48, {args.words}-word source, {total} decoder steps, checkpoint {checkpoint.name}"
    )
    median, p95, per_step = report("attnstep translate", app_latencies, app_sizes, app_errors)
    report("opening the map (m)", map_latencies, map_sizes, 0)
    floor_median, floor_p95, _ = report("trivial Textual app", floor_latencies, floor_sizes, floor_errors)
    print(f"ratio to the floor     median ×{median / floor_median:.2f}   p95 ×{p95 / floor_p95:.2f}")
    print(f"peak RSS of the app    {rss:.0f} MB")
    print(
        "targets: median ≤ 30 ms {}, p95 ≤ 60 ms {}, ≤ 8 KB/step {}, RSS ≤ 400 MB {}, no missing frames {}".format(
            *("met" if ok else "MISSED" for ok in (median <= 30, p95 <= 60, per_step <= 8, rss <= 400, not app_errors))
        )
    )


if __name__ == "__main__":
    main()
