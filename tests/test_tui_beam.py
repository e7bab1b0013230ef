"""The beam view (b) and reference-forced traces in the app, on the tiny seeded model: the numbers shown are the trace's."""

from __future__ import annotations

import json

import pytest

from attnstep.commands.translate import translate_app
from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.report.glyphs import cell_number, num
from attnstep.trace.reader import parse
from attnstep.trace.writer import dumps
from attnstep.tui import replay_app
from attnstep.tui.screens.beam import BeamScreen
from tests.conftest import build_tiny_checkpoint
from tests.tui_helpers import SENTENCE, app_on, async_test, settle

SMALL, LARGE = (80, 24), (160, 48)
REFERENCE = "a red car runs in the street ."


@pytest.fixture(scope="module")
def beam_stepper(tmp_path_factory):
    # On SENTENCE this seed's search runs 7 steps: 3 hypotheses finish (the best after 3 words), 3 are pruned.
    return Stepper(load_checkpoint(build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "beam", seed=2)), beam=3)


def panel(app, name: str) -> list[str]:
    return app.screen.query_one(f"#beam-{name}").plain_lines


def assert_beam_on_screen(app) -> None:
    """Every number the beam view shows equals the trace's, for the step and hypothesis selected."""
    view = app.screen.view
    hypotheses = panel(app, "hypotheses")[1:]
    for i, (line, h) in enumerate(zip(hypotheses, view.hypotheses)):
        assert f"#{i + 1}" in line[:6] and line.startswith("▶") == (i == view.selected)
        assert f"{num(h.logprob):>7}{num(h.score):>7}{num(h.normalized):>7}  {h.status}" in line
        assert ("—" if h.parent is None else f"#{h.parent + 1}") in line[6:10]
    row = panel(app, "row")
    for line, token, weight in zip(row, view.trace.source, view.hypothesis.weights):
        assert line.startswith(token.surface) and f" {num(weight)} " in line
    grid = panel(app, "history")[1:]
    assert len(grid) == view.t + 1
    for line, h in zip(grid, view.history):
        assert line[1:].split()[0] == h.token and line.split()[-len(view.trace.source) :] == [
            cell_number(w) for w in h.weights
        ]
    steps = len(view.trace.steps)  # counted as the main view counts them; the search may run on past them
    at = f"step {view.t + 1} of {steps}" if view.t < steps else f"step {view.t + 1}, past the translation's {steps}"
    assert at in app.screen.query_one("#beam-status").plain


@pytest.mark.slow
@async_test
async def test_the_beam_view_steps_through_the_search(beam_stepper):
    app = app_on(beam_stepper)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        trace = app.cursor.trace
        await pilot.press("right", "right", "b")  # the beam at step 2, on the best hypothesis's line
        assert isinstance(app.screen, BeamScreen)
        view = app.screen.view
        assert view.t == 1 and view.selected == trace.beam.lineage(len(trace.steps) - 1, trace.beam.best)[1]
        assert_beam_on_screen(app)
        await pilot.press("down")  # another hypothesis of the same step: its row and history
        assert app.screen.view.selected == min(view.selected + 1, len(view.hypotheses) - 1)
        assert_beam_on_screen(app)
        before = app.screen.view
        await pilot.press("right")  # the next step follows the selected line to its first extension
        after = app.screen.view
        assert after.t == 2
        children = [i for i, h in enumerate(after.hypotheses) if h.parent == before.selected]
        assert after.selected == (children[0] if children else 0)
        assert_beam_on_screen(app)
        await pilot.press("left")  # back: the hypothesis it extends
        assert app.screen.view.t == 1 and app.screen.view.selected == after.hypothesis.parent
        for _ in range(len(trace.beam.steps)):
            await pilot.press("right")
        assert app.screen.view.t == len(trace.beam.steps) - 1  # clamped at the last step
        assert_beam_on_screen(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, BeamScreen) and app.cursor.position == 2


@async_test
async def test_b_on_a_greedy_trace_says_how_to_get_a_beam(stepper):
    app = app_on(stepper)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("right", "b")
        assert not isinstance(app.screen, BeamScreen)
        assert any("--beam K" in str(n.message) for n in app._notifications)


@pytest.mark.slow
@async_test
async def test_forcing_a_word_in_a_beam_trace_restarts_the_beam(beam_stepper):
    app = app_on(beam_stepper)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("right", "right", "f", "down", "enter")
        await settle(pilot)
        assert app.cursor.trace.steps[1].forced and app.cursor.trace.beam.start == 2
        await pilot.press("b")
        assert app.screen.query_one("#beam-hypotheses").border_title.endswith("a fixed prefix: one hypothesis")


@async_test
async def test_a_given_translation_is_marked_where_the_model_disagrees(stepper):
    app = app_on(stepper, reference=REFERENCE)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        trace = app.cursor.trace
        assert trace.reference == REFERENCE and all(s.forced for s in trace.steps)
        narration = app.bars[3].plain
        assert f"log p = {num(trace.logprob)} over {len(trace.steps)} tokens" in narration
        assert f"differs at {len(trace.mismatches)} (≠)" in narration
        await pilot.press("e")
        output = app.bars[1].plain
        for step in trace.steps[:-1]:
            assert step.chosen_token + ("≠" if step in trace.mismatches else " ") in output + " "
        assert "given translation; ≠" in output and "forced by you" not in output
        await pilot.press("r", "right")
        step = trace.steps[0]
        top = step.candidates[0]
        expected = (
            "the model's own choice too."
            if step not in trace.mismatches
            else f"≠ the model's own choice, “{top.token}” (p = {num(top.prob)})"
        )
        assert f"the reference's “{step.chosen_token}” gets p = {num(step.chosen_prob)}" in app.bars[3].plain
        assert expected in app.bars[3].plain.replace("\n", " ")


@async_test
async def test_a_replayed_beam_shows_hostile_tokens_as_text(beam_stepper):
    """No model in replay: the beam view reads the trace alone, and its tokens are data, never markup or escapes."""
    trace = beam_stepper.translate(SENTENCE)
    best = trace.beam.lineage(len(trace.steps) - 1, trace.beam.best)
    data = json.loads(dumps(trace))
    for t, step in enumerate(data["beam"]["steps"]):
        for i, h in enumerate(step):
            # Reading checks that <eos> is what finishes and that the best hypothesis's tokens are the steps'.
            if h["status"] != "finished" and not (t < len(best) and best[t] == i):
                h["token"] = "\x1b[31m[bold]evil"
    app = replay_app(parse(json.dumps(data)), "beam.json")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("right", "right", "b", "up")
        assert isinstance(app.screen, BeamScreen)
        shown = "\n".join(line for name in ("hypotheses", "row", "history") for line in panel(app, name))
        screen = app.export_screenshot()
    assert "␛[31m[bold]evil" in shown and "\x1b" not in shown and "\x1b[31m" not in screen


@async_test
async def test_translate_app_loads_the_beam_and_scores_the_reference_it_was_given(tiny_checkpoint):
    # What `attnstep translate SENTENCE --beam 3 --target REFERENCE` builds: the opening sentence is scored,
    # a new one is decoded with the beam.
    app = translate_app(tiny_checkpoint, "un chien noir", beam=3, reference="a black dog")
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert app.cursor.trace.reference == "a black dog" and app.cursor.trace.output_tokens == ["a", "black", "dog"]
        app.translate("une voiture rouge")
        await settle(pilot)
        assert app.cursor.trace.reference is None and app.cursor.trace.beam.width == 3


class TestSnapshots:
    @pytest.mark.slow
    @pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
    def test_beam_view(self, snap_compare, beam_stepper, size):
        async def run_before(pilot) -> None:
            await settle(pilot)
            # → → → then b: the beam at step 3, on the best hypothesis (★); ↑: the one above it selected
            await pilot.press("right", "right", "right", "b", "up")
            await pilot.pause()

        assert snap_compare(app_on(beam_stepper, sentence=SENTENCE), terminal_size=size, run_before=run_before)

    def test_given_translation(self, snap_compare, stepper):
        async def run_before(pilot) -> None:
            await settle(pilot)
            await pilot.press("right", "right", "right")  # three reference steps, ≠ where the model disagrees
            await pilot.pause()

        assert snap_compare(app_on(stepper, reference=REFERENCE), terminal_size=SMALL, run_before=run_before)
