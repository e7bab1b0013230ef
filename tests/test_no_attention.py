"""The baseline without attention (``attention: none``): no scores, no weights, one context for every step."""

import json

import jsonschema
import pytest
import torch

from attnstep.engine.batch import pad
from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.errors import AttnstepError
from attnstep.trace import reader, writer

SENTENCES = ["un chien noir court dans la rue .", "une femme", "deux hommes dans le parc ."]


@pytest.fixture(scope="module")
def checkpoint(no_attention_checkpoint):
    return load_checkpoint(no_attention_checkpoint)


def test_stepping_matches_plain_batched_greedy(checkpoint):
    engine = Stepper(checkpoint)
    src, lengths = pad([checkpoint.src_vocab.ids(s.split()) for s in SENTENCES])
    for sentence, ids, together in zip(
        SENTENCES, checkpoint.model.greedy(src, lengths), engine.translate_batch(SENTENCES)
    ):
        alone = engine.translate(sentence)
        assert (
            [s.chosen_id for s in alone.steps][: len(ids)] == ids == [s.chosen_id for s in together.steps][: len(ids)]
        )


def test_no_weights_and_the_encoders_final_states_as_the_context_of_every_step(checkpoint):
    trace = Stepper(checkpoint).translate(SENTENCES[0])
    assert not trace.checkpoint.attends and "no attention" in trace.checkpoint.formula
    assert all(s.scores == () and s.weights == () for s in trace.steps)
    assert len({s.context for s in trace.steps}) == 1
    # c = [h→_n; h←_1]: the forward half of the last state, the backward half of the first.
    half = len(trace.encoder_states[0]) // 2
    expected = trace.encoder_states[-1][:half] + trace.encoder_states[0][half:]
    assert torch.allclose(torch.tensor(trace.steps[0].context), torch.tensor(expected), atol=1e-6)
    assert trace.keys is None and trace.v_a is None


@pytest.mark.parametrize("beam", [None, 3])
def test_its_dump_validates_and_replays(checkpoint, beam):
    trace = Stepper(checkpoint, beam=beam).translate(SENTENCES[0])
    data = json.loads(writer.dumps(trace))
    jsonschema.validate(data, reader.schema())
    assert data["alignment"] == [[] for _ in trace.steps]
    assert reader.parse(writer.dumps(trace)) == trace


def test_a_trace_claiming_no_attention_with_weights_is_refused(checkpoint, tiny_checkpoint):
    data = json.loads(writer.dumps(Stepper(load_checkpoint(tiny_checkpoint)).translate("un chien")))
    data["checkpoint"]["attention"] = "none"
    with pytest.raises(AttnstepError, match="weights for 0 source tokens"):
        reader.parse(json.dumps(data))


# --- the app -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(checkpoint):
    return Stepper(checkpoint)


def test_the_app_says_there_is_no_attention_and_shows_the_one_context(engine):
    from tests.tui_helpers import app_on, async_test, settle

    @async_test
    async def run():
        app = app_on(engine, "un chien noir court")
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            for key in ("right", "right", "s", "s"):  # step 2 whole, then step 3 to its second stage: the context
                await pilot.press(key)
            await pilot.pause()
            attention = "\n".join(line.plain for line in app.query_one("#attention").build(app.view))
            grid = "\n".join(line.plain for line in app.query_one("#grid").build(app.view))
            status = app.query_one("#status").line(app.view).plain
            narration = " ".join(line.plain for line in app.query_one("#narration").build(app.view))
            assert "no attention" in attention and "the same at every step" in attention
            assert "No alignment" in grid
            assert "stage 2/6 context c" in status and "no attention" in status
            assert "No attention: the context is c" in narration
            for key in ("m", "w"):  # nothing to map or work out: the keys are off
                await pilot.press(key)
                await pilot.pause()
            assert len(app.screen_stack) == 1
            assert not app.check_action("map", ())

    run()
