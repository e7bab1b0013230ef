"""The engine: records agree with batched decoding and with the arithmetic of attention."""

import math
import os
import subprocess
import sys

import pytest
import torch

from attnstep.engine.batch import pad
from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.errors import AttnstepError
from attnstep.model.rnn.config import ATTENTION_TYPES
from attnstep.text.words import SPECIALS
from tests.conftest import build_tiny_checkpoint

SENTENCES = [
    "une voiture rouge .",
    "un chien noir court dans la rue .",
    "deux femmes",
    "le homme , la femme et le chien",
]


@pytest.fixture
def engine(any_attention_checkpoint):
    return Stepper(load_checkpoint(any_attention_checkpoint), top_k=4)


def test_stepping_matches_plain_batched_greedy(engine):
    model, vocab = engine.model, engine.checkpoint.src_vocab
    src, lengths = pad([vocab.ids(s.lower().split()) for s in SENTENCES])
    expected = model.greedy(src, lengths)
    for sentence, ids in zip(SENTENCES, expected):
        trace = engine.translate(sentence)
        chosen = [s.chosen_id for s in trace.steps]
        assert chosen[: len(ids)] == ids
        assert len(chosen) == len(ids) + (1 if trace.finished else 0)


def test_batched_and_single_traces_agree(engine):
    batched = engine.translate_batch(SENTENCES)
    for sentence, together in zip(SENTENCES, batched):
        alone = engine.translate(sentence)
        assert [s.chosen_id for s in alone.steps] == [s.chosen_id for s in together.steps]
        for a, b in zip(alone.steps, together.steps):
            assert max(abs(x - y) for x, y in zip(a.weights, b.weights)) <= 1e-5
            assert max(abs(x - y) for x, y in zip(a.context, b.context)) <= 1e-5
        for a, b in zip(alone.encoder_states, together.encoder_states):
            assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-5


def test_records_obey_the_attention_equations(engine):
    trace = engine.translate("un chien noir court dans la rue .")
    n = len(trace.source)
    assert len(trace.encoder_states) == n
    for step in trace.steps:
        assert len(step.scores) == len(step.weights) == n
        assert math.isclose(sum(step.weights), 1.0, abs_tol=1e-5)
        softmax = torch.softmax(torch.tensor(step.scores, dtype=torch.float64), 0)
        assert torch.allclose(softmax, torch.tensor(step.weights, dtype=torch.float64), atol=1e-6)
        # C_t = Σ_i a_ti h_i from the recorded numbers alone.
        recomputed = torch.tensor(step.weights) @ torch.tensor(trace.encoder_states)
        assert torch.allclose(recomputed, torch.tensor(step.context), atol=1e-5)
        assert tuple(step.concat) == tuple(step.hidden) + tuple(step.context)
        probs = [c.prob for c in step.candidates]
        assert probs == sorted(probs, reverse=True) and len(probs) == 4
        assert step.candidates[0].id == step.chosen_id  # greedy, nothing forced
        assert math.isclose(step.chosen_prob, step.candidates[0].prob, rel_tol=1e-5)
    for before, after in zip(trace.steps, trace.steps[1:]):
        assert after.input_id == before.chosen_id


def test_iter_steps_yields_the_same_records_one_by_one(engine):
    steps = list(engine.iter_steps("une voiture rouge ."))
    assert tuple(steps) == engine.translate("une voiture rouge .").steps


@pytest.mark.slow
def test_records_are_identical_across_runs(tiny_checkpoint):
    """Two fresh interpreters, with different hash seeds, decode to the same records, float for float."""
    script = (
        "import sys; from attnstep.engine.checkpoint import load_checkpoint; from attnstep.engine.stepper import Stepper; "
        "print(repr(Stepper(load_checkpoint(sys.argv[1])).translate('une voiture rouge .')))"
    )
    here = repr(Stepper(load_checkpoint(tiny_checkpoint)).translate("une voiture rouge ."))
    for seed in ("1", "2"):
        child = subprocess.run(
            [sys.executable, "-c", script, str(tiny_checkpoint)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=False,
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == here


@pytest.mark.parametrize("attention", ATTENTION_TYPES)
def test_force_keeps_the_prefix_and_redecodes_after_it(attention, tmp_path):
    # A model that never chooses <eos> guarantees the steps this test forces exist.
    engine = Stepper(load_checkpoint(build_tiny_checkpoint(tmp_path / attention, attention=attention, eos_bias=-50.0)))
    trace = engine.translate("un chien noir court dans la rue .")
    t = 2
    word = next(
        c.token for c in trace.steps[t].candidates if c.id != trace.steps[t].chosen_id and c.token not in SPECIALS
    )
    forced = engine.force(trace, t, word)
    assert forced.steps[:t] == trace.steps[:t]
    assert forced.steps[t].chosen_token == word and forced.steps[t].forced
    assert forced.steps[t].scores == trace.steps[t].scores  # same state; only the choice differs
    assert forced.steps[t + 1].input_token == word
    assert not any(s.forced for s in forced.steps[t + 1 :])
    # Forcing again later keeps the first forced word; unforcing restores the model's own trace.
    again = engine.force(forced, t + 1, "dog")
    assert again.steps[t].forced and again.steps[t].chosen_token == word
    assert engine.unforce(forced, t) == trace


def test_force_refuses_words_the_model_cannot_output(engine):
    trace = engine.translate("une voiture rouge .")
    with pytest.raises(AttnstepError, match="not in the target vocabulary"):
        engine.force(trace, 0, "voiture")
    with pytest.raises(AttnstepError, match="no step 99"):
        engine.force(trace, 99, "car")


def test_decoding_stops_at_eos(tmp_path):
    engine = Stepper(load_checkpoint(build_tiny_checkpoint(tmp_path / "eos", eos_bias=50.0)))
    trace = engine.translate("une voiture rouge .")
    assert trace.finished and len(trace.steps) == 1 and trace.steps[0].chosen_token == "<eos>"
    assert trace.output_tokens == [] and trace.translation == ""


def test_decoding_stops_at_the_length_limit(tmp_path):
    engine = Stepper(load_checkpoint(build_tiny_checkpoint(tmp_path / "never", eos_bias=-50.0)))
    trace = engine.translate("une voiture")
    assert not trace.finished and len(trace.steps) == 2 * 2 + 10


def test_unknown_words_keep_their_surface(engine):
    trace = engine.translate("Une Citroën rouge")
    assert [(t.surface, t.token) for t in trace.source] == [("Une", "une"), ("Citroën", "<unk>"), ("rouge", "rouge")]


def test_without_vectors_drops_only_vectors(any_attention_checkpoint):
    ckpt = load_checkpoint(any_attention_checkpoint)
    full = Stepper(ckpt).translate("une voiture rouge .")
    lean = Stepper(ckpt, vectors=False).translate("une voiture rouge .")
    assert lean == full.without_vectors()


def test_non_finite_outputs_are_reported_not_recorded(tmp_path):
    checkpoint = load_checkpoint(build_tiny_checkpoint(tmp_path / "overflow"))
    with torch.no_grad():  # what loading refuses, put in afterwards: the engine must still not emit it
        checkpoint.model.decoder.out_bias[5] = float("inf")
    with pytest.raises(AttnstepError, match="NaN or infinite"):
        Stepper(checkpoint).translate("une voiture rouge .")


def test_scores_recompute_from_the_recorded_keys_and_query_terms(engine):
    """e_ti from the trace alone, by the checkpoint's formula: what a worked score shows in replay too."""
    trace = engine.translate("un chien noir court dans la rue .")
    attention = trace.checkpoint.attention
    scorer = engine.model.decoder.scorer
    states = torch.tensor(trace.encoder_states)  # (n, M)
    keys = states if attention == "dot" else torch.tensor(trace.keys)  # (n, K)
    assert (trace.keys is None) == (attention == "dot")
    if attention == "general":
        torch.testing.assert_close(keys, scorer.W_a(states))  # the keys are W_a h_i
    for step in trace.steps:
        if attention in ("dot", "general"):
            assert step.query is None and trace.v_a is None
            scores = keys @ torch.tensor(step.hidden)
        else:
            scores = torch.tanh(keys + torch.tensor(step.query)) @ torch.tensor(trace.v_a)
        torch.testing.assert_close(scores, torch.tensor(step.scores), atol=1e-5, rtol=1e-5)
    if attention == "additive":  # Bahdanau scores the state before the step: s_{t-1}
        for before, step in zip(trace.steps, trace.steps[1:]):
            torch.testing.assert_close(scorer.W_q(torch.tensor(before.hidden)), torch.tensor(step.query))
