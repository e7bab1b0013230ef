"""The lecture views: the worked score (w), the full-screen map (m), before/after a forced word (c)."""

from __future__ import annotations

import math
import re

import pytest

from attnstep.checkpoint import load_checkpoint
from attnstep.stepper import Stepper
from attnstep.tui import replay_app
from attnstep.tui.glyphs import num
from attnstep.tui.worked import WorkedScoreDialog, lines, worked_score
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
        assert shown_numbers(str(app.screen.query_one("#work").render())) == (num(step.scores[other]), num(step.weights[other]))
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
        assert shown_numbers(str(app.screen.query_one("#work").render())) == (num(step.scores[best]), num(step.weights[best]))
