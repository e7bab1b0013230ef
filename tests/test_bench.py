"""The benchmarks' own machinery: a slow frame is measured as slow, each figure a tiny run prints fits the others, and missing data is one line."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import common
import dump_throughput
import startup
import step_overhead
from terminal import Terminal, python

from tests.conftest import build_tiny_checkpoint

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


@pytest.mark.slow
def test_a_slow_frame_is_measured_not_lost():
    term = Terminal(python("-c", SLOW_APP), size=(40, 5))
    try:
        term.wait_for("step 0 of", timeout=30)
        latency, size = term.press(b"x", "step 1 of", 0.15)
        assert latency >= 0.4 and size > 0  # the answer came after the quiet period, and still counts
        assert term.press(b"x", "step 9 of", 0.15, timeout=1.0) is None  # never on screen: an error
    finally:
        term.close()


@pytest.mark.slow
def test_a_mark_already_on_screen_is_refused():
    term = Terminal(python("-c", SLOW_APP), size=(40, 5))
    try:
        term.wait_for("step 0 of", timeout=30)
        with pytest.raises(ValueError):
            term.press(b"x", "step 0 of", 0.15)
    finally:
        term.close()


# Prints one mark, then another 0.3 s later.
TWO_MARKS = python("-c", "import time; print('one', flush=True); time.sleep(0.3); print('two', flush=True)")


@pytest.mark.slow
def test_first_frame_times_every_mark_from_the_launch():
    one, two = startup.first_frame(TWO_MARKS, ["one", "two"])
    assert one > 0 and two - one >= 0.3  # from the launch, each in turn: not from the mark before


@pytest.mark.slow
def test_the_startup_floor_runs_in_a_terminal_as_the_apps_do():
    startup.first_frame(startup.FLOOR, [startup.FLOOR_MARK])  # its mark on screen, or SystemExit


@pytest.fixture
def captions(tmp_path):
    """A data folder whose test_2016_flickr French side is four captions the tiny model knows."""
    lines = ["un chien noir court .", "une femme dans la rue .", "deux hommes dans le parc .", "un homme court ."]
    (tmp_path / "test_2016_flickr.fr").write_text("\n".join(lines) + "\n")
    return tmp_path


def run_bench(module, monkeypatch, capsys, *args) -> str:
    monkeypatch.setattr(sys, "argv", [module.__file__, *map(str, args)])
    module.main()
    return capsys.readouterr().out


@pytest.mark.slow
def test_dump_throughput_reports_rates_sizes_and_their_ratios(tmp_path, captions, monkeypatch, capsys):
    checkpoint = build_tiny_checkpoint(tmp_path / "tiny")
    out = run_bench(dump_throughput, monkeypatch, capsys, "--checkpoint", checkpoint, "--data", captions, "--rounds", 3)
    assert out.startswith("checkpoint tiny, 4 sentences of test_2016_flickr, batch 64,")
    (plain,), (full, full_kib, full_ratio), (lean, lean_kib, lean_ratio) = (
        [float(x) for x in re.findall(r"[\d.]+(?= sentences/s| KiB/sentence\)|$)", line)]
        for line in out.splitlines()[1:4]
    )
    assert plain > 0 and full > 0 and lean > 0
    assert full_kib > lean_kib  # the vectors are most of a trace
    # A ratio is the baseline's time over the dump's: the dump's rate over the baseline's. Both are printed
    # rounded, the ratio to 2 decimals (±0.005: 1.75% of a ratio of 0.29, which a relative 1% refused).
    assert full_ratio == pytest.approx(full / plain, rel=0.01, abs=0.006)
    assert lean_ratio == pytest.approx(lean / plain, rel=0.01, abs=0.006)


@pytest.mark.slow
def test_step_overhead_takes_the_median_of_its_processes(tmp_path, captions, monkeypatch, capsys):
    checkpoint = build_tiny_checkpoint(tmp_path / "tiny")
    args = ("--checkpoint", checkpoint, "--data", captions, "--words", 5, "--rounds", 3, "--processes", 3)
    out = run_bench(step_overhead, monkeypatch, capsys, *args)
    setting, plain, engine, each, ratio = out.splitlines()
    assert re.fullmatch(
        r"checkpoint tiny \(general\), 5-token source, \d+ steps, 3 rounds, 1 thread, 3 processes", setting
    )
    assert float(plain.split(":")[1].split()[0]) > 0 and float(engine.split(":")[1].split()[0]) > 0
    ratios = [float(r) for r in each.split(": ")[1].split(", ")]
    assert len(ratios) == 3 and ratios == sorted(ratios) and all(r > 0 for r in ratios)
    assert ratio.startswith(f"ratio engine/plain: {ratios[1]:.2f}  (median of the processes")


def test_missing_data_ends_a_bench_with_the_command_that_fetches_it(tmp_path):
    with pytest.raises(SystemExit, match="run `attnstep data get multi30k`"):
        common.test_captions(tmp_path / "nowhere")
