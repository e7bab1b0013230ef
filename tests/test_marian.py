"""attnstep's Marian family against transformers' own: a tiny seeded MarianMTModel saved as the hub saves one
(tests/marian_helpers.py). transformers is a test-only dependency: attnstep never imports it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from attnstep.engine.generate import GenerationSettings, decode, greedy
from attnstep.engine.marian_checkpoint import MarianCheckpoint, load_any, load_marian
from attnstep.errors import AttnstepError
from tests.marian_helpers import (  # noqa: F401  (the *_fixture functions are fixtures)
    MAX_LENGTH,
    SENTENCES,
    encoded_batch,
    generated_rows,
    marian_bin_folder_fixture,
    marian_folder_fixture,
    ours_fixture,
    their_tokenizer_fixture,
    theirs_fixture,
    train_spm,
)

# Every test here needs the Marian fixture, built once with transformers and SentencePiece (~5 s).
pytestmark = pytest.mark.slow


def test_tokenization_is_marian_tokenizers(ours, their_tokenizer):
    texts = [*SENTENCES, "日本 est loin.", ">>fr<< Un chien.", "", "  deux   espaces  "]
    for text in texts:
        assert ours.tokenizer.encode(text) == their_tokenizer(text).input_ids, text
    assert ours.tokenizer.unk_id in ours.tokenizer.encode("日本")  # not among the pieces: <unk>, not bytes
    ids = [5, 17, 40, 3, 0]
    assert ours.tokenizer.decode(ids) == their_tokenizer.decode(
        ids, skip_special_tokens=True, use_source_tokenizer=False
    )


def test_greedy_is_generates_token_for_token(ours, theirs):
    src, mask = encoded_batch(ours, SENTENCES)
    settings = ours.generation
    got = [h.tokens for h in decode(ours.model, src, mask, GenerationSettings(**{**vars(settings), "num_beams": 1}))]
    with torch.no_grad():
        expected = theirs.generate(input_ids=src, attention_mask=mask.long(), num_beams=1, do_sample=False)
    assert got == generated_rows(expected, 0)
    assert any(len(row) < MAX_LENGTH - 1 for row in got) and any(row[-1] == 0 for row in got)
    assert all(settings.pad_token_id not in row for row in got)  # bad_words_ids: <pad> is never emitted
    # One at a time as in a batch: padding changes nothing.
    alone = greedy(ours.model, *encoded_batch(ours, SENTENCES[3:4]), settings)
    assert alone[0].tokens == got[3]


def test_every_layer_and_head_attends_as_transformers(ours, theirs):
    """Each step's cross- and self-attention weights (per layer, per head) and log-probabilities, against
    transformers' eager attention on the same prefix."""
    checked = 0
    for sentence in SENTENCES[:4]:
        src, mask = encoded_batch(ours, [sentence])
        tokens = greedy(ours.model, src, mask, ours.generation)[0].tokens
        inputs = torch.tensor([[ours.config.decoder_start_token_id, *tokens[:-1]]])  # (1, T)
        with torch.no_grad():
            out = theirs(input_ids=src, attention_mask=mask.long(), decoder_input_ids=inputs, output_attentions=True)
            memory = ours.model.encode(src, mask)
            cache = ours.model.empty_cache(1)
            for t in range(inputs.size(1)):
                step, cache = ours.model.step(inputs[:, t], cache, memory)
                for layer, record in enumerate(step.layers):
                    cross = out.cross_attentions[layer][:, :, t, :]  # (1, h, S)
                    own = out.decoder_attentions[layer][:, :, t, : t + 1]  # (1, h, t + 1)
                    torch.testing.assert_close(record.cross_attention.weights, cross, atol=1e-5, rtol=0)
                    torch.testing.assert_close(record.self_attention.weights, own, atol=1e-5, rtol=0)
                    # The recorded parts fit together: the weights are the softmax of the scores, the context their sum.
                    parts = record.cross_attention
                    torch.testing.assert_close(parts.weights, parts.scores.softmax(-1))
                    torch.testing.assert_close(
                        parts.context, torch.einsum("bhs,bhsd->bhd", parts.weights, parts.values)
                    )
                expected = out.logits[:, t].log_softmax(-1)  # (1, V)
                torch.testing.assert_close(step.log_probs, expected, atol=1e-4, rtol=0)
                checked += 1
    assert checked > 30
    spread = record.cross_attention.weights.max() - record.cross_attention.weights.min()
    assert spread > 0.1  # not near-uniform: the comparison could have failed


@pytest.mark.parametrize(
    ("beams", "length_penalty", "early_stopping"), [(4, 1.0, False), (3, 0.6, True), (5, 2.0, "never")]
)
def test_beam_search_is_generates(ours, theirs, beams, length_penalty, early_stopping):
    src, mask = encoded_batch(ours, SENTENCES)
    settings = GenerationSettings(
        **{
            **vars(ours.generation),
            "num_beams": beams,
            "length_penalty": length_penalty,
            "early_stopping": early_stopping,
        }
    )
    got = decode(ours.model, src, mask, settings)
    with torch.no_grad():
        expected = theirs.generate(
            input_ids=src,
            attention_mask=mask.long(),
            num_beams=beams,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
            output_scores=True,
            return_dict_in_generate=True,
        )
    assert [h.tokens for h in got] == generated_rows(expected.sequences, 0)
    assert [h.tokens for h in got] != [h.tokens for h in greedy(ours.model, src, mask, ours.generation)]
    torch.testing.assert_close(torch.tensor([h.score for h in got]), expected.sequences_scores, atol=1e-4, rtol=0)


def test_pytorch_model_bin_loads_the_same_model(ours, marian_bin_folder):
    from_bin = load_marian(marian_bin_folder)
    src, mask = encoded_batch(ours, SENTENCES)
    assert [h.tokens for h in decode(from_bin.model, src, mask, from_bin.generation)] == [
        h.tokens for h in decode(ours.model, src, mask, ours.generation)
    ]


def test_the_folders_generation_config_is_read(ours, marian_folder):
    settings = ours.generation
    assert (settings.num_beams, settings.max_length, settings.renormalize_logits) == (4, MAX_LENGTH, True)
    assert settings.bad_words_ids == ((ours.config.pad_token_id,),)
    assert isinstance(load_any(marian_folder), MarianCheckpoint)


def test_an_attnstep_checkpoint_still_loads_through_load_any(tiny_checkpoint):
    from attnstep.engine.checkpoint import Checkpoint

    assert isinstance(load_any(tiny_checkpoint), Checkpoint)


# Hostile and broken folders: each refused in one line, before anything runs or is half-built.


def _copy(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    return copy


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))


def _refused(folder: Path, *words: str) -> str:
    with pytest.raises(AttnstepError) as caught:
        load_any(folder)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def test_other_model_types_are_refused_naming_what_is_supported(marian_folder, tmp_path):
    folder = _copy(marian_folder, tmp_path)
    _edit_config(folder, model_type="bart")
    _refused(folder, "'bart'", "model_type marian", "format_version")


def test_missing_or_mismatched_tokenizer_files_are_refused(marian_folder, tmp_path):
    folder = _copy(marian_folder, tmp_path)
    (folder / "target.spm").unlink()
    _refused(folder, "target.spm")
    shutil.copy(marian_folder / "target.spm", folder / "target.spm")
    (folder / "source.spm").write_bytes(train_spm(["zzz qqq xxx www", "kkk jjj yyy vvv"], 20))  # another model's
    _refused(folder, "source.spm", "different models")
    (folder / "source.spm").write_bytes(b"not a model")
    _refused(folder, "source.spm", "not a valid SentencePiece model")


def test_a_vocabulary_that_does_not_match_the_embeddings_is_refused(marian_folder, tmp_path):
    folder = _copy(marian_folder, tmp_path)
    vocab = json.loads((folder / "vocab.json").read_text())
    (folder / "vocab.json").write_text(json.dumps({**vocab, "▁extra": len(vocab)}))
    _refused(folder, "vocab.json", f"{len(vocab) + 1} tokens", str(len(vocab)))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    _edit_config(folder, pad_token_id=1)
    _refused(folder, "<pad>", "pad_token_id")


def test_a_pickle_that_needs_more_than_weights_is_refused_unrun(marian_folder, tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = _copy(marian_folder, tmp_path)
    (folder / "model.safetensors").unlink()
    torch.save({"final_logits_bias": Payload()}, folder / "pytorch_model.bin")
    _refused(folder, "refusing", "pytorch_model.bin", "system")
    assert not marker.exists()


def test_truncated_or_non_finite_safetensors_are_refused(marian_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _copy(marian_folder, tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    _refused(folder, "truncated or corrupt")
    tensors = load_file(marian_folder / "model.safetensors")
    tensors["model.decoder.layers.1.fc1.weight"][0, 0] = float("nan")
    save_file(tensors, weights)
    _refused(folder, "model.decoder.layers.1.fc1.weight", "NaN")


def test_enormous_sizes_are_refused_before_allocating(marian_folder, tmp_path):
    folder = _copy(marian_folder, tmp_path)
    _edit_config(folder, d_model=8192, encoder_layers=64, decoder_layers=64, encoder_ffn_dim=65536)
    _refused(folder, "parameters", "at most")
    _edit_config(folder, d_model=10**12)
    _refused(folder, "d_model")
    _edit_config(folder, d_model=16, encoder_attention_heads=5)
    _refused(folder, "divisible")
