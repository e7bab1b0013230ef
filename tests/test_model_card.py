"""Example sentences read from a checkpoint's model card."""

import json

from attnstep.data.model_card import DEFAULT_EXAMPLES, model_card_examples, source_language


def test_examples_come_from_the_examples_section(tmp_path):
    (tmp_path / "README.md").write_text(
        '# Model\n- not an example\n## Examples\n- `Un chien noir.` → A black dog.\n* "Deux enfants."\n\n## Data\n- Multi30k\n',
        encoding="utf-8",
    )
    assert model_card_examples(tmp_path) == ("Un chien noir.", "Deux enfants.")


def test_without_a_card_the_defaults(tmp_path):
    assert model_card_examples(tmp_path) == DEFAULT_EXAMPLES
    (tmp_path / "README.md").write_bytes(b"\xff\xfe not utf-8")
    assert model_card_examples(tmp_path) == DEFAULT_EXAMPLES


def test_the_source_language_comes_from_the_config_or_an_opus_mt_name(tmp_path):
    german = tmp_path / "de-en"
    german.mkdir()
    (german / "config.json").write_text(json.dumps({"format_version": 2, "source_language": "de"}))
    assert source_language(german) == "German"
    assert model_card_examples(german) == ()  # the French examples would not suit it
    marian = tmp_path / "opus-mt-fr-en"
    marian.mkdir()
    assert source_language(marian) == "French" and model_card_examples(marian) == DEFAULT_EXAMPLES
    (german / "config.json").write_text(json.dumps({"source_language": "[b]sw"}))
    assert source_language(german) == "[b]sw"  # a code without a name is shown as it is (as text)
    assert source_language(tmp_path) == ""
