"""Checkpoints: a directory of ``config.json``, two vocabulary files and ``model.safetensors``.

Format 1 cuts text into words (:mod:`attnstep.text`); format 2 adds ``source.spm`` and
``target.spm``, SentencePiece models whose piece lists the vocabulary files repeat.

Nothing here unpickles: safetensors holds only raw tensors, and every file is validated
before the model is built, so a damaged or hostile checkpoint ends in one clear
:class:`AttnstepError` rather than a traceback or code execution.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from attnstep.codec import SubwordCodec, WordCodec
from attnstep.errors import AttnstepError
from attnstep.model import ModelConfig, Seq2Seq
from attnstep.paths import shipped_names
from attnstep.subword import SubwordModel
from attnstep.text import Vocab

READABLE_VERSIONS = (1, 2)
SOURCE_SUBWORD_FILE, TARGET_SUBWORD_FILE = "source.spm", "target.spm"
CONFIG_FILE, SRC_VOCAB_FILE, TGT_VOCAB_FILE, WEIGHTS_FILE = (
    "config.json",
    "src_vocab.json",
    "tgt_vocab.json",
    "model.safetensors",
)
REQUIRED_FILES = (CONFIG_FILE, SRC_VOCAB_FILE, TGT_VOCAB_FILE, WEIGHTS_FILE)
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"}
_FLOAT_DTYPES = {torch.float32, torch.float16, torch.bfloat16}



@dataclass
class Checkpoint:
    path: Path
    model: Seq2Seq
    src_vocab: Vocab
    tgt_vocab: Vocab
    meta: dict = field(default_factory=dict)  # config.json minus the model section
    digest: str = ""  # sha256 of model.safetensors: identifies the exact weights in traces
    subword: tuple[SubwordModel, SubwordModel] | None = None  # format 2: source and target piece models

    @property
    def codec(self) -> WordCodec | SubwordCodec:
        return SubwordCodec(*self.subword) if self.subword else WordCodec(self.src_vocab, self.tgt_vocab)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def name(self) -> str:
        return self.path.name


def _refuse_non_directory(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(4)
    looks_pickled = path.suffix.lower() in _PICKLE_SUFFIXES or head[:1] == b"\x80" or head[:2] == b"PK"
    if looks_pickled:
        raise AttnstepError(
            f"refusing to load {path}: it looks like a pickle/torch.save file, which can run code when loaded; "
            "attnstep checkpoints are directories with config.json, vocabularies and model.safetensors"
        )
    raise AttnstepError(f"{path} is a file; a checkpoint is a directory with {', '.join(REQUIRED_FILES)}")


def read_config(path: Path) -> dict:
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AttnstepError(f"cannot read {path / CONFIG_FILE}: {exc}") from None
    if not isinstance(config, dict):
        raise AttnstepError(f"{path / CONFIG_FILE} must hold a JSON object")
    version = config.get("format_version")
    if version not in READABLE_VERSIONS:
        raise AttnstepError(
            f"{path / CONFIG_FILE} has format_version {version!r}; this attnstep reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    return config


def _load_subword(path: Path, src_vocab: Vocab, tgt_vocab: Vocab) -> tuple[SubwordModel, SubwordModel]:
    models = []
    for name, vocab, vocab_file in (
        (SOURCE_SUBWORD_FILE, src_vocab, SRC_VOCAB_FILE),
        (TARGET_SUBWORD_FILE, tgt_vocab, TGT_VOCAB_FILE),
    ):
        if not (path / name).is_file():
            raise AttnstepError(f"checkpoint {path} is missing {name}, which format_version 2 needs")
        model = SubwordModel.load(path / name)
        if model.pieces != vocab.tokens:
            raise AttnstepError(f"checkpoint {path}: {name} and {vocab_file} list different pieces")
        models.append(model)
    return models[0], models[1]


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path / WEIGHTS_FILE)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AttnstepError(f"{path / WEIGHTS_FILE} is truncated or corrupt ({reason})") from None


def _check_weights(path: Path, weights: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    where = path / WEIGHTS_FILE
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing:
        raise AttnstepError(f"{where} lacks tensors the model needs: {', '.join(missing[:5])}")
    if extra:
        raise AttnstepError(f"{where} has tensors this model does not use: {', '.join(extra[:5])}")
    for name, tensor in weights.items():
        if tensor.dtype not in _FLOAT_DTYPES:
            raise AttnstepError(f"{where}: tensor {name} has dtype {tensor.dtype}; expected a float type")
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise AttnstepError(
                f"{where}: tensor {name} has shape {tuple(tensor.shape)}; "
                f"config.json implies {tuple(expected[name].shape)}"
            )
        if not bool(torch.isfinite(tensor).all()):
            raise AttnstepError(f"{where}: tensor {name} contains NaN or infinite values")


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load and validate a checkpoint directory; every failure is one AttnstepError line."""
    path = Path(path)
    if not path.exists():
        names = ", ".join(shipped_names()) or "none"
        raise AttnstepError(f"checkpoint {path} does not exist (names under checkpoints/: {names})")
    if not path.is_dir():
        _refuse_non_directory(path)
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise AttnstepError(f"checkpoint {path} is missing {', '.join(missing)}")
    config = read_config(path)
    try:
        model_config = ModelConfig.from_dict(config.get("model", {}))
    except (TypeError, ValueError) as exc:
        raise AttnstepError(f"{path / CONFIG_FILE}: invalid model settings ({exc})") from None
    src_vocab, tgt_vocab = Vocab.load(path / SRC_VOCAB_FILE), Vocab.load(path / TGT_VOCAB_FILE)
    subword = _load_subword(path, src_vocab, tgt_vocab) if config["format_version"] == 2 else None
    for side, vocab, size in (
        ("source", src_vocab, model_config.src_vocab_size),
        ("target", tgt_vocab, model_config.tgt_vocab_size),
    ):
        if len(vocab) != size:
            raise AttnstepError(
                f"checkpoint {path}: the {side} vocabulary has {len(vocab)} tokens but the model's embedding has {size}"
            )
    weights = _load_weights(path)
    model = Seq2Seq(model_config)
    _check_weights(path, weights, model.state_dict())
    model.load_state_dict({name: tensor.float() for name, tensor in weights.items()})
    model.eval()
    meta = {key: value for key, value in config.items() if key != "model"}
    return Checkpoint(path, model, src_vocab, tgt_vocab, meta, file_digest(path / WEIGHTS_FILE), subword)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike,
    model: Seq2Seq,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    meta: dict,
    *,
    dtype: torch.dtype = torch.float32,
    subword: tuple[SubwordModel, SubwordModel] | None = None,
) -> None:
    """Write a checkpoint directory atomically: a complete new directory replaces the old one.

    With ``subword`` models it is format 2 and the vocabularies must be their piece lists.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if subword and (subword[0].pieces != src_vocab.tokens or subword[1].pieces != tgt_vocab.tokens):
        raise ValueError("the vocabularies must be the subword models' piece lists")
    config = {"format_version": 2 if subword else 1, "model": model.config.to_dict(), **meta}
    if not all(math.isfinite(v) for v in _numbers(config)):
        raise ValueError("checkpoint metadata must not contain NaN or infinity")
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        tensors = {name: t.detach().to(dtype).contiguous() for name, t in model.state_dict().items()}
        save_file(tensors, staging / WEIGHTS_FILE)
        (staging / SRC_VOCAB_FILE).write_text(src_vocab.to_json(), encoding="utf-8")
        (staging / TGT_VOCAB_FILE).write_text(tgt_vocab.to_json(), encoding="utf-8")
        for name, subword_model in zip((SOURCE_SUBWORD_FILE, TARGET_SUBWORD_FILE), subword or ()):
            (staging / name).write_bytes(subword_model.serialized())
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for extra in path.glob("*") if path.is_dir() else ():
            if extra.is_file() and extra.name not in (*REQUIRED_FILES, SOURCE_SUBWORD_FILE, TARGET_SUBWORD_FILE):  # keep files we do not own, e.g. the model card
                shutil.copy2(extra, staging / extra.name)
        # mkdtemp and safetensors create owner-only files; a checkpoint is meant to be shared.
        for item in staging.iterdir():
            item.chmod(0o666 & ~umask)
        staging.chmod(0o777 & ~umask)
        _replace_directory(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace_directory(new: Path, target: Path) -> None:
    if not target.exists():
        os.replace(new, target)
        return
    retired = target.with_name(f".{target.name}.old")
    shutil.rmtree(retired, ignore_errors=True)
    os.replace(target, retired)
    os.replace(new, target)
    shutil.rmtree(retired, ignore_errors=True)


def _numbers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
