"""Hugging Face Marian folders (``save_pretrained``'s, or the hub's opus-mt ones) loaded into attnstep's own model.

A folder holds ``config.json`` (``model_type: marian``), the weights as ``model.safetensors`` or
``pytorch_model.bin``, the tokenizer's ``source.spm``, ``target.spm`` and ``vocab.json``, and perhaps
``generation_config.json``. Everything is checked before the model is built, and each failure is one
:class:`AttnstepError` line: sizes before any allocation, the tokenizer against the config and the
embeddings, the safetensors header before its tensors (:func:`~attnstep.engine.checkpoint.read_safetensors`).
A ``pytorch_model.bin`` is a pickle: it is opened only by ``torch.load(weights_only=True)`` with no
further globals allowed, so one that asks for anything but tensors (``os.system``…) is refused, unrun.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from attnstep.data.files import read_limited
from attnstep.data.model_card import OPUS_MT_NAME
from attnstep.engine.checkpoint import Checkpoint, check_finite, file_digest, load_checkpoint, read_safetensors
from attnstep.engine.device import skeleton
from attnstep.engine.generate import GenerationSettings
from attnstep.engine.joeynmt_checkpoint import is_joeynmt, load_joeynmt
from attnstep.engine.opennmt_checkpoint import is_opennmt, load_opennmt
from attnstep.engine.toolkit_checkpoint import ToolkitCheckpoint
from attnstep.errors import AttnstepError, first_line
from attnstep.model.marian.config import MODEL_TYPE, MarianConfig
from attnstep.model.marian.family import MarianFamily
from attnstep.model.marian.model import Marian
from attnstep.text.codec import MAX_SOURCE_PIECES, MarianCodec
from attnstep.text.marian import MarianTokenizer
from attnstep.trace.records import Architecture

CONFIG_FILE, GENERATION_FILE = "config.json", "generation_config.json"
SAFETENSORS_FILE, PICKLE_FILE = "model.safetensors", "pytorch_model.bin"
MAX_CONFIG_BYTES = 1024 * 1024
SUPPORTED = "attnstep checkpoints (format_version 1, 2) and Hugging Face Marian folders (model_type marian)"
_FLOAT_TYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass
class MarianCheckpoint:
    path: Path
    model: Marian
    tokenizer: MarianTokenizer
    generation: GenerationSettings  # how generate decodes with this folder
    digest: str  # sha256 of the weights file: identifies the exact weights in traces

    @property
    def config(self) -> MarianConfig:
        return self.model.config

    @property
    def name(self) -> str:
        return self.path.name

    # --- what the stepper reads of a checkpoint, as of attnstep's (engine.checkpoint.Checkpoint) ---

    @cached_property
    def family(self) -> MarianFamily:
        return MarianFamily(self.model)

    @cached_property
    def codec(self) -> MarianCodec:
        # the source's pieces and </s> must fit the position table
        return MarianCodec(self.tokenizer, min(MAX_SOURCE_PIECES, self.config.max_position_embeddings - 1))

    @property
    def src_vocab(self) -> MarianTokenizer:
        return self.tokenizer  # one vocab.json numbers both sides' pieces (its tokens, by id)

    @property
    def tgt_vocab(self) -> MarianTokenizer:
        return self.tokenizer

    @property
    def meta(self) -> dict[str, str]:
        """The languages, read off an opus-mt-xx-yy folder's name ("" where it says none)."""
        named = OPUS_MT_NAME.fullmatch(self.name)
        return {"source_language": named[1] if named else "", "target_language": named[2] if named else ""}

    @property
    def architecture(self) -> Architecture:
        config = self.config
        return Architecture(
            MODEL_TYPE,
            config.decoder_layers,
            config.decoder_attention_heads,
            config.head_dim,
            config.d_model,
            config.encoder_layers,
        )

    @property
    def positions(self) -> int:
        """The most target positions the model has (its position table's rows)."""
        return self.config.max_position_embeddings


def _read_json(path: Path) -> dict:
    data = read_limited(path, MAX_CONFIG_BYTES, "{path} is {size} bytes; a config is at most {limit}")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AttnstepError(f"cannot read {path}: {first_line(exc)}") from None
    except RecursionError:  # every config.json is read here first, to tell the formats apart
        raise AttnstepError(f"cannot read {path}: JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise AttnstepError(f"{path} must hold a JSON object")
    return value


def load_any(
    path: str | os.PathLike, device: torch.device | str = "cpu"
) -> Checkpoint | MarianCheckpoint | ToolkitCheckpoint:
    """An attnstep checkpoint or a Marian folder, told apart by config.json (a model_type is Hugging Face's),
    a JoeyNMT folder or .ckpt (config.yaml beside it), or an OpenNMT-py .pt (or its .safetensors)."""
    path = Path(path)
    if is_joeynmt(path):
        return load_joeynmt(path, device)
    if is_opennmt(path):
        return load_opennmt(path, device)
    if path.is_dir() and (path / CONFIG_FILE).is_file() and "model_type" in _read_json(path / CONFIG_FILE):
        return load_marian(path, device)
    return load_checkpoint(path, device)


def _expected_shapes(model: Marian) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """The tensors a folder must hold, and those it may (tied copies, the position tables), by transformers'
    names, from the model built on the meta device: nothing is allocated."""
    config = model.config
    ours = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    required = {transformers_name(name): shape for name, shape in ours.items() if not name.endswith("_embed.weight")}
    embedding = ours["encoder_embed.weight"]
    positions = (config.max_position_embeddings, config.d_model)
    optional = {
        "model.shared.weight": embedding,
        "model.encoder.embed_tokens.weight": embedding,
        "model.decoder.embed_tokens.weight": ours["decoder_embed.weight"],
        "model.encoder.embed_positions.weight": positions,
        "model.decoder.embed_positions.weight": positions,
    }
    if config.tie_word_embeddings:
        optional["lm_head.weight"] = ours["decoder_embed.weight"]
    else:
        required["lm_head.weight"] = required.pop("output.weight")
    if not config.share_encoder_decoder_embeddings:
        required["model.encoder.embed_tokens.weight"] = optional.pop("model.encoder.embed_tokens.weight")
        required["model.decoder.embed_tokens.weight"] = optional.pop("model.decoder.embed_tokens.weight")
        del optional["model.shared.weight"]
    required["final_logits_bias"] = (1, config.decoder_vocab_size)
    return required, optional


def transformers_name(ours: str) -> str:
    """Our state_dict name → the one transformers saves (the layers' inner names are the same)."""
    if ours.startswith(("encoder_layers.", "decoder_layers.")):
        side, rest = ours.split("_layers.", 1)
        return f"model.{side}.layers.{rest}"
    return ours


def _read_pickle(where: Path, expected: dict, optional: dict) -> dict[str, torch.Tensor]:
    """pytorch_model.bin through torch's weights-only unpickler; anything but a flat dict of float tensors of
    the expected shapes is refused."""
    try:
        weights = torch.load(where, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(where))
    except pickle.UnpicklingError as exc:
        needs = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line), first_line(exc))
        raise AttnstepError(f"refusing {where}: it needs more than tensors to load ({needs})") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise AttnstepError(f"{where} is truncated or corrupt ({first_line(exc)})") from None
    if not isinstance(weights, dict) or not all(isinstance(t, torch.Tensor) for t in weights.values()):
        raise AttnstepError(f"{where} must hold a dict of tensors (a state_dict)")
    shapes = {**optional, **expected}
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(shapes))
    if missing:
        raise AttnstepError(f"{where} lacks tensors the model needs: {', '.join(missing[:5])}")
    if extra:
        raise AttnstepError(f"{where} has tensors this model does not use: {', '.join(extra[:5])}")
    for name, tensor in weights.items():
        if tensor.dtype not in _FLOAT_TYPES:
            raise AttnstepError(f"{where}: tensor {name} has dtype {tensor.dtype}; expected a float type")
        if tuple(tensor.shape) != shapes[name]:
            raise AttnstepError(
                f"{where}: tensor {name} has shape {tuple(tensor.shape)}; config.json implies {shapes[name]}"
            )
    check_finite(where, weights)
    return weights


def _our_weights(weights: dict[str, torch.Tensor], config: MarianConfig, where: Path) -> dict[str, torch.Tensor]:
    """transformers' names → ours; the embedding from whichever tied copy the file kept."""
    ours = {}
    for name, tensor in weights.items():
        if name.startswith(("model.encoder.layers.", "model.decoder.layers.")):
            side, rest = name[len("model.") :].split(".layers.", 1)
            ours[f"{side}_layers.{rest}"] = tensor
    ours["final_logits_bias"] = weights["final_logits_bias"][0]
    if config.share_encoder_decoder_embeddings:
        aliases = ["model.shared.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"]
        if config.tie_word_embeddings:
            aliases.append("lm_head.weight")
        found = next((name for name in aliases if name in weights), None)
        if found is None:
            raise AttnstepError(f"{where} lacks the token embeddings (model.shared.weight)")
        ours["encoder_embed.weight"] = ours["decoder_embed.weight"] = weights[found]
    else:
        ours["encoder_embed.weight"] = weights["model.encoder.embed_tokens.weight"]
        ours["decoder_embed.weight"] = weights["model.decoder.embed_tokens.weight"]
    if not config.tie_word_embeddings:
        ours["output.weight"] = weights["lm_head.weight"]
    return {name: tensor.float() for name, tensor in ours.items()}


def _check_tokenizer(tokenizer: MarianTokenizer, config: MarianConfig, path: Path) -> None:
    if len(tokenizer) != config.vocab_size or len(tokenizer) != config.decoder_vocab_size:
        raise AttnstepError(
            f"{path}: vocab.json has {len(tokenizer)} tokens but the model's embeddings have {config.vocab_size}"
        )
    for name, token, index in (("pad", "<pad>", config.pad_token_id), ("eos", "</s>", config.eos_token_id)):
        if tokenizer.vocab[token] != index:
            raise AttnstepError(
                f"{path}: vocab.json numbers {token} {tokenizer.vocab[token]}, config.json's {name}_token_id is {index}"
            )


def _check_positions(weights: dict[str, torch.Tensor], model: Marian, where: Path) -> None:
    """The position tables a file may hold (older conversions saved them) must be the sinusoid we compute."""
    for side in ("encoder", "decoder"):
        table = weights.get(f"model.{side}.embed_positions.weight")
        if table is not None and not torch.allclose(table.float(), model.positions, atol=1e-4):
            raise AttnstepError(f"{where}: the {side}'s position table is not Marian's sinusoid")


def load_marian(path: str | os.PathLike, device: torch.device | str = "cpu") -> MarianCheckpoint:
    """Load and validate a Marian folder, its model onto ``device``; every failure is one AttnstepError line,
    and nothing is half-loaded."""
    path = Path(path)
    raw = _read_json(path / CONFIG_FILE)
    if raw.get("model_type") != MODEL_TYPE:
        raise AttnstepError(
            f"{path / CONFIG_FILE} has model_type {raw.get('model_type')!r}; attnstep loads {SUPPORTED}"
        )
    try:
        config = MarianConfig.from_hf_dict(raw)
    except (TypeError, ValueError) as exc:
        raise AttnstepError(f"{path / CONFIG_FILE}: {first_line(exc)}") from None
    tokenizer = MarianTokenizer.load(path)
    _check_tokenizer(tokenizer, config, path)
    generation_file = path / GENERATION_FILE
    generation = _read_json(generation_file) if generation_file.is_file() else None
    settings = GenerationSettings.from_files(
        generation, raw, str(generation_file if generation else path / CONFIG_FILE)
    )
    try:
        with skeleton():
            model = Marian(config)
    except (RuntimeError, MemoryError) as exc:
        raise AttnstepError(f"cannot build the model of {path}: {first_line(exc)}") from None
    required, optional = _expected_shapes(model)
    if (path / SAFETENSORS_FILE).is_file():
        where = path / SAFETENSORS_FILE
        weights = read_safetensors(where, required, optional)
    elif (path / PICKLE_FILE).is_file():
        where = path / PICKLE_FILE
        weights = _read_pickle(where, required, optional)
    else:
        raise AttnstepError(f"{path} has neither {SAFETENSORS_FILE} nor {PICKLE_FILE}")
    ours = _our_weights(weights, config, where)
    model.load_state_dict(ours, assign=True)
    _check_positions(weights, model, where)
    model.to(device).eval()
    return MarianCheckpoint(path, model, tokenizer, settings, file_digest(where))
