"""Beam search and teacher-forced references: checked against greedy records and plain model passes."""

import json
import math
from itertools import pairwise

import jsonschema
import pytest
import torch

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.errors import AttnstepError
from attnstep.model.rnn.config import ATTENTION_TYPES
from attnstep.text.words import BOS_ID, EOS_ID
from attnstep.trace import reader, writer
from attnstep.trace.records import ALIVE, FINISHED, PRUNED, length_penalty
from tests.conftest import build_tiny_checkpoint

SENTENCES = [
    "une voiture rouge .",
    "un chien noir court dans la rue .",
    "deux femmes",
    "le homme , la femme et le chien",
]


def teacher_forced_logprobs(model, trace, tokens: list[int]) -> list[float]:
    """log p(y_t | y_<t, x) of ``tokens`` by one plain teacher-forced pass of ``Seq2Seq.forward``."""
    src = torch.tensor([[t.id for t in trace.source]])  # (1, n)
    tgt_in = torch.tensor([[BOS_ID, *tokens[:-1]]])  # (1, T)
    with torch.no_grad():
        logprobs = torch.log_softmax(model(src, torch.tensor([src.size(1)]), tgt_in), dim=-1)  # (1, T, V)
    return logprobs[0, torch.arange(len(tokens)), torch.tensor(tokens)].tolist()


@pytest.fixture(scope="module")
def ending(tmp_path_factory):
    """A model whose <eos> is likely enough that hypotheses finish at different lengths, or not at all."""
    return load_checkpoint(build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "ending", eos_bias=1.5))


def close(a, b, tolerance=1e-6) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b))


# --- K = 1 is greedy ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("attention", ATTENTION_TYPES)
@pytest.mark.parametrize("eos_bias", [0.0, 2.5, -50.0])  # <eos> late, early, never (the length limit)
def test_a_beam_of_one_makes_the_greedy_records(attention, eos_bias, tmp_path):
    checkpoint = load_checkpoint(build_tiny_checkpoint(tmp_path / "m", attention=attention, eos_bias=eos_bias))
    greedy, beam = Stepper(checkpoint, top_k=4), Stepper(checkpoint, top_k=4, beam=1)
    for g, b in zip(greedy.translate_batch(SENTENCES), beam.translate_batch(SENTENCES)):
        assert [s.chosen_id for s in b.steps] == [s.chosen_id for s in g.steps]
        assert b.finished == g.finished and b.translation == g.translation
        for x, y in zip(g.steps, b.steps):
            for field in ("scores", "weights", "hidden", "context", "attentional"):
                assert close(getattr(x, field), getattr(y, field)), field
            assert [c.id for c in x.candidates] == [c.id for c in y.candidates]
            assert abs(x.chosen_logprob - y.chosen_logprob) <= 1e-6 and x.input_id == y.input_id
        assert all(len(hypotheses) == 1 for hypotheses in b.beam.steps)
        assert g.beam is None


# --- the search's bookkeeping ----------------------------------------------------------------------


def hypotheses(trace):
    return [(t, i, h) for t, step in enumerate(trace.beam.steps) for i, h in enumerate(step)]


@pytest.mark.parametrize("width", [2, 5])
def test_beam_scores_are_sums_of_the_recorded_logprobs(ending, width):
    stepper = Stepper(ending, beam=width, alpha=0.8)
    for trace in stepper.translate_batch(SENTENCES):
        beam = trace.beam
        assert beam.width == width and beam.alpha == 0.8
        for t, i, h in hypotheses(trace):
            history = beam.history(t, i)
            assert math.isclose(h.score, sum(a.logprob for a in history), abs_tol=1e-4)
            assert math.isclose(h.normalized, h.score / ((5 + t + 1) / 6) ** 0.8, rel_tol=1e-9)
        for step in beam.steps:
            assert len(step) <= width
            assert all(a.score >= b.score - 1e-5 for a, b in pairwise(step))  # best first
        best = beam.steps[len(trace.steps) - 1][beam.best]
        assert math.isclose(trace.logprob, best.score, abs_tol=1e-4)
        assert [h.logprob for h in beam.history(len(trace.steps) - 1, beam.best)] == [
            s.chosen_logprob for s in trace.steps
        ]
        finished = [h for _, _, h in hypotheses(trace) if h.status == FINISHED]
        assert len(finished) <= width and trace.finished == bool(finished)
        assert best.normalized == max(h.normalized for h in finished or beam.steps[-1])


def test_every_hypothesis_has_its_own_state(ending):
    """Each hypothesis's log-probabilities and attention rows are those of a plain pass over its own words."""
    stepper, greedy = Stepper(ending, beam=4), Stepper(ending)
    trace = stepper.translate("un chien noir court dans la rue .")
    assert any(len({h.parent for h in step}) > 1 for step in trace.beam.steps[1:])  # the rows were reordered
    for t, i, _ in hypotheses(trace):
        history = trace.beam.history(t, i)
        tokens = [a.id for a in history]
        assert close([a.logprob for a in history], teacher_forced_logprobs(stepper.model, trace, tokens), 1e-5)
        forced = greedy.decode(trace.source, tuple((token, True) for token in tokens))
        assert all(close(a.weights, s.weights, 1e-5) for a, s in zip(history, forced.steps))


def test_pruned_and_finished_hypotheses_never_come_back(ending):
    traces = Stepper(ending, beam=5).translate_batch(SENTENCES)
    for trace in traces:
        beam = trace.beam
        ended = set()  # the token sequences of pruned and finished hypotheses
        for t, i, h in hypotheses(trace):
            prefix = tuple(a.id for a in beam.history(t, i))
            assert not any(prefix[:length] in ended for length in range(1, len(prefix) + 1))
            if h.status != ALIVE:
                ended.add(prefix)
            if t + 1 < len(beam.steps):
                extended = h.status == ALIVE
                assert any(child.parent == i for child in beam.steps[t + 1]) == extended
        limit = 2 * len(trace.source) + 10
        assert all(h.status == FINISHED for h in beam.steps[-1]) or len(beam.steps) == limit  # K finished, or the limit
    assert any(h.status == PRUNED for trace in traces for _, _, h in hypotheses(trace))


def test_the_length_limit_ends_the_search_unfinished(tmp_path):
    stepper = Stepper(load_checkpoint(build_tiny_checkpoint(tmp_path / "never", eos_bias=-50.0)), beam=3)
    trace = stepper.translate("une voiture")
    assert not trace.finished and len(trace.steps) == len(trace.beam.steps) == 2 * 2 + 10
    assert [h.status for h in trace.beam.steps[-1]] == [ALIVE] * 3 and trace.beam.best == 0


def test_batched_and_single_beams_agree(ending):
    stepper = Stepper(ending, beam=3)
    for sentence, together in zip(SENTENCES, stepper.translate_batch(SENTENCES)):
        alone = stepper.translate(sentence)
        assert [s.chosen_id for s in alone.steps] == [s.chosen_id for s in together.steps]
        assert [[(h.parent, h.id, h.status) for h in step] for step in alone.beam.steps] == [
            [(h.parent, h.id, h.status) for h in step] for step in together.beam.steps
        ]
        for a, b in zip(hypotheses(alone), hypotheses(together)):
            assert abs(a[2].score - b[2].score) <= 1e-5 and close(a[2].weights, b[2].weights, 1e-5)


def test_forcing_a_word_restarts_the_beam_from_that_prefix(tmp_path):
    stepper = Stepper(load_checkpoint(build_tiny_checkpoint(tmp_path / "long", eos_bias=-50.0)), beam=3)
    trace = stepper.translate("un chien noir court dans la rue .")
    t = 2
    word = next(c for c in trace.steps[t].candidates if c.id != trace.steps[t].chosen_id and c.id != EOS_ID)
    forced = stepper.force(trace, t, word.token)
    assert [s.chosen_id for s in forced.steps[: t + 1]] == [s.chosen_id for s in trace.steps[:t]] + [word.id]
    assert [s.forced for s in forced.steps[: t + 1]] == [False] * t + [True]
    assert forced.beam.start == t + 1
    assert all(len(step) == 1 for step in forced.beam.steps[: t + 1]) and len(forced.beam.steps[t + 1]) == 3
    assert stepper.unforce(forced, t).steps[:t] == forced.steps[:t]


def test_forcing_eos_ends_the_beam(ending):
    stepper = Stepper(ending, beam=3)
    forced = stepper.force(stepper.translate("un chien noir ."), 0, "<eos>")
    assert len(forced.steps) == 1 and forced.finished and len(forced.beam.steps) == 1


def test_non_finite_outputs_are_reported_by_the_beam(tmp_path):
    checkpoint = load_checkpoint(build_tiny_checkpoint(tmp_path / "overflow"))
    with torch.no_grad():
        checkpoint.model.decoder.out_bias[5] = float("inf")
    with pytest.raises(AttnstepError, match="NaN or infinite"):
        Stepper(checkpoint, beam=2).translate("une voiture rouge .")


@pytest.mark.parametrize("width", [0, 101])
def test_beam_width_is_checked(ending, width):
    with pytest.raises(AttnstepError, match="beam width"):
        Stepper(ending, beam=width)


# --- beam traces as JSON -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def beam_trace(tmp_path_factory):
    # This seed's best translation has 3 words, found among finished and pruned hypotheses over 7 steps.
    checkpoint = load_checkpoint(build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "seed2", seed=2))
    trace = Stepper(checkpoint, beam=3).translate("une voiture rouge court dans la rue .")
    assert len(trace.steps) > 1 and any(h.status == PRUNED for step in trace.beam.steps for h in step)
    return trace


def test_beam_traces_follow_the_schema_and_round_trip(beam_trace):
    data = json.loads(writer.dumps(beam_trace))
    jsonschema.validate(data, reader.schema())
    assert data["beam"]["steps"][0][0]["parent"] is None and data["beam"]["width"] == 3
    assert reader.parse(writer.dumps(beam_trace)) == beam_trace
    lean = beam_trace.without_vectors()
    assert reader.parse(writer.dumps(lean, precision=4)).beam.steps[1][0].score == round(
        beam_trace.beam.steps[1][0].score, 4
    )
    del data["beam"]
    jsonschema.validate(data, reader.schema())  # the block is optional: greedy and older traces stay valid


def _best_first(data):
    """The best hypothesis's first step, in trace JSON."""
    steps, i = data["beam"]["steps"], data["beam"]["best"]
    for t in range(len(data["steps"]) - 1, 0, -1):
        i = steps[t][i]["parent"]
    return steps[0][i]


def _first_pruned(data):
    return next(
        (t, i) for t, step in enumerate(data["beam"]["steps"]) for i, h in enumerate(step) if h["status"] == "pruned"
    )


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["beam"]["steps"][1][0].update(parent=None), "not alive"),
        (lambda d: d["beam"]["steps"][1][0].update(parent=40), "not alive"),
        (lambda d: d["beam"]["steps"][0][0].update(parent=0), "not alive"),
        (lambda d: d["beam"]["steps"][_first_pruned(d)[0]][_first_pruned(d)[1]].update(status="alive"), "no extension"),
        (lambda d: next(h for h in d["beam"]["steps"][0] if h["token"] != "<eos>").update(status="finished"), "status"),
        (lambda d: d["beam"]["steps"][0][0]["weights"].pop(), "attention row"),
        (lambda d: d["beam"].update(best=d["beam"]["best"] + 1), "best hypothesis"),
        (lambda d: _best_first(d).update(token="zzz"), "best hypothesis"),
        (lambda d: d["beam"].update(width=1), "for a beam of 1"),
        (lambda d: d["beam"]["steps"].append([]), "schema"),
        (lambda d: d["beam"]["steps"][0][0].update(status="lost"), "schema"),
    ],
)
def test_beams_that_do_not_add_up_are_refused(beam_trace, edit, message):
    data = json.loads(writer.dumps(beam_trace))
    edit(data)
    with pytest.raises(AttnstepError, match=message):
        reader.parse(json.dumps(data), origin="t.json")


# --- teacher-forced references ------------------------------------------------------------------


@pytest.mark.parametrize(
    "checkpoint_fixture, reference",
    [
        ("tiny_checkpoint", "A black dog runs in the street."),
        ("subword_checkpoint", "A black dog runs in the street."),
    ],
)
def test_a_reference_is_forced_and_scored_as_a_teacher_forced_pass(request, checkpoint_fixture, reference):
    stepper = Stepper(load_checkpoint(request.getfixturevalue(checkpoint_fixture)), beam=3)  # a beam does not apply
    trace = stepper.score_reference("Un chien noir court dans la rue.", reference)
    ids = stepper.codec.reference_ids(reference)
    assert [s.chosen_id for s in trace.steps] == [*ids, EOS_ID]
    assert all(s.forced for s in trace.steps) and trace.finished and trace.beam is None
    expected = teacher_forced_logprobs(stepper.model, trace, [*ids, EOS_ID])
    assert close([s.chosen_logprob for s in trace.steps], expected, 1e-5)
    assert math.isclose(trace.logprob, sum(expected), abs_tol=1e-4)
    assert [s.index for s in trace.mismatches] == [s.index for s in trace.steps if s.candidates[0].id != s.chosen_id]
    data = json.loads(writer.dumps(trace))
    jsonschema.validate(data, reader.schema())
    assert data["reference"]["text"] == reference
    assert math.isclose(data["reference"]["average"], sum(expected) / len(expected), abs_tol=1e-5)
    assert [m["token"] for m in data["reference"]["mismatches"]] == [s.candidates[0].token for s in trace.mismatches]
    assert reader.parse(writer.dumps(trace)) == trace


def test_reference_pieces_come_from_the_checkpoints_codec(subword_checkpoint):
    stepper = Stepper(load_checkpoint(subword_checkpoint))
    trace = stepper.score_reference("Un chien noir.", "A black dog.")
    assert (
        trace.translation == "A black dog." and len(trace.steps) > len(["A", "black", "dog."]) + 1
    )  # pieces, case kept


def test_unknown_reference_words_are_scored_as_unk(stepper):
    trace = stepper.score_reference("un chien noir", "A purple dog")
    assert trace.output_tokens == ["a", "<unk>", "dog"]


@pytest.mark.parametrize("reference, message", [("", "the reference: the sentence is empty"), ("a\x1b[2J", r"U\+001B")])
def test_bad_references_are_refused(stepper, reference, message):
    with pytest.raises(AttnstepError, match=message):
        stepper.score_reference("un chien", reference)


def test_a_reference_trace_with_an_unforced_step_is_refused(stepper):
    data = json.loads(writer.dumps(stepper.score_reference("un chien noir", "a black dog")))
    data["steps"][1]["forced"] = False
    with pytest.raises(AttnstepError, match="not forced"):
        reader.parse(json.dumps(data))


def test_length_penalty_is_gnmts():
    assert length_penalty(1, 0.6) == 1.0 and length_penalty(7, 1.0) == 2.0 and length_penalty(30, 0.0) == 1.0
