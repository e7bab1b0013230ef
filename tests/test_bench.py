"""The benchmarks' own machinery: a slow frame is measured as slow, and missing data is one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import common
import startup
from terminal import Terminal, python

# Answers each key after 0.4 s, later than the 0.15 s quiet period that ends a frame.
SLOW_APP = """
import sys, termios, time, tty
tty.setraw(0)
print("step 0 of 3", flush=True)
for n in range(1, 4):
    sys.stdin.read(1)
    time.sleep(0.4)
    print(f"\\rstep {n} of 3", end="", flush=True)
"""


def test_a_slow_frame_is_measured_not_lost():
    term = Terminal(python("-c", SLOW_APP), size=(40, 5))
    try:
        term.wait_for("step 0 of", timeout=30)
        latency, size = term.press(b"x", "step 1 of", 0.15)
        assert latency >= 0.4 and size > 0  # the answer came after the quiet period, and still counts
        assert term.press(b"x", "step 9 of", 0.15, timeout=1.0) is None  # never on screen: an error
    finally:
        term.close()


def test_a_mark_already_on_screen_is_refused():
    term = Terminal(python("-c", SLOW_APP), size=(40, 5))
    try:
        term.wait_for("step 0 of", timeout=30)
        with pytest.raises(ValueError):
            term.press(b"x", "step 0 of", 0.15)
    finally:
        term.close()


def test_the_startup_floor_runs_in_a_terminal_as_the_apps_do():
    (seconds,) = startup.first_frame(startup.FLOOR, [startup.FLOOR_MARK])
    assert seconds > 0


def test_missing_data_ends_a_bench_with_the_command_that_fetches_it(tmp_path):
    with pytest.raises(SystemExit, match="run `attnstep data get multi30k`"):
        common.test_captions(tmp_path / "nowhere")
