"""The word view (v) of a subword model: the numbers shown are the trace's piece weights gathered into words."""

from __future__ import annotations

import math

import pytest

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.report.glyphs import cell_number, num
from attnstep.trace.word_view import word_alignment, word_weights
from attnstep.tui.panels.attention import AttentionPanel
from attnstep.tui.panels.grid import AlignmentGrid
from attnstep.tui.stages import View, attention_in_words, grid_in_words, word_brackets
from tests.tui_helpers import app_on, async_test, settle

SENTENCE = "L'accord sur la zone économique européenne a été signé en août 1992."


@pytest.fixture(scope="module")
def subword_stepper(subword_checkpoint):
    return Stepper(load_checkpoint(subword_checkpoint))


def test_grid_in_words_sums_columns_and_averages_a_words_rows(subword_stepper):
    trace = subword_stepper.translate(SENTENCE)
    view = grid_in_words(View(trace, len(trace.steps)))
    rows = word_alignment(trace)
    assert [t.surface for t in view.trace.source] == SENTENCE.split()
    assert [s.chosen_token for s in view.trace.steps] == [word.text for word, _ in rows]
    for step, (word, row) in zip(view.trace.steps, rows):
        assert step.weights == row
        pieces = [word_weights(trace, s.weights) for s in trace.steps[word.start : word.end]]
        assert step.weights == pytest.approx([sum(c) / len(pieces) for c in zip(*pieces)])


def test_attention_in_words_is_consistent_softmax_and_keeps_the_context(subword_stepper):
    trace = subword_stepper.translate(SENTENCE)
    step = trace.steps[2]
    view = attention_in_words(View(trace, 3))
    shown = view.step
    assert shown.weights == word_weights(trace, step.weights)
    exps = [math.exp(e) for e in shown.scores]
    assert [x / sum(exps) for x in exps] == pytest.approx(shown.weights, abs=1e-6)  # softmax of word scores
    # weight × word state, summed over words, is still C_t.
    context = [
        sum(a * h[k] for a, h in zip(shown.weights, view.trace.encoder_states)) for k in range(len(step.context))
    ]
    assert context == pytest.approx(step.context, abs=1e-5)


def test_pieces_are_bracketed_under_their_word(subword_stepper):
    trace = subword_stepper.translate(SENTENCE)
    marks = word_brackets(trace)
    for word in trace.source_words:
        span = marks[word.start : word.end]
        assert span == [" "] if len(span) == 1 else (span[0], span[-1]) == ("┌", "└")


@async_test
async def test_v_switches_the_grid_and_attention_panel_to_words(subword_stepper):
    app = app_on(subword_stepper, sentence=SENTENCE)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        trace = app.cursor.trace
        grid = app.screen.query_one(AlignmentGrid)
        pieces_header = grid.render_line(0).text
        await pilot.press("v")
        words_header = grid.render_line(0).text
        assert words_header.split()[:3] == ["L'accord", "sur", "la"] and "accord" not in pieces_header.split()[:1]
        rows = word_alignment(trace)
        last_word, last_row = rows[-1]
        line = next(grid.render_line(y).text for y in range(1, 60) if grid.render_line(y).text.startswith("▶"))
        cells = line.split()[2:]  # ▶, the word, then its cells as far as the panel shows them
        assert len(cells) >= 5 and cells == [cell_number(w) for w in last_row][: len(cells)]
        assert last_word.text.startswith(line.split()[1][:3])
        panel = app.screen.query_one(AttentionPanel)
        text = [panel.render_line(y).text for y in range(1, 1 + len(trace.source_words))]
        summed = word_weights(trace, trace.steps[-1].weights)
        for row, word, weight in zip(text, trace.source_words, summed):
            assert row.split()[0] == word.text[: len(row.split()[0])] and num(weight) in row
        await pilot.press("v")
        assert grid.render_line(0).text == pieces_header


@async_test
async def test_v_on_a_word_model_says_there_is_nothing_to_gather(stepper):
    app = app_on(stepper)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        assert app.words is False
