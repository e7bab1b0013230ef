"""Checkpoints load without executing code, and every kind of damage gives one clear error."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from attnstep.engine.checkpoint import load_checkpoint, save_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.errors import AttnstepError
from tests.conftest import build_tiny_checkpoint


@pytest.fixture
def ckpt(tmp_path):
    return build_tiny_checkpoint(tmp_path / "ck")


def _edit_weights(path, edit):
    weights = load_file(path / "model.safetensors")
    edit(weights)
    save_file(weights, path / "model.safetensors")


def test_roundtrip_gives_the_same_translation(ckpt, tmp_path):
    loaded = load_checkpoint(ckpt)
    again = tmp_path / "again"
    save_checkpoint(again, loaded.model, loaded.src_vocab, loaded.tgt_vocab, loaded.meta)
    a = Stepper(loaded).translate("un chien noir .")
    b = Stepper(load_checkpoint(again)).translate("un chien noir .")
    assert a.steps == b.steps


def test_fp16_storage_loads_as_float32(ckpt, tmp_path):
    loaded = load_checkpoint(ckpt)
    half = tmp_path / "half"
    save_checkpoint(half, loaded.model, loaded.src_vocab, loaded.tgt_vocab, loaded.meta, dtype=torch.float16)
    assert (half / "model.safetensors").stat().st_size < (ckpt / "model.safetensors").stat().st_size
    model = load_checkpoint(half).model
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_saving_replaces_atomically_and_keeps_the_model_card(ckpt):
    (ckpt / "README.md").write_text("card")
    loaded = load_checkpoint(ckpt)
    save_checkpoint(ckpt, loaded.model, loaded.src_vocab, loaded.tgt_vocab, loaded.meta)
    assert (ckpt / "README.md").read_text() == "card"
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["ck"]  # no staging directory left behind


def test_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("model.pt", "weights.bin", "thing"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(Payload()))
        with pytest.raises(AttnstepError, match="pickle"):
            load_checkpoint(path)
    assert not marker.exists()


def test_pickle_renamed_as_safetensors_is_refused_unexecuted(ckpt, tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (ckpt / "model.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(AttnstepError, match="corrupt"):
        load_checkpoint(ckpt)
    assert not marker.exists()


def _remove_file(ckpt):
    (ckpt / "tgt_vocab.json").unlink()


def _bad_version(ckpt):
    config = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**config, "format_version": 99}))


def _truncate(ckpt):
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])


def _garbage(ckpt):
    (ckpt / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")


def _missing_tensor(ckpt):
    _edit_weights(ckpt, lambda w: w.pop("decoder.W_c.weight"))


def _extra_tensor(ckpt):
    _edit_weights(ckpt, lambda w: w.update(stowaway=torch.zeros(3)))


def _wrong_shape(ckpt):
    _edit_weights(ckpt, lambda w: w.update({"decoder.W_c.weight": torch.zeros(3, 3)}))


def _wrong_dtype(ckpt):
    _edit_weights(ckpt, lambda w: w.update({"decoder.out_bias": w["decoder.out_bias"].to(torch.int64)}))


def _non_finite(ckpt):
    def poison(w):
        w["encoder.bridge.weight"][0, 0] = float("nan")

    _edit_weights(ckpt, poison)


def _vocab_mismatch(ckpt):
    tokens = json.loads((ckpt / "src_vocab.json").read_text())["tokens"]
    (ckpt / "src_vocab.json").write_text(json.dumps({"tokens": [*tokens, "extra"]}))


def _bad_config_json(ckpt):
    (ckpt / "config.json").write_text("{")


def _unknown_setting(ckpt):
    config = json.loads((ckpt / "config.json").read_text())
    config["model"]["layers"] = 7
    (ckpt / "config.json").write_text(json.dumps(config))


def _wrong_type(ckpt):
    config = json.loads((ckpt / "config.json").read_text())
    config["model"]["emb_dim"] = "wide"
    (ckpt / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "damage, message",
    [
        (_remove_file, "missing tgt_vocab.json"),
        (_bad_version, "format_version 99"),
        (_truncate, "truncated or corrupt"),
        (_garbage, "truncated or corrupt"),
        (_missing_tensor, "lacks tensors the model needs: decoder.W_c.weight"),
        (_extra_tensor, "does not use: stowaway"),
        (_wrong_shape, r"decoder.W_c.weight has shape \(3, 3\)"),
        (_wrong_dtype, "dtype I64"),
        (_non_finite, "NaN or infinite"),
        (_vocab_mismatch, "source vocabulary has"),
        (_bad_config_json, "cannot read"),
        (_unknown_setting, "unknown model settings: layers"),
        (_wrong_type, "emb_dim must be a positive integer"),
    ],
)
def test_damaged_checkpoint_gives_one_line_error(ckpt, damage, message):
    damage(ckpt)
    with pytest.raises(AttnstepError, match=message) as info:
        load_checkpoint(ckpt)
    assert "\n" not in str(info.value)


def test_missing_directory(tmp_path):
    with pytest.raises(AttnstepError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")


def _set_model(ckpt, **sizes):
    config = json.loads((ckpt / "config.json").read_text())
    config["model"].update(sizes)
    (ckpt / "config.json").write_text(json.dumps(config))


def test_sizes_are_checked_against_the_header_before_the_model_is_built(ckpt, monkeypatch):
    """A config.json whose sizes disagree with the weights is refused before any real tensor is allocated."""
    import attnstep.engine.checkpoint as module

    built_on = []
    real = module.Seq2Seq

    def recording(config):
        model = real(config)
        built_on.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(module, "Seq2Seq", recording)
    _set_model(ckpt, dec_hidden=2000)  # a real model of this size would take ~50 MB before the check
    with pytest.raises(AttnstepError, match=r"has shape .*config.json implies"):
        load_checkpoint(ckpt)
    assert built_on == ["meta"]


def test_impossible_sizes_are_one_line(ckpt):
    _set_model(ckpt, dec_hidden=10**9)
    with pytest.raises(AttnstepError, match="the model's sizes are impossible") as info:
        load_checkpoint(ckpt)
    assert "\n" not in str(info.value)


def test_a_skeleton_skips_the_random_fills_and_loading_imports_no_compiler(ckpt):
    """A model built for its shapes draws no random initial weights: on the meta device torch.nn.init's
    normal_ imported torch._dynamo, 1.6 s of the 1.7 s a first load took. Checked in a fresh process,
    where nothing else has imported it."""
    import subprocess
    import sys

    from attnstep.engine.device import skeleton

    with skeleton():
        embedding = torch.nn.Embedding(5, 3)
    assert embedding.weight.is_meta
    check = (
        "import sys, torch; from attnstep.engine.checkpoint import load_checkpoint; "
        f"load_checkpoint({str(ckpt)!r}); print('torch._dynamo' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout == "False\n"
