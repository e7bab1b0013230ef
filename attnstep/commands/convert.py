"""``attnstep convert``: a checkpoint's weights re-stored in another float type."""

from __future__ import annotations

from pathlib import Path

from attnstep.engine.checkpoint import STORAGE_TYPES, check_writable_checkpoint, load_checkpoint, save_checkpoint


def convert(checkpoint: Path, dtype: str, out: Path) -> None:
    """Write ``checkpoint`` to ``out`` (atomically, possibly over itself) with its weights stored as ``dtype``."""
    check_writable_checkpoint(out)
    ckpt = load_checkpoint(checkpoint)
    meta = {**ckpt.meta, "storage_dtype": dtype}
    save_checkpoint(
        out, ckpt.model, ckpt.src_vocab, ckpt.tgt_vocab, meta, dtype=STORAGE_TYPES[dtype], subword=ckpt.subword
    )
