"""A Marian folder's --beam K recorded whole (issue 20, item 5): generate's search as the trace's Beam
(every step's hypotheses, their scores, lineage and a_t), checked against transformers' generate and
forward pass on the tiny seeded Marian of tests/marian_helpers.py."""

from __future__ import annotations

import json
import math
import shutil

import jsonschema
import orjson
import pytest
import torch

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper, load_stepper
from attnstep.trace.reader import InconsistentTrace, parse, schema
from attnstep.trace.records import ALIVE, FINISHED, GNMT, LENGTH_PENALTY, PRUNED, Trace
from attnstep.trace.writer import dumps
from attnstep.tui import replay_app
from attnstep.tui.screens.beam import BeamScreen
from tests.cli_helpers import invoke
from tests.conftest import build_tiny_checkpoint
from tests.marian_helpers import (  # noqa: F401  (the *_fixture functions are fixtures)
    SENTENCES,
    generated_rows,
    marian_folder_fixture,
    theirs_fixture,
    transformers_model,
)
from tests.test_tui_beam import assert_beam_on_screen
from tests.tui_helpers import SENTENCE, async_test

pytestmark = pytest.mark.slow  # the fixture is built with transformers and SentencePiece (~5 s)

END = 0  # the tiny model's </s>
K = 4


@pytest.fixture(scope="module", name="beam")
def beam_fixture(marian_folder) -> Stepper:
    return load_stepper(marian_folder, beam=K, n_best=K)


@pytest.fixture(scope="module", name="traces")
def traces_fixture(beam) -> list[Trace]:
    return beam.translate_batch(SENTENCES)


@pytest.fixture(scope="module", name="long_folder")
def long_folder_fixture(marian_folder, tmp_path_factory):
    """The folder with length_penalty 2 and early_stopping "never": longer results, a search to the limit."""
    folder = tmp_path_factory.mktemp("marian") / "long"
    shutil.copytree(marian_folder, folder)
    settings = json.loads((folder / "generation_config.json").read_text())
    settings.update(length_penalty=2.0, early_stopping="never")
    (folder / "generation_config.json").write_text(json.dumps(settings))
    return folder


def _generate(theirs, trace: Trace, n: int = 1, prefix=()) -> tuple[list[list[int]], list[float]]:
    """generate(num_beams=K, num_return_sequences=n)'s results for the trace's source, and their scores."""
    options = {}
    if prefix:
        options["decoder_input_ids"] = torch.tensor([[theirs.config.decoder_start_token_id, *prefix]])  # (1, P)
    with torch.no_grad():
        out = theirs.generate(
            input_ids=torch.tensor([[t.id for t in trace.source]]),  # (1, S)
            num_beams=K,
            num_return_sequences=n,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            **options,
        )
    return generated_rows(out.sequences, END), out.sequences_scores.tolist()


def _ids(trace: Trace, t: int, index: int) -> list[int]:
    assert trace.beam is not None
    return [h.id for h in trace.beam.history(t, index)]


def test_the_beams_best_is_generates(traces, theirs):
    for trace in traces:
        beam = trace.beam
        assert beam is not None and (beam.normalization, beam.alpha, beam.width, beam.start) == (
            LENGTH_PENALTY,
            1.0,
            K,
            0,
        )
        best = _ids(trace, len(trace.steps) - 1, beam.best)
        rows, scores = _generate(theirs, trace)
        assert best == [s.chosen_id for s in trace.steps] == rows[0]
        assert beam.history(len(trace.steps) - 1, beam.best)[-1].normalized == pytest.approx(scores[0], abs=1e-4)
    # the search is more than its best: some steps keep finished candidates beside the K running ones
    assert any(len(hypotheses) > K for trace in traces for hypotheses in trace.beam.steps)
    assert {h.status for trace in traces for step in trace.beam.steps for h in step} == {ALIVE, FINISHED, PRUNED}


def test_the_n_best_are_generates_returned_sequences(traces, theirs):
    for trace in traces[:6]:
        rows, scores = _generate(theirs, trace, n=K)
        listed = trace.beam.n_best
        assert [_ids(trace, r.step, r.index) for r in listed] == rows
        assert [r.normalized for r in listed] == pytest.approx(scores, abs=1e-4)
        assert (listed[0].step, listed[0].index) == (len(trace.steps) - 1, trace.beam.best)
        assert listed[0].translation == trace.translation
        assert [r.score for r in listed] == [trace.beam.steps[r.step][r.index].score for r in listed]


@pytest.mark.parametrize(
    "settings", [{"early_stopping": True}, {"length_penalty": -0.5, "early_stopping": "never"}], ids=["early", "never"]
)
def test_the_n_best_are_generates_under_each_stopping_rule(marian_folder, tmp_path, settings):
    """early_stopping true ends a search once K have finished, "never" with a negative length_penalty runs on
    while a running one could still win: the beams' results are still generate's."""
    shutil.copytree(marian_folder, tmp_path / "m")
    config = tmp_path / "m" / "generation_config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | settings))
    theirs = transformers_model(tmp_path / "m")
    for trace in load_stepper(tmp_path / "m", beam=K, n_best=K).translate_batch(SENTENCES[:6]):
        rows, scores = _generate(theirs, trace, n=K)
        assert [_ids(trace, r.step, r.index) for r in trace.beam.n_best] == rows
        assert [r.normalized for r in trace.beam.n_best] == pytest.approx(scores, abs=1e-4)
        assert parse(dumps(trace)) == trace


def test_scores_are_their_log_probs_summed_and_normalized_by_length(long_folder, theirs):
    """Every hypothesis's score is its parent's plus its log-probability, and its normalized score generate's
    (score less the fixed prefix's) / (its length after the prefix)^2; its log-probability and a_t are the
    model's (transformers' forward pass over its tokens, through the folder's processors)."""
    beam = load_stepper(long_folder, beam=K)
    plain = beam.translate(SENTENCES[4])
    word = next(c.id for c in plain.steps[1].candidates if c.id not in (plain.steps[1].chosen_id, END))
    trace = beam.force(plain, 1, word)
    searched = trace.beam
    assert searched is not None and (searched.start, searched.alpha) == (2, 2.0)
    rows, scores = _generate(transformers_model(long_folder), trace, prefix=[plain.steps[0].chosen_id, word])
    assert [s.chosen_id for s in trace.steps] == rows[0]
    config = theirs.config
    source = torch.tensor([[t.id for t in trace.source]])  # (1, S)
    prefix_score = searched.steps[searched.start - 1][0].score
    checked = 0
    for t, hypotheses in enumerate(searched.steps):
        for j, h in enumerate(hypotheses):
            parent = 0.0 if h.parent is None else searched.steps[t - 1][h.parent].score
            assert h.score == pytest.approx(parent + h.logprob, abs=1e-4)
            if t >= searched.start:
                normalized = (h.score - prefix_score) / (t + 1 - searched.start) ** 2.0
                assert h.normalized == pytest.approx(normalized, abs=1e-4)
            if j not in (0, len(hypotheses) - 1):
                continue  # the first and last of each step against transformers
            history = [x.id for x in searched.history(t, j)]
            inputs = torch.tensor([[config.decoder_start_token_id, *history[:-1]]])  # (1, t + 1)
            with torch.no_grad():
                out = theirs(input_ids=source, decoder_input_ids=inputs, output_attentions=True)
            log_probs = out.logits[0, -1].log_softmax(dim=-1)  # (V,)
            if t >= searched.start:  # the search's: <pad> banned and renormalized, </s> forced at the limit
                log_probs[config.pad_token_id] = -math.inf
                if t + 2 == beam.rules.max_length:
                    log_probs = torch.where(torch.arange(len(log_probs)) == END, 0.0, -math.inf)
                log_probs = log_probs.log_softmax(dim=-1)
            assert h.logprob == pytest.approx(float(log_probs[h.id]), abs=1e-4)
            weights = out.cross_attentions[0][0, :, -1].mean(dim=0)  # (S,) layer 1's heads' mean
            assert h.weights == pytest.approx(weights.tolist(), abs=1e-5)
            checked += 1
    assert checked >= len(searched.steps)
    assert searched.history(len(trace.steps) - 1, searched.best)[-1].normalized == pytest.approx(scores[0], abs=1e-4)


def test_one_sentence_alone_has_the_beam_of_the_batch(beam, traces):
    for sentence, batched in zip(SENTENCES[:4], traces):
        alone = beam.translate(sentence).beam
        assert alone is not None and batched.beam is not None
        shape = [[(h.parent, h.id, h.status) for h in step] for step in alone.steps]
        assert shape == [[(h.parent, h.id, h.status) for h in step] for step in batched.beam.steps]
        assert [h.score for step in alone.steps for h in step] == pytest.approx(
            [h.score for step in batched.beam.steps for h in step], abs=1e-4
        )


def test_the_beam_reads_back_from_json(traces):
    for trace in traces[:4]:
        data = orjson.loads(dumps(trace))
        jsonschema.validate(data, schema())
        assert data["beam"]["normalization"] == LENGTH_PENALTY
        assert parse(dumps(trace)) == trace
        assert parse(dumps(trace, precision=4)).beam.normalization == LENGTH_PENALTY
    data = orjson.loads(dumps(traces[0]))
    data["beam"]["width"] = 1  # generate's steps keep up to 2K: its steps of 4 are more than a beam of 1 has
    with pytest.raises(InconsistentTrace, match="hypotheses for a beam of 1"):
        parse(orjson.dumps(data))


def test_an_older_beam_trace_reads_as_gnmt(tmp_path):
    trace = Stepper(load_checkpoint(build_tiny_checkpoint(tmp_path / "beam", seed=2)), beam=3).translate(SENTENCE)
    data = orjson.loads(dumps(trace))
    assert data["beam"].pop("normalization") == GNMT
    assert parse(orjson.dumps(data)) == trace
    data["beam"]["alpha"] = -1.0
    with pytest.raises(InconsistentTrace, match="alpha must be 0 or more"):
        parse(orjson.dumps(data))


def test_dump_lists_a_marian_folders_n_best(marian_folder, beam):
    result = invoke("dump", SENTENCES[2], "--checkpoint", marian_folder, "--beam", K, "--n-best", 3, "--format", "text")
    assert result.exit_code == 0, result.output
    expected = beam.translate(SENTENCES[2]).beam.n_best[:3]
    assert result.stdout.splitlines() == [f"1\t{r.translation}" for r in expected]


@async_test
async def test_the_beam_view_shows_a_marian_beam(traces):
    trace = next(t for t in traces if t.finished)
    app = replay_app(trace, "t.json")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("right", "b")
        assert isinstance(app.screen, BeamScreen)
        assert_beam_on_screen(app)
        titles = app.screen.query_one("#beam-hypotheses")
        assert "generate's: normalized = score / length^1" in str(titles.border_subtitle)
        assert "length_penalty = 1" in app.screen.query_one("#beam-status").plain
        assert "layer 1/2, mean of 4 heads" in str(app.screen.query_one("#beam-row").border_title)
        for _ in range(len(trace.beam.steps)):
            await pilot.press("right")
        assert_beam_on_screen(app)
