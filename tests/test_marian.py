"""attnstep's Marian family against transformers' own: a tiny seeded MarianMTModel saved as the hub saves one.

transformers is a test-only dependency: attnstep never imports it. The folder is built once per
session: SentencePiece models trained here (Marian's special ids: <unk> 0, <s> 1, </s> 2; no byte
fallback, so unseen characters are unknown), a vocab.json numbering both sides' pieces with </s>
first and <pad> last as opus-mt's do, and a generation_config.json like opus-mt's (bans <pad>,
renormalizes, four beams).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from attnstep.engine.generate import GenerationSettings, decode, greedy
from attnstep.engine.marian_checkpoint import MarianCheckpoint, load_any, load_marian
from attnstep.errors import AttnstepError
from tests.conftest import SUBWORD_ENGLISH, SUBWORD_FRENCH

transformers = pytest.importorskip("transformers")

# Every test here needs the Marian fixture, built once with transformers and SentencePiece (~5 s).
pytestmark = pytest.mark.slow

SENTENCES = [
    "Une voiture rouge est garée devant la maison.",
    "Un chien noir court dans la rue.",
    "Je suis étudiant.",
    "L'accord sur la zone économique européenne a été signé en août 1992.",
    "Deux enfants jouent dans le parc avec un ballon.",
    "Une femme lit un livre.",
    "Les hommes travaillent ensemble.",
    "Elle mange une pomme verte.",
    "Nous habitons à Paris depuis trois ans.",
    "Où est la gare ?",
    "Il fait très beau aujourd'hui !",
    "la la la",
]
MAX_LENGTH = 24


def _train_spm(lines: list[str], size: int) -> bytes:
    import sentencepiece

    sentencepiece.set_random_generator_seed(1)
    writer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 3),
        model_writer=writer,
        vocab_size=size,
        model_type="unigram",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return writer.getvalue()


def _pieces(model: bytes) -> list[str]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(model)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def build_tiny_marian(path: Path, *, seed: int = 0) -> Path:
    source, target = _train_spm(SUBWORD_FRENCH, 120), _train_spm(SUBWORD_ENGLISH, 110)
    pieces = dict.fromkeys(p for p in _pieces(source) + _pieces(target) if p not in ("<unk>", "<s>", "</s>"))
    tokens = ["</s>", "<unk>", *pieces, "<pad>"]
    pad = len(tokens) - 1
    config = transformers.MarianConfig(
        vocab_size=len(tokens),
        decoder_vocab_size=len(tokens),
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        init_std=0.3,  # far from uniform attention, so that comparing weights means something
    )
    torch.manual_seed(seed)
    model = transformers.MarianMTModel(config).eval()
    with torch.no_grad():
        model.final_logits_bias.normal_(0, 0.5)
        model.final_logits_bias[0, 0] = 3.0  # </s> likelier: some outputs end before max_length
    model.save_pretrained(path)
    transformers.GenerationConfig(
        bad_words_ids=[[pad]],
        bos_token_id=0,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        max_length=MAX_LENGTH,
        num_beams=4,
        pad_token_id=pad,
        renormalize_logits=True,
    ).save_pretrained(path)
    (path / "source.spm").write_bytes(source)
    (path / "target.spm").write_bytes(target)
    (path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    return path


@pytest.fixture(scope="session")
def marian_folder(tmp_path_factory) -> Path:
    return build_tiny_marian(tmp_path_factory.mktemp("marian") / "opus-mt-tiny")


@pytest.fixture(scope="session")
def marian_bin_folder(marian_folder, tmp_path_factory) -> Path:
    """The same model as a pytorch_model.bin, as older hub folders have it (every tied copy saved)."""
    folder = tmp_path_factory.mktemp("marian") / "opus-mt-tiny-bin"
    shutil.copytree(marian_folder, folder)
    (folder / "model.safetensors").unlink()
    torch.save(_theirs(marian_folder).state_dict(), folder / "pytorch_model.bin")
    return folder


@pytest.fixture(scope="session")
def ours(marian_folder) -> MarianCheckpoint:
    return load_marian(marian_folder)


_CACHE: dict[Path, object] = {}


def _theirs(folder: Path):
    if folder not in _CACHE:
        _CACHE[folder] = transformers.MarianMTModel.from_pretrained(folder, attn_implementation="eager").eval()
    return _CACHE[folder]


@pytest.fixture(scope="session")
def theirs(marian_folder):
    return _theirs(marian_folder)


@pytest.fixture(scope="session")
def their_tokenizer(marian_folder):
    return transformers.MarianTokenizer.from_pretrained(marian_folder)


def _batch(checkpoint: MarianCheckpoint, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [checkpoint.tokenizer.encode(s) for s in sentences]
    width = max(map(len, rows))
    src = torch.tensor([row + [checkpoint.config.pad_token_id] * (width - len(row)) for row in rows])  # (B, S)
    mask = torch.tensor([[True] * len(row) + [False] * (width - len(row)) for row in rows])  # (B, S)
    return src, mask


def _generated(sequences: torch.Tensor, eos: int) -> list[list[int]]:
    """generate's rows, start token off, cut after the first </s> (finished rows are padded)."""
    rows = []
    for row in sequences[:, 1:].tolist():
        rows.append(row[: row.index(eos) + 1] if eos in row else row)
    return rows


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
    src, mask = _batch(ours, SENTENCES)
    settings = ours.generation
    got = [h.tokens for h in decode(ours.model, src, mask, GenerationSettings(**{**vars(settings), "num_beams": 1}))]
    with torch.no_grad():
        expected = theirs.generate(input_ids=src, attention_mask=mask.long(), num_beams=1, do_sample=False)
    assert got == _generated(expected, 0)
    assert any(len(row) < MAX_LENGTH - 1 for row in got) and any(row[-1] == 0 for row in got)
    assert all(settings.pad_token_id not in row for row in got)  # bad_words_ids: <pad> is never emitted
    # One at a time as in a batch: padding changes nothing.
    alone = greedy(ours.model, *_batch(ours, SENTENCES[3:4]), settings)
    assert alone[0].tokens == got[3]


def test_every_layer_and_head_attends_as_transformers(ours, theirs):
    """Each step's cross- and self-attention weights (per layer, per head) and log-probabilities, against
    transformers' eager attention on the same prefix."""
    checked = 0
    for sentence in SENTENCES[:4]:
        src, mask = _batch(ours, [sentence])
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
    src, mask = _batch(ours, SENTENCES)
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
    assert [h.tokens for h in got] == _generated(expected.sequences, 0)
    assert [h.tokens for h in got] != [h.tokens for h in greedy(ours.model, src, mask, ours.generation)]
    torch.testing.assert_close(torch.tensor([h.score for h in got]), expected.sequences_scores, atol=1e-4, rtol=0)


def test_pytorch_model_bin_loads_the_same_model(ours, marian_bin_folder):
    from_bin = load_marian(marian_bin_folder)
    src, mask = _batch(ours, SENTENCES)
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
    (folder / "source.spm").write_bytes(_train_spm(["zzz qqq xxx www", "kkk jjj yyy vvv"], 20))  # another model's
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
