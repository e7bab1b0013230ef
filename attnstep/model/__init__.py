"""The attention seq2seq model: encoder, scorers, one-step decoder."""

from attnstep.model.rnn.config import ATTENTION_TYPES, ModelConfig
from attnstep.model.rnn.seq2seq import Seq2Seq

__all__ = ["ATTENTION_TYPES", "ModelConfig", "Seq2Seq"]
