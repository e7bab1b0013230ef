"""The models: one family per subfolder (attnstep's RNN family in rnn/), each plugged into the engine
through the :class:`~attnstep.model.family.Family` protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnstep.model.rnn.config import ATTENTION_TYPES, ModelConfig

if TYPE_CHECKING:
    from attnstep.model.rnn.seq2seq import Seq2Seq

__all__ = ["ATTENTION_TYPES", "ModelConfig", "Seq2Seq"]


def __getattr__(name: str) -> type[Seq2Seq]:
    # Seq2Seq imports torch (a second or more): loaded when first asked for, so that the command
    # line reads ModelConfig's defaults for its options without it.
    if name == "Seq2Seq":
        from attnstep.model.rnn.seq2seq import Seq2Seq

        return Seq2Seq
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
