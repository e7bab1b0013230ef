"""A Marian model's hyper-parameters, read from the ``config.json`` that Hugging Face's ``save_pretrained`` writes.

The file is checked here, before anything is allocated: its type, each size's type and range, and the
parameter count the sizes imply, so a config claiming enormous sizes ends in one line, not an
out-of-memory kill. The defaults are ``transformers.MarianConfig``'s, which a file may leave out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

MODEL_TYPE = "marian"
ACTIVATIONS = ("swish", "silu", "gelu", "gelu_new", "relu", "tanh", "sigmoid")
MAX_PARAMETERS = 2_000_000_000  # 8 GB of float32; opus-mt models have 75–240 million
# Each size's bound: generous for any published Marian, small enough that a product cannot overflow.
LIMITS = {
    "vocab_size": 1_000_000,
    "decoder_vocab_size": 1_000_000,
    "d_model": 8192,
    "encoder_layers": 64,
    "decoder_layers": 64,
    "encoder_attention_heads": 256,
    "decoder_attention_heads": 256,
    "encoder_ffn_dim": 65536,
    "decoder_ffn_dim": 65536,
    "max_position_embeddings": 16384,
}


@dataclass(frozen=True)
class MarianConfig:
    vocab_size: int = 58101  # source vocabulary; also the target's when embeddings are shared
    decoder_vocab_size: int = 58101  # target vocabulary (the output layer's rows)
    d_model: int = 1024  # D: every layer's width, embeddings included
    encoder_layers: int = 12
    decoder_layers: int = 12
    encoder_attention_heads: int = 16
    decoder_attention_heads: int = 16  # h; each head has D / h numbers
    encoder_ffn_dim: int = 4096  # F: the feed-forward block's inner width
    decoder_ffn_dim: int = 4096
    activation_function: str = "gelu"  # opus-mt models use swish
    max_position_embeddings: int = 1024  # rows of the sinusoidal position table: the longest sentence
    scale_embedding: bool = False  # multiply token embeddings by √D (opus-mt: true)
    pad_token_id: int = 58100  # <pad>: padding, and never emitted
    eos_token_id: int = 0  # </s>
    decoder_start_token_id: int = 58100  # what the decoder reads first (<pad> in opus-mt)
    share_encoder_decoder_embeddings: bool = True  # one embedding matrix for source and target tokens
    tie_word_embeddings: bool = True  # the output layer is the target embedding matrix

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and type(value) is not int:
                raise ValueError(f"{f.name} must be an integer, not {value!r}")
            if f.type == "bool" and type(value) is not bool:
                raise ValueError(f"{f.name} must be true or false, not {value!r}")
            if f.name in LIMITS and not 1 <= value <= LIMITS[f.name]:
                raise ValueError(f"{f.name} is {value}; attnstep loads 1 to {LIMITS[f.name]}")
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(f"activation_function {self.activation_function!r} is not one of {', '.join(ACTIVATIONS)}")
        for side, heads in (("encoder", self.encoder_attention_heads), ("decoder", self.decoder_attention_heads)):
            if self.d_model % heads:
                raise ValueError(f"d_model {self.d_model} is not divisible by {side}_attention_heads {heads}")
        if self.share_encoder_decoder_embeddings and self.decoder_vocab_size != self.vocab_size:
            raise ValueError("shared embeddings need decoder_vocab_size == vocab_size")
        for name in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
            if not 0 <= getattr(self, name) < self.decoder_vocab_size:
                raise ValueError(f"{name} {getattr(self, name)} is outside the target vocabulary")
        if self.parameters > MAX_PARAMETERS:
            raise ValueError(
                f"the sizes make {self.parameters:,} parameters; attnstep loads at most {MAX_PARAMETERS:,}"
            )

    @property
    def parameters(self) -> int:
        """How many numbers the sizes imply, the position table included: checked before any is allocated."""
        d = self.d_model
        encoder = self.encoder_layers * (4 * d * d + 2 * d * self.encoder_ffn_dim + 10 * d + self.encoder_ffn_dim)
        decoder = self.decoder_layers * (8 * d * d + 2 * d * self.decoder_ffn_dim + 15 * d + self.decoder_ffn_dim)
        embeddings = self.vocab_size * d + (0 if self.share_encoder_decoder_embeddings else self.decoder_vocab_size * d)
        output = 0 if self.tie_word_embeddings else self.decoder_vocab_size * d
        return encoder + decoder + embeddings + output + self.decoder_vocab_size + self.max_position_embeddings * d

    @property
    def head_dim(self) -> int:
        return self.d_model // self.decoder_attention_heads

    @classmethod
    def from_hf_dict(cls, data: dict) -> MarianConfig:
        """From a ``config.json`` object; keys this family does not use (dropout, architectures…) are ignored."""
        if data.get("model_type") != MODEL_TYPE:
            raise ValueError(f"model_type is {data.get('model_type')!r}, not {MODEL_TYPE!r}")
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known and value is not None}
        # As transformers does: an unset or null decoder vocabulary is the source's.
        values.setdefault("decoder_vocab_size", values.get("vocab_size", cls.vocab_size))
        return cls(**values)
