"""Screenshots of the app on the tiny seeded model, reviewed as SVGs before they were pinned.

Update with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at every changed
SVG (tests/__snapshots__/) before committing it.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import textual.constants

from attnstep.tui import replay_app
from tests.tui_helpers import SENTENCE, app_on, settle

# Each renders a whole app to SVG (~0.7 s): they run in the full suite, not the fast one.
pytestmark = pytest.mark.slow

WIDE, SMALL = (140, 40), (80, 24)


def after(*keys: str):
    """A run_before that waits for the model and the sentence, then presses ``keys``."""

    async def run(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)  # a key may start a decode (force)
        pilot.app.clear_notifications()  # toasts time out: keep them out of the pinned picture
        await pilot.pause()

    return run


class TestWide:
    def test_third_step(self, snap_compare, stepper):
        # → → →: three whole steps, every panel at once
        assert snap_compare(app_on(stepper), terminal_size=WIDE, run_before=after("right", "right", "right"))

    def test_softmax_stage(self, snap_compare, stepper):
        # → then s s s: step 2 stopped at stage 3 (softmax), the attention panel highlighted
        assert snap_compare(app_on(stepper), terminal_size=WIDE, run_before=after("right", "s", "s", "s"))

    def test_forced_word(self, snap_compare, stepper):
        # → → then f ↓ Enter: the second candidate forced at step 2, decoding continued
        assert snap_compare(
            app_on(stepper), terminal_size=WIDE, run_before=after("right", "right", "f", "down", "enter")
        )


class TestSmall:
    def test_attention_tab(self, snap_compare, stepper):
        # → → →: at 80×24 the attention tab, with the key numbers on the summary line
        assert snap_compare(app_on(stepper), terminal_size=SMALL, run_before=after("right", "right", "right"))

    def test_grid_tab(self, snap_compare, stepper):
        # → → → then Tab ×3: the alignment grid tab
        assert snap_compare(
            app_on(stepper), terminal_size=SMALL, run_before=after("right", "right", "right", "tab", "tab", "tab")
        )


class TestNoColor:
    @pytest.mark.parametrize("size", [SMALL, WIDE], ids=["80x24", "140x40"])
    def test_third_step(self, snap_compare, stepper, monkeypatch, size):
        # NO_COLOR: weights must still read as numbers and bar lengths
        monkeypatch.setenv("NO_COLOR", "1")
        assert snap_compare(app_on(stepper), terminal_size=size, run_before=after("right", "right", "right"))


LECTURE = (160, 48)


class TestViews:
    """The lecture views, at the smallest and a wide terminal."""

    @pytest.mark.parametrize("size", [SMALL, LECTURE], ids=["80x24", "160x48"])
    def test_worked_score(self, snap_compare, stepper, size):
        # → → then w: the worked score of the most attended word at step 2
        assert snap_compare(app_on(stepper), terminal_size=size, run_before=after("right", "right", "w"))

    @pytest.mark.parametrize("size", [SMALL, LECTURE], ids=["80x24", "160x48"])
    def test_map(self, snap_compare, stepper, size):
        # e then m: the whole decoding's alignment map, in shades
        assert snap_compare(app_on(stepper), terminal_size=size, run_before=after("e", "m"))

    @pytest.mark.parametrize("size", [SMALL, LECTURE], ids=["80x24", "160x48"])
    def test_map_numbers(self, snap_compare, stepper, size):
        # → → → then m #: the map of three steps, weights as numbers
        assert snap_compare(
            app_on(stepper), terminal_size=size, run_before=after("right", "right", "right", "m", "number_sign")
        )

    @pytest.mark.parametrize("size", [SMALL, LECTURE], ids=["80x24", "160x48"])
    def test_before_after(self, snap_compare, stepper, size):
        # → → then f ↓ Enter, then c: the second candidate forced at step 2, both decodings side by side
        assert snap_compare(
            app_on(stepper), terminal_size=size, run_before=after("right", "right", "f", "down", "enter", "c")
        )

    @pytest.mark.parametrize("size", [SMALL, LECTURE], ids=["80x24", "160x48"])
    def test_numbers(self, snap_compare, stepper, size):
        # → → then #: the first numbers of the vectors and the log-probabilities
        assert snap_compare(app_on(stepper), terminal_size=size, run_before=after("right", "right", "number_sign"))


class TestNoAttention:
    @pytest.mark.parametrize("size", [SMALL, WIDE], ids=["80x24", "140x40"])
    def test_context_stage(self, snap_compare, no_attention_checkpoint, size):
        # → then s s: step 2 at its context stage; the attention tab explains that there is none
        from attnstep.engine.checkpoint import load_checkpoint
        from attnstep.engine.stepper import Stepper

        engine = Stepper(load_checkpoint(no_attention_checkpoint))
        assert snap_compare(app_on(engine), terminal_size=size, run_before=after("right", "s", "s"))


# Each step's strongest weight, one per level of the legend and on both sides of its edges
# (glyphs.weight_level: .2 .4 .6 .8); the rest of the row is shared out so that it sums to 1.
PEAKS = (0.95, 0.81, 0.79, 0.61, 0.59, 0.41, 0.39, 0.21, 0.19)


def graded_trace(stepper):
    """The tiny model's decoding with weights set to cover every level of the legend: its own
    weights are all under .2, so its grids show only the lowest level (a pinned grid once showed
    one shade for every weight, and nobody saw it). Scores are log a, so softmax(e) = a still holds;
    the vectors are dropped, since no C_t = Σ a h would match the new weights."""
    trace = stepper.translate(SENTENCE).without_vectors()
    n = len(trace.source)
    steps = []
    for step in trace.steps:
        peak = PEAKS[step.index % len(PEAKS)]
        second = (1 - peak) * 0.6
        rest = (1 - peak - second) / (n - 2)
        weights = [rest] * n
        weights[step.index % n], weights[(step.index + 3) % n] = peak, second
        steps.append(replace(step, weights=tuple(weights), scores=tuple(math.log(w) for w in weights)))
    return replace(trace, steps=tuple(steps))


class TestGradedWeights:
    """The grid and the map over weights of every level: a ramp in colour, shade glyphs without."""

    @pytest.mark.parametrize("colours", ["truecolor", "16"])
    def test_grid(self, snap_compare, stepper, monkeypatch, colours):
        # e: the whole decoding; the grid's cells from the page (under .2) to the ink (.8 and more)
        if colours == "16":
            monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "standard")
        app = replay_app(graded_trace(stepper), "graded")
        assert snap_compare(app, terminal_size=LECTURE, run_before=after("e"))

    def test_map_no_color(self, snap_compare, stepper, monkeypatch):
        # e then m with NO_COLOR: the map in shade glyphs ·░▒▓█, as its legend says
        monkeypatch.setenv("NO_COLOR", "1")
        app = replay_app(graded_trace(stepper), "graded")
        assert snap_compare(app, terminal_size=LECTURE, run_before=after("e", "m"))
