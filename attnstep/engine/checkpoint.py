"""Checkpoints: a directory of ``config.json``, two vocabulary files and ``model.safetensors``.

Format 1 cuts text into words (:mod:`attnstep.text.words`); format 2 adds ``source.spm`` and
``target.spm``, SentencePiece models whose piece lists the vocabulary files repeat.

Nothing here unpickles: safetensors holds only raw tensors, and every file is validated
before the model is built, so a damaged or hostile checkpoint ends in one clear
:class:`AttnstepError` rather than a traceback or code execution.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from attnstep.data.files import shared_mode
from attnstep.data.paths import named_checkpoints
from attnstep.engine.device import skeleton
from attnstep.errors import AttnstepError, first_line
from attnstep.model import ModelConfig, Seq2Seq
from attnstep.text.codec import SubwordCodec, WordCodec
from attnstep.text.subword import SubwordModel
from attnstep.text.words import Vocab

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
_FLOAT_DTYPES = {"F32", "F16", "BF16"}  # as the safetensors header names them


RecurrentModel = TypeVar("RecurrentModel")  # attnstep's Seq2Seq, or a toolkit's


class RecurrentCheckpoint(Generic[RecurrentModel]):
    """What an RNN checkpoint (attnstep's own, or a toolkit's) gives the stepper besides its fields: the
    model is its own family, and there are no layers and heads, generation settings or position table."""

    path: Path
    model: RecurrentModel

    @property
    def family(self) -> RecurrentModel:
        """What the stepper drives (the model itself: it is a Family)."""
        return self.model

    architecture = None  # an RNN's trace has no layers and heads
    generation = None  # no generation settings: the stepper's own lengths
    positions = None  # no position table: any length

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Checkpoint(RecurrentCheckpoint[Seq2Seq]):
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
    except RecursionError:
        raise AttnstepError(f"cannot read {path / CONFIG_FILE}: JSON nested too deeply") from None
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


def _expected_shapes(path: Path, config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape as config.json implies it, from a model on the meta device: nothing is allocated."""
    try:
        with skeleton():
            return {name: tuple(t.shape) for name, t in Seq2Seq(config).state_dict().items()}
    except (RuntimeError, ValueError, OverflowError) as exc:
        raise AttnstepError(f"{path / CONFIG_FILE}: the model's sizes are impossible ({first_line(exc)})") from None


def read_safetensors(
    where: Path, expected: dict[str, tuple[int, ...]], optional: dict[str, tuple[int, ...]] | None = None
) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``where``, validated: the header first (every ``expected`` name
    present, others only from ``optional``, float dtypes, the shapes given), before any tensor is read;
    then every value finite. Each failure is one AttnstepError line."""
    _check_header(where, expected, optional or {})
    try:
        weights = load_file(where)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = first_line(exc)
        raise AttnstepError(f"{where} is truncated or corrupt ({reason})") from None
    check_finite(where, weights)
    return weights


def _check_header(where: Path, expected: dict[str, tuple[int, ...]], optional: dict[str, tuple[int, ...]]) -> None:
    """Names, dtypes and shapes from the safetensors header, before any tensor is read or the model built."""
    try:
        with safe_open(where, framework="pt") as handle:
            slices = {name: handle.get_slice(name) for name in handle.keys()}  # noqa: SIM118 (the handle is not iterable)
            found = {name: (tuple(s.get_shape()), s.get_dtype()) for name, s in slices.items()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = first_line(exc)
        raise AttnstepError(f"{where} is truncated or corrupt ({reason})") from None
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected) - set(optional))
    if missing:
        raise AttnstepError(f"{where} lacks tensors the model needs: {', '.join(missing[:5])}")
    if extra:
        raise AttnstepError(f"{where} has tensors this model does not use: {', '.join(extra[:5])}")
    shapes = {**optional, **expected}
    for name, (shape, dtype) in found.items():
        if dtype not in _FLOAT_DTYPES:
            raise AttnstepError(f"{where}: tensor {name} has dtype {dtype}; expected a float type")
        if shape != shapes[name]:
            raise AttnstepError(f"{where}: tensor {name} has shape {shape}; config.json implies {shapes[name]}")


def check_finite(where: Path, weights: dict[str, torch.Tensor]) -> None:
    for name, tensor in weights.items():
        if not bool(torch.isfinite(tensor).all()):
            raise AttnstepError(f"{where}: tensor {name} contains NaN or infinite values")


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> Checkpoint:
    """Load and validate a checkpoint directory, its model onto ``device``; every failure is one AttnstepError line."""
    path = Path(path)
    if not path.exists():
        raise AttnstepError(f"checkpoint {path} does not exist ({named_checkpoints()})")
    if not path.is_dir():
        _refuse_non_directory(path)
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise AttnstepError(f"checkpoint {path} is missing {', '.join(missing)}")
    config = read_config(path)
    settings = config.get("model", {})
    if not isinstance(settings, dict):
        raise AttnstepError(f"{path / CONFIG_FILE}: 'model' must be an object of settings")
    try:
        model_config = ModelConfig.from_dict(settings)
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
    weights = read_safetensors(path / WEIGHTS_FILE, _expected_shapes(path, model_config))
    try:
        # Built as a skeleton and given the loaded tensors (assign): no random initial weights
        # are made only to be overwritten, which spared the app ~30 MB of peak memory with fr-en.
        with skeleton():
            model = Seq2Seq(model_config)
    except (RuntimeError, MemoryError) as exc:
        raise AttnstepError(f"cannot build the model of {path}: {first_line(exc)}") from None
    model.load_state_dict({name: tensor.float().to(device) for name, tensor in weights.items()}, assign=True)
    model.eval()
    meta = {key: value for key, value in config.items() if key != "model"}
    return Checkpoint(path, model, src_vocab, tgt_vocab, meta, file_digest(path / WEIGHTS_FILE), subword)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_writable_checkpoint(path: Path) -> None:
    """Refuse to put a checkpoint where it would replace something else: a file, or a non-empty folder
    that is not a checkpoint. Called before any work, so a training run is not refused at its first save."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise AttnstepError(f"{path} exists and is not a folder; a checkpoint is a folder: choose another path")
    if any(path.iterdir()) and not _is_checkpoint(path):
        raise AttnstepError(
            f"{path} is a folder with other files in it, not an attnstep checkpoint: choose a new or empty folder"
        )


def _is_checkpoint(path: Path) -> bool:
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return (
        isinstance(config, dict)
        and isinstance(config.get("format_version"), int)
        and isinstance(config.get("model"), dict)
    )


# Weights are always computed in float32; these are the types they may be stored in.
STORAGE_TYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


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

    With ``subword`` models it is format 2 and the vocabularies must be their piece lists. Only a
    checkpoint is ever replaced (see :func:`check_writable_checkpoint`), and whatever else it holds
    — a model card, notes, subfolders — is carried over into the new one.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()  # replace the folder the link names, and keep the link
    check_writable_checkpoint(path)
    if subword and (subword[0].pieces != src_vocab.tokens or subword[1].pieces != tgt_vocab.tokens):
        raise ValueError("the vocabularies must be the subword models' piece lists")
    config = {"format_version": 2 if subword else 1, "model": model.config.to_dict(), **meta}
    if not all(math.isfinite(v) for v in numbers_in(config)):
        raise ValueError("checkpoint metadata must not contain NaN or infinity")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise AttnstepError(f"cannot write a checkpoint in {path.parent}: {exc.strerror or exc}") from None
    try:
        _write_files(staging, model, (src_vocab, tgt_vocab), config, dtype, subword)
        _carry_over(path, staging)
        _replace_directory(staging, path)
    except OSError as exc:
        raise AttnstepError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# How safetensors words the I/O error under a failed write: its Rust io::Error, debug-printed.
_IO_ERROR = re.compile(r'Os \{ code: (?P<code>\d+),.*message: "(?P<message>[^"]*)"')


def write_safetensors(tensors: dict[str, torch.Tensor], where: Path) -> None:
    """``save_file``, whose failure to write (a full disk) is a SafetensorError: here the OSError
    inside it, which callers report in one line."""
    try:
        save_file(tensors, where)
    except SafetensorError as exc:
        match = _IO_ERROR.search(str(exc))
        if match is None:
            raise OSError(errno.EIO, first_line(exc), str(where)) from None
        raise OSError(int(match["code"]), match["message"], str(where)) from None


def _write_files(
    staging: Path,
    model: Seq2Seq,
    vocabs: tuple[Vocab, Vocab],
    config: dict,
    dtype: torch.dtype,
    subword: tuple[SubwordModel, SubwordModel] | None,
) -> None:
    """A checkpoint's own files, in the new folder ``staging``, readable by everyone."""
    tensors = {name: t.detach().to("cpu", dtype).contiguous() for name, t in model.state_dict().items()}
    write_safetensors(tensors, staging / WEIGHTS_FILE)
    for name, vocab in zip((SRC_VOCAB_FILE, TGT_VOCAB_FILE), vocabs):
        (staging / name).write_text(vocab.to_json(), encoding="utf-8")
    for name, subword_model in zip((SOURCE_SUBWORD_FILE, TARGET_SUBWORD_FILE), subword or ()):
        (staging / name).write_bytes(subword_model.serialized())
    (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    # mkdtemp and safetensors create owner-only files; a checkpoint is meant to be shared.
    for item in staging.iterdir():
        item.chmod(shared_mode(0o666))
    staging.chmod(shared_mode(0o777))


def _carry_over(path: Path, staging: Path) -> None:
    """Copy what the old checkpoint at ``path`` holds that is not ours (e.g. the model card) into ``staging``."""
    ours = (*REQUIRED_FILES, SOURCE_SUBWORD_FILE, TARGET_SUBWORD_FILE)
    for extra in path.iterdir() if path.is_dir() else ():
        if extra.name in ours:
            continue
        if extra.is_dir() and not extra.is_symlink():
            shutil.copytree(extra, staging / extra.name, symlinks=True)
        else:
            shutil.copy2(extra, staging / extra.name, follow_symlinks=False)


def _replace_directory(new: Path, target: Path) -> None:
    if not target.exists():
        os.replace(new, target)
        return
    # The old folder moves aside under a fresh name (a fixed one could be a folder of the user's),
    # onto the empty folder mkdtemp made for it.
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, retired)
    os.replace(new, target)
    shutil.rmtree(retired, ignore_errors=True)


def numbers_in(value):
    """Every number in nested JSON data (dicts and lists), booleans left out."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from numbers_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers_in(item)
