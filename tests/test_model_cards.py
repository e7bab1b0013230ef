"""Every shipped checkpoint translates its model card's examples exactly as the card says."""

from __future__ import annotations

import re

import pytest

from attnstep.data.paths import checkpoints_dir, shipped_names

_EXAMPLE = re.compile(r"^- (?P<source>.+?) → (?P<translation>.+)$")


def card_examples(name: str) -> list[tuple[str, str]]:
    text = (checkpoints_dir() / name / "README.md").read_text(encoding="utf-8")
    section = text.split("## Examples", 1)[1].split("\n## ", 1)[0]
    return [(m["source"], m["translation"]) for m in map(_EXAMPLE.match, section.splitlines()) if m]


@pytest.mark.parametrize("name", shipped_names())
def test_the_model_card_examples_translate_as_the_card_says(name):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper

    examples = card_examples(name)
    assert len(examples) >= 3, f"{name}'s model card lists no examples"
    stepper = Stepper(load_checkpoint(checkpoints_dir() / name), vectors=False)
    traces = stepper.translate_batch([source for source, _ in examples])
    assert [trace.translation for trace in traces] == [translation for _, translation in examples]
