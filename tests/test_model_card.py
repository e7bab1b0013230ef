"""Example sentences read from a checkpoint's model card."""

from attnstep.data.model_card import DEFAULT_EXAMPLES, model_card_examples


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
