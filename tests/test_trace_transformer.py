"""Trace format 3: a Transformer's layers, heads and view in JSON and on the wire, and the reader's
refusals of one that does not hold together (on tests/transformer_traces.py's synthetic trace)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import jsonschema
import pytest

from attnstep.errors import AttnstepError
from attnstep.trace import reader, writer
from attnstep.trace.records import ALIVE, FINISHED, PRUNED, Beam, Hypothesis, View, length_penalty
from tests.marian_helpers import marian_folder_fixture  # noqa: F401  (a fixture)
from tests.transformer_traces import transformer_trace


@pytest.fixture(scope="module")
def trace():
    return transformer_trace(layers=2, heads=4, head_dim=4)


def _data(trace, **options):
    return json.loads(writer.dumps(trace, **options))


def test_json_round_trip_is_exact(trace):
    assert reader.parse(writer.dumps(trace)) == trace
    lean = trace.without_vectors()
    assert reader.parse(writer.dumps(lean)) == lean
    other = trace.with_view(View(0, 2))
    assert reader.parse(writer.dumps(other)) == other


def test_wire_round_trip_is_exact_and_packs_the_vectors(trace):
    packed = writer.dumps_wire(trace)
    data = json.loads(packed)
    assert isinstance(data["steps"][0]["layers"][0]["output"], str)
    assert isinstance(data["cross_keys"][0][0][0], str) and isinstance(data["steps"][0]["embedding"], str)
    assert isinstance(data["steps"][0]["layers"][0]["cross"][0]["query"], str)
    assert reader.from_wire_dict(data, origin="the service") == trace
    assert len(packed) < len(writer.dumps(trace))


def test_the_json_holds_the_architecture_view_layers_and_heads(trace):
    data = _data(trace)
    jsonschema.validate(data, reader.schema())
    assert data["format_version"] == 3
    assert data["checkpoint"]["architecture"] == {
        "family": "marian",
        "layers": 2,
        "heads": 4,
        "head_dim": 4,
        "d_model": 16,
        "encoder_layers": 2,
    }
    assert data["view"] == {"layer": 0, "head": None}  # the penultimate layer's mean, of 2 layers
    step = data["steps"][1]
    assert len(step["layers"]) == 2 and len(step["layers"][0]["cross"]) == 4
    head = step["layers"][1]["cross"][3]
    assert head["weights"] == list(trace.steps[1].layers[1].cross[3].weights)
    assert head["query"] == trace.steps[1].layers[1].cross[3].query.tolist()
    assert [len(row) for row in step["layers"][0]["self_weights"]] == [2] * 4  # t + 1 positions at t = 1
    assert len(step["embedding"]) == len(step["layers"][0]["output"]) == 16
    assert "hidden" not in step and "context" not in step  # h_t is the top layer's output
    assert len(data["cross_keys"]) == 2 and len(data["cross_values"][1][3]) == len(data["source"])
    # the steps' weights, and so the alignment, are the view's: here the mean of layer 1's heads
    heads = [h["weights"] for h in step["layers"][0]["cross"]]
    assert step["weights"] == pytest.approx([sum(column) / 4 for column in zip(*heads)], abs=1e-15)
    assert data["alignment"][1] == step["weights"]


def test_no_vectors_drops_every_vector_and_keeps_the_weights(trace):
    data = _data(trace.without_vectors())
    jsonschema.validate(data, reader.schema())
    assert data["vectors"] is False
    for key in ("encoder_states", "cross_keys", "cross_values"):
        assert key not in data
    step = data["steps"][0]
    assert "embedding" not in step and "position" not in step
    layer = step["layers"][0]
    assert set(layer) == {"cross", "self_weights"} and set(layer["cross"][0]) == {"scores", "weights"}


def test_precision_rounds_the_new_numbers_and_still_reads(trace):
    data = _data(trace, precision=3)
    jsonschema.validate(data, reader.schema())
    step = data["steps"][2]
    layer = step["layers"][1]
    numbers = (
        layer["cross"][0]["scores"]
        + layer["cross"][0]["weights"]
        + layer["cross"][0]["query"]
        + layer["self_weights"][0]
        + layer["output"]
        + step["embedding"]
        + data["cross_values"][0][0][0]
    )
    assert all(round(x, 3) == x for x in numbers)
    assert any(round(x, 2) != x for x in numbers)
    for precision in (0, 1, 3, 6):  # the view's rounded means, and rounded weights' sums, within the precision
        again = reader.parse(writer.dumps(trace, precision=precision))
        assert again.view == trace.view and len(again.steps[0].layers) == 2


def test_formats_1_and_2_still_read(stepper):
    """An RNN's trace has no Transformer blocks: as format 2 wrote it, or format 3, it reads the same."""
    rnn = stepper.translate("un chien noir .")
    data = _data(rnn)
    assert data["format_version"] == 3 and "view" not in data and "architecture" not in data["checkpoint"]
    assert "layers" not in data["steps"][0]
    data["format_version"] = 2
    assert reader.parse(json.dumps(data)) == rnn
    for key in ("words", "output_words"):
        del data[key]
    del data["checkpoint"]["tokenizer"]
    for token in data["source"]:
        del token["word"]
    data["format_version"] = 1
    assert reader.parse(json.dumps(data)).steps == rnn.steps


def _rnn_with(stepper, edit):
    data = _data(stepper.translate("un chien noir ."))
    edit(data)
    return json.dumps(data)


def _set(path, value):
    """An edit that sets data[path[0]][path[1]]… to value."""

    def edit(data):
        *parents, last = path
        for key in parents:
            data = data[key]
        data[last] = value

    return edit


def _scale_view_weight(data):
    """Step 1's view weights moved off the heads' mean, still summing to 1."""
    weights = data["steps"][1]["weights"]
    weights[0], weights[1] = weights[0] + 0.01, weights[1] - 0.01
    data["alignment"][1] = list(weights)


LAYER = ("steps", 1, "layers", 0)
ARCHITECTURE = ("checkpoint", "architecture")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["steps"][1]["layers"].pop(), "step 1 has 1 layers, not 2"),
        (lambda d: d["steps"][1]["layers"][0]["cross"].pop(), "step 1, layer 1 has 3 cross- and 4 self-attention"),
        (lambda d: d["steps"][1]["layers"][0]["self_weights"].pop(), "has 4 cross- and 3 self-attention heads"),
        (_set((*ARCHITECTURE, "heads"), 2), "d_model 16 is not 2 heads of 4"),
        (_set((*ARCHITECTURE, "layers"), 3), "step 0 has 2 layers, not 3"),
        (lambda d: d["steps"][1]["layers"][1]["cross"][2]["scores"].pop(), "layer 2, head 3 has 4 weights for 4"),
        (lambda d: d["steps"][1]["layers"][1]["cross"][2]["weights"].pop(), "layer 2, head 3 has 3 weights for 4"),
        (lambda d: d["steps"][2]["layers"][0]["self_weights"][1].append(0.0), "4 self-attention weights, not 3"),
        (lambda d: d["steps"][1]["layers"][0]["output"].pop(), "not d_model 16 or, a head's, head_dim 4"),
        (lambda d: d["steps"][1]["layers"][0]["cross"][0]["context"].pop(), "not d_model 16 or, a head's, head_dim 4"),
        (lambda d: d["steps"][3]["embedding"].append(0.5), "step 3 has a vector that is not d_model 16"),
        (lambda d: d["encoder_states"][0].pop(), "encoder states have different sizes"),
        (lambda d: [v.pop() for v in d["encoder_states"]], "encoder states of 15 numbers, not d_model 16"),
        (lambda d: d["cross_keys"][1][0].pop(), "cross_keys is not 2 × 4 × 4 × 4 numbers"),
        (lambda d: d["cross_values"][0][0][0].pop(), "cross_values is not 2 × 4 × 4 × 4 numbers"),
        (lambda d: d.pop("cross_values"), "cross_keys and cross_values do not match 'vectors': True"),
        (lambda d: d["steps"][2]["layers"][1].pop("joined"), "step 2 has layer vectors that do not match 'vectors'"),
        (lambda d: d["steps"][0].pop("position"), "step 0 has layer vectors that do not match 'vectors'"),
        (lambda d: d["steps"][0].update(hidden=[0.0] * 16), "an RNN's state vectors in a Transformer's trace"),
        (
            lambda d: d["steps"][1]["layers"][0]["cross"][1]["weights"].__setitem__(0, 0.9),
            "step 1, layer 1, head 2's weights sum to",
        ),
        (
            lambda d: d["steps"][2]["layers"][1]["self_weights"][0].__setitem__(0, 0.9),
            "head 1's self-attention weights sum to",
        ),
        (_scale_view_weight, "step 1's scores or weights are not the view's: layer 1/2, mean of 4 heads"),
        (_set(("view", "head"), 1), "step 0's scores or weights are not the view's: layer 1/2, head 2/4"),
        (_set(("view", "layer"), 2), "the view (layer 2, head None: 0-based) is out of range for 2 layers"),
        (_set(("view", "head"), 4), "the view (layer 0, head 4: 0-based) is out of range"),
        (lambda d: d.pop("view"), "schema"),
        (lambda d: d["checkpoint"].pop("architecture"), "schema"),
        (_set(("format_version",), 2), "schema"),
        (lambda d: d["steps"][1].pop("layers"), "schema"),
        (_set((*ARCHITECTURE, "heads"), 10**6), "schema"),
    ],
)
def test_a_transformer_trace_that_does_not_hold_together_is_refused_in_one_line(trace, edit, message):
    data = _data(trace)
    edit(data)
    with pytest.raises(AttnstepError, match=re.escape(message)) as info:
        reader.parse(json.dumps(data), origin="t.json")
    assert "\n" not in str(info.value) and str(info.value).startswith("t.json ")


def test_a_transformer_block_in_an_rnn_trace_is_refused(stepper, trace):
    transformer = _data(trace)
    for edit, message in [
        (_set(("view",), {"layer": 0, "head": None}), "view in the trace of an RNN"),
        (_set(("cross_keys",), transformer["cross_keys"]), "cross_keys in the trace of an RNN"),
        (_set(("steps", 0, "layers"), transformer["steps"][0]["layers"]), "step 0 has a Transformer's layers"),
        (_set(("steps", 1, "embedding"), [0.0] * 16), "step 1 has a Transformer's layers in the trace of an RNN"),
        (_set(("checkpoint", "architecture"), transformer["checkpoint"]["architecture"]), "architecture in a format"),
    ]:
        with pytest.raises(AttnstepError, match=message):
            reader.parse(_rnn_with(stepper, edit), origin="t.json")


def test_a_transformer_trace_keeps_its_own_end_token(trace):
    """Marian ends with </s>, not <eos>: the output leaves it out and a step after it is refused."""
    assert trace.steps[-1].chosen_token == "</s>" and trace.finished
    assert trace.output_tokens == ["▁The", "▁black", "▁cat"]
    data = _data(trace)
    assert data["output_tokens"] == ["▁The", "▁black", "▁cat"]
    data["steps"][1]["chosen"]["token"] = "</s>"
    data["steps"][2]["input"]["token"] = "</s>"
    with pytest.raises(AttnstepError, match="a step after </s>"):
        reader.parse(json.dumps(data), origin="t.json")


# --- which attention an alignment shows: --align-layer, --align-head --------------------------


def test_with_view_changes_the_alignment_and_the_plot_caption(trace):
    from attnstep.report.plot import alignment_svg
    from attnstep.trace.alignment import alignment, pharaoh_line

    default = alignment(trace)
    assert default.attention == "cross-attention, layer 1/2, mean of 4 heads"
    head = trace.with_view(View(1, 2))
    grid = alignment(head)
    assert grid.attention == "cross-attention, layer 2/2, head 3/4"
    assert grid.rows == tuple(s.layers[1].cross[2].weights for s in trace.steps) != default.rows
    assert "cross-attention, layer 2/2, head 3/4" in alignment_svg(head)
    assert "cross-attention, layer 1/2, mean of 4 heads" in alignment_svg(trace)
    assert "finished with &lt;/s&gt;" in alignment_svg(trace)  # Marian's own end token, not <eos>
    # each target token's link is its strongest source token in the viewed head
    links = [tuple(map(int, link.split("-"))) for link in pharaoh_line(head).split()]
    rows = grid.rows[:-1]  # </s> is left out
    assert links == [(max(range(4), key=row.__getitem__), j) for j, row in enumerate(rows)]


def test_an_rnn_alignment_says_its_one_attention(stepper):
    from attnstep.trace.alignment import alignment

    assert alignment(stepper.translate("un chien noir .")).attention == "general attention"


@pytest.mark.parametrize(
    "layer, head, view",
    [
        (None, None, None),
        (2, None, View(1, None)),  # the trace's head choice (its mean) kept
        (None, "3", View(0, 2)),  # the trace's layer kept
        (1, "mean", View(0, None)),
        (2, "4", View(1, 3)),
    ],
)
def test_align_options_choose_a_view_one_based(trace, layer, head, view):
    from attnstep.trace.alignment import ViewChoice

    assert ViewChoice(layer, head).view(trace.architecture, trace.view) == view
    assert ViewChoice(layer, head).applied(trace) == (trace if view is None else trace.with_view(view))


@pytest.mark.parametrize(
    "layer, head, message",
    [
        (0, None, "--align-layer must be 1 to 2 (the decoder's layers), not 0"),
        (3, None, "--align-layer must be 1 to 2 (the decoder's layers), not 3"),
        (None, "0", "--align-head must be a head, 1 to 4, or mean (their mean), not '0'"),
        (None, "5", "--align-head must be a head, 1 to 4, or mean (their mean), not '5'"),
        (None, "Mean", "not 'Mean'"),
        (None, "²", "not '²'"),
    ],
)
def test_align_options_out_of_range_are_refused(trace, layer, head, message):
    from attnstep.trace.alignment import ViewChoice, ViewChoiceError

    with pytest.raises(ViewChoiceError, match=re.escape(message)):
        ViewChoice(layer, head).view(trace.architecture, trace.view)


def test_dump_writes_each_trace_in_the_chosen_view(trace):
    from attnstep.commands.dump import json_format, viewed_format

    form = viewed_format(json_format(None, indent=False), View(1, 0))
    data = json.loads(form.render(1, trace))
    assert data["view"] == {"layer": 1, "head": 0}
    assert data["alignment"] == [list(s.layers[1].cross[0].weights) for s in trace.steps]
    assert reader.parse(json.dumps(data)) == trace.with_view(View(1, 0))
    assert form.render(2, None) == b"null\n"  # a blank input line


@pytest.fixture
def trace_file(trace, tmp_path):
    path = tmp_path / "t.json"
    path.write_bytes(writer.trace_file_bytes(trace))
    return path


def test_plot_draws_the_chosen_attention_and_says_which(trace_file, tmp_path):
    from tests.cli_helpers import invoke

    for options, label in [
        ((), "cross-attention, layer 1/2, mean of 4 heads"),
        (("--align-layer", 2), "cross-attention, layer 2/2, mean of 4 heads"),
        (("--align-head", 3), "cross-attention, layer 1/2, head 3/4"),
        (("--align-layer", 2, "--align-head", "mean"), "cross-attention, layer 2/2, mean of 4 heads"),
    ]:
        out = tmp_path / "a.svg"
        result = invoke("plot", trace_file, "-o", out, "--pieces", "--numbers", *options)
        assert result.exit_code == 0, result.output
        svg = out.read_text()
        assert f"tiny-marian · {label} · fr→en" in svg
    # the last: layer 2's mean, each weight in its cell
    trace = reader.load(trace_file).with_view(View(1))
    assert f">{trace.steps[0].weights[1]:.2f}<" in svg


@pytest.mark.parametrize(
    "options, message",
    [
        (("--align-layer", 3), "--align-layer must be 1 to 2 (the decoder's layers), not 3"),
        (("--align-head", "all"), "--align-head must be a head, 1 to 4, or mean (their mean), not 'all'"),
    ],
)
def test_plot_refuses_a_view_the_trace_lacks(trace_file, tmp_path, options, message):
    from tests.cli_helpers import invoke

    result = invoke("plot", trace_file, "-o", tmp_path / "a.svg", *options)
    assert result.exit_code == 2 and result.stderr == f"attnstep: error: {message}\n"
    assert not (tmp_path / "a.svg").exists()


def test_align_options_are_usage_errors_for_an_rnn(stepper, tiny_checkpoint, tmp_path):
    from tests.cli_helpers import invoke

    rnn = tmp_path / "rnn.json"
    rnn.write_bytes(writer.trace_file_bytes(stepper.translate("un chien noir .")))
    expected = (
        "attnstep: error: --align-layer and --align-head choose among a Transformer's layers and heads; "
        "this is an RNN model, with one attention\n"
    )
    result = invoke("plot", rnn, "-o", tmp_path / "a.svg", "--align-layer", 1)
    assert result.exit_code == 2 and result.stderr == expected
    for fmt in ("json", "pharaoh"):
        result = invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, "--format", fmt, "--align-head", "mean")
        assert result.exit_code == 2 and result.stderr == expected and result.stdout == ""
    lines = tmp_path / "in.txt"
    lines.write_text("un chien\n")
    result = invoke(
        "dump", "-i", lines, "--checkpoint", tiny_checkpoint, "-o", tmp_path / "o.jsonl", "--align-layer", 1
    )
    assert result.exit_code == 2 and result.stderr == expected and not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (("--format", "text"), "--align-layer and --align-head go with --format json, pharaoh or npz"),
    ],
)
def test_align_options_do_not_go_with_text(tiny_checkpoint, options, message):
    from tests.cli_helpers import invoke

    result = invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, "--align-layer", 1, *options)
    assert result.exit_code == 2 and result.stderr.startswith(f"attnstep: error: {message}")


def test_a_base_size_transformer_trace_of_100_steps_is_within_the_size_limit():
    """6 layers of 8 heads of 64, every vector, indented as dump writes one sentence: ~1 MB a step."""
    base = transformer_trace(layers=6, heads=8, head_dim=64)
    per_step = len(writer.trace_file_bytes(base)) / len(base.steps)
    assert per_step > 0.9e6
    assert 100 * per_step < reader.MAX_TRACE_BYTES


def _beamed(trace):
    """``trace`` as a beam search of width 2 found it: its steps, and at step 1 a pruned rival."""
    steps, score = [], 0.0
    for t, s in enumerate(trace.steps):
        score += s.chosen_logprob
        status = FINISHED if t == len(trace.steps) - 1 else ALIVE
        best = Hypothesis(
            None if t == 0 else 0, s.chosen_token, s.chosen_id, s.chosen_logprob, score, 0.0, status, s.weights
        )
        steps.append([replace(best, normalized=score / length_penalty(t + 1, 0.6))])
    rival = trace.steps[1].candidates[1]
    logprob = math.log(rival.prob)
    score = trace.steps[0].chosen_logprob + logprob
    steps[1].append(
        Hypothesis(
            0, rival.token, rival.id, logprob, score, score / length_penalty(2, 0.6), PRUNED, trace.steps[1].weights
        )
    )
    return replace(trace, beam=Beam(2, 0.6, 0, tuple(map(tuple, steps)), 0))


def test_a_transformer_beam_keeps_its_default_views_rows_in_any_view(trace):
    """The beam's hypotheses have only the view they were decoded with (the default); the steps, with
    every layer, can show another, and the file still reads."""
    beamed = _beamed(trace)
    assert reader.parse(writer.dumps(beamed)) == beamed
    other = beamed.with_view(View(1, 2))
    assert other.beam == beamed.beam and other.steps[0].weights != beamed.steps[0].weights
    assert reader.parse(writer.dumps(other)) == other
    assert reader.parse(writer.dumps(other, precision=3)).view == View(1, 2)
    assert reader.from_wire_dict(json.loads(writer.dumps_wire(other)), origin="the service") == other
    data = _data(other)
    data["beam"]["steps"][2][0]["weights"] = data["steps"][2]["weights"]  # head 3's row, not the default view's
    with pytest.raises(AttnstepError, match="the beam's best hypothesis is not the words and weights of the steps"):
        reader.parse(json.dumps(data), origin="t.json")


def test_a_transformer_beam_finishes_with_its_own_end_token(trace):
    data = _data(_beamed(trace))
    data["beam"]["steps"][1][1]["token"] = "</s>"  # a rival that ends with </s> but is not finished
    with pytest.raises(AttnstepError, match="a hypothesis of beam step 1 has a status or attention row"):
        reader.parse(json.dumps(data), origin="t.json")


# --- a real (tiny, seeded) Marian's traces, as dump writes them --------------------------------


@pytest.mark.slow  # the Marian folder is built with transformers and SentencePiece (~5 s)
def test_dump_of_a_marian_writes_format_3_in_the_chosen_view(marian_folder, tmp_path):
    from attnstep.trace.alignment import pharaoh_line
    from tests.cli_helpers import invoke

    def dumped(*options):
        out = tmp_path / "t.json"
        result = invoke("dump", "le chat noir", "--checkpoint", marian_folder, "--min-length", 4, "-o", out, *options)
        assert result.exit_code == 0, result.output
        jsonschema.validate(json.loads(out.read_text()), reader.schema())
        return reader.load(out)

    default = dumped()
    assert default.view == View(0) and default.architecture.layers == 2 and len(default.steps) >= 5
    assert default.steps[0].input_token == "<pad>" and default.finished  # Marian's own start and end tokens
    assert default.steps[-1].chosen_token == "</s>" and "</s>" not in default.output_tokens
    chosen = dumped("--align-layer", 2, "--align-head", 3)
    assert chosen == default.with_view(View(1, 2))
    assert [list(s.weights) for s in chosen.steps] == [list(s.layers[1].cross[2].weights) for s in default.steps]
    assert dumped("--no-vectors", "--align-head", "mean") == default.without_vectors()
    beam = dumped("--beam", 2, "--align-head", 1)
    assert beam.view == View(0, 0)  # a Marian beam search records its best hypothesis only (no beam block)
    links = invoke(
        "dump",
        "le chat noir",
        "--checkpoint",
        marian_folder,
        "--min-length",
        4,
        "--format",
        "pharaoh",
        "--align-layer",
        2,
    )
    assert links.stdout == pharaoh_line(default.with_view(View(1))) + "\n"
    refused = invoke("dump", "le chat noir", "--checkpoint", marian_folder, "--align-layer", 3)
    assert refused.exit_code == 2
    assert refused.stderr == "attnstep: error: --align-layer must be 1 to 2 (the decoder's layers), not 3\n"
