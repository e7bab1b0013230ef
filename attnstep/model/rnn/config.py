"""The model's hyper-parameters: what ``config.json`` in a checkpoint serialises under ``"model"``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

SCORERS = ("dot", "general", "concat", "additive")
ATTENTION_TYPES = (*SCORERS, "none")  # none: an encoder–decoder without attention, the baseline


@dataclass(frozen=True)
class ModelConfig:
    src_vocab_size: int  # source vocabulary, specials included
    tgt_vocab_size: int  # target vocabulary, specials included
    emb_dim: int = 256  # word embeddings (source and target)
    enc_hidden: int = 256  # per direction; encoder states h_i have 2 * enc_hidden numbers
    dec_hidden: int = 512  # decoder state h_t; must equal 2 * enc_hidden for "dot" attention
    attention: str = "general"  # dot | general | concat (Luong 2015) | additive (Bahdanau 2014) | none
    attn_dim: int = 256  # hidden size of the concat/additive scorer's tanh layer
    dropout: float = 0.3  # on embeddings and on the attentional vector, training only
    tie_embeddings: bool = True  # output layer W_s shares the target embedding matrix (Press & Wolf 2017)

    def __post_init__(self) -> None:
        # config.json is user-editable: refuse wrong types here rather than deep inside torch.
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (type(value) is not int or value < 1):
                raise ValueError(f"{f.name} must be a positive integer, not {value!r}")
            if f.type == "bool" and type(value) is not bool:
                raise ValueError(f"{f.name} must be true or false, not {value!r}")
        if type(self.dropout) not in (int, float) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), not {self.dropout!r}")
        if self.attention not in ATTENTION_TYPES:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION_TYPES)}, not {self.attention!r}")
        if self.attention == "dot" and self.dec_hidden != 2 * self.enc_hidden:
            raise ValueError("dot attention needs dec_hidden == 2 * enc_hidden")

    @property
    def memory_dim(self) -> int:
        """Size of one encoder state h_i (forward and backward halves)."""
        return 2 * self.enc_hidden

    @property
    def out_dim(self) -> int:
        """Size of the attentional vector h~_t; the embedding size when W_s is tied to it."""
        return self.emb_dim if self.tie_embeddings else self.dec_hidden

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model settings: {', '.join(sorted(unknown))}")
        return cls(**data)
