"""The Marian Transformer (Vaswani et al. 2017) as Hugging Face's ``MarianMTModel`` computes it, written out.

Post-norm layers, LayerNorm(x + sublayer(x)), as Marian trains them; token embeddings scaled by √D when
the config says so; static sinusoidal positions with the sines in the first half of each vector and
the cosines in the second (not interleaved); scaled dot-product attention, eq. 1, per head, eq. 2
(§3.2.2); the output layer the target embedding matrix (tied) or its own, plus ``final_logits_bias``.

The encoder reads a whole batch at once. The decoder goes one position per call (:meth:`Marian.step`):
the keys and values of the tokens so far are kept in a :class:`DecoderCache`, those of the source in
the :class:`Memory`, so a step computes one query per layer, and it returns every intermediate as a
:class:`DecoderStep` instead of hiding them in hooks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, cast

import torch
from torch import Tensor, nn

from attnstep.model.family import Reweigh
from attnstep.model.marian.config import MarianConfig

ACTIVATION_MODULES: dict[str, Callable[[], nn.Module]] = {
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def sinusoidal_positions(count: int, dim: int) -> Tensor:
    """Marian's position table (count, dim): sin(p / 10000^(2⌊j/2⌋/dim)) for the even j in the first half,
    cos of the odd j in the second; computed in float64 as transformers does, then stored as float32.

    On the CPU even while the model is built on the meta device: it is no weight a file gives, and arange on
    the meta device would import torch._dynamo (seconds)."""
    position = torch.arange(count, dtype=torch.float64, device="cpu")[:, None]  # (P, 1)
    rate = torch.pow(10000.0, 2 * (torch.arange(dim, dtype=torch.float64, device="cpu") // 2) / dim)  # (dim,)
    angle = position / rate  # (P, dim)
    half = (dim + 1) // 2
    table = torch.empty(count, dim, dtype=torch.float32, device="cpu")
    table[:, :half] = torch.sin(angle[:, 0::2]).float()
    table[:, half:] = torch.cos(angle[:, 1::2]).float()
    return table


class Memory(NamedTuple):
    """The encoded source, batch-first so that beam search can pick rows (family.select)."""

    states: Tensor  # (B, S, D) the encoder's last layer
    mask: Tensor  # (B, S) True at real tokens, False at padding
    keys: Tensor  # (B, L, h, S, d) each decoder layer's cross-attention keys W_k m_i, per head
    values: Tensor  # (B, L, h, S, d) and values W_v m_i


class DecoderCache(NamedTuple):
    """The self-attention keys and values of the T target tokens read so far."""

    keys: Tensor  # (B, L, h, T, d)
    values: Tensor  # (B, L, h, T, d)


@dataclass(frozen=True)
class AttentionStep:
    """One multi-head attention sublayer at one decoder position, with its residual and norm."""

    query: Tensor  # (B, h, d) q = W_q x + b_q, split into heads
    keys: Tensor  # (B, h, N, d) k_i; N is the source length S (cross) or the tokens so far T (self)
    values: Tensor  # (B, h, N, d) v_i
    scores: Tensor  # (B, h, N) q·k_i / √d, before the padding mask
    weights: Tensor  # (B, h, N) softmax over i; 0 at padding
    context: Tensor  # (B, h, d) Σ_i a_i v_i, each head's
    concat: Tensor  # (B, D) the heads side by side
    output: Tensor  # (B, D) W_o concat + b_o
    normed: Tensor  # (B, D) LayerNorm(x + output): what the next sublayer reads


@dataclass(frozen=True)
class FeedForwardStep:
    hidden: Tensor  # (B, F) activation(W_1 x + b_1)
    output: Tensor  # (B, D) W_2 hidden + b_2
    normed: Tensor  # (B, D) LayerNorm(x + output): the layer's output


@dataclass(frozen=True)
class DecoderLayerStep:
    self_attention: AttentionStep  # over the target tokens so far, this one included
    cross_attention: AttentionStep  # over the source
    feed_forward: FeedForwardStep


@dataclass(frozen=True)
class DecoderStep:
    """Everything one decoder step computes for the batch, bottom to top."""

    token_embedding: Tensor  # (B, D) E[y_{t-1}], times √D where the config scales embeddings
    position: Tensor  # (D,) the sinusoid of position t, the same for every row
    layers: tuple[DecoderLayerStep, ...]  # L of them
    logits: Tensor  # (B, V) W_out h + final_logits_bias
    log_probs: Tensor  # (B, V) log softmax of the logits

    @property
    def hidden(self) -> Tensor:
        return self.layers[-1].feed_forward.normed  # (B, D) what the output layer reads


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over h heads; the names are transformers' so weights load by name."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scaling = self.head_dim**-0.5
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def split(self, x: Tensor) -> Tensor:
        """(..., N, D) → (..., h, N, d)."""
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(-3, -2)

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.split(self.k_proj(x)), self.split(self.v_proj(x))  # (B, h, N, d) each

    def sequence(self, x: Tensor, mask: Tensor) -> Tensor:
        """The encoder's self-attention for every position at once: x (B, S, D), mask (B, S) → (B, S, D)."""
        query = self.split(self.q_proj(x))  # (B, h, S, d)
        keys, values = self.keys_values(x)  # (B, h, S, d)
        scores = torch.matmul(query, keys.transpose(2, 3)) * self.scaling  # (B, h, S, S)
        weights = scores.masked_fill(~mask[:, None, None, :], -math.inf).softmax(dim=-1)  # (B, h, S, S)
        context = torch.matmul(weights, values)  # (B, h, S, d)
        return self.out_proj(context.transpose(1, 2).flatten(2))  # (B, S, D)

    def position(
        self,
        x: Tensor,
        keys: Tensor,
        values: Tensor,
        mask: Tensor | None,
        norm: nn.LayerNorm,
        reweigh: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> AttentionStep:
        """One query x (B, D) over keys and values (B, h, N, d); mask (B, N) or None where nothing is padding;
        ``reweigh`` (scores, weights) → the weights to attend with, (B, h, N)."""
        query = self.split(self.q_proj(x)[:, None, :])  # (B, h, 1, d)
        scores = torch.matmul(query, keys.transpose(2, 3)).squeeze(2) * self.scaling  # (B, h, N)
        masked = scores if mask is None else scores.masked_fill(~mask[:, None, :], -math.inf)  # (B, h, N)
        weights = masked.softmax(dim=-1)  # (B, h, N)
        if reweigh is not None:
            weights = reweigh(scores, weights)  # (B, h, N)
        context = torch.matmul(weights[:, :, None, :], values).squeeze(2)  # (B, h, d)
        concat = context.flatten(1)  # (B, D)
        output = self.out_proj(concat)  # (B, D)
        return AttentionStep(query.squeeze(2), keys, values, scores, weights, context, concat, output, norm(x + output))


class EncoderLayer(nn.Module):
    def __init__(self, config: MarianConfig):
        super().__init__()
        dim, ffn = config.d_model, config.encoder_ffn_dim
        self.self_attn = MultiHeadAttention(dim, config.encoder_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.activation = ACTIVATION_MODULES[config.activation_function]()
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn.sequence(x, mask))  # (B, S, D)
        return self.final_layer_norm(x + self.fc2(self.activation(self.fc1(x))))  # (B, S, D)


class DecoderLayer(nn.Module):
    def __init__(self, config: MarianConfig):
        super().__init__()
        dim, ffn, heads = config.d_model, config.decoder_ffn_dim, config.decoder_attention_heads
        self.self_attn, self.encoder_attn = MultiHeadAttention(dim, heads), MultiHeadAttention(dim, heads)
        self.self_attn_layer_norm, self.encoder_attn_layer_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.activation = ACTIVATION_MODULES[config.activation_function]()
        self.final_layer_norm = nn.LayerNorm(dim)

    def step(
        self,
        x: Tensor,
        past_keys: Tensor,
        past_values: Tensor,
        source_keys: Tensor,
        source_values: Tensor,
        mask: Tensor,
        reweigh: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> DecoderLayerStep:
        """x (B, D) at position t; past (B, h, t, d); source (B, h, S, d), mask (B, S); ``reweigh`` edits the
        cross-attention's weights (the sublayers above it, and what the cache keeps above this layer, follow)."""
        new_keys, new_values = self.self_attn.keys_values(x[:, None, :])  # (B, h, 1, d)
        keys = torch.cat([past_keys, new_keys], dim=2)  # (B, h, t + 1, d)
        values = torch.cat([past_values, new_values], dim=2)  # (B, h, t + 1, d)
        own = self.self_attn.position(x, keys, values, None, self.self_attn_layer_norm)
        cross = self.encoder_attn.position(
            own.normed, source_keys, source_values, mask, self.encoder_attn_layer_norm, reweigh
        )
        hidden = self.activation(self.fc1(cross.normed))  # (B, F)
        output = self.fc2(hidden)  # (B, D)
        return DecoderLayerStep(
            own, cross, FeedForwardStep(hidden, output, self.final_layer_norm(cross.normed + output))
        )


class Marian(nn.Module):
    """The encoder–decoder; :meth:`encode` once per batch, then :meth:`step` once per target position."""

    positions: Tensor  # (P, D) a buffer: the sinusoid of each position

    def __init__(self, config: MarianConfig):
        super().__init__()
        self.config = config
        dim = config.d_model
        self.embed_scale = math.sqrt(dim) if config.scale_embedding else 1.0
        # attnstep only loads Marian weights, never trains them: the tables are left unset (_weight), since
        # nn.Embedding's random ones cost seconds on the meta device (the first normal_ there imports torch._dynamo).
        self.encoder_embed = nn.Embedding(config.vocab_size, dim, _weight=torch.empty(config.vocab_size, dim))
        shared = config.share_encoder_decoder_embeddings
        decoder_table = torch.empty(config.decoder_vocab_size, dim)
        self.decoder_embed = (
            self.encoder_embed if shared else nn.Embedding(config.decoder_vocab_size, dim, _weight=decoder_table)
        )
        self.output = None if config.tie_word_embeddings else nn.Linear(dim, config.decoder_vocab_size, bias=False)
        self.register_buffer("final_logits_bias", torch.zeros(config.decoder_vocab_size))  # (V,)
        # Not a weight: transformers leaves the table out of the files it writes and recomputes it.
        positions = sinusoidal_positions(config.max_position_embeddings, dim)  # (P, D)
        self.register_buffer("positions", positions, persistent=False)
        self.encoder_layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers))

    @property
    def decoder(self) -> list[DecoderLayer]:
        return cast(list[DecoderLayer], list(self.decoder_layers))

    @property
    def output_weight(self) -> Tensor:
        return self.decoder_embed.weight if self.output is None else self.output.weight  # (V, D)

    def encode(self, src: Tensor, mask: Tensor) -> Memory:
        """src (B, S) ids, right-padded; mask (B, S) True at real tokens."""
        positions = self.positions[: src.size(1)]  # (S, D)
        x = self.encoder_embed(src) * self.embed_scale + positions  # (B, S, D)
        for layer in self.encoder_layers:
            x = layer(x, mask)  # (B, S, D)
        projected = [layer.encoder_attn.keys_values(x) for layer in self.decoder]
        keys = torch.stack([k for k, _ in projected], dim=1)  # (B, L, h, S, d)
        values = torch.stack([v for _, v in projected], dim=1)  # (B, L, h, S, d)
        return Memory(x, mask, keys, values)

    def empty_cache(self, batch: int) -> DecoderCache:
        config = self.config
        shape = (batch, config.decoder_layers, config.decoder_attention_heads, 0, config.head_dim)
        return DecoderCache(self.positions.new_zeros(shape), self.positions.new_zeros(shape))  # (B, L, h, 0, d)

    def step(
        self, prev_tokens: Tensor, cache: DecoderCache, memory: Memory, reweigh: Reweigh | None = None
    ) -> tuple[DecoderStep, DecoderCache]:
        """One decoder position for the batch: prev_tokens (B,) are the tokens read at this position;
        ``reweigh`` (layer, scores, weights) edits each layer's cross-attention weights (B, h, S)."""
        t = cache.keys.size(3)
        if t >= self.config.max_position_embeddings:
            raise ValueError(f"the model has positions for {self.config.max_position_embeddings} tokens")
        token = self.decoder_embed(prev_tokens) * self.embed_scale  # (B, D)
        position = self.positions[t]  # (D,)
        x = token + position  # (B, D)
        layers = []
        for i, layer in enumerate(self.decoder):
            edit = None if reweigh is None else functools.partial(reweigh, i)
            record = layer.step(
                x, cache.keys[:, i], cache.values[:, i], memory.keys[:, i], memory.values[:, i], memory.mask, edit
            )
            layers.append(record)
            x = record.feed_forward.normed  # (B, D)
        logits = x @ self.output_weight.T + self.final_logits_bias  # (B, V)
        keys = torch.stack([record.self_attention.keys for record in layers], dim=1)  # (B, L, h, t + 1, d)
        values = torch.stack([record.self_attention.values for record in layers], dim=1)  # (B, L, h, t + 1, d)
        step = DecoderStep(token, position, tuple(layers), logits, logits.log_softmax(dim=-1))
        return step, DecoderCache(keys, values)
