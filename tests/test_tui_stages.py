"""The stages of one step, one per computation (Trace.stage_count of them), and what each shows and says.

Also what the seed's steps bring along: a given translation keeps its reference through u, the beam's
choice of a word that is not the top one is said so, and the beam view counts steps as the main view does.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from attnstep.commands.translate import translate_app
from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.model.rnn.config import ATTENTION_TYPES
from attnstep.report.glyphs import STATE_CELLS, num
from attnstep.trace.records import NO_ATTENTION_STAGE_COUNT, STAGE_COUNT
from attnstep.tui.panels.worked import worked_score
from attnstep.tui.screens.beam import BeamScreen
from attnstep.tui.stages import View, narrate, stages_for
from tests.conftest import build_tiny_checkpoint
from tests.tui_helpers import SENTENCE, app_on, async_test, settle

WIDE = (160, 48)
REFERENCE = "a red car runs in the street ."
LABEL_WIDTH = 11  # the Decoder panel's


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny checkpoint per kind of attention, the zoo's five."""
    root = tmp_path_factory.mktemp("zoo")
    return {attention: build_tiny_checkpoint(root / attention, attention=attention) for attention in ATTENTION_TYPES}


def test_every_model_has_a_stage_per_sub_step_of_its_traces(checkpoints):
    for attention, checkpoint in checkpoints.items():
        trace = Stepper(load_checkpoint(checkpoint)).translate(SENTENCE)
        stages = stages_for(attention)
        assert len(stages) == trace.stage_count == (NO_ATTENTION_STAGE_COUNT if attention == "none" else STAGE_COUNT)
        keys = [s.key for s in stages]
        assert len(set(keys)) == len(keys) and keys[-4:] == ["concat", "feed_forward", "output", "pick"]
        state = "s_t" if attention == "additive" else "h_t"
        names = {s.key: s.name for s in stages}
        assert names["rnn"] == f"RNN → {state}" and names["concat"] == f"[{state}; C_t]"


def decoder_row(app, label: str) -> str:
    return next(line for line in app.panels["decoder"].plain_lines if line.startswith(label + " "))


@pytest.mark.slow  # every scorer, stage by stage: ~1 s each
@async_test
@pytest.mark.parametrize("attention", ATTENTION_TYPES)
async def test_stepping_through_the_stages_of_every_model(checkpoints, attention):
    app = translate_app(checkpoints[attention], SENTENCE)
    state = "s_t" if attention == "additive" else "h_t"
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        trace = app.cursor.trace
        stages = stages_for(attention)
        said = {}
        for number, stage in enumerate(stages, 1):
            await pilot.press("s")
            assert f"stage {number}/{trace.stage_count} {stage.name}" in app.status.plain
            said[stage.key] = app.query_one("#narration").plain.replace("\n", " ")
            candidates = app.panels["candidates"].plain_lines
            if number < stages.index(next(s for s in stages if s.key == "output")) + 1:
                assert candidates == [f"appears at stage {len(stages) - 1} (W_s)"]
        step = trace.steps[0]
        hidden, concat, attentional = len(step.hidden), len(step.concat), len(step.attentional)
        vocabulary = len(json.loads((checkpoints[attention] / "tgt_vocab.json").read_text())["tokens"])
        assert "“<bos>” (the start symbol; <END> in some diagrams)" in said["rnn"]
        assert f"[{state}; C_t] puts {state} and C_t end to end" in said["concat"]
        assert f"{hidden} + {concat - hidden} = {concat} numbers" in said["concat"]
        assert f"h̃_t = tanh(W_c[{state}; C_t]), {concat} → {attentional} numbers" in said["feed_forward"]
        assert (
            f"W_s scores each of the {vocabulary:,} tokens of the vocabulary" in said["output"]
            and f"{num(step.candidates[0].prob)}" in said["output"]
        )
        assert ",:" not in " ".join(said.values())
        # The halves of [h_t; C_t] are the h_t and C_t strips above them, cell for cell.
        left, right = min(STATE_CELLS, hidden), min(STATE_CELLS, concat - hidden)  # a tiny model has fewer numbers
        both = decoder_row(app, f"[{state}; C_t]")[LABEL_WIDTH:]
        assert both[:left] == decoder_row(app, state)[LABEL_WIDTH : LABEL_WIDTH + left] and both[left] == "│"
        assert both[left + 1 : left + 1 + right] == decoder_row(app, "C_t")[LABEL_WIDTH : LABEL_WIDTH + right]
        assert decoder_row(app, "W_c").endswith(f"h̃_t = tanh(W_c[{state}; C_t]), {concat} → {attentional}")
        assert decoder_row(app, "W_s").endswith(f"softmax(W_s h̃_t + b), {attentional} → {vocabulary:,}")


def test_additive_keys_are_named_as_its_formula_names_them(checkpoints):
    trace = Stepper(load_checkpoint(checkpoints["additive"])).translate(SENTENCE)
    assert "U_a h_i" in trace.checkpoint.formula
    rows = worked_score(trace, 0, 1).vectors.rows
    assert rows[0][:2] == ("k", "U_a h_2 + b")


@async_test
async def test_undo_leaves_a_given_translation_alone(stepper):
    app = app_on(stepper, reference=REFERENCE)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        given = app.cursor.trace
        await pilot.press("e", "u")
        await settle(pilot)
        assert app.cursor.trace is given and app.cursor.trace.reference == REFERENCE
        assert f"log p = {num(given.logprob)}" in narrate(View(given, 0))
        assert "≠" in app.query_one("#output").plain  # the marks are still those of the reference
        assert "u: undo" not in "\n".join(app.panels["candidates"].plain_lines)


@pytest.fixture(scope="module")
def beam_trace(tmp_path_factory):
    # On SENTENCE this seed's search runs 7 steps, and its best translation has 3.
    checkpoint = build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "beam", seed=2)
    return Stepper(load_checkpoint(checkpoint), beam=3).translate(SENTENCE)


def test_the_beam_narration_says_it_chose_a_word_below_the_top_one(beam_trace):
    step = beam_trace.steps[1]
    top, *others = step.candidates
    # The same step with its word ranked second by the model: what the search does when a lower word pays off.
    runner_up = replace(others[0], id=step.chosen_id, token=step.chosen_token)
    chosen = replace(step, candidates=(replace(top, id=-1, token="european", prob=0.5), runner_up, *others[1:]))
    trace = replace(beam_trace, steps=(beam_trace.steps[0], chosen, *beam_trace.steps[2:]))
    over = "chosen by the beam search over the model's top choice “european” (0.50)"
    assert over in narrate(View(trace, 2))  # the step whole: the pick completes it
    assert "chosen by the beam search" not in narrate(View(beam_trace, 2))  # the top word: nothing to say


@async_test
async def test_the_beam_view_counts_the_steps_as_the_main_view_does(beam_trace):
    from attnstep.tui import replay_app

    app = replay_app(beam_trace, "beam.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "right", "right", "b")
        assert isinstance(app.screen, BeamScreen)
        steps, searched = len(beam_trace.steps), len(beam_trace.beam.steps)
        assert searched > steps  # the search ran on after the best hypothesis finished
        status = app.screen.query_one("#beam-status").plain
        assert f"step 3 of {steps}" in status and f"the search ran {searched}" in status
        assert f"step 3 of {steps}" in app.status.plain
        for _ in range(searched):
            await pilot.press("right")
        assert f"step {searched}, past the translation's {steps}" in app.screen.query_one("#beam-status").plain
