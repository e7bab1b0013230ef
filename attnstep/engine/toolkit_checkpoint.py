"""What the JoeyNMT and OpenNMT-py loaders share: the loaded checkpoint, the one way a pickle is opened,
and the model built from checked tensors.

A pickle is opened only by torch's weights-only unpickler, which builds tensors, containers and
plain values and refuses every other global unrun; ``allowed`` names the few more a toolkit's
checkpoint needs (OpenNMT-py's ``argparse.Namespace``, and nothing for JoeyNMT), allowed inside
``torch.serialization.safe_globals`` for that one load only.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attnstep.engine.checkpoint import RecurrentCheckpoint, check_finite
from attnstep.engine.device import skeleton
from attnstep.errors import AttnstepError, first_line
from attnstep.model.toolkits.config import RecurrentConfig
from attnstep.model.toolkits.seq2seq import ToolkitSeq2Seq
from attnstep.text.toolkit import ToolkitCodec, ToolkitVocab

_FLOAT_TYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass
class ToolkitCheckpoint(RecurrentCheckpoint[ToolkitSeq2Seq]):
    path: Path  # the model folder (JoeyNMT) or the checkpoint file (OpenNMT-py)
    model: ToolkitSeq2Seq
    codec: ToolkitCodec
    digest: str  # sha256 of the weights file: identifies the exact weights in traces
    meta: dict = field(default_factory=dict)  # source_language, target_language, toolkit, weights (the file)
    min_length: int = 0  # </s> is not chosen at the first min_length steps (JoeyNMT's min_output_length)
    max_length: int | None = None  # steps at most, </s> counted (JoeyNMT's max_output_length); None: attnstep's

    @property
    def config(self) -> RecurrentConfig:
        return self.model.config

    @property
    def src_vocab(self) -> ToolkitVocab:
        return self.codec.src_vocab

    @property
    def tgt_vocab(self) -> ToolkitVocab:
        return self.codec.tgt_vocab


def load_pickle(where: Path, allowed: list[Any], what: str) -> object:
    """``where`` through torch's weights-only unpickler, with ``allowed`` the only further globals; a pickle
    that asks for anything else is refused in one line naming it, and nothing of it runs."""
    try:
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            # a plain pickle's protocol is worth a torch warning, not a line on the user's screen
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(where, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(where))
    except pickle.UnpicklingError as exc:
        needs = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line), first_line(exc))
        raise AttnstepError(
            f"refusing {where}: {what} holds only tensors and plain values, and this asks for more ({needs})"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise AttnstepError(f"{where} is truncated or corrupt ({first_line(exc)})") from None


def tensors(value: object, where: Path, what: str) -> dict[str, torch.Tensor]:
    """``value`` as a state dict (a dict of tensors), or one line saying what it is instead."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in value.items()
    ):
        raise AttnstepError(f"{where}: {what} must be a dict of tensors, not {type(value).__name__}")
    return value


def build_model(
    config: RecurrentConfig,
    weights: dict[str, torch.Tensor],
    where: Path,
    theirs: dict[str, str],
    device: torch.device | str = "cpu",
) -> ToolkitSeq2Seq:
    """The model of ``config`` given ``weights`` (by attnstep's names; ``theirs`` gives the toolkit's name of
    each, for messages), every tensor checked first: each one the model has present, float, of the shape
    the configuration implies, finite. The model is put on ``device``."""
    try:
        with skeleton():
            model = ToolkitSeq2Seq(config)
    except (RuntimeError, ValueError, MemoryError) as exc:
        raise AttnstepError(f"cannot build the model of {where}: {first_line(exc)}") from None
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    missing = sorted(theirs.get(name, name) for name in set(expected) - set(weights))
    extra = sorted(theirs.get(name, name) for name in set(weights) - set(expected))
    if missing:
        raise AttnstepError(f"{where} lacks tensors the model needs: {', '.join(missing[:5])}")
    if extra:
        raise AttnstepError(f"{where} has tensors this model does not use: {', '.join(extra[:5])}")
    for ours, tensor in weights.items():
        name = theirs.get(ours, ours)
        if tensor.dtype not in _FLOAT_TYPES:
            raise AttnstepError(f"{where}: tensor {name} has dtype {tensor.dtype}; expected a float type")
        if tuple(tensor.shape) != expected[ours]:
            raise AttnstepError(
                f"{where}: tensor {name} has shape {tuple(tensor.shape)}; the configuration implies {expected[ours]}"
            )
    check_finite(where, weights)
    model.load_state_dict({name: t.float().contiguous().to(device) for name, t in weights.items()}, assign=True)
    return model.eval()
