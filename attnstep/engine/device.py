"""Where torch computes: the CPU threads it may use and the device (``--threads``, ``--device``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode

from attnstep.errors import AttnstepError

DEVICES = ("auto", "cpu", "cuda")


def use_device(device: str, threads: int = 0) -> torch.device:
    """Give torch ``threads`` CPU threads (0: its default) and → the device to compute on: ``auto`` is
    cuda where torch sees a GPU, else the CPU; ``cuda`` without one is refused in one line."""
    if device not in DEVICES:
        raise AttnstepError(f"--device must be auto, cpu or cuda, not {device!r}")
    if threads:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise AttnstepError("--device cuda: torch sees no CUDA GPU here (use --device cpu or auto)")
    return torch.device(device)


# The random fills torch.nn's modules initialise their parameters with (torch.nn.init's, which hand
# their arguments to a mode by name, and the tensor methods they call).
_RANDOM_FILLS = {torch.nn.init.normal_, torch.nn.init.uniform_, torch.Tensor.normal_, torch.Tensor.uniform_}


class _SkipRandomFills(TorchFunctionMode):
    """Random fills of meta tensors skipped: they have no values to fill, and ``normal_`` there imports
    torch._dynamo for its reference kernel, 1.6 s that were most of loading a checkpoint."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RANDOM_FILLS and (filled := args[0] if args else kwargs["tensor"]).is_meta:
            return filled
        return func(*args, **kwargs)


@contextmanager
def skeleton() -> Iterator[None]:
    """Modules built inside are shapes without storage (the meta device), to be given loaded weights."""
    with torch.device("meta"), _SkipRandomFills():
        yield
