"""The tiny Marian that test_marian.py and test_marian_stepper.py share (a module that imports
its *_fixture functions has the fixtures marian_folder, marian_bin_folder, ours, theirs, their_tokenizer): a seeded MarianMTModel saved as
the hub saves one, built once per session with transformers (a test-only dependency) and SentencePiece.

SentencePiece models trained here (Marian's special ids: <unk> 0, <s> 1, </s> 2; no byte fallback, so
unseen characters are unknown), a vocab.json numbering both sides' pieces with </s> first and <pad>
last as opus-mt's do, and a generation_config.json like opus-mt's (bans <pad>, renormalizes, four beams).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch

from attnstep.engine.marian_checkpoint import MarianCheckpoint, load_marian
from tests.conftest import SUBWORD_ENGLISH, SUBWORD_FRENCH

transformers = pytest.importorskip("transformers")

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


def train_spm(lines: list[str], size: int, *, repeat: int = 3, hard_limit: bool = True) -> bytes:
    """A unigram SentencePiece model of ``lines`` with Marian's special ids; ``hard_limit=False`` lets it
    have fewer pieces than ``size`` where the text holds fewer."""
    import sentencepiece

    sentencepiece.set_random_generator_seed(1)
    writer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * repeat),
        model_writer=writer,
        vocab_size=size,
        hard_vocab_limit=hard_limit,
        model_type="unigram",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return writer.getvalue()


def spm_pieces(model: bytes) -> list[str]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(model)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def build_tiny_marian(path: Path, *, seed: int = 0) -> Path:
    source, target = train_spm(SUBWORD_FRENCH, 120), train_spm(SUBWORD_ENGLISH, 110)
    pieces = dict.fromkeys(p for p in spm_pieces(source) + spm_pieces(target) if p not in ("<unk>", "<s>", "</s>"))
    sizes = {"d_model": 16, "layers": 2, "heads": 4, "ffn": 32, "positions": 64}

    def sharpened(model) -> None:
        model.final_logits_bias.normal_(0, 0.5)
        model.final_logits_bias[0, 0] = 3.0  # </s> likelier: some outputs end before max_length

    return write_marian_folder(
        path,
        ["</s>", "<unk>", *pieces, "<pad>"],
        (source, target),
        sizes,
        # far from uniform attention, so that comparing weights means something
        config={"init_std": 0.3},
        generation={"bos_token_id": 0, "max_length": MAX_LENGTH, "num_beams": 4, "renormalize_logits": True},
        seed=seed,
        adjust=sharpened,
    )


def write_marian_folder(
    folder: Path,
    tokens: list[str],
    spm: tuple[bytes, bytes],
    sizes: dict[str, int],
    *,
    config: dict | None = None,
    generation: dict | None = None,
    seed: int = 0,
    adjust=None,
) -> Path:
    """A seeded MarianMTModel saved as the hub saves opus-mt's: weights, config, generation config (<pad>
    banned), the two SentencePiece models and a vocab.json of ``tokens``, which start with </s> and end with
    <pad>. ``sizes``: d_model, layers and heads (each side), ffn, positions; ``adjust`` may change the
    weights before they are saved."""
    pad = len(tokens) - 1
    marian = transformers.MarianConfig(
        vocab_size=len(tokens),
        decoder_vocab_size=len(tokens),
        d_model=sizes["d_model"],
        encoder_layers=sizes["layers"],
        decoder_layers=sizes["layers"],
        encoder_attention_heads=sizes["heads"],
        decoder_attention_heads=sizes["heads"],
        encoder_ffn_dim=sizes["ffn"],
        decoder_ffn_dim=sizes["ffn"],
        max_position_embeddings=sizes["positions"],
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        **(config or {}),
    )
    torch.manual_seed(seed)
    model = transformers.MarianMTModel(marian).eval()
    if adjust is not None:
        with torch.no_grad():
            adjust(model)
    model.save_pretrained(folder)
    transformers.GenerationConfig(
        bad_words_ids=[[pad]],
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        pad_token_id=pad,
        **(generation or {}),
    ).save_pretrained(folder)
    (folder / "source.spm").write_bytes(spm[0])
    (folder / "target.spm").write_bytes(spm[1])
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    return folder


@pytest.fixture(scope="session", name="marian_folder")
def marian_folder_fixture(tmp_path_factory) -> Path:
    return build_tiny_marian(tmp_path_factory.mktemp("marian") / "opus-mt-tiny")


@pytest.fixture(scope="session", name="marian_bin_folder")
def marian_bin_folder_fixture(marian_folder, tmp_path_factory) -> Path:
    """The same model as a pytorch_model.bin, as older hub folders have it (every tied copy saved)."""
    folder = tmp_path_factory.mktemp("marian") / "opus-mt-tiny-bin"
    shutil.copytree(marian_folder, folder)
    (folder / "model.safetensors").unlink()
    torch.save(transformers_model(marian_folder).state_dict(), folder / "pytorch_model.bin")
    return folder


@pytest.fixture(scope="session", name="ours")
def ours_fixture(marian_folder) -> MarianCheckpoint:
    return load_marian(marian_folder)


_MODELS: dict[Path, object] = {}


def transformers_model(folder: Path):
    if folder not in _MODELS:
        _MODELS[folder] = transformers.MarianMTModel.from_pretrained(folder, attn_implementation="eager").eval()
    return _MODELS[folder]


@pytest.fixture(scope="session", name="theirs")
def theirs_fixture(marian_folder):
    return transformers_model(marian_folder)


@pytest.fixture(scope="session", name="their_tokenizer")
def their_tokenizer_fixture(marian_folder):
    return transformers.MarianTokenizer.from_pretrained(marian_folder)


def encoded_batch(checkpoint: MarianCheckpoint, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [checkpoint.tokenizer.encode(s) for s in sentences]
    width = max(map(len, rows))
    src = torch.tensor([row + [checkpoint.config.pad_token_id] * (width - len(row)) for row in rows])  # (B, S)
    mask = torch.tensor([[True] * len(row) + [False] * (width - len(row)) for row in rows])  # (B, S)
    return src, mask


def generated_rows(sequences: torch.Tensor, eos: int) -> list[list[int]]:
    """generate's rows, start token off, cut after the first </s> (finished rows are padded)."""
    rows = []
    for row in sequences[:, 1:].tolist():
        rows.append(row[: row.index(eos) + 1] if eos in row else row)
    return rows
