"""Editing a step's attention (issue 23): the rest of the step from the edited weights, decoding on from it."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.errors import AttnstepError
from attnstep.trace.edits import edited_weights, parse_edit
from attnstep.trace.records import Edit, Trace
from tests.marian_helpers import SENTENCES, marian_folder_fixture, theirs_fixture  # noqa: F401  (fixtures)

SENTENCE = "une voiture rouge dans la rue ."


def _unedited(trace: Trace) -> tuple:
    return tuple(replace(s, edit=None) for s in trace.steps)


def _by_hand(checkpoint, trace: Trace, t: int, edited: list[float]) -> list[torch.Tensor]:
    """An independent decoder pass over the trace's own words, a'_t put in at step t: each step's
    (context, log-probabilities), from the modules' weights (Luong eq. 5–8; Bahdanau's context into the RNN)."""
    model = checkpoint.family
    dec = model.decoder
    src = torch.tensor([[tok.id for tok in trace.source]])  # (1, S)
    states, _, hidden = model.encoder(src, torch.tensor([src.size(1)]))  # (1, S, M), _, (1, H)
    feed = hidden.new_zeros(1, dec.config.out_dim)  # (1, O)
    keys = dec.scorer.prepare(states)  # (1, S, K)
    additive = model.config.attention == "additive"
    out = []
    for step in trace.steps:
        embedded = dec.embedding(torch.tensor([step.input_id]))  # (1, E)
        query = hidden if additive else dec.rnn(torch.cat([embedded, feed], -1), hidden)  # (1, H)
        weights = torch.softmax(dec.scorer(dec.scorer.query_term(query), keys), -1)  # (1, S)
        if step.index == t:
            weights = torch.tensor([edited])
        context = (weights[0, :, None] * states[0]).sum(0, keepdim=True)  # (1, M) Σ_i a'_i h_i
        hidden = dec.rnn(torch.cat([embedded, context], -1), hidden) if additive else query  # (1, H)
        feed = torch.tanh(dec.W_c(torch.cat([hidden, context], -1)))  # (1, O) h~_t
        weight = dec.embedding.weight if dec.W_s is None else dec.W_s.weight  # (V, O)
        out.append((context[0], torch.log_softmax(feed @ weight.T + dec.out_bias, -1)[0]))
    return out


def test_edited_step_is_computed_from_the_edited_weights(any_attention_checkpoint):
    checkpoint = load_checkpoint(any_attention_checkpoint)
    stepper = Stepper(checkpoint)
    with torch.no_grad():
        trace = stepper.translate(SENTENCE)
        t = 1
        edited = stepper.edit(
            trace, t, Edit("zero", tokens=(trace.steps[t].weights.index(max(trace.steps[t].weights)),))
        )
        step = edited.steps[t]
        assert step.edit is not None and step.edit.before == replace(trace.steps[t], edit=None)
        weights = step.edit.edited[0]
        assert step.weights == weights and step.edit.own[0] == trace.steps[t].weights
        assert step.weights != trace.steps[t].weights
        assert edited.steps[:t] == trace.steps[:t]
        # C_t = Σ_i a'_i h_i with the edited weights
        assert edited.encoder_states is not None and step.context is not None
        for j, c in enumerate(step.context):
            assert c == pytest.approx(sum(a * h[j] for a, h in zip(weights, edited.encoder_states)), abs=1e-5)
        # each step's context and distribution, from step t on, as an independent pass computes them
        for s, (context, logprobs) in zip(edited.steps, _by_hand(checkpoint, edited, t, list(weights))):
            assert list(s.context) == pytest.approx(context.tolist(), abs=1e-5)
            assert s.chosen_logprob == pytest.approx(float(logprobs[s.chosen_id]), abs=1e-5)
            assert s.candidates[0].id == int(logprobs.argmax())


def test_identity_edit_reproduces_the_trace_and_undo_restores_it(stepper):
    trace = stepper.translate(SENTENCE)
    for t in range(len(trace.steps)):
        same = stepper.edit(trace, t, Edit("weights", weights=trace.steps[t].weights))
        assert same.steps[t].edit is not None and same.mark(same.steps[t]) == "~"
        assert _unedited(same) == trace.steps and same.translation == trace.translation
    changed = stepper.edit(trace, 0, Edit("one", tokens=(len(trace.source) - 1,)))
    assert changed.steps[0].weights[-1] == 1.0
    assert stepper.unedit(changed, 0).steps == trace.steps
    # an edit after a forced word keeps the word; unforcing before it drops the edit
    forced = stepper.force(trace, 0, "two")
    both = stepper.edit(forced, 0, Edit("uniform"))
    assert both.steps[0].chosen_token == "two" and both.steps[0].forced and both.steps[0].edit is not None
    assert stepper.unedit(both, 0).steps == forced.steps


def test_every_operation(stepper):
    trace = stepper.translate(SENTENCE)
    step = trace.steps[2]
    n = len(step.weights)
    for spec, check in [
        ("3:uniform", lambda w: w == pytest.approx([1 / n] * n)),
        ("3:reverse", lambda w: w == pytest.approx(step.weights[::-1])),
        ("3:temperature=1", lambda w: w == pytest.approx(step.weights, abs=1e-6)),
        ("3:one=rouge", lambda w: w[2] == 1.0),
        ("3:zero=2", lambda w: w[1] == 0 and sum(w) == pytest.approx(1)),
        ("3:permute=4", lambda w: sorted(w) == pytest.approx(sorted(step.weights))),
    ]:
        t, edit = parse_edit(spec, trace)
        assert t == 2
        weights = stepper.edit(trace, t, edit).steps[t].weights
        assert check(list(weights)), spec
    sharp = edited_weights(Edit("temperature", temperature=0.1), step.scores, step.weights)
    assert max(sharp) > max(step.weights)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("99:uniform", "step 99 is past the end"),
        ("1:zero=étudiant", "'étudiant' is not a word of the sentence"),
        ("1:weights=0.5,0.1,0,0,0,0,0", "must sum to 1"),
        ("1:weights=-0.5,1.5,0,0,0,0,0", "non-negative"),
        ("1:weights=1", "1 weights for 7 source tokens"),
        ("1:temperature=0", "over 0"),
        ("1:shuffle", "unknown operation"),
        ("0:uniform", "from 1"),
        ("1@L2:uniform", "no layers or heads"),
        ("uniform", "expected STEP"),
        ("1:uniform=3", "takes no value"),
    ],
)
def test_bad_specs_say_one_line(stepper, spec, message):
    trace = stepper.translate(SENTENCE)
    with pytest.raises(AttnstepError, match=message) as caught:
        parse_edit(spec, trace)
    assert "\n" not in str(caught.value)


def test_a_model_without_attention_has_nothing_to_edit(no_attention_checkpoint):
    stepper = Stepper(load_checkpoint(no_attention_checkpoint))
    trace = stepper.translate(SENTENCE)
    with pytest.raises(AttnstepError, match="no attention to edit"):
        parse_edit("1:uniform", trace)
    with pytest.raises(AttnstepError, match="no attention to edit"):
        stepper.edit(trace, 0, Edit("uniform"))


def test_an_edit_decodes_greedily_only(tiny_checkpoint):
    stepper = Stepper(load_checkpoint(tiny_checkpoint), beam=3)
    trace = stepper.translate(SENTENCE)
    with pytest.raises(AttnstepError, match="not with a beam search"):
        stepper.edit(trace, 0, Edit("uniform"))


def test_weights_sum_to_one_after_each_operation(stepper):
    trace = stepper.translate(SENTENCE)
    step = trace.steps[0]
    for edit in [Edit("zero", tokens=(0, 1)), Edit("one", tokens=(3,)), Edit("permute", seed=1)]:
        assert math.fsum(edited_weights(edit, step.scores, step.weights)) == pytest.approx(1)


def test_an_edited_trace_reads_back_from_json_and_the_wire(stepper):
    from attnstep.trace import reader, writer

    trace = stepper.translate(SENTENCE)
    edited = stepper.edit(trace, 1, Edit("zero", tokens=(0, 1)))
    edited = stepper.edit(edited, 3, Edit("permute", seed=5))
    assert set(edited.edits) == {1, 3}
    assert reader.parse(writer.dumps(edited)) == edited
    assert reader.from_wire_dict(writer.to_wire_dict(edited), origin="wire") == edited
    assert reader.parse(writer.dumps(edited.without_vectors())) == edited.without_vectors()
    data = writer.to_json_dict(edited)
    assert data["steps"][1]["edit"]["operation"] == "zero" and data["steps"][1]["edit"]["tokens"] == [0, 1]
    assert data["steps"][1]["weights"] == data["steps"][1]["edit"]["edited"][0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.update(edited=[[0.5] * len(e["edited"][0])]), "edited weights sum to"),
        (lambda e: e.update(own=[e["own"][0][:-1]]), "own weights that are not 1 rows"),
        (lambda e: e.update(edited=[list(reversed(e["edited"][0]))]), "not its edit's edited weights"),
        (lambda e: e.update(layer=1), "names a layer"),
        (lambda e: e["before"].update(step=0), "out of order"),
    ],
)
def test_the_reader_checks_the_edit_block(stepper, change, message):
    import json

    from attnstep.trace import reader, writer

    trace = stepper.translate(SENTENCE)
    data = writer.to_json_dict(stepper.edit(trace, 1, Edit("one", tokens=(0,))))
    change(data["steps"][1]["edit"])
    with pytest.raises(AttnstepError, match=message):
        reader.parse(json.dumps(data))


@pytest.mark.slow  # the tiny Marian is built with transformers and SentencePiece
def test_a_transformer_heads_edit_is_transformers_forward_pass_with_those_weights(marian_folder, theirs, monkeypatch):
    """Head 2 of layer 1 edited at step 1: every step's log p equals transformers' eager teacher-forced pass
    with that head's weights at that position replaced (the layers above, and later positions, follow)."""
    import transformers.models.marian.modeling_marian as modeling

    from attnstep.engine.stepper import load_stepper

    stepper = load_stepper(marian_folder)
    trace = stepper.translate(SENTENCES[0])
    t, layer, head = 1, 0, 1
    edited = stepper.edit(trace, t, Edit("uniform", layer=layer, head=head))
    step = edited.steps[t]
    assert step.edit is not None and step.edit.own[0] == trace.steps[t].layers[layer].cross[head].weights
    n = len(edited.source)
    assert step.layers[layer].cross[head].weights == pytest.approx([1 / n] * n)
    assert step.layers[layer].cross[0].weights == trace.steps[t].layers[layer].cross[0].weights  # other heads kept
    assert max(abs(a.prob - b.prob) for a, b in zip(step.candidates, step.edit.before.candidates)) > 1e-3
    values = edited.cross_values[layer][head]  # v_i of the head
    assert list(step.layers[layer].cross[head].context) == pytest.approx(
        [sum(v[k] for v in values) / n for k in range(len(values[0]))], abs=1e-5
    )
    target = theirs.model.decoder.layers[layer].encoder_attn
    eager = modeling.eager_attention_forward

    def patched(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        output, weights = eager(module, query, key, value, attention_mask, scaling, dropout, **kwargs)
        if module is target:
            weights = weights.clone()  # (B, h, T, S)
            weights[0, head, t] = torch.tensor(step.edit.edited[0])
            output = torch.matmul(weights, value).transpose(1, 2).contiguous()  # (B, T, h, d)
        return output, weights

    monkeypatch.setattr(modeling, "eager_attention_forward", patched)
    inputs = torch.tensor([[stepper.specials.start, *(s.chosen_id for s in edited.steps[:-1])]])  # (1, T)
    with torch.no_grad():
        out = theirs(input_ids=torch.tensor([[tok.id for tok in edited.source]]), decoder_input_ids=inputs)
    logprobs = torch.log_softmax(out.logits[0], -1)  # (T, V)
    for s in edited.steps:
        assert s.chosen_logprob == pytest.approx(float(logprobs[s.index, s.chosen_id]), abs=1e-4)
    assert stepper.unedit(edited, t).steps == trace.steps
    same = stepper.edit(
        trace, t, Edit("weights", weights=trace.steps[t].layers[layer].cross[head].weights, layer=layer, head=head)
    )
    assert _unedited(same) == trace.steps
    whole = stepper.edit(trace, t, Edit("reverse", layer=layer))
    assert len(whole.steps[t].edit.edited) == stepper.architecture.heads
    from attnstep.trace import reader, writer

    for made in (edited, whole):  # a Transformer's edit block reads back, in a file and on the wire
        assert reader.parse(writer.dumps(made)) == made
        assert reader.from_wire_dict(writer.to_wire_dict(made), origin="wire") == made


def test_dump_edit_writes_the_edited_trace(tiny_checkpoint, stepper):
    import json

    from tests.cli_helpers import invoke

    result = invoke("dump", SENTENCE, "--checkpoint", tiny_checkpoint, "--edit", "4:uniform", "--edit", "2:zero=rouge")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    edits = {s["step"]: s["edit"] for s in data["steps"] if "edit" in s}
    assert sorted(edits) == [1, 3] and edits[1]["operation"] == "zero" and edits[1]["tokens"] == [2]
    assert edits[1]["edited"][0][2] == 0 and edits[3]["operation"] == "uniform"
    trace = stepper.translate(SENTENCE)
    expected = stepper.edit(stepper.edit(trace, 1, Edit("zero", tokens=(2,))), 3, Edit("uniform"))
    assert data["translation"] == expected.translation
    assert [s["chosen"]["id"] for s in data["steps"]] == [s.chosen_id for s in expected.steps]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--edit", "40:uniform"], "step 40 is past the end"),
        (["--edit", "1:zero=étudiant"], "'étudiant' is not a word of the sentence"),
        (["--edit", "1:weights=0.2,0.2"], "2 weights for 7 source tokens"),
        (["--edit", "1:uniform", "--edit", "1:reverse"], "step 1 is edited twice"),
        (["--edit", "1:uniform", "--beam", "2"], "--edit goes with one SENTENCE"),
    ],
)
def test_dump_refuses_a_bad_edit_in_one_line(tiny_checkpoint, args, message):
    from tests.cli_helpers import invoke

    result = invoke("dump", SENTENCE, "--checkpoint", tiny_checkpoint, *args)
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_dump_refuses_an_edit_without_attention(no_attention_checkpoint):
    from tests.cli_helpers import invoke

    result = invoke("dump", SENTENCE, "--checkpoint", no_attention_checkpoint, "--edit", "1:uniform")
    assert result.exit_code == 2 and "has no attention to edit" in result.stderr


def test_the_model_service_decodes_edits_as_the_stepper_does(stepper):
    import asyncio

    import orjson

    from attnstep.serve.remote import RemoteTraceSource
    from attnstep.serve.service import ModelService
    from attnstep.serve.wire import trace_from_wire

    service = ModelService(stepper)
    trace = stepper.translate(SENTENCE)
    earlier = stepper.edit(trace, 1, Edit("temperature", temperature=0.25))
    wanted = stepper.edit(earlier, 3, Edit("weights", weights=(0.5, 0.5, 0, 0, 0, 0, 0)))
    request = RemoteTraceSource._decode(earlier, 3, {**earlier.edits, 3: wanted.steps[3].edit.edit})
    assert [e["step"] for e in request["edits"]] == [1, 3]  # what a served session's edit sends

    def ask(request):
        return trace_from_wire(orjson.loads(asyncio.run(service.answer(request))))

    try:
        assert ask(request) == wanted
        for bad, message in [
            ([{"step": 3, "operation": "zero", "tokens": [99]}], "outside the sentence"),
            ([{"step": -1, "operation": "uniform"}], "not of one step"),
            ([{"step": 1, "operation": "uniform"}, {"step": 1, "operation": "reverse"}], "not of one step"),
            ([{"step": 1, "operation": "explode"}], "an object with an operation"),
            ([{"step": 1, "operation": "weights", "typed": ["a"]}], "list of numbers"),
            ([{"step": 1, "operation": "uniform", "layer": 0}], "no layers or heads"),
        ]:
            with pytest.raises(AttnstepError, match=message):
                ask(request | {"edits": bad})
    finally:
        service.close()
