"""JoeyNMT model folders (JoeyNMT 2.x, recurrent models) loaded into attnstep's toolkit family.

A folder holds ``config.yaml`` (what ``joeynmt train`` copied there), checkpoints ``N.ckpt`` with
``best.ckpt``/``latest.ckpt`` links to them, ``src_vocab.txt``/``trg_vocab.txt`` (one token a line,
``<unk> <pad> <s> </s>`` first) and the tokenizer files the config names (SentencePiece models or
subword-nmt codes), which are looked for in the folder by their file names, as JoeyNMT's own hub
loader does. The YAML is read by a safe loader (a ``!!python`` tag is refused, not run); a checkpoint
is a dict whose ``model_state`` holds the weights, opened by torch's weights-only unpickler with no
global allowed beyond its defaults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import yaml

from attnstep.data.files import read_limited
from attnstep.engine.checkpoint import file_digest
from attnstep.engine.toolkit_checkpoint import ToolkitCheckpoint, build_model, load_pickle, tensors
from attnstep.errors import AttnstepError, first_line
from attnstep.model.toolkits.config import JOEYNMT, RecurrentConfig
from attnstep.text.toolkit import Splitter, ToolkitCodec, ToolkitVocab

CONFIG_FILE = "config.yaml"
CHECKPOINT_SUFFIX = ".ckpt"
MAX_CONFIG_BYTES = 1024 * 1024
_NUMBERED = re.compile(r"^(\d+)\.ckpt$")


def is_joeynmt(path: Path) -> bool:
    """A JoeyNMT folder (config.yaml beside a .ckpt), or one of its .ckpt files."""
    if path.is_file():
        return path.suffix == CHECKPOINT_SUFFIX
    return path.is_dir() and (path / CONFIG_FILE).is_file() and any(path.glob("*" + CHECKPOINT_SUFFIX))


def read_yaml(path: Path) -> dict:
    data = read_limited(path, MAX_CONFIG_BYTES, "{path} is {size} bytes; a config is at most {limit}")
    try:
        value = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AttnstepError(f"{path} is not UTF-8 text ({first_line(exc)})") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise AttnstepError(f"refusing {path}: {problem} (only plain YAML is read)") from None
    if not isinstance(value, dict):
        raise AttnstepError(f"{path} must hold a YAML mapping")
    return value


def _section(config: dict, where: str, *keys: str) -> dict:
    value: object = config
    for key in keys:
        value = value.get(key, {}) if isinstance(value, dict) else None
    if not isinstance(value, dict):
        raise AttnstepError(f"{where}: '{'.'.join(keys)}' must be a mapping")
    return value


def _checkpoint_file(folder: Path, config: dict) -> Path:
    """The checkpoint JoeyNMT's translate would load: testing.load_model, else best.ckpt, latest.ckpt, the last N.ckpt."""
    named = _section(config, str(folder / CONFIG_FILE), "testing").get("load_model")
    candidates = [Path(str(named)).name] if named else []
    candidates += ["best.ckpt", "latest.ckpt"]
    numbered = sorted((int(m[1]), p.name) for p in folder.iterdir() if (m := _NUMBERED.match(p.name)))
    candidates += [name for _, name in reversed(numbered)]
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    raise AttnstepError(f"{folder} has no JoeyNMT checkpoint (best.ckpt, latest.ckpt or N.ckpt)")


def _folder_file(folder: Path, named: object, default: str, what: str) -> Path:
    """A file the config names, looked for in the folder by its file name."""
    name = Path(str(named)).name if named else default
    if not (folder / name).is_file():
        raise AttnstepError(f"{folder} lacks {name}, the {what} its {CONFIG_FILE} names")
    return folder / name


def _splitter(folder: Path, side: dict, key: str, vocab: ToolkitVocab) -> Splitter:
    """The tokenizer JoeyNMT builds for a side (its build_tokenizer), for the kinds attnstep does."""
    where = f"{folder / CONFIG_FILE}: data.{key}"
    level = side.get("level", "word")
    if side.get("normalize"):
        raise AttnstepError(f"{where}.normalize: true is not done by attnstep")
    settings = side.get("tokenizer_cfg") or {}
    if not isinstance(settings, dict):
        raise AttnstepError(f"{where}.tokenizer_cfg must be a mapping")
    if str(settings.get("pretokenizer", "none")).lower() != "none":
        raise AttnstepError(f"{where}.tokenizer_cfg.pretokenizer: {settings['pretokenizer']} is not done by attnstep")
    lowercase = bool(side.get("lowercase", False))
    if level == "word":
        return Splitter("none", lowercase)
    if level != "bpe":
        raise AttnstepError(f"{where}.level: {level} is not done by attnstep (word and bpe are)")
    kind = side.get("tokenizer_type", side.get("bpe_type", "sentencepiece"))
    if kind == "sentencepiece":
        model = _folder_file(folder, settings.get("model_file"), "", "SentencePiece model")
        return Splitter.load(kind, lowercase, model, vocab.tokens)
    if kind == "subword-nmt":
        return Splitter.load(
            kind, lowercase, _folder_file(folder, settings.get("codes"), "", "BPE codes"), vocab.tokens
        )
    raise AttnstepError(f"{where}.tokenizer_type: {kind} is not one attnstep reads (sentencepiece, subword-nmt)")


def _model_config(folder: Path, config: dict, src: ToolkitVocab, tgt: ToolkitVocab) -> RecurrentConfig:
    where = str(folder / CONFIG_FILE)
    encoder, decoder = _section(config, where, "model", "encoder"), _section(config, where, "model", "decoder")
    for name, part, default in (("encoder", encoder, "recurrent"), ("decoder", decoder, "transformer")):
        if part.get("type", default) != "recurrent":
            raise AttnstepError(
                f"{where}: model.{name}.type is {part.get('type', default)}; attnstep steps JoeyNMT's recurrent models"
            )
    cells = {str(encoder.get("rnn_type", "gru")).lower(), str(decoder.get("rnn_type", "gru")).lower()}
    if len(cells) != 1:
        raise AttnstepError(f"{where}: the encoder's and the decoder's rnn_type differ; attnstep steps one kind")
    activation = decoder.get("activation", "tanh")
    if activation != "tanh":
        raise AttnstepError(f"{where}: model.decoder.activation {activation} is not done by attnstep (tanh is)")
    src_emb, tgt_emb = (_section(config, where, "model", side, "embeddings") for side in ("encoder", "decoder"))
    if src_emb.get("scale", False) != tgt_emb.get("scale", False):
        raise AttnstepError(f"{where}: the source and target embeddings' scale differ")
    try:
        return RecurrentConfig(
            toolkit=JOEYNMT,
            src_vocab_size=len(src),
            tgt_vocab_size=len(tgt),
            src_emb=int(src_emb["embedding_dim"]),
            tgt_emb=int(tgt_emb["embedding_dim"]),
            cell=cells.pop(),
            enc_hidden=int(encoder["hidden_size"]),
            enc_layers=int(encoder.get("num_layers", 1)),
            bidirectional=bool(encoder.get("bidirectional", True)),
            dec_hidden=int(decoder["hidden_size"]),
            dec_layers=int(decoder.get("num_layers", 1)),
            attention=str(decoder.get("attention", "bahdanau")),
            init=str(decoder.get("init_hidden", "bridge")).replace("zeros", "zero"),
            input_feeding=bool(decoder.get("input_feeding", True)),
            scale_embeddings=bool(src_emb.get("scale", False)),
        )
    except KeyError as exc:
        raise AttnstepError(f"{where}: the model's {exc.args[0]} is missing") from None
    except (TypeError, ValueError) as exc:
        raise AttnstepError(f"{where}: {first_line(exc)}") from None


def _rename(state: dict) -> tuple[dict, dict[str, str]]:
    """JoeyNMT's names → attnstep's, and back for messages; the decoder's nn.GRU/nn.LSTM becomes its cells."""
    fixed = {
        "src_embed.lut.weight": "encoder.embedding.weight",
        "trg_embed.lut.weight": "decoder.embedding.weight",
        "decoder.att_vector_layer.weight": "decoder.W_c.weight",
        "decoder.att_vector_layer.bias": "decoder.W_c.bias",
        "decoder.output_layer.weight": "decoder.W_s.weight",
        "decoder.attention.query_layer.weight": "decoder.scorer.W_q.weight",
        "decoder.attention.energy_layer.weight": "decoder.scorer.v_a.weight",
        "decoder.bridge_layer.weight": "bridge.0.weight",
        "decoder.bridge_layer.bias": "bridge.0.bias",
    }
    luong = "decoder.attention.energy_layer.weight" not in state
    fixed["decoder.attention.key_layer.weight"] = "decoder.scorer." + ("W_a" if luong else "W_k") + ".weight"
    ours, theirs = {}, {}
    for name, tensor in state.items():
        cell = re.fullmatch(r"decoder\.rnn\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)", name)
        if cell:
            new = f"decoder.cells.{cell[2]}.{cell[1]}"
        elif name.startswith("encoder.rnn."):
            new = name
        else:
            new = fixed.get(name, name)
        ours[new], theirs[new] = tensor, name
    return ours, theirs


def load_joeynmt(path: str | os.PathLike, device: torch.device | str = "cpu") -> ToolkitCheckpoint:
    """A JoeyNMT folder, or one of its .ckpt files; every failure is one AttnstepError line."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    if not (folder / CONFIG_FILE).is_file():
        raise AttnstepError(f"{path}: a JoeyNMT checkpoint needs the {CONFIG_FILE} of its model folder beside it")
    config = read_yaml(folder / CONFIG_FILE)
    where = path if path.is_file() else _checkpoint_file(folder, config)
    sides = {key: _section(config, str(folder / CONFIG_FILE), "data", key) for key in ("src", "trg")}
    src_vocab, tgt_vocab = (
        ToolkitVocab.load(_folder_file(folder, sides[key].get("voc_file"), f"{key}_vocab.txt", "vocabulary"))
        for key in ("src", "trg")
    )
    model_config = _model_config(folder, config, src_vocab, tgt_vocab)
    source, target = (
        _splitter(folder, sides[key], key, vocab) for key, vocab in (("src", src_vocab), ("trg", tgt_vocab))
    )
    codec = ToolkitCodec(src_vocab, tgt_vocab, source, target, source_eos=True)
    loaded = load_pickle(where, [], "a JoeyNMT checkpoint")
    if not isinstance(loaded, dict) or "model_state" not in loaded:
        found = sorted(map(str, loaded))[:5] if isinstance(loaded, dict) else type(loaded).__name__
        raise AttnstepError(f"{where} is not a JoeyNMT checkpoint: no model_state (found {found})")
    weights, theirs = _rename(tensors(loaded["model_state"], where, "model_state"))
    model = build_model(model_config, weights, where, theirs, device)
    meta = {
        "toolkit": "JoeyNMT",
        "source_language": str(sides["src"].get("lang", "")),
        "target_language": str(sides["trg"].get("lang", "")),
        "weights": where.name,
    }
    lengths = _lengths(_section(config, str(folder / CONFIG_FILE), "testing"), folder / CONFIG_FILE)
    return ToolkitCheckpoint(folder, model, codec, file_digest(where), meta, *lengths)


def _lengths(testing: dict, where: Path) -> tuple[int, int | None]:
    """JoeyNMT's translation lengths: min_output_length (default 1: </s> never first) and max_output_length
    (unset or -1: JoeyNMT's 1.5 × the source's length; attnstep then keeps its own, 2 × + 10)."""
    try:
        shortest, longest = int(testing.get("min_output_length", 1)), int(testing.get("max_output_length", -1))
    except (TypeError, ValueError):
        raise AttnstepError(f"{where}: testing.min_output_length and max_output_length must be numbers") from None
    return max(shortest, 0), longest if longest > shortest else None
