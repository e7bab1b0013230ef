"""JoeyNMT and OpenNMT-py models, as the toolkits trained and saved them, reproduced by attnstep.

The fixtures (tests/fixtures/toolkits/, rebuilt by make_fixtures.py there with the toolkits installed)
hold each toolkit's own greedy translations of ten sentences and its attention matrices; attnstep,
with no toolkit installed, must produce every token and every attention weight within 1e-5. The
hostile checkpoints are made here: they must be refused in one line with nothing of them run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from attnstep.engine.joeynmt_checkpoint import load_joeynmt
from attnstep.engine.marian_checkpoint import load_any
from attnstep.engine.opennmt_checkpoint import load_opennmt
from attnstep.engine.stepper import Stepper
from attnstep.engine.toolkit_checkpoint import ToolkitCheckpoint
from attnstep.errors import AttnstepError
from tests.cli_helpers import invoke

FIXTURES = Path(__file__).parent / "fixtures" / "toolkits"
JOEYNMT = ["joeynmt_gru_bahdanau", "joeynmt_lstm_luong"]
OPENNMT = ["opennmt_brnn_lstm", "opennmt_gru_mlp"]
TOLERANCE = 1e-5


def expected(name: str) -> list[dict]:
    return json.loads((FIXTURES / name / "expected.json").read_text(encoding="utf-8"))["sentences"]


@functools.cache  # read-only fixtures: each loaded once per session
def load(name: str) -> ToolkitCheckpoint:
    folder = FIXTURES / name
    if name in JOEYNMT:
        return load_joeynmt(folder)
    return load_opennmt(next(p for p in sorted(folder.iterdir()) if p.suffix == ".pt"))


@torch.no_grad()
def family_greedy(checkpoint: ToolkitCheckpoint, ids: list[int], steps: int) -> tuple[list[int], list[list[float]]]:
    """Greedy decoding by the family's own step, as the toolkits do it: the argmax, <s> and <pad> never chosen
    (JoeyNMT bans them; the trained models never want them), until </s> or ``steps`` steps."""
    model = checkpoint.model
    start, end, pad = model.specials
    memory, state = model.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
    prev = torch.tensor([start])
    tokens, weights = [], []
    for _ in range(steps):
        output, state = model.step(prev, state, memory)
        logits = output.logits.clone()  # (1, V)
        logits[:, [start, pad]] = float("-inf")
        prev = logits.argmax(dim=-1)  # (1,)
        tokens.append(int(prev))
        weights.append(output.weights[0].tolist())
        if tokens[-1] == end:
            break
    return tokens, weights


@pytest.mark.parametrize("name", JOEYNMT + OPENNMT)
def test_the_source_is_cut_as_the_toolkit_cut_it(name):
    codec = load(name).codec
    for sentence in expected(name):
        assert [piece[2] for piece in codec.source_pieces(sentence["source"])] == sentence["source_ids"]


@pytest.mark.parametrize("name", JOEYNMT + OPENNMT)
def test_every_token_and_attention_weight_of_the_toolkit(name):
    checkpoint = load(name)
    for sentence in expected(name):
        tokens, weights = family_greedy(checkpoint, sentence["source_ids"], len(sentence["ids"]))
        assert tokens == sentence["ids"], sentence["source"]
        assert len(weights) == len(sentence["attention"])
        for ours, theirs in zip(weights, sentence["attention"]):
            assert ours == pytest.approx(theirs, abs=TOLERANCE)


@pytest.mark.parametrize("name", JOEYNMT + OPENNMT)
def test_the_stepper_traces_the_toolkits_translations(name):
    """Through the engine: the stepper's greedy traces, batched, as translate, dump and the app see them;
    JoeyNMT's lengths from its config (testing.min_output_length 1, max_output_length 30), OpenNMT-py's
    from the -max_length 30 its translate was given (they are not in the checkpoint)."""
    checkpoint = load(name)
    stepper = Stepper(checkpoint) if name in JOEYNMT else Stepper(checkpoint, max_length=30)
    sentences = expected(name)
    for trace, sentence in zip(stepper.translate_batch([s["source"] for s in sentences]), sentences):
        assert [step.chosen_id for step in trace.steps] == sentence["ids"]
        assert [step.chosen_token for step in trace.steps] == sentence["tokens"]
        for step, theirs in zip(trace.steps, sentence["attention"]):
            assert list(step.weights) == pytest.approx(theirs, abs=TOLERANCE)
        assert trace.translation_text == sentence["translation"]


# --- hostile files ---------------------------------------------------------------------------------


class _RunsCommand:
    """Unpickled by a full unpickler, this runs os.system: the marker file says whether it did."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _joeynmt_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(FIXTURES / "joeynmt_gru_bahdanau", folder, symlinks=True)
    return folder


def test_a_joeynmt_checkpoint_asking_for_os_system_is_refused_unrun(tmp_path):
    folder, marker = _joeynmt_copy(tmp_path), tmp_path / "ran"
    (folder / "best.ckpt").unlink()
    torch.save({"model_state": _RunsCommand(marker)}, folder / "best.ckpt")
    with pytest.raises(AttnstepError, match=r"posix\.system|os\.system") as caught:
        load_joeynmt(folder)
    assert "\n" not in str(caught.value)
    assert not marker.exists()


def test_an_opennmt_checkpoint_asking_for_os_system_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"opt": argparse.Namespace(), "vocab": {}, "model": _RunsCommand(marker)}, tmp_path / "model_step_1.pt")
    with pytest.raises(AttnstepError, match=r"posix\.system|os\.system"):
        load_opennmt(tmp_path / "model_step_1.pt")
    assert not marker.exists()


def test_a_namespace_pickle_presented_as_a_joeynmt_checkpoint_is_refused(tmp_path):
    folder = _joeynmt_copy(tmp_path)
    (folder / "best.ckpt").unlink()
    torch.save({"model_state": {}, "opt": argparse.Namespace(rnn_type="GRU")}, folder / "best.ckpt")
    with pytest.raises(AttnstepError, match=r"argparse\.Namespace"):
        load_joeynmt(folder)


def test_a_yaml_with_python_tags_is_refused_unrun(tmp_path):
    folder, marker = _joeynmt_copy(tmp_path), tmp_path / "ran"
    (folder / "config.yaml").write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(AttnstepError, match=r"python/object/apply:os\.system"):
        load_joeynmt(folder)
    assert not marker.exists()


# --- through load_any and the command line -------------------------------------------------------


def _checkpoint_argument(name: str) -> Path:
    """What a user passes to --checkpoint: the JoeyNMT folder, OpenNMT-py's .pt (or its .safetensors)."""
    folder = FIXTURES / name
    if name in JOEYNMT:
        return folder
    weights = sorted(p for p in folder.iterdir() if p.suffix == ".safetensors")
    return weights[0] if weights else next(p for p in folder.iterdir() if p.suffix == ".pt")


@pytest.mark.parametrize("name", JOEYNMT + OPENNMT)
def test_load_any_recognises_the_toolkits_checkpoints(name):
    assert isinstance(load_any(_checkpoint_argument(name)), ToolkitCheckpoint)


def test_a_joeynmt_ckpt_file_loads_its_folder():
    checkpoint = load_any(FIXTURES / "joeynmt_lstm_luong" / "best.ckpt")
    assert isinstance(checkpoint, ToolkitCheckpoint) and checkpoint.meta["weights"] == "best.ckpt"


@pytest.mark.slow  # the command line in-process, about a second a model
@pytest.mark.parametrize("name", JOEYNMT + OPENNMT)
def test_dump_writes_the_toolkits_translations(name, tmp_path):
    sentences = expected(name)
    source = tmp_path / "in.txt"
    source.write_text("".join(s["source"] + "\n" for s in sentences), encoding="utf-8")
    result = invoke("dump", "-i", source, "--format", "text", "--checkpoint", _checkpoint_argument(name))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [s["translation"] for s in sentences]


def test_dump_refuses_a_hostile_checkpoint_in_one_line(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"opt": argparse.Namespace(), "vocab": {}, "model": _RunsCommand(marker)}, tmp_path / "model_step_1.pt")
    result = invoke("dump", "--checkpoint", tmp_path / "model_step_1.pt", "Un chat.")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "refusing" in result.stderr
    assert not marker.exists()


def test_a_plain_pickle_as_a_pt_is_refused_unrun(tmp_path):
    """Not torch.save's zip: the legacy pickle format goes through the same weights-only unpickler."""
    import pickle

    marker = tmp_path / "ran"
    (tmp_path / "model.pt").write_bytes(pickle.dumps(_RunsCommand(marker)))
    with pytest.raises(AttnstepError, match="refusing"):
        load_any(tmp_path / "model.pt")
    assert not marker.exists()


def test_a_joeynmt_transformer_is_refused_naming_it(tmp_path):
    folder = _joeynmt_copy(tmp_path)
    config = (folder / "config.yaml").read_text()
    (folder / "config.yaml").write_text(config.replace("type: recurrent", "type: transformer"))
    with pytest.raises(AttnstepError, match="type is transformer"):
        load_joeynmt(folder)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("copy_attn", True),
        ("coverage_attn", True),
        ("context_gate", "both"),
        ("global_attention_function", "sparsemax"),
    ],
)
def test_opennmt_options_attnstep_does_not_compute_are_refused_by_name(tmp_path, option, value):
    source = FIXTURES / "opennmt_brnn_lstm"
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(source / "model_step_400.pt", weights_only=True)
    setattr(checkpoint["opt"], option, value)
    for model in source.glob("spm.*.model"):
        shutil.copy(model, tmp_path / model.name)
    torch.save(checkpoint, tmp_path / "model_step_400.pt")
    with pytest.raises(AttnstepError, match=f"{option} {value} is not done by attnstep"):
        load_opennmt(tmp_path / "model_step_400.pt")


def test_an_sru_is_refused_by_name(tmp_path):
    source = FIXTURES / "opennmt_gru_mlp"
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(source / "model_step_400.pt", weights_only=True)
    checkpoint["opt"].rnn_type = "SRU"
    torch.save(checkpoint, tmp_path / "model_step_400.pt")
    with pytest.raises(AttnstepError, match="rnn_type SRU"):
        load_opennmt(tmp_path / "model_step_400.pt")


def test_source_words_are_what_the_user_typed():
    """Pieces gather into words ("@@" goes on, "▁" starts one); JoeyNMT's </s> is a word of its own, and a
    lower-casing model's tokens keep the case they were typed in."""
    cases = {
        "joeynmt_gru_bahdanau": ["Deux", "enfants", "jouent", "dans", "le", "parc.", "</s>"],
        "joeynmt_lstm_luong": ["Deux", "enfants", "jouent", "dans", "le", "parc", ".", "</s>"],
        "opennmt_brnn_lstm": ["Deux", "enfants", "jouent", "dans", "le", "parc."],
    }
    for name, words in cases.items():
        stepper = Stepper(load(name))
        sentence = (
            "Deux enfants jouent dans le parc ."
            if name == "joeynmt_lstm_luong"
            else "Deux enfants jouent dans le parc."
        )
        trace = stepper.translate(sentence)
        assert [w.text for w in trace.words] == words, name
        assert (trace.source[-1].token == "</s>") == (name in JOEYNMT)
    lowered = Stepper(load("joeynmt_lstm_luong")).translate("Deux chiens .").source
    assert (lowered[0].surface, lowered[0].token) == ("Deux", "deux")


def test_bpe_pieces_split_further_where_joeynmt_s_vocabulary_lacks_them():
    """JoeyNMT gives subword-nmt its vocabulary: a merge whose result the model does not know is undone."""
    codec = load("joeynmt_gru_bahdanau").codec
    pieces = codec.source.pieces("enfants")
    assert all(p in codec.src_vocab for p in pieces)
    assert codec.source.join(pieces) == "enfants"


@pytest.mark.parametrize("name", JOEYNMT + OPENNMT)
def test_a_toolkit_models_trace_reads_back(name):
    """dump's JSON of a toolkit model is a valid trace (replay, plot, pharaoh and serve read it back)."""
    from attnstep.trace import reader, writer

    trace = Stepper(load(name)).translate(expected(name)[1]["source"])
    again = reader.parse(writer.dumps(trace))
    assert again.checkpoint == trace.checkpoint
    assert [s.weights for s in again.steps] == pytest.approx([s.weights for s in trace.steps], abs=1e-6)
    assert again.subword == (name != "opennmt_gru_mlp" and name != "joeynmt_lstm_luong")


def test_joeynmt_s_translation_lengths_are_the_stepper_s(tmp_path):
    """min_output_length (default 1) and max_output_length from config.yaml's testing section; without one,
    JoeyNMT's 1.5 × the source is left to attnstep's own 2 × + 10."""
    stepper = Stepper(load("joeynmt_gru_bahdanau"))
    assert (stepper.min_length, stepper.max_length) == (1, 30)
    assert Stepper(load("joeynmt_gru_bahdanau"), max_length=12).max_length == 12
    folder = _joeynmt_copy(tmp_path)
    config = (folder / "config.yaml").read_text()
    (folder / "config.yaml").write_text(config.replace("max_output_length: 30", "max_output_length: -1"))
    checkpoint = load_joeynmt(folder)
    assert (checkpoint.min_length, checkpoint.max_length) == (1, None)


def _broken(folder: Path, change: str) -> None:
    config = folder / "config.yaml"
    if change == "truncated":
        data = (folder / "200.ckpt").read_bytes()
        (folder / "best.ckpt").unlink()
        (folder / "best.ckpt").write_bytes(data[: len(data) // 2])
    elif change == "vocabulary":
        (folder / "src_vocab.txt").write_text("<pad>\n<unk>\n<s>\n</s>\nle\n")
    elif change == "yaml":
        config.write_text("model: [unclosed\n")
    elif change == "codes":
        (folder / "codes.fr").unlink()
    elif change == "sizes":
        config.write_text(config.read_text().replace("hidden_size: 16", "hidden_size: 17"))
    elif change == "missing":
        config.write_text(config.read_text().replace("hidden_size: 16", "size: 16"))


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("truncated", "truncated or corrupt"),
        ("vocabulary", "must start with <unk> <pad> <s> </s>"),
        ("yaml", "refusing"),
        ("codes", "lacks codes.fr"),
        ("sizes", "has shape"),
        ("missing", "hidden_size is missing"),
    ],
)
def test_a_broken_joeynmt_folder_is_one_line(tmp_path, change, said):
    folder = _joeynmt_copy(tmp_path)
    _broken(folder, change)
    with pytest.raises(AttnstepError, match=re.escape(said)) as caught:
        load_joeynmt(folder)
    assert "\n" not in str(caught.value)


def test_a_non_finite_opennmt_weight_is_refused(tmp_path):
    source = FIXTURES / "opennmt_gru_mlp"
    shutil.copy(source / "model_step_400.pt", tmp_path / "model_step_400.pt")
    from safetensors.torch import load_file, save_file

    weights = load_file(source / "model_step_400.safetensors")
    weights["generator.bias"][0] = float("nan")
    save_file(weights, tmp_path / "model_step_400.safetensors")
    with pytest.raises(AttnstepError, match="NaN or infinite"):
        load_opennmt(tmp_path / "model_step_400.safetensors")


@pytest.mark.slow  # the app in a headless terminal
@pytest.mark.parametrize("name", JOEYNMT + OPENNMT)
def test_the_app_steps_a_toolkit_model(name):
    """Through the whole decoding and back, by sub-step, in the word view and with numbers, and on every
    panel: the app the CLI builds, over a toolkit model's stepper, never fails."""
    from tests.tui_helpers import app_on, async_test, settle

    stepper = Stepper(load(name))

    @async_test
    async def run():
        app = app_on(stepper, sentence=expected(name)[1]["source"])
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            for key in ["right", "right", "s", "s", "v", "numbersign", "e", "left", "v", *["tab"] * 6, "r"]:
                await pilot.press(key)
                await settle(pilot)
            assert app.return_code is None and app.cursor is not None
            assert len(app.cursor.trace.steps) == len(expected(name)[1]["ids"])
            spaced = name in ("joeynmt_lstm_luong", "opennmt_gru_mlp")  # trained on pre-tokenized words
            assert ("the model reads tokens separated by spaces" in app.status.plain) == spaced
            assert SCORERS[name] in app.status.plain

    run()


# --- an LSTM's cell state and a stacked RNN's layers ---------------------------------------------

STACKED_LSTMS = ["joeynmt_lstm_luong", "opennmt_brnn_lstm"]  # two-layer LSTMs; the GRUs have one layer


@pytest.mark.parametrize("name", STACKED_LSTMS)
@torch.no_grad()
def test_every_layer_s_h_t_and_c_t_are_recorded(name):
    """Layer 2's (h_t, c_t), recomputed by its LSTM cell from the recorded layer 1 h_t and layer 2's recorded
    state of the step before (the encoder's bridge at step 0), equal the recorded ones; the top is h_t's."""
    checkpoint = load(name)
    model = checkpoint.model
    trace = Stepper(checkpoint).translate(expected(name)[2]["source"])
    ids = [t.id for t in trace.source]
    _, state = model.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
    h, c = state.hidden[:, 1], state.cell[:, 1]  # (1, H) each: layer 2's first state
    for step in trace.steps:
        assert len(step.layer_states) == len(step.layer_cells) == 2
        assert step.layer_states[-1] == step.hidden and step.layer_cells[-1] == step.cell
        below = torch.tensor([list(step.layer_states[0])])  # (1, H)
        h, c = model.decoder.cells[1](below, (h, c))  # (1, H) each
        assert h[0].tolist() == pytest.approx(list(step.layer_states[1]), abs=1e-6)
        assert c[0].tolist() == pytest.approx(list(step.layer_cells[1]), abs=1e-6)
        h, c = torch.tensor([list(step.layer_states[1])]), torch.tensor([list(step.layer_cells[1])])


@pytest.mark.parametrize("name", JOEYNMT + OPENNMT)
def test_the_layers_and_cells_go_through_json_npz_and_no_vectors(name):
    from attnstep.trace import reader, writer
    from attnstep.trace.arrays import trace_arrays

    trace = Stepper(load(name), beam=2).translate(expected(name)[3]["source"])  # the beam records them alike
    lstm, layers = name in STACKED_LSTMS, 2 if name in STACKED_LSTMS else 1
    assert all((s.cell is not None) == lstm and len(s.layer_states) == (2 if lstm else 0) for s in trace.steps)
    for again in (reader.parse(writer.dumps(trace)), reader.from_wire_dict(writer.to_wire_dict(trace), origin="wire")):
        assert [(s.cell, s.layer_states, s.layer_cells) for s in again.steps] == [
            (s.cell, s.layer_states, s.layer_cells) for s in trace.steps
        ]
    plain = trace.without_vectors()
    assert all(s.cell is None and s.layer_states == s.layer_cells == () for s in plain.steps)
    assert reader.parse(writer.dumps(plain)).steps == plain.steps
    arrays = trace_arrays(trace)
    H = len(trace.steps[0].hidden)
    assert ("cells" in arrays) == lstm and ("layer_states" in arrays) == (layers > 1)
    if lstm:
        assert arrays["layer_cells"].shape == (len(trace.steps), 2, H)
        assert arrays["cells"][-1].tolist() == list(trace.steps[-1].cell)


def test_a_trace_whose_layers_do_not_end_with_h_t_is_refused():
    from attnstep.trace import reader, writer

    data = writer.to_json_dict(
        Stepper(load("joeynmt_lstm_luong")).translate(expected("joeynmt_lstm_luong")[0]["source"])
    )
    data["steps"][1]["layer_states"].reverse()
    with pytest.raises(AttnstepError, match="layer_states are not two or more layers ending with its h_t"):
        reader.parse(json.dumps(data))


def test_the_rnn_stage_s_narration_names_the_lstm_s_c_t():
    from attnstep.tui.stages import View, narrate

    trace = Stepper(load("joeynmt_lstm_luong")).translate(expected("joeynmt_lstm_luong")[0]["source"])
    said = narrate(View(trace, 1, stage=1))
    assert "RNN (an LSTM: h_t and c_t)" in said and "→ h_t and c_t." in said and "Its 2 layers are stacked" in said
    gru = Stepper(load("joeynmt_gru_bahdanau")).translate(expected("joeynmt_gru_bahdanau")[0]["source"])
    assert "LSTM" not in narrate(View(gru, 1, stage=1)) and "stacked" not in narrate(View(gru, 1, stage=1))


@pytest.mark.slow  # the app in a headless terminal
def test_the_decoder_panel_shows_c_t_and_the_lower_layer():
    from tests.tui_helpers import app_on, async_test, settle

    @async_test
    async def run():
        app = app_on(Stepper(load("joeynmt_lstm_luong")), sentence=expected("joeynmt_lstm_luong")[1]["source"])
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("right")
            await settle(pilot)
            lines = app.panels["decoder"].plain_lines
            labels = [line[:11].strip() for line in lines]
            assert labels[1:5] == ["h_t", "c_t", "h_t (1)", "c_t (1)"], lines
            assert "layer 2: the top" in lines[1] and "the LSTM's cell state" in lines[2]
            assert any(line.startswith("W_c") and "h̃_t = tanh(W_c[h_t; C_t] + b_c), 36 → 12" in line for line in lines)
            assert any(line.startswith("W_s") and "p(y_t) = softmax(W_s h̃_t), 12 →" in line for line in lines)

    run()


# --- the toolkits' own names ---------------------------------------------------------------------

SCORERS = {
    "joeynmt_gru_bahdanau": "JoeyNMT bahdanau (MLP)",
    "joeynmt_lstm_luong": "JoeyNMT luong (bilinear)",
    "opennmt_brnn_lstm": "OpenNMT-py general",
    "opennmt_gru_mlp": "OpenNMT-py mlp",
}


@pytest.mark.parametrize("name", JOEYNMT + OPENNMT)
def test_a_toolkit_scorer_is_named_as_its_toolkit_names_it(name):
    """Not as the attnstep scorer it computes the same as ("Luong concat" for bahdanau and mlp), in the trace
    and in its JSON; an attnstep model's trace has no such name, and its JSON no 'scorer'."""
    from attnstep.trace import reader, writer

    trace = Stepper(load(name)).translate(expected(name)[0]["source"])
    assert trace.checkpoint.scorer_name == SCORERS[name]
    assert reader.parse(writer.dumps(trace)).checkpoint == trace.checkpoint


LAST_LAYERS = {  # h~_t and the output layer, as decoder.py's docstring says each toolkit computes them
    "joeynmt_gru_bahdanau": ("h̃_t = tanh(W_c[h_t; C_t] + b_c)", "p(y_t) = softmax(W_s h̃_t)"),
    "opennmt_brnn_lstm": ("h̃_t = tanh(W_c[C_t; h_t])", "p(y_t) = softmax(W_s h̃_t + b_s)"),
    "opennmt_gru_mlp": ("h̃_t = W_c[C_t; h_t] + b_c", "p(y_t) = softmax(W_s h̃_t + b_s)"),
}


@pytest.mark.parametrize("name", sorted(LAST_LAYERS))
def test_the_feed_forward_stage_says_the_toolkit_s_formula(name):
    from attnstep.tui.stages import View, narrate

    trace = Stepper(load(name)).translate(expected(name)[0]["source"])
    attentional, output = LAST_LAYERS[name]
    assert (trace.checkpoint.attentional_formula, trace.checkpoint.output_formula) == (attentional, output)
    feed_forward = 1 + [s.key for s in View(trace, 1).stages].index("feed_forward")
    assert f"The feed-forward layer {attentional}, " in narrate(View(trace, 1, stage=feed_forward))


def test_an_attnstep_trace_has_no_toolkit_scorer_name(tiny_checkpoint):
    from attnstep.engine.stepper import load_stepper
    from attnstep.trace import writer

    trace = load_stepper(tiny_checkpoint).translate("un chien")
    assert trace.checkpoint.scorer == "" and trace.checkpoint.scorer_name == "Luong general"
    assert not {"scorer", "attentional_formula", "output_formula"} & set(writer.to_json_dict(trace)["checkpoint"])


# --- the end token -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["joeynmt_gru_bahdanau", "opennmt_brnn_lstm"])  # BPE and SentencePiece pieces
def test_the_app_reads_a_toolkit_s_end_token_as_the_end(name):
    """</s> ends the output line once, is a word of its own in the word view's grid, and is not called a piece."""
    from attnstep.trace.word_view import word_alignment
    from attnstep.tui.stages import output_pieces, output_token, quote

    trace = next(t for t in Stepper(load(name)).translate_batch([s["source"] for s in expected(name)]) if t.finished)
    assert trace.end_token == "</s>"
    pieces = output_pieces(trace)
    assert pieces[-1] == " </s>" and all("</s>" not in p and "<eos>" not in p for p in pieces[:-1])
    assert len(pieces) == len(trace.steps)
    assert word_alignment(trace, eos=True)[-1][0].text == "</s>"
    assert output_token(trace, "</s>") == quote("</s>")
