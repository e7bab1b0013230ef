"""The word view (v) of a subword model: the numbers shown are the trace's piece weights gathered into words."""

from __future__ import annotations

import math

import pytest

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.report.glyphs import cell_number, norm, num
from attnstep.trace.word_view import word_alignment, word_states, word_weights
from attnstep.tui.panels.attention import AttentionPanel
from attnstep.tui.panels.grid import AlignmentGrid
from attnstep.tui.panels.source import SourcePanel
from attnstep.tui.stages import View, attention_in_words, grid_in_words, narrate, word_brackets
from tests.tui_helpers import app_on, async_test, settle

SENTENCE = "L'accord sur la zone économique européenne a été signé en août 1992."


@pytest.fixture(scope="module")
def subword_stepper(subword_checkpoint):
    return Stepper(load_checkpoint(subword_checkpoint))


def test_grid_in_words_sums_columns_and_averages_a_words_rows(subword_stepper):
    trace = subword_stepper.translate(SENTENCE)
    view = grid_in_words(View(trace, len(trace.steps)))
    rows = word_alignment(trace, eos=True)
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


# --- the word view is whole: every panel, the narration and the counts, <eos> kept ---------------


def ended(stepper, sentence: str = "Je suis étudiant.", at: int = 4):
    """A subword trace that ends with <eos> (the untrained test model never chooses it itself)."""
    return stepper.force(stepper.translate(sentence), at, "<eos>")


def test_the_word_grid_keeps_the_eos_row_and_marks_the_current_step(subword_stepper):
    trace = ended(subword_stepper)
    view = grid_in_words(View(trace, len(trace.steps)))
    labels = [s.chosen_token for s in view.trace.steps]
    assert labels[-1] == "<eos>" and view.step is view.trace.steps[-1]  # ▶ is on the <eos> row
    assert view.step.weights == word_weights(trace, trace.steps[-1].weights)


def test_a_word_decoded_in_part_shows_only_its_pieces_so_far(subword_stepper):
    trace = subword_stepper.force(subword_stepper.translate("Je suis étudiant."), 0, "agreement")
    view = grid_in_words(View(trace, 3))  # "▁a", "g", "r" of the seven pieces
    assert view.step.chosen_token == "agr…" and "▁" not in view.step.chosen_token


def test_the_narration_in_words_names_the_word_and_counts_words_and_pieces(subword_stepper):
    trace = subword_stepper.translate(SENTENCE)
    words, pieces = len(trace.source_words), len(trace.source)
    assert words < pieces
    assert f"the {words} source words as {pieces} pieces" in narrate(View(trace, 0))
    step = trace.steps[2]
    text = narrate(View(trace, 3, words=True))
    summed = word_weights(trace, step.weights)
    best = max(range(words), key=summed.__getitem__)
    assert f"attended most to “{trace.source_words[best].text}” ({num(summed[best])})" in text
    assert "output the piece “" in text and "▁" not in text


@async_test
async def test_v_lists_the_user_s_words_in_the_source_panel(subword_stepper):
    app = app_on(subword_stepper, sentence=SENTENCE)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("e", "v")
        await settle(pilot)
        panel = app.screen.query_one(SourcePanel)
        trace = app.cursor.trace
        rows = [panel.render_line(y).text.split() for y in range(1, 1 + len(trace.source_words))]
        for row, word in zip(rows, trace.source_words):
            assert word.text.startswith(row[1].rstrip("…"))
        states = word_states(trace)
        for row, state in zip(rows, states):
            assert row[-1] == num(norm(state))
        word = next(w for w in trace.source_words if w.end - w.start > 1)
        pieces = trace.encoder_states[word.start : word.end]
        mean = [sum(column) / len(pieces) for column in zip(*pieces)]
        assert list(states[trace.source_words.index(word)]) == pytest.approx(mean, abs=1e-6)


@async_test
async def test_f_forces_a_typed_word_of_several_pieces_and_u_undoes_it_whole(subword_stepper):
    app = app_on(subword_stepper, sentence="Je suis étudiant.")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("right", "right", "f")
        await settle(pilot)
        await pilot.press(*"agreement", "enter")
        await settle(pilot)
        trace = app.cursor.trace
        pieces = [s.chosen_token for s in trace.steps[1:8]]
        assert pieces == ["▁a", "g", "r", "e", "e", "m", "ent"] and all(s.forced for s in trace.steps[1:8])
        assert app.cursor.position == 8  # on the word's last piece
        await pilot.press("u")
        await settle(pilot)
        assert not any(s.forced for s in app.cursor.trace.steps)
