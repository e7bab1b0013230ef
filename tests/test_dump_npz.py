"""dump --format npz (issue 22, arrays, not only JSON): a run's numbers as NumPy arrays, equal to the JSON trace's."""

import io
import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from attnstep.cli import app
from attnstep.trace.arrays import ArrayWriter
from tests.cli_helpers import invoke, runner
from tests.conftest import build_tiny_checkpoint
from tests.marian_helpers import marian_folder_fixture  # noqa: F401  (a fixture)
from tests.transformer_traces import transformer_trace

SENTENCES = "un chien noir .\n\nune voiture rouge\nun chat\n"


@pytest.fixture(scope="module")
def concat_checkpoint(tmp_path_factory):
    """concat has every part a trace can have: keys, v_a and a per-step query."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("concat") / "ck", attention="concat")


def load(path):
    """The archive as plain arrays, read as any NumPy user would, without pickles."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def json_and_npz(checkpoint, tmp_path, *args, sentences=SENTENCES):
    source = tmp_path / "in.fr"
    source.write_text(sentences)
    traces = invoke("dump", "-i", source, "--checkpoint", checkpoint, *args)
    out = tmp_path / "run.npz"
    arrays = invoke("dump", "-i", source, "--checkpoint", checkpoint, "--format", "npz", "-o", out, *args)
    assert traces.exit_code == arrays.exit_code == 0, arrays.stderr
    return [json.loads(line) for line in traces.stdout.splitlines()], load(out), arrays


def sentence(a, i):
    """Sentence ``i``'s rows of each array, found through the index."""
    tokens = slice(*a["sentence_token_offsets"][i : i + 2])
    steps = slice(*a["sentence_step_offsets"][i : i + 2])
    weights = slice(a["step_weight_offsets"][steps.start], a["step_weight_offsets"][steps.stop])
    per_token = {k: v[tokens] for k, v in a.items() if k.startswith("source_") or k in ("encoder_states", "keys")}
    step_keys = ("input_ids", "input_tokens", "chosen_ids", "chosen_tokens", "chosen_logprobs", "forced")
    step_keys += ("candidate_ids", "candidate_tokens", "candidate_probs", "hidden", "context", "concat")
    step_keys += ("attentional", "query")
    per_step = {k: a[k][steps] for k in step_keys if k in a}
    return per_token | per_step | {"scores": a["scores"][weights], "weights": a["weights"][weights]}


def f32(rows):
    return np.array(rows, np.float32)


def test_the_arrays_are_the_json_traces_numbers(concat_checkpoint, tmp_path):
    traces, a, result = json_and_npz(concat_checkpoint, tmp_path)
    assert "4 traces" in result.stderr
    meta = json.loads(a["meta"][0])
    assert meta["layout"] == "attnstep.npz" and meta["layout_version"] == 1
    assert meta["vectors"] is True and meta["sentences"] == 4
    assert {k: v for k, v in meta["checkpoint"].items() if k != "architecture"} == traces[0]["checkpoint"]
    assert a["lines"].tolist() == [1, 2, 3, 4]
    assert a["translations"].tolist() == [t["translation"] if t else "" for t in traces]
    assert a["finished"].tolist() == [bool(t and t["finished"]) for t in traces]
    assert np.array_equal(a["v_a"], f32(traces[0]["v_a"]))
    for i, trace in enumerate(traces):
        s = sentence(a, i)
        if trace is None:  # the blank line: a sentence with no tokens and no steps
            assert all(len(rows) == 0 for rows in s.values())
            continue
        steps = trace["steps"]
        assert s["source_ids"].tolist() == [t["id"] for t in trace["source"]]
        assert s["source_tokens"].tolist() == [t["token"] for t in trace["source"]]
        assert s["source_surfaces"].tolist() == [t["surface"] for t in trace["source"]]
        assert s["source_words"].tolist() == [t["word"] for t in trace["source"]]
        # float32 vectors: the same numbers exactly (JSON holds each float32 as its shortest repr)
        assert np.array_equal(s["encoder_states"], f32(trace["encoder_states"]))
        assert np.array_equal(s["keys"], f32(trace["keys"]))
        for name in ("hidden", "context", "concat", "attentional", "query"):
            assert np.array_equal(s[name], f32([step[name] for step in steps])), name
        # the other numbers as Python computed them: float64, exactly
        assert s["scores"].tolist() == [x for step in steps for x in step["scores"]]
        assert s["weights"].tolist() == [x for step in steps for x in step["weights"]]
        assert s["chosen_logprobs"].tolist() == [step["chosen"]["logprob"] for step in steps]
        assert s["chosen_ids"].tolist() == [step["chosen"]["id"] for step in steps]
        assert s["chosen_tokens"].tolist() == [step["chosen"]["token"] for step in steps]
        assert s["input_ids"].tolist() == [step["input"]["id"] for step in steps]
        assert s["input_tokens"].tolist() == [step["input"]["token"] for step in steps]
        assert s["forced"].tolist() == [step["forced"] for step in steps]
        assert s["candidate_ids"].tolist() == [[c["id"] for c in step["candidates"]] for step in steps]
        assert s["candidate_tokens"].tolist() == [[c["token"] for c in step["candidates"]] for step in steps]
        assert s["candidate_probs"].tolist() == [[c["prob"] for c in step["candidates"]] for step in steps]


def test_the_index_covers_every_row_once(concat_checkpoint, tmp_path):
    traces, a, _ = json_and_npz(concat_checkpoint, tmp_path)
    lengths = {"token": [len(t["source"]) if t else 0 for t in traces]}
    lengths["step"] = [len(t["steps"]) if t else 0 for t in traces]
    lengths["word"] = [len(t["words"]) if t else 0 for t in traces]
    lengths["output_word"] = [len(t["output_words"]) if t else 0 for t in traces]
    for name, counts in lengths.items():
        assert a[f"sentence_{name}_offsets"].tolist() == np.concatenate([[0], np.cumsum(counts)]).tolist(), name
    assert a["sentence_token_offsets"][-1] == len(a["source_ids"]) == len(a["encoder_states"])
    assert a["sentence_step_offsets"][-1] == len(a["chosen_ids"]) == len(a["hidden"])
    assert a["sentence_word_offsets"][-1] == len(a["word_texts"])
    weights = a["step_weight_offsets"]
    assert weights[-1] == len(a["weights"]) and len(weights) == len(a["chosen_ids"]) + 1
    # each step has a weight per source token of its sentence
    tokens = np.diff(a["sentence_token_offsets"])
    per_step = np.repeat(tokens, np.diff(a["sentence_step_offsets"]))
    assert np.diff(weights).tolist() == per_step.tolist()
    i = 2  # "une voiture rouge": its words' spans are within its own tokens
    start, end = a["sentence_word_offsets"][i : i + 2]
    assert a["word_texts"][start:end].tolist() == [w["text"] for w in traces[i]["words"]]
    assert a["word_ends"][start:end].tolist() == [w["end"] for w in traces[i]["words"]]


def test_it_needs_no_pickle_and_no_attnstep(tiny_checkpoint, tmp_path):
    _, a, _ = json_and_npz(tiny_checkpoint, tmp_path)
    assert all(array.dtype.kind in "biufU" for array in a.values())  # no object arrays
    with zipfile.ZipFile(tmp_path / "run.npz") as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == sorted(f"{key}.npy" for key in a)


def test_arrays_spooled_to_disk_are_the_same(tiny_checkpoint, tmp_path, monkeypatch):
    """Past SPOOL_BYTES an array's rows wait in a temporary file: the archive is the same."""
    _, in_memory, _ = json_and_npz(tiny_checkpoint, tmp_path)
    monkeypatch.setattr("attnstep.trace.arrays.SPOOL_BYTES", 64)
    _, on_disk, _ = json_and_npz(tiny_checkpoint, tmp_path)
    assert on_disk.keys() == in_memory.keys()
    assert all(np.array_equal(on_disk[k], in_memory[k]) for k in on_disk)


def test_no_vectors_leaves_the_vectors_out(tiny_checkpoint, tmp_path):
    traces, a, _ = json_and_npz(tiny_checkpoint, tmp_path, "--no-vectors")
    assert json.loads(a["meta"][0])["vectors"] is False
    assert not {"encoder_states", "keys", "hidden", "context", "concat", "attentional", "query"} & set(a)
    assert a["weights"].tolist() == [x for t in traces if t for step in t["steps"] for x in step["weights"]]


def test_a_beam_search_keeps_its_best_hypothesis_steps(tiny_checkpoint, tmp_path):
    traces, a, _ = json_and_npz(tiny_checkpoint, tmp_path, "--beam", "3")
    beam = traces[0]["beam"]
    assert json.loads(a["meta"][0])["beam"] == {"width": 3, "alpha": beam["alpha"], "normalization": "gnmt"}
    chosen = [step["chosen"]["id"] for t in traces if t for step in t["steps"]]
    assert a["chosen_ids"].tolist() == chosen
    assert np.array_equal(a["hidden"], f32([step["hidden"] for t in traces if t for step in t["steps"]]))


def test_one_sentence_and_a_given_translation(tiny_checkpoint, tmp_path):
    out = tmp_path / "one.npz"
    args = ("dump", "un chien", "--target", "a dog", "--checkpoint", tiny_checkpoint)
    trace = json.loads(invoke(*args).stdout)
    assert invoke(*args, "--format", "npz", "-o", out).exit_code == 0
    a = load(out)
    assert a["references"].tolist() == ["a dog"] and a["lines"].tolist() == [1]
    assert a["forced"].all() and a["chosen_tokens"].tolist() == [s["chosen"]["token"] for s in trace["steps"]]
    assert np.array_equal(a["context"], f32([s["context"] for s in trace["steps"]]))


def test_standard_input(tiny_checkpoint, tmp_path):
    out = tmp_path / "stdin.npz"
    command = ["dump", "-i", "-", "--format", "npz", "-o", str(out), "--checkpoint", str(tiny_checkpoint)]
    result = runner.invoke(app, command, input=SENTENCES)
    assert result.exit_code == 0, result.stderr
    # a pipe is answered a line at a time, so each sentence is decoded alone, as in batches of 1
    _, expected, _ = json_and_npz(tiny_checkpoint, tmp_path, "--batch-size", "1")
    a = load(out)
    assert a.keys() == expected.keys()
    assert all(np.array_equal(a[k], expected[k]) for k in a)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--format npz writes a file, not standard output"),
        (["-o", "-"], "--format npz writes a file, not standard output"),
        (["-o", "x.npz", "--beam", "2", "--n-best", "2"], "--n-best goes with --format json or text"),
        (["-o", "x.npz", "--precision", "3"], "--precision goes with --format json"),
    ],
)
def test_usage_errors(tiny_checkpoint, args, message):
    result = invoke("dump", "un chien", "--format", "npz", "--checkpoint", tiny_checkpoint, *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_failing_run_leaves_an_existing_file_intact(tiny_checkpoint, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("un chien\n" + "un " * 101 + "\n")
    out = tmp_path / "out.npz"
    out.write_bytes(b"precious")
    result = invoke("dump", "-i", source, "--format", "npz", "-o", out, "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 1
    assert result.stderr.strip() == "attnstep: error: line 2: the sentence has 101 tokens; the maximum is 100"
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.npz"]


def test_a_transformer_trace_keeps_every_layer_and_head():
    """Added out of order (as dump's length-sorted batches finish), written in line order."""
    first, second = transformer_trace(seed=1), transformer_trace(seed=2, layers=2, heads=4)
    second = replace(second, steps=second.steps[:3], finished=False)
    writer = ArrayWriter()
    writer.add(3, second)
    writer.add(2, None)
    writer.add(1, first)
    buffer = io.BytesIO()
    size = writer.write(buffer)
    assert size == len(buffer.getvalue())
    a = load(io.BytesIO(buffer.getvalue()))
    meta = json.loads(a["meta"][0])
    assert meta["checkpoint"]["architecture"]["heads"] == 4 and meta["view"] == {"layer": 0, "head": None}
    assert a["lines"].tolist() == [1, 2, 3] and a["finished"].tolist() == [True, False, False]
    assert a["sentence_step_offsets"].tolist() == [0, 4, 4, 7]
    n = len(first.source)
    for i, trace in ((0, first), (2, second)):
        base = a["sentence_step_offsets"][i]
        for t, step in enumerate(trace.steps):
            row = base + t
            weights = slice(*a["step_weight_offsets"][row : row + 2])
            selfs = slice(*a["step_self_offsets"][row : row + 2])
            # each (n, L, h) row block is, transposed, the records' [layer][head][token]
            heads = np.array([[h.weights for h in layer.cross] for layer in step.layers])
            assert np.array_equal(a["head_weights"][weights].transpose(1, 2, 0), heads)
            heads = np.array([[h.scores for h in layer.cross] for layer in step.layers])
            assert np.array_equal(a["head_scores"][weights].transpose(1, 2, 0), heads)
            assert a["weights"][weights].tolist() == list(step.weights)  # the view: the first layer's mean
            selves = np.array([layer.self_weights for layer in step.layers])  # (L, h, t + 1)
            assert np.array_equal(a["self_weights"][selfs].transpose(1, 2, 0), selves)
            assert a["head_queries"][row, 1, 3].tobytes() == step.layers[1].cross[3].query.tobytes()
            assert a["head_contexts"][row, 0, 2].tobytes() == step.layers[0].cross[2].context.tobytes()
            assert a["self_outputs"][row, 1].tobytes() == step.layers[1].self_output.tobytes()
            assert a["layer_outputs"][row, 1].tobytes() == step.hidden.tobytes()
            assert a["embeddings"][row].tobytes() == step.embedding.tobytes()
        tokens = a["sentence_token_offsets"][i]
        assert a["cross_keys"][tokens + n - 1, 1, 2].tobytes() == trace.cross_keys[1][2][n - 1].tobytes()
        assert a["cross_values"][tokens, 0, 3].tobytes() == trace.cross_values[0][3][0].tobytes()


@pytest.mark.slow  # the Marian folder is built with transformers and SentencePiece (~5 s)
def test_a_marian_dump_keeps_every_layer_and_head_as_its_json(marian_folder, tmp_path):
    traces, a, _ = json_and_npz(marian_folder, tmp_path, sentences="le chat noir\n\nun chien\n")
    steps = [step for t in traces if t for step in t["steps"]]
    layers = [step["layers"] for step in steps]
    assert a["chosen_ids"].tolist() == [step["chosen"]["id"] for step in steps]
    assert np.array_equal(a["layer_outputs"], f32([[layer["output"] for layer in each] for each in layers]))
    assert np.array_equal(
        a["head_contexts"], f32([[[h["context"] for h in layer["cross"]] for layer in each] for each in layers])
    )
    offsets, selves = a["step_weight_offsets"], a["step_self_offsets"]
    for t, each in enumerate(layers):
        heads = np.array([[h["weights"] for h in layer["cross"]] for layer in each])  # (L, h, n)
        assert np.array_equal(a["head_weights"][offsets[t] : offsets[t + 1]].transpose(1, 2, 0), heads)
        own = np.array([layer["self_weights"] for layer in each])  # (L, h, t + 1)
        assert np.array_equal(a["self_weights"][selves[t] : selves[t + 1]].transpose(1, 2, 0), own)
    keys = [np.array(t["cross_keys"], np.float32).transpose(2, 0, 1, 3) for t in traces if t]  # (n, L, h, d)
    assert np.array_equal(a["cross_keys"], np.concatenate(keys))
