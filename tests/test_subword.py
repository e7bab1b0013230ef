"""Subword (format 2) checkpoints: pieces with byte fallback, the two views of a trace, and refusals."""

from __future__ import annotations

import json
import shutil
import unicodedata
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.errors import AttnstepError
from attnstep.text.codec import split_words
from attnstep.text.subword import SubwordModel, is_byte_piece, train_subword
from attnstep.text.words import UNK_ID
from attnstep.trace.forcing import forced_word_start
from attnstep.trace.reader import parse
from attnstep.trace.word_view import word_alignment, word_weights
from attnstep.trace.writer import dumps
from tests.conftest import SUBWORD_FRENCH


@pytest.fixture(scope="module")
def subword_stepper(subword_checkpoint):
    return Stepper(load_checkpoint(subword_checkpoint))


@pytest.fixture(scope="module")
def source_model(subword_checkpoint) -> SubwordModel:
    return SubwordModel.load(subword_checkpoint / "source.spm")


# Text a teacher might type: accents, elisions, hyphens, digits, emoji, CJK, and punctuation.
_TEXT = st.text(
    alphabet=st.sampled_from([*"abcdeéèêàçôùœ ÉÇ'’-0123456789.,!?«»", "😀", "東", "京", "ß", "Ω", "ﬁ", "\u00a0"]),
    min_size=1,
    max_size=40,
)


def _normalized(text: str) -> str:
    """What SentencePiece's nmt_nfkc rule makes of text: NFKC, runs of whitespace as one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@settings(max_examples=150, deadline=None)
@given(_TEXT)
def test_detokenize_of_tokenize_is_the_normalized_text(source_model, text):
    assert source_model.decode(source_model.encode(text)) == _normalized(text)


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(categories=("L", "M", "N", "P", "S", "Zs")), min_size=1, max_size=30))
def test_no_printable_input_becomes_unk(source_model, text):
    assert UNK_ID not in source_model.encode(text)


def test_unseen_characters_are_spelled_as_byte_pieces(subword_stepper):
    trace = subword_stepper.translate("Tōkyō 東京 😀")
    tokens = [t.token for t in trace.source]
    assert "<unk>" not in tokens
    # 😀 is four UTF-8 bytes, none of which the tiny model has a piece for.
    assert tokens.count("<0xF0>") == 1 and sum(is_byte_piece(t) for t in tokens) >= 4 + 3 + 3
    assert [w.text for w in trace.source_words] == ["Tōkyō", "東京", "😀"]


def test_source_pieces_point_to_the_users_words(subword_stepper):
    sentence = "L'accord sur la zone économique européenne."
    trace = subword_stepper.translate(sentence)
    words = trace.source_words
    assert [w.text for w in words] == sentence.split()
    assert len(trace.source) > len(words)  # some words are several pieces
    for index, word in enumerate(words):
        pieces = trace.source[word.start : word.end]
        assert {p.word for p in pieces} == {index}
        assert "".join(p.surface for p in pieces).replace("▁", "") == word.text


def test_output_words_group_the_steps_and_translation_is_detokenized(subword_stepper):
    trace = subword_stepper.translate("Je suis étudiant.")
    pieces = trace.output_tokens
    spans = trace.target_words
    assert spans[0].start == 0 and spans[-1].end == len(pieces)
    assert all(a.end == b.start for a, b in pairwise(spans))
    assert " ".join(w.text for w in spans) == trace.translation
    assert "▁" not in trace.translation


def test_word_view_sums_piece_weights_and_averages_target_pieces(subword_stepper):
    trace = subword_stepper.translate("L'accord sur la zone économique européenne a été signé en août 1992.")
    step = trace.steps[0]
    summed = word_weights(trace, step.weights)
    for value, word in zip(summed, trace.source_words):
        assert value == pytest.approx(sum(step.weights[word.start : word.end]), abs=1e-12)
    assert sum(summed) == pytest.approx(1.0, abs=1e-6)
    rows = word_alignment(trace)
    assert [word for word, _ in rows] == list(trace.target_words)
    for word, row in rows:
        pieces = [word_weights(trace, s.weights) for s in trace.steps[word.start : word.end]]
        expected = [sum(column) / len(pieces) for column in zip(*pieces)]
        assert row == pytest.approx(expected, abs=1e-12)


def test_trace_round_trips_and_validates_against_the_schema(subword_stepper):
    import jsonschema

    from attnstep.trace.reader import schema

    trace = subword_stepper.translate("Une voiture rouge est garée devant la maison.")
    data = json.loads(dumps(trace))
    jsonschema.validate(data, schema())
    assert data["format_version"] == 3 and data["checkpoint"]["tokenizer"] == "sentencepiece"
    again = parse(dumps(trace))
    assert again == trace


def test_a_version_1_trace_still_replays(stepper):
    """The JSON that attnstep wrote before format 2: no words, no tokenizer, no word index."""
    trace = stepper.translate("une voiture rouge .")
    data = json.loads(dumps(trace))
    data["format_version"] = 1
    for key in ("words", "output_words"):
        del data[key]
    del data["checkpoint"]["tokenizer"]
    for token in data["source"]:
        del token["word"]
    old = parse(json.dumps(data))
    assert [w.text for w in old.source_words] == [t.surface for t in trace.source]
    assert old.translation == trace.translation
    assert old.steps == trace.steps


def test_a_version_2_trace_with_words_that_do_not_cover_the_source_is_refused(subword_stepper):
    data = json.loads(dumps(subword_stepper.translate("Je suis étudiant.")))
    data["words"][-1]["end"] -= 1
    with pytest.raises(AttnstepError, match="cover"):
        parse(json.dumps(data))


def test_forcing_a_typed_word_finds_its_word_initial_piece(subword_stepper):
    trace = subword_stepper.translate("Je suis étudiant.")
    forced = subword_stepper.force(trace, 0, "I")
    assert forced.steps[0].chosen_token == "▁I" and forced.steps[0].forced


def test_forcing_a_typed_word_of_several_pieces_forces_each_in_turn(subword_stepper):
    trace = subword_stepper.translate("Je suis étudiant.")
    forced = subword_stepper.force(trace, 1, "agreement")  # no piece "▁agreement": "▁a" "g" "r" "e" "e" "m" "ent"
    pieces = subword_stepper.codec.tgt_model.encode("agreement")
    assert len(pieces) > 1
    assert forced.steps[:1] == trace.steps[:1]
    assert [s.chosen_id for s in forced.steps[1 : 1 + len(pieces)]] == pieces
    assert all(s.forced for s in forced.steps[1 : 1 + len(pieces)]) and not forced.steps[1 + len(pieces)].forced
    assert forced.target_words[1].text.startswith("agreement")  # the model may go on with the word
    assert forced_word_start(forced, len(pieces)) == 1  # u undoes the word whole, from its first piece


def test_forcing_a_blank_word_is_refused(subword_stepper):
    with pytest.raises(AttnstepError, match="not a piece"):
        subword_stepper.force(subword_stepper.translate("Je suis étudiant."), 0, "   ")


def test_split_words_groups_pieces_at_word_starts():
    assert split_words(["▁L", "'", "accord", "▁", "é", "con", "▁sur"]) == [
        ("L'accord", 0, 3),
        ("écon", 3, 6),
        ("sur", 6, 7),
    ]


# --- damaged and hostile tokenizer files ---------------------------------------------------------


def _copy(checkpoint, tmp_path):
    return shutil.copytree(checkpoint, tmp_path / "copy")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[: len(data) // 2], "not a valid SentencePiece model"),
        (
            lambda data: b"\x80\x04\x95" + b"cos\nsystem\n(S'echo pwned'\ntR." + data[40:],
            "not a valid SentencePiece model",
        ),
        (lambda data: bytes(range(256)) * 4, "not a valid SentencePiece model"),
        (lambda data: b"", "not a valid SentencePiece model|byte pieces|first pieces"),
    ],
    ids=["truncated", "pickle-prefixed", "random-bytes", "empty"],
)
def test_a_damaged_tokenizer_file_is_refused_in_one_line(subword_checkpoint, tmp_path, damage, message):
    copy = _copy(subword_checkpoint, tmp_path)
    target = copy / "source.spm"
    target.write_bytes(damage(target.read_bytes()))
    with pytest.raises(AttnstepError, match=message) as info:
        load_checkpoint(copy)
    assert "\n" not in str(info.value)


def test_a_tokenizer_without_byte_fallback_is_refused(subword_checkpoint, tmp_path):
    import io

    import sentencepiece

    writer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(SUBWORD_FRENCH * 3),
        model_writer=writer,
        vocab_size=80,
        byte_fallback=False,
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        pad_piece="<pad>",
        unk_piece="<unk>",
        bos_piece="<bos>",
        eos_piece="<eos>",
        minloglevel=2,
    )
    with pytest.raises(AttnstepError, match="without byte fallback"):
        SubwordModel.from_bytes(writer.getvalue(), "x.spm")


def test_a_tokenizer_that_disagrees_with_the_vocabulary_is_refused(subword_checkpoint, tmp_path):
    copy = _copy(subword_checkpoint, tmp_path)
    shutil.copy(copy / "target.spm", copy / "source.spm")
    with pytest.raises(AttnstepError, match=r"list different pieces|embedding"):
        load_checkpoint(copy)


def test_a_missing_tokenizer_file_is_named(subword_checkpoint, tmp_path):
    copy = _copy(subword_checkpoint, tmp_path)
    (copy / "target.spm").unlink()
    with pytest.raises(AttnstepError, match=r"missing target\.spm"):
        load_checkpoint(copy)


def test_an_oversized_tokenizer_file_is_refused_before_it_is_read(subword_checkpoint, tmp_path):
    copy = _copy(subword_checkpoint, tmp_path)
    with (copy / "source.spm").open("r+b") as handle:
        handle.truncate(17 * 1024 * 1024)
    with pytest.raises(AttnstepError, match="at most"):
        load_checkpoint(copy)


def test_the_cli_refuses_a_damaged_tokenizer_with_one_line(subword_checkpoint, tmp_path):
    from typer.testing import CliRunner

    from attnstep.cli import app

    copy = _copy(subword_checkpoint, tmp_path)
    (copy / "source.spm").write_bytes(b"not a model")
    result = CliRunner().invoke(app, ["dump", "Je suis étudiant.", "--checkpoint", str(copy)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "source.spm" in result.output


def test_training_a_subword_model_too_large_for_its_text_is_one_error():
    with pytest.raises(AttnstepError, match="cannot train the subword model"):
        train_subword(["un deux trois"], 5000, seed=1, threads=1)


def test_a_vocabulary_too_small_for_the_characters_names_attnsteps_option():
    """SentencePiece's own advice names --character_coverage, which attnstep does not have."""
    with pytest.raises(AttnstepError) as info:
        train_subword(SUBWORD_FRENCH * 3, 40, seed=1, threads=1)
    assert "use --vocab-size" in str(info.value) and "character_coverage" not in str(info.value)


def test_eval_counts_unk_outputs_by_id_even_when_sentencepiece_renders_it_otherwise(subword_checkpoint):
    import torch

    from attnstep.commands.evaluate import translate_corpus

    checkpoint = load_checkpoint(subword_checkpoint)
    sentences = ["Je suis étudiant.", "Un chien noir."]
    with torch.no_grad():
        checkpoint.model.decoder.out_bias[UNK_ID] = 1e4  # the model now writes <unk> at every step
    result = translate_corpus(checkpoint.model, checkpoint.codec, sentences)
    assert result.with_unknown == 2
    assert all("<unk>" not in text for text in result.texts)  # what a string search would have missed
