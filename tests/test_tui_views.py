"""The lecture views: the worked score (w), the full-screen map (m), before/after a forced word (c)."""

from __future__ import annotations

import math
import re

import pytest

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.report.glyphs import STATE_CELLS, cell_number, mean_bins, num, prob, shade
from attnstep.tui import replay_app
from attnstep.tui.panels.worked import WorkedScoreDialog, lines, worked_score
from attnstep.tui.screens.alignment import AlignmentMap, CompareScreen, MapScreen
from tests.tui_helpers import SENTENCE, app_on, async_test, settle

WIDE, SMALL = (160, 48), (80, 24)


def shown_numbers(text: str) -> tuple[str, str]:
    """The worked score's e (the sum of the products) and a (exp(e)/Z), as printed."""
    e = re.search(r"e = Σ_j .* = (-?\d+\.\d\d)", text)
    a = re.search(r"a = exp\(e[^)]*\) / Z = \S+ / \S+ = (\d\.\d\d)", text)
    return (e.group(1) if e else None), a.group(1)


def test_the_worked_score_adds_up_for_every_scorer(any_attention_checkpoint):
    trace = Stepper(load_checkpoint(any_attention_checkpoint)).translate(SENTENCE)
    for t in (0, len(trace.steps) - 1):
        step = trace.steps[t]
        for i in range(len(trace.source)):
            work = worked_score(trace, t, i)
            assert math.isclose(sum(work.vectors.terms), step.scores[i], abs_tol=1e-4)  # Σ_j of the products is e_ti
            text = "\n".join(line.plain for line in lines(work, 120))
            assert shown_numbers(text) == (num(step.scores[i]), num(step.weights[i]))
            exps = [math.exp(e) for e in step.scores]
            assert math.isclose(exps[i] / sum(exps), step.weights[i], rel_tol=1e-4)  # exp(e)/Z is a_ti


def test_without_vectors_the_worked_score_is_the_softmax_alone(stepper):
    trace = stepper.translate(SENTENCE).without_vectors()
    text = "\n".join(line.plain for line in lines(worked_score(trace, 1, 2), 120))
    assert "--no-vectors" in text
    assert shown_numbers(text) == (None, num(trace.steps[1].weights[2]))


def test_large_scores_are_shifted_before_exp(stepper):
    from dataclasses import replace

    trace = stepper.translate(SENTENCE)
    scores = tuple(e + 500 for e in trace.steps[0].scores)  # exp(500) would not print
    trace = replace(trace, steps=(replace(trace.steps[0], scores=scores), *trace.steps[1:]))
    text = "\n".join(line.plain for line in lines(worked_score(trace, 0, 0), 120))
    assert "minus the largest score" in text
    assert shown_numbers(text)[1] == num(trace.steps[0].weights[0])


@async_test
async def test_w_opens_the_worked_score_of_the_most_attended_word(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "right", "w")
        assert isinstance(app.screen, WorkedScoreDialog)
        step = app.cursor.current
        best = max(range(len(step.weights)), key=lambda i: step.weights[i])
        text = str(app.screen.query_one("#work").render())
        assert f"How “{app.cursor.trace.source[best].surface}”" in text
        assert shown_numbers(text) == (num(step.scores[best]), num(step.weights[best]))
        await pilot.press("down")  # the next word's arithmetic
        other = min(best + 1, len(step.weights) - 1)
        assert shown_numbers(str(app.screen.query_one("#work").render())) == (
            num(step.scores[other]),
            num(step.weights[other]),
        )
        await pilot.press("escape")
        assert not isinstance(app.screen, WorkedScoreDialog)


@async_test
async def test_the_worked_score_works_in_replay(stepper):
    trace = stepper.translate(SENTENCE)
    app = replay_app(trace, "saved.json")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("right", "w")
        step = trace.steps[0]
        best = max(range(len(step.weights)), key=lambda i: step.weights[i])
        assert shown_numbers(str(app.screen.query_one("#work").render())) == (
            num(step.scores[best]),
            num(step.weights[best]),
        )


def map_rows(screen) -> list[str]:
    return [line for line in screen.query_one(AlignmentMap).plain_lines[1:] if line.strip()]


@async_test
async def test_m_shows_the_map_of_the_steps_so_far_in_shades_or_numbers(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "right", "right", "m")
        assert isinstance(app.screen, MapScreen)
        trace, grid = app.cursor.trace, app.screen.query_one(AlignmentMap)
        rows = map_rows(app.screen)
        assert len(rows) == 3 and rows[-1].startswith("▶ ")  # the current step is marked
        for row, step in zip(rows, trace.steps):
            cells = [row[start:end] for start, end in grid.columns]
            assert [cell.strip() for cell in cells] == [shade(w).strip() for w in step.weights]
        await pilot.press("number_sign")  # # writes the weights
        for row, step in zip(map_rows(app.screen), trace.steps):
            assert row.split()[-len(trace.source) :] == [cell_number(w) for w in step.weights]
        await pilot.press("s")  # the app's moves reach the map
        assert len(map_rows(app.screen)) == 3 and app.cursor.stage == 1
        await pilot.press("e")
        assert len(map_rows(app.screen)) == len(trace.steps)
        await pilot.press("escape")
        assert not isinstance(app.screen, MapScreen)


@async_test
async def test_the_map_scrolls_on_a_small_terminal_with_its_labels(stepper):
    app = app_on(stepper, sentence=" ".join(["une voiture rouge court dans la rue"] * 6))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("e", "m")
        grid = app.screen.query_one(AlignmentMap)
        assert grid.virtual_size.height > grid.size.height and grid.virtual_size.width > grid.size.width
        shown = [grid.render_line(y).text for y in range(grid.scrollable_content_region.height)]
        first = next(
            i for i, (start, _) in enumerate(grid.columns) if start - grid.frozen_columns == grid.scroll_offset.x
        )
        assert shown[0].split()[0] == app.cursor.trace.source[first].surface  # the source words on top, whole…
        assert any(line.startswith("▶ ") for line in shown)  # …and the current row in view, labelled
        x = grid.scroll_offset.x
        await pilot.press("left")  # a page of columns back; the row labels stay
        assert 0 <= grid.scroll_offset.x < x
        assert (
            grid.render_line(1).text[: grid.frozen_columns].strip()
            == app.cursor.trace.steps[grid.scroll_offset.y].chosen_token
        )


@pytest.mark.slow
@async_test
async def test_c_shows_before_and_after_a_forced_word(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("c")  # nothing forced yet
        assert not isinstance(app.screen, CompareScreen)
        before = app.cursor.trace
        await pilot.press("right", "right", "f", "down", "enter")  # force step 2
        await settle(pilot)
        after = app.cursor.trace
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CompareScreen) and screen.diverge == 1
        texts = [str(static.render()) for static in screen.query(".side-text")]
        assert (
            f"Before · step 2: “{before.steps[1].chosen_token}” the model's, p = {prob(before.steps[1].chosen_prob)}"
            == texts[0]
        )
        assert (
            f"After · step 2: “{after.steps[1].chosen_token}” forced, p = {prob(after.steps[1].chosen_prob)}"
            == texts[2]
        )
        assert texts[1].startswith("Output: ") and texts[3].startswith("Output: ")
        for side, trace in (("before", before), ("after", after)):
            rows = [line for line in screen.query_one(f"#grid-{side}").plain_lines[1:] if line.strip()]
            assert len(rows) == len(trace.steps)
            assert rows[1].startswith("≠ ") and not any(row.startswith("≠") for row in rows[2:])
            for row, step in zip(rows, trace.steps):  # each row: its word, the probability of it, its shades
                assert row[2:].split()[:2] == [step.chosen_token + ("*" if step.forced else ""), prob(step.chosen_prob)]
        await pilot.press("number_sign")  # both sides switch to numbers
        for side, trace in (("before", before), ("after", after)):
            rows = [line for line in screen.query_one(f"#grid-{side}").plain_lines[1:] if line.strip()]
            for row, step in zip(rows, trace.steps):
                assert row.split()[-len(trace.source) :] == [cell_number(w) for w in step.weights]
        await pilot.press("escape")
        assert not isinstance(app.screen, CompareScreen)


@async_test
async def test_numbers_show_the_vectors_and_log_probabilities(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        trace, step = app.cursor.trace, app.cursor.current
        # Strips are binned alike: C_t's cells are the a-weighted sums of the h_i cells (means add up).
        bins = [mean_bins(h) for h in trace.encoder_states]
        summed = [sum(a * b[c] for a, b in zip(step.weights, bins)) for c in range(len(bins[0]))]
        assert len(summed) == min(STATE_CELLS, len(step.context))
        assert all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(summed, mean_bins(step.context)))
        assert "C_t is the sum" in "\n".join(app.panels["decoder"].plain_lines)
        await pilot.press("number_sign")
        decoder = app.panels["decoder"].plain_lines
        for name, vector in (("C_t", step.context), ("h̃_t", step.attentional)):
            below = decoder[next(i for i, line in enumerate(decoder) if line.startswith(name)) + 1]
            assert below.split()[:3] == [f"{x:.2f}" for x in vector[:3]]
        best = max(range(len(step.weights)), key=lambda i: step.weights[i])
        row = app.panels["attention"].plain_lines[best + 1]
        assert row.split()[5:8] == [f"{step.weights[best] * x:.2f}" for x in trace.encoder_states[best][:3]]
        for line, candidate in zip(app.panels["candidates"].plain_lines, step.candidates):
            assert line.split()[-1] == f"{math.log(candidate.prob):.2f}"
        await pilot.press("number_sign")  # and back to the pictures
        assert "│" in app.panels["decoder"].plain_lines[3] and not app.panels["candidates"].plain_lines[0].endswith(
            f"{math.log(step.candidates[0].prob):.2f}"
        )


@async_test
async def test_c_sets_a_given_translation_beside_the_models_own(stepper):
    reference = "a red car runs in the street ."
    app = app_on(stepper, reference=reference)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert app.cursor.trace.reference is not None
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        assert app.screen.before == stepper.translate(SENTENCE)
        assert app.screen.after == stepper.score_reference(SENTENCE, reference)
        assert "Given translation" in str(app.screen.heading(app.screen.after))
