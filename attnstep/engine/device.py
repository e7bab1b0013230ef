"""Where torch computes: the CPU threads it may use and the device (``--threads``, ``--device``)."""

from __future__ import annotations

import torch

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
