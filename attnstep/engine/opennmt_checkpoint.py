"""OpenNMT-py checkpoints (3.x, RNN models) loaded into attnstep's toolkit family.

``model_step_N.pt`` is one pickle: ``model`` and ``generator`` (state dicts), ``vocab`` (token lists
by side), ``opt`` (the training options, an ``argparse.Namespace``) and ``optim``. With
``save_format: safetensors`` the weights are in ``model_step_N.*.safetensors`` beside it instead.
The pickle is opened by torch's weights-only unpickler with ``argparse.Namespace`` the one global
allowed beyond its defaults, for this load only; the safetensors header is checked before its
tensors are read. The options name the tokenizer (OpenNMT-py's ``sentencepiece`` or ``bpe``
transform, whose model or codes are looked for beside the checkpoint by their file names, or none).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from attnstep.engine.checkpoint import file_digest, read_safetensors
from attnstep.engine.toolkit_checkpoint import ToolkitCheckpoint, build_model, load_pickle, tensors
from attnstep.errors import AttnstepError, first_line
from attnstep.model.toolkits.config import OPENNMT, RecurrentConfig
from attnstep.text.toolkit import Splitter, ToolkitCodec, ToolkitVocab

SUFFIXES = (".pt", ".safetensors")
# Options attnstep does not compute, refused by name where set (their values when off).
_REFUSED = {
    "copy_attn": False,
    "coverage_attn": False,
    "context_gate": None,
    "global_attention_function": "softmax",
    "position_encoding": False,
    "lambda_align": 0.0,
}
_TRANSFORMS_IGNORED = {"filtertoolong"}  # training-time filters: nothing to do at translation


def is_opennmt(path: Path) -> bool:
    """An OpenNMT-py checkpoint file: model_step_N.pt, or the .safetensors beside one."""
    return path.is_file() and path.suffix in SUFFIXES


def _pickle_file(path: Path) -> Path:
    """The .pt of a checkpoint given by its .pt or one of its .safetensors shards (model_step_N.0.safetensors)."""
    if path.suffix == ".pt":
        return path
    stem = path.name.split(".")[0]
    if not (path.parent / (stem + ".pt")).is_file():
        raise AttnstepError(f"{path}: OpenNMT-py's options and vocabulary are in {stem}.pt, which is not beside it")
    return path.parent / (stem + ".pt")


def _option(opt: argparse.Namespace, *names: str, default: object = None) -> object:
    for name in names:
        if hasattr(opt, name):
            return getattr(opt, name)
    return default


def _model_config(where: Path, opt: argparse.Namespace, src: ToolkitVocab, tgt: ToolkitVocab) -> RecurrentConfig:
    encoder = _option(opt, "encoder_type", default="rnn")
    decoder = _option(opt, "decoder_type", default="rnn")
    if encoder not in ("rnn", "brnn") or decoder != "rnn":
        raise AttnstepError(
            f"{where}: encoder_type {encoder}, decoder_type {decoder}; attnstep steps OpenNMT-py's RNN models (rnn, brnn)"
        )
    for name, off in _REFUSED.items():
        value = _option(opt, name, default=off)
        if value not in (off, None, False, 0, ""):
            raise AttnstepError(f"{where}: {name} {value} is not done by attnstep")
    cell = str(_option(opt, "rnn_type", default="LSTM"))
    if cell not in ("LSTM", "GRU"):
        raise AttnstepError(f"{where}: rnn_type {cell} is not done by attnstep (LSTM and GRU are)")
    attention = _option(opt, "global_attention", default="general")
    if attention in (None, "none"):
        raise AttnstepError(f"{where}: global_attention none is not done by attnstep (dot, general and mlp are)")
    bidirectional = encoder == "brnn"
    hidden = int(_option(opt, "enc_hid_size", "hidden_size", "rnn_size", default=500))  # type: ignore[call-overload]
    try:
        return RecurrentConfig(
            toolkit=OPENNMT,
            src_vocab_size=len(src),
            tgt_vocab_size=len(tgt),
            src_emb=int(_option(opt, "src_word_vec_size", "word_vec_size")),  # type: ignore[call-overload]
            tgt_emb=int(_option(opt, "tgt_word_vec_size", "word_vec_size")),  # type: ignore[call-overload]
            cell=cell.lower(),
            enc_hidden=hidden // (2 if bidirectional else 1),
            enc_layers=int(_option(opt, "enc_layers", "layers", default=2)),  # type: ignore[call-overload]
            bidirectional=bidirectional,
            dec_hidden=int(_option(opt, "dec_hid_size", "hidden_size", "rnn_size", default=500)),  # type: ignore[call-overload]
            dec_layers=int(_option(opt, "dec_layers", "layers", default=2)),  # type: ignore[call-overload]
            attention=str(attention),
            init="bridge" if _option(opt, "bridge", default=False) else "final",
            input_feeding=bool(_option(opt, "input_feed", default=1)),
            output_bias=True,
        )
    except (TypeError, ValueError) as exc:
        raise AttnstepError(f"{where}: the options describe no model attnstep can build ({exc})") from None


def _splitter(where: Path, opt: argparse.Namespace, side: str) -> Splitter:
    listed = _option(opt, "transforms", default=[]) or []
    transforms = [str(t) for t in listed] if isinstance(listed, list) else [str(listed)]
    kinds = {"sentencepiece": "sentencepiece", "bpe": "subword-nmt"}
    unknown = [t for t in transforms if t not in kinds and t not in _TRANSFORMS_IGNORED]
    if unknown:
        raise AttnstepError(f"{where}: the {', '.join(unknown)} transform is not done by attnstep")
    subword = [kinds[t] for t in transforms if t in kinds]
    if not subword:
        return Splitter("none", False)
    named = _option(opt, f"{side}_subword_model")
    file = where.parent / Path(str(named)).name
    if not named or not file.is_file():
        raise AttnstepError(f"{where}: its {side}_subword_model {Path(str(named)).name} is not beside it")
    return Splitter.load(subword[0], False, file)


def _rename(model: dict, generator: dict) -> tuple[dict, dict[str, str]]:
    """OpenNMT-py's names → attnstep's, and back for messages."""
    fixed = {
        "encoder.embeddings.make_embedding.emb_luts.0.weight": "encoder.embedding.weight",
        "decoder.embeddings.make_embedding.emb_luts.0.weight": "decoder.embedding.weight",
        "decoder.attn.linear_out.weight": "decoder.W_c.weight",
        "decoder.attn.linear_out.bias": "decoder.W_c.bias",
        "decoder.attn.linear_in.weight": "decoder.scorer.W_a.weight",
        "decoder.attn.linear_context.weight": "decoder.scorer.W_k.weight",
        "decoder.attn.linear_query.weight": "decoder.scorer.W_q.weight",
        "decoder.attn.linear_query.bias": "decoder.scorer.W_q.bias",
        "decoder.attn.v.weight": "decoder.scorer.v_a.weight",
    }
    ours, theirs = {}, {}
    for name, tensor in model.items():
        parts = name.split(".")
        if name.startswith("decoder.rnn.layers."):  # StackedLSTM/StackedGRU (input feed): decoder.rnn.layers.k.w
            new = f"decoder.cells.{parts[3]}.{parts[4]}"
        elif name.startswith("decoder.rnn.") and "_l" in parts[2]:  # nn.GRU/nn.LSTM (no input feed): w_l{k}
            kind, layer = parts[2].rsplit("_l", 1)
            new = f"decoder.cells.{layer}.{kind}"
        elif name.startswith("encoder.bridge."):
            new = name.removeprefix("encoder.")
        elif name == "decoder.attn.linear_in.weight":
            tensor = tensor.t()  # (W h_t)ᵀ h_i = h_tᵀ (Wᵀ h_i): attnstep's general keys are Wᵀ h_i
            new = fixed[name]
        else:
            new = fixed.get(name, name)
        ours[new], theirs[new] = tensor, name
    for name, tensor in generator.items():
        new = "decoder.W_s." + name.removeprefix("generator.")
        ours[new], theirs[new] = tensor, "generator." + name.removeprefix("generator.")
    return ours, theirs


def load_opennmt(path: str | os.PathLike, device: torch.device | str = "cpu") -> ToolkitCheckpoint:
    """An OpenNMT-py checkpoint (.pt, or .pt + .safetensors); every failure is one AttnstepError line."""
    path = Path(path)
    where = _pickle_file(path)
    loaded = load_pickle(where, [argparse.Namespace], "an OpenNMT-py checkpoint")
    if not isinstance(loaded, dict) or not {"vocab", "opt"} <= set(loaded):
        found = sorted(map(str, loaded))[:5] if isinstance(loaded, dict) else type(loaded).__name__
        raise AttnstepError(f"{where} is not an OpenNMT-py checkpoint: no vocab and opt (found {found})")
    opt, vocab = loaded["opt"], loaded["vocab"]
    if not isinstance(opt, argparse.Namespace) or not isinstance(vocab, dict):
        raise AttnstepError(f"{where}: its opt must be options and its vocab token lists")
    sides = []
    for side in ("src", "tgt"):
        tokens = vocab.get(side)
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise AttnstepError(f"{where}: its {side} vocabulary must be a list of tokens")
        sides.append(ToolkitVocab(tokens, f"{where}'s {side} vocabulary"))
    src_vocab, tgt_vocab = sides
    config = _model_config(where, opt, src_vocab, tgt_vocab)
    codec = ToolkitCodec(
        src_vocab, tgt_vocab, _splitter(where, opt, "src"), _splitter(where, opt, "tgt"), source_eos=False
    )
    # Its trainer saves NAME.safetensors; its translate reads shards NAME.N.safetensors: either, if one
    files = [where.with_suffix(".safetensors")] if where.with_suffix(".safetensors").is_file() else []
    files += sorted(where.parent.glob(where.stem + ".*.safetensors"))
    if loaded.get("model") is not None:
        state = tensors(loaded["model"], where, "its model")
        generator = tensors(loaded.get("generator"), where, "its generator")
        weights_file = where
    elif len(files) == 1:
        weights_file = files[0]
        state = read_safetensors(weights_file, {}, _header_shapes(weights_file))
        generator = {name: state.pop(name) for name in [n for n in state if n.startswith("generator.")]}
    else:
        found = ", ".join(f.name for f in files) or "none"
        raise AttnstepError(f"{where} holds no model, and needs one {where.stem}.safetensors beside it (found {found})")
    weights, theirs = _rename(state, generator)
    model = build_model(config, weights, weights_file, theirs, device)
    meta = {
        "toolkit": "OpenNMT-py",
        "source_language": "",
        "target_language": "",
        "weights": weights_file.name,
    }
    return ToolkitCheckpoint(where, model, codec, file_digest(weights_file), meta)


def _header_shapes(where: Path) -> dict[str, tuple[int, ...]]:
    """The names and shapes a safetensors header lists, which build_model then checks against the options."""
    try:
        with safe_open(where, framework="pt") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise AttnstepError(f"{where} is truncated or corrupt ({first_line(exc)})") from None
