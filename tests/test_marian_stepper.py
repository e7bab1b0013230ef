"""The stepper over a Marian folder (issue 20, item 3): its records against transformers' own decoding and
eager attention, on the tiny seeded Marian of tests/marian_helpers.py."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from attnstep.engine.marian_checkpoint import load_marian
from attnstep.engine.stepper import Stepper, load_stepper
from attnstep.errors import AttnstepError
from attnstep.trace.records import MULTI_HEAD, Architecture, Trace, View
from tests.marian_helpers import (  # noqa: F401  (the *_fixture functions are fixtures)
    MAX_LENGTH,
    SENTENCES,
    generated_rows,
    marian_bin_folder_fixture,
    marian_folder_fixture,
    ours_fixture,
    their_tokenizer_fixture,
    theirs_fixture,
)

pytestmark = pytest.mark.slow  # the fixture is built with transformers and SentencePiece (~5 s)

END = 0  # the tiny model's </s>


@pytest.fixture(scope="module")
def stepper(marian_folder) -> Stepper:
    return load_stepper(marian_folder)


def _ids(tokens) -> torch.Tensor:
    return torch.tensor([list(tokens)])  # (1, N)


def _generate(theirs, stepper: Stepper, sentence: str, **options) -> list[int]:
    src = _ids(t.id for t in stepper.source_tokens(sentence))
    with torch.no_grad():
        out = theirs.generate(input_ids=src, num_beams=1, do_sample=False, **options)
    return generated_rows(out, END)[0]


def _forced(theirs, stepper: Stepper, trace: Trace):
    """transformers' eager forward pass teacher-forced on the trace's own inputs."""
    start = stepper.specials.start
    inputs = _ids([start, *(s.chosen_id for s in trace.steps[:-1])])  # (1, T)
    with torch.no_grad():
        return theirs(input_ids=_ids(t.id for t in trace.source), decoder_input_ids=inputs, output_attentions=True)


def test_greedy_tokens_are_generates(stepper, theirs):
    for sentence in SENTENCES:
        trace = stepper.translate(sentence)
        assert [s.chosen_id for s in trace.steps] == _generate(theirs, stepper, sentence), sentence
        assert trace.finished == (trace.steps[-1].chosen_id == END)
    lengths = {len(stepper.translate(s).steps) for s in SENTENCES}
    assert min(lengths) < MAX_LENGTH - 1 and max(lengths) == MAX_LENGTH - 1  # some end early, some at the limit


def test_every_layer_and_head_is_transformers_eager_attention(stepper, theirs):
    checked, spread = 0, 0.0
    for sentence in SENTENCES[:6]:
        trace = stepper.translate(sentence)
        out = _forced(theirs, stepper, trace)
        logprobs = out.logits[0].log_softmax(-1)  # (T, V)
        for t, step in enumerate(trace.steps):
            for layer, record in enumerate(step.layers):
                cross = torch.tensor([head.weights for head in record.cross], dtype=torch.float64)  # (h, S)
                torch.testing.assert_close(cross, out.cross_attentions[layer][0, :, t].double(), atol=1e-5, rtol=0)
                own = torch.tensor(record.self_weights, dtype=torch.float64)  # (h, t + 1)
                own_expected = out.decoder_attentions[layer][0, :, t, : t + 1].double()
                torch.testing.assert_close(own, own_expected, atol=1e-5, rtol=0)
                checked += 1
                spread = max(spread, float(cross.max() - cross.min()))
            assert step.chosen_logprob == pytest.approx(float(logprobs[t, step.chosen_id]), abs=1e-4)
            assert [c.prob for c in step.candidates] == pytest.approx(
                logprobs[t].exp().topk(5).values.tolist(), abs=1e-5
            )
    assert checked > 100
    assert spread > 0.1  # not near-uniform: the comparison could have failed


def test_the_records_fit_together(stepper):
    """Each head's scores are q·k_i/√d from its recorded query and keys, its weights their softmax, its context
    Σ a_i v_i; the step's scores and weights are the default view, the mean of layer 1's heads (of 2)."""
    trace = stepper.translate(SENTENCES[3])
    architecture = trace.architecture
    assert architecture == Architecture("marian", 2, 4, 4, 16, 2)
    assert trace.view == View(0) and trace == trace.with_view(View(0))
    n = len(trace.source)
    assert trace.source[-1].token == "</s>" and trace.words[-1].text == "</s>"
    assert len(trace.encoder_states) == n and all(len(v) == 16 for v in trace.encoder_states)
    for step in trace.steps:
        assert step.hidden == step.layers[-1].output and step.context is None
        for layer, record in enumerate(step.layers):
            assert len(record.self_weights) == 4 and all(len(w) == step.index + 1 for w in record.self_weights)
            for j, head in enumerate(record.cross):
                keys = torch.tensor(trace.cross_keys[layer][j])  # (S, d)
                values = torch.tensor(trace.cross_values[layer][j])  # (S, d)
                q = torch.tensor(head.query)  # (d,)
                torch.testing.assert_close(keys @ q / math.sqrt(4), torch.tensor(head.scores), atol=1e-5, rtol=0)
                weights = torch.tensor(head.weights)  # (S,)
                torch.testing.assert_close(torch.tensor(head.scores).softmax(0), weights, atol=1e-6, rtol=0)
                torch.testing.assert_close(weights @ values, torch.tensor(head.context), atol=1e-5, rtol=0)
        mean = torch.tensor([h.weights for h in step.layers[0].cross], dtype=torch.float64).mean(0)
        torch.testing.assert_close(torch.tensor(step.weights, dtype=torch.float64), mean)


def test_the_checkpoint_is_described(stepper, marian_folder, tmp_path):
    info = stepper.translate(SENTENCES[0]).checkpoint
    assert (info.attention, info.formula, info.tokenizer) == (MULTI_HEAD, "e_i = q·k_i / √d", "marian")
    assert (info.source_language, info.target_language, info.target_vocab_size) == (
        "",
        "",
        len(stepper.codec.target_tokens),
    )
    shutil.copytree(marian_folder, tmp_path / "opus-mt-fr-en")
    named = load_stepper(tmp_path / "opus-mt-fr-en").info
    assert (named.source_language, named.target_language) == ("fr", "en")


def _assert_close(a: Trace, b: Trace, tolerance: float = 1e-5) -> None:
    """Two traces of the same decoding: the same tokens and choices, every number within ``tolerance``."""
    assert (a.source, a.words, a.output_words, a.translation, a.finished) == (
        b.source,
        b.words,
        b.output_words,
        b.translation,
        b.finished,
    )

    def close(x, y) -> None:
        assert (x is None) == (y is None)
        if x is not None:
            assert len(x) == len(y) and max((abs(p - q) for p, q in zip(x, y)), default=0) <= tolerance

    for x, y in zip(a.encoder_states, b.encoder_states):
        close(x, y)
    for sa, sb in zip(a.steps, b.steps):
        assert (sa.chosen_id, sa.input_id, sa.forced) == (sb.chosen_id, sb.input_id, sb.forced)
        assert [c.id for c in sa.candidates] == [c.id for c in sb.candidates]
        for x, y in (
            (sa.scores, sb.scores),
            (sa.weights, sb.weights),
            (sa.hidden, sb.hidden),
            (sa.embedding, sb.embedding),
        ):
            close(x, y)
        for la, lb in zip(sa.layers, sb.layers, strict=True):
            for ha, hb in zip(la.cross, lb.cross, strict=True):
                for x, y in (
                    (ha.scores, hb.scores),
                    (ha.weights, hb.weights),
                    (ha.query, hb.query),
                    (ha.context, hb.context),
                ):
                    close(x, y)
            for x, y in zip(la.self_weights, lb.self_weights, strict=True):
                close(x, y)
            for name in ("input", "self_output", "joined", "cross_output", "output"):
                close(getattr(la, name), getattr(lb, name))


def test_batched_decoding_is_one_at_a_time(stepper):
    """The same tokens and records; padding changes only the order of the float sums (measured: ≤ 1.1e-6)."""
    together = stepper.translate_batch(SENTENCES)
    for sentence, batched in zip(SENTENCES, together):
        alone = stepper.translate(sentence)
        _assert_close(alone, batched, 1e-5)
        for step in batched.steps:  # padding never reaches a record
            assert all(
                len(h.scores) == len(h.weights) == len(batched.source) for layer in step.layers for h in layer.cross
            )


def test_forcing_re_decodes_from_the_prefix(stepper, theirs):
    trace = stepper.translate(SENTENCES[1])
    word = next(c for c in trace.steps[2].candidates if c.id != trace.steps[2].chosen_id)
    forced = stepper.force(trace, 2, word.id)
    assert forced.steps[:2] == trace.steps[:2]
    assert forced.steps[2].chosen_id == word.id and forced.steps[2].forced
    prefix = [stepper.specials.start, *(s.chosen_id for s in forced.steps[:3])]
    with torch.no_grad():
        out = theirs.generate(
            input_ids=_ids(t.id for t in trace.source), decoder_input_ids=_ids(prefix), num_beams=1, do_sample=False
        )
    assert [s.chosen_id for s in forced.steps] == generated_rows(out, END)[0]
    assert stepper.unforce(forced, 2) == trace


def test_score_reference_is_teacher_forcing(stepper, theirs):
    reference = "A black dog runs in the street."
    trace = stepper.score_reference(SENTENCES[1], reference)
    ids = [s.chosen_id for s in trace.steps]
    assert ids[-1] == END and all(s.forced for s in trace.steps) and trace.translation == reference
    out = _forced(theirs, stepper, trace)
    expected = out.logits[0].log_softmax(-1).gather(1, torch.tensor(ids)[:, None]).sum()
    assert trace.logprob == pytest.approx(float(expected), abs=1e-4)


def test_iter_steps_yields_the_trace_steps(stepper):
    assert tuple(stepper.iter_steps(SENTENCES[2])) == stepper.translate(SENTENCES[2]).steps


def test_min_and_max_length_are_generates(marian_folder, theirs):
    short = load_stepper(marian_folder, max_length=4)  # 4 steps: generate's max_length 5, with the start token
    long = load_stepper(marian_folder, min_length=12)
    for sentence in SENTENCES[:6]:
        trace = short.translate(sentence)
        assert len(trace.steps) <= 4 and trace.steps[-1].chosen_id == END  # forced_eos_token_id at the last
        assert [s.chosen_id for s in trace.steps] == _generate(theirs, short, sentence, max_length=5)
        trace = long.translate(sentence)
        assert all(s.chosen_id != END for s in trace.steps[:12])
        assert [s.chosen_id for s in trace.steps] == _generate(theirs, long, sentence, min_length=13)


def test_the_pad_is_never_emitted(marian_folder, tmp_path):
    """With <pad> made the likeliest token, it tops the candidates but is never chosen, as generate bans it."""
    import transformers
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "padded"
    shutil.copytree(marian_folder, folder)
    tensors = load_file(folder / "model.safetensors")
    pad = json.loads((folder / "config.json").read_text())["pad_token_id"]
    tensors["final_logits_bias"][0, pad] = 8.0
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    stepper = load_stepper(folder)
    theirs = transformers.MarianMTModel.from_pretrained(folder).eval()
    for sentence in SENTENCES[:4]:
        trace = stepper.translate(sentence)
        assert all(s.candidates[0].id == pad and s.chosen_id != pad for s in trace.steps)
        assert [s.chosen_id for s in trace.steps] == _generate(theirs, stepper, sentence)
        # the chosen token's log-probability is its own, not the top candidate's
        assert all(s.chosen_logprob < math.log(s.candidates[0].prob) for s in trace.steps)
    with pytest.raises(AttnstepError, match="not a piece the model can output"):
        stepper.target_ids("<pad>")


def test_a_pytorch_model_bin_folder_gives_the_same_trace(stepper, marian_bin_folder):
    from_bin = load_stepper(marian_bin_folder)
    for sentence in SENTENCES[:3]:
        a, b = stepper.translate(sentence), from_bin.translate(sentence)
        assert a.steps == b.steps and a.encoder_states == b.encoder_states and a.cross_keys == b.cross_keys


def test_without_vectors_the_same_decoding_lighter(marian_folder, stepper):
    bare = load_stepper(marian_folder, vectors=False)
    trace = stepper.translate(SENTENCES[0])
    assert bare.translate(SENTENCES[0]) == trace.without_vectors()


def test_refusals_are_one_line(marian_folder, ours):
    with pytest.raises(AttnstepError, match="positions for 64"):
        load_stepper(marian_folder, max_length=65)
    stepper = Stepper(ours)
    with pytest.raises(AttnstepError, match="empty"):
        stepper.translate("   ")
    with pytest.raises(AttnstepError, match="positions for 64"):
        stepper.score_reference(SENTENCES[0], " ".join(["street"] * 30))
    unknown = stepper.source_tokens("日本 est loin.")
    unk = next(t for t in unknown if t.id == ours.tokenizer.unk_id)
    assert (unk.token, unk.surface, unknown[-1].token) == ("<unk>", "日本", "</s>")
    words = stepper.translate("日本 est loin.").words
    assert [w.text for w in words] == ["日本", "est", "loin.", "</s>"]
    assert load_marian(marian_folder).codec.max_source_tokens == 63  # the positions, less </s>


def _beamed(theirs, source, prefix=(), **options) -> list[list[int]]:
    """generate(num_beams=K)'s best hypotheses for a batch of traces' sources, from a prefix as decoder_input_ids."""
    rows = [[t.id for t in s] for s in source]
    width = max(map(len, rows))
    pad = theirs.config.pad_token_id
    src = torch.tensor([row + [pad] * (width - len(row)) for row in rows])  # (B, S)
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])  # (B, S)
    if prefix:
        options["decoder_input_ids"] = torch.tensor([[theirs.config.decoder_start_token_id, *prefix]] * len(rows))
    with torch.no_grad():
        out = theirs.generate(input_ids=src, attention_mask=mask, do_sample=False, **options)
    return generated_rows(out, END)


def test_a_beams_best_hypothesis_is_generates(marian_folder, theirs, stepper):
    beam = load_stepper(marian_folder, beam=4)
    sources = [stepper.source_tokens(s) for s in SENTENCES]
    traces = beam.decode_batch(sources)
    expected = _beamed(theirs, sources, num_beams=4)
    assert [[s.chosen_id for s in t.steps] for t in traces] == expected
    assert expected != [[s.chosen_id for s in stepper.translate(x).steps] for x in SENTENCES]  # not greedy's
    compared = 0
    for sentence, batched in zip(SENTENCES, traces):
        trace = beam.translate(sentence)
        _assert_close(trace, batched)
        assert not any(s.forced for s in trace.steps) and trace.beam is not None
        # the records are the model's at each step of that hypothesis, as teacher forcing computes them
        forced = stepper.score_reference(sentence, trace.translation) if trace.finished else None
        if forced is not None and [s.chosen_id for s in forced.steps] == [s.chosen_id for s in trace.steps]:
            assert [s.layers for s in forced.steps] == [s.layers for s in trace.steps]
            compared += 1
    assert compared


def test_a_beam_follows_the_folders_length_penalty_and_forcing(marian_folder, tmp_path):
    import transformers

    folder = tmp_path / "long"
    shutil.copytree(marian_folder, folder)
    settings = json.loads((folder / "generation_config.json").read_text())
    settings.update(length_penalty=2.0, early_stopping="never")
    (folder / "generation_config.json").write_text(json.dumps(settings))
    theirs = transformers.MarianMTModel.from_pretrained(folder).eval()
    beam = load_stepper(folder, beam=3)
    sources = [beam.source_tokens(s) for s in SENTENCES]
    assert [[s.chosen_id for s in t.steps] for t in beam.decode_batch(sources)] == _beamed(theirs, sources, num_beams=3)
    trace = beam.translate(SENTENCES[4])
    word = next(c.id for c in trace.steps[1].candidates if c.id != trace.steps[1].chosen_id)
    forced = beam.force(trace, 1, word)
    prefix = [trace.steps[0].chosen_id, word]
    assert forced.steps[1].forced and forced.steps[1].chosen_id == word
    assert [s.chosen_id for s in forced.steps] == _beamed(theirs, [trace.source], prefix, num_beams=3)[0]
