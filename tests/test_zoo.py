"""The attention zoo as shipped: five small Multi30k models that differ only in how they attend."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from attnstep.data.paths import checkpoints_dir
from attnstep.trace import reader, writer

ZOO = ("dot", "general", "concat", "additive", "none")
SENTENCE = "Une voiture rouge est garée devant la maison."


@pytest.mark.parametrize("name", ZOO)
def test_each_zoo_model_loads_decodes_and_dumps_a_valid_trace(name):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper

    folder = checkpoints_dir() / "zoo" / name
    checkpoint = load_checkpoint(folder)
    assert checkpoint.config.attention == name
    trace = Stepper(checkpoint).translate(SENTENCE)
    assert trace.finished and trace.translation
    data = json.loads(writer.dumps(trace))
    jsonschema.validate(data, reader.schema())
    assert reader.parse(writer.dumps(trace)) == trace
    assert all(bool(step.weights) == (name != "none") for step in trace.steps)


@pytest.mark.parametrize("name", ZOO)
def test_each_zoo_model_is_small_float16_and_has_a_card_with_its_bleu_and_training_time(name):
    folder = checkpoints_dir() / "zoo" / name
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 6_000_000
    config = json.loads((folder / "config.json").read_text())
    assert config["storage_dtype"] == "float16"
    # the same data, sizes and schedule for all: only the attention differs
    settings = {k: v for k, v in config["provenance"]["settings"].items() if k != "model"}
    model = {k: v for k, v in config["model"].items() if k != "attention"}
    reference = json.loads((checkpoints_dir() / "zoo" / "general" / "config.json").read_text())
    assert settings == {k: v for k, v in reference["provenance"]["settings"].items() if k != "model"}
    assert model == {k: v for k, v in reference["model"].items() if k != "attention"}
    card = (folder / "README.md").read_text()
    assert re.search(r"test_2016_flickr \| \*\*\d+\.\d\d\*\*", card)
    assert "nrefs:1|case:lc|eff:no|tok:13a" in card and re.search(r"\*\*[\d.]+ min of training\*\*", card)
    assert f"--attention {name}" in card


def test_a_shipped_checkpoint_is_named_on_screen_by_its_place_under_checkpoints(tmp_path):
    from attnstep.data.paths import display_name

    assert display_name(checkpoints_dir() / "zoo" / "none") == "zoo/none"
    assert display_name(checkpoints_dir() / "fr-en") == "fr-en"
    assert display_name(tmp_path / "mine") == "mine"
