"""A Transformer's trace made from seeded numbers, with no model behind it: what the trace format and
the app are tested on without building a Marian (tests/test_marian*.py check the real one's numbers).

Every number is consistent as a real trace's is: each head's weights are the softmax of its scores,
each head's context is Σ a_i v_i over the trace's values, the steps' scores and weights are the
default view's, and each candidate list is a distribution's top.
"""

from __future__ import annotations

import math
import random

from attnstep.trace.records import (
    MULTI_HEAD,
    Architecture,
    Candidate,
    CheckpointInfo,
    Floats,
    HeadStep,
    LayerStep,
    SourceToken,
    Step,
    Trace,
    Word,
    default_view,
)

SOURCE = ("▁Le", "▁chat", "▁noir", "</s>")
OUTPUT = ("▁The", "▁black", "▁cat", "</s>")
TARGET_VOCAB = ("</s>", "<unk>", "▁The", "▁black", "▁cat", "▁dog", "<pad>")


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    return [e / sum(exps) for e in exps]


def _vector(rng: random.Random, size: int) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(size)]


def transformer_trace(
    *, layers: int = 2, heads: int = 4, head_dim: int = 4, vectors: bool = True, seed: int = 0
) -> Trace:
    """Le chat noir → The black cat, by a model of ``layers`` decoder layers of ``heads`` heads."""
    rng = random.Random(seed)
    d_model = heads * head_dim
    architecture = Architecture("marian", layers, heads, head_dim, d_model, encoder_layers=layers)
    info = CheckpointInfo(
        name="tiny-marian",
        sha256="0" * 64,
        attention=MULTI_HEAD,
        formula="e_i = q·k_i / √d",
        source_language="fr",
        target_language="en",
        tokenizer="marian",
        target_vocab_size=len(TARGET_VOCAB),
        architecture=architecture,
    )
    n = len(SOURCE)
    keys = [[[_vector(rng, head_dim) for _ in range(n)] for _ in range(heads)] for _ in range(layers)]
    values = [[[_vector(rng, head_dim) for _ in range(n)] for _ in range(heads)] for _ in range(layers)]
    steps = []
    for t, token in enumerate(OUTPUT):
        step_layers = []
        for layer in range(layers):
            cross = []
            for head in range(heads):
                query = _vector(rng, head_dim)
                scores = [sum(q * k for q, k in zip(query, key)) / math.sqrt(head_dim) for key in keys[layer][head]]
                weights = _softmax(scores)
                context = [sum(w * v[j] for w, v in zip(weights, values[layer][head])) for j in range(head_dim)]
                cross.append(HeadStep(tuple(scores), tuple(weights), Floats.of(query), Floats.of(context)))
            self_weights = tuple(tuple(_softmax(_vector(rng, t + 1))) for _ in range(heads))
            sublayers = [Floats.of(_vector(rng, d_model)) for _ in range(5)] if vectors else [None] * 5
            step_layers.append(LayerStep(tuple(cross), self_weights, *sublayers))
        logits = _vector(rng, len(TARGET_VOCAB))
        chosen = TARGET_VOCAB.index(token)
        logits[chosen] += 4  # the model's own choice
        probs = _softmax(logits)
        ranked = sorted(range(len(TARGET_VOCAB)), key=lambda i: -probs[i])[:5]
        previous = "<pad>" if t == 0 else OUTPUT[t - 1]
        steps.append(
            Step(
                index=t,
                input_token=previous,
                input_id=TARGET_VOCAB.index(previous),
                scores=(),
                weights=(),
                hidden=step_layers[-1].output,
                context=None,
                concat=None,
                attentional=None,
                candidates=tuple(Candidate(TARGET_VOCAB[i], i, probs[i]) for i in ranked),
                chosen_token=token,
                chosen_id=chosen,
                chosen_logprob=math.log(probs[chosen]),
                forced=False,
                layers=tuple(step_layers),
                embedding=Floats.of(_vector(rng, d_model)) if vectors else None,
                position=Floats.of(_vector(rng, d_model)) if vectors else None,
            )
        )
    source = tuple(SourceToken(piece.lstrip("▁"), piece, 10 + i, min(i, n - 2)) for i, piece in enumerate(SOURCE))
    trace = Trace(
        checkpoint=info,
        source=source,
        encoder_states=tuple(Floats.of(_vector(rng, d_model)) for _ in range(n)) if vectors else None,
        steps=tuple(steps),
        finished=True,
        words=(Word("Le", 0, 1), Word("chat", 1, 2), Word("noir", 2, 4)),
        output_words=(Word("The", 0, 1), Word("black", 1, 2), Word("cat", 2, 3)),
        translation_text="The black cat",
        cross_keys=tuple(tuple(tuple(Floats.of(k) for k in head) for head in layer) for layer in keys)
        if vectors
        else None,
        cross_values=tuple(tuple(tuple(Floats.of(v) for v in head) for head in layer) for layer in values)
        if vectors
        else None,
    )
    return trace.with_view(default_view(architecture))
