"""A trace's JSON form: the documented one that files hold, and the packed one the SSH server's model service sends.

JSON layout (``format_version`` 3; the schema is ``attnstep/trace/schema.json``)::

    format_version, checkpoint{…, tokenizer, target_vocab_size, architecture?}, view?,
    source[{surface, token, id, word}], words[{text, start, end}], encoder_states[n][M],
    keys[n][K]?, v_a[A]?, cross_keys[L][h][n][d]?, cross_values[L][h][n][d]?,
    steps[{step, input, scores[n], weights[n], hidden, context, concat, attentional, query?,
           cell[H]?, layer_states[L][H]?, layer_cells[L][H]?,
           layers[{cross[{scores[n], weights[n], query[d]?, context[d]?}], self_weights[h][t+1],
                   input[D]?, self_output[D]?, joined[D]?, cross_output[D]?, output[D]?}]?,
           embedding[D]?, position[D]?,
           candidates[{token, id, prob}], chosen{token, id, logprob, prob}, forced,
           edit{operation, tokens?, temperature?, seed?, typed?, layer?, head?, own[k][n], edited[k][n],
                before{a step}}?}],
    output_tokens, output_words[{text, start, end}], translation, alignment[T][n], finished,
    beam{width, alpha, normalization, start, best,
         steps[[{parent, token, id, logprob, score, normalized, status, weights}]],
         n_best[{step, index, translation, score, normalized}]?}?,
    reference{text, logprob, average, mismatches[{step, token, id, prob}]}?

A Transformer's trace (``checkpoint.attention`` ``multi-head``) has ``checkpoint.architecture``
{family, layers L, heads h, head_dim d, d_model D, encoder_layers}, and per step its L decoder
``layers``, bottom first: each cross-attention head's scores q·k_i/√d and softmax weights (with
vectors its query q and context Σ a_i v_i), the self-attention's weights per head over the t + 1
positions read so far, and with vectors each sublayer's output; ``embedding`` and ``position``
are what the first layer's input adds up. ``cross_keys``/``cross_values`` are each head's keys
and values of every source token. Its step-level ``scores`` and ``weights``, and so ``alignment``,
are those of ``view`` {layer, head}: head ``head`` of decoder layer ``layer`` (both 0-based), or
with ``head`` null the mean of that layer's heads (the means of their scores and of their weights).
Its steps have no ``hidden``/``context``/``concat``/``attentional`` (RNN quantities): h_t, what
the output layer reads, is the top layer's ``output``. Its beam's hypotheses' ``weights`` are the
default view's in any view (only the best hypothesis's layers are recorded), and its end token is
its own (Marian's ``</s>``); its beam is generate's, ``normalization`` ``length_penalty`` (a beam
without one, as before it was written, is attnstep's ``gnmt``). An RNN's trace has none of these blocks.

A toolkit's RNN (JoeyNMT, OpenNMT-py) adds, with vectors, an LSTM's cell state ``cell`` (c_t, beside
``hidden``'s h_t) and, for a stacked RNN, ``layer_states`` (every layer's h_t, bottom first: the last is
``hidden``) and an LSTM's ``layer_cells`` (every layer's c_t: the last is ``cell``).

A step whose attention the user edited has ``edit``: the operation (zero, one, uniform, temperature,
reverse, permute, weights) and its parameters (``tokens`` 0-based, ``temperature``, ``seed``, the
``typed`` weights), a Transformer's ``layer`` and ``head`` (null: every head of the layer), the
model's weights (``own``) and the ones the step used (``edited``), one row per edited head (one for an
RNN), and ``before``, the model's own record of the step. The step's numbers are the edited ones;
the steps after it continue from it.

Formats 1 (word-level models, no ``words``) and 2 (no Transformer blocks) are still read: in
version 1 each token is its own word. ``beam`` and ``reference`` are there when the trace has them
(the reference's numbers are recomputed from the steps when read).

``--no-vectors`` drops ``encoder_states``, ``keys``, ``v_a``, ``cross_keys``, ``cross_values``,
the per-step ``hidden``/``context``/``concat``/``attentional``/``query``/``embedding``/``position``,
``cell``/``layer_states``/``layer_cells``, and each layer's sublayer outputs and heads' query and context (the schema makes them optional);
``vectors`` says which form a file has. ``--precision`` rounds every float, these included.

The wire form (:func:`to_wire_dict`) is the same layout with each state vector a base64 string
of its float32 bytes: not the documented form, and files may not use it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from attnstep.trace.edits import edit_to_json
from attnstep.trace.records import Beam, Floats, HeadStep, LayerStep, StepEdit, Trace, Word

FORMAT_VERSION = 3
# A Transformer layer's vectors (D numbers each), bottom to top: LayerStep's fields of the same names.
LAYER_VECTORS = ("input", "self_output", "joined", "cross_output", "output")
T = TypeVar("T")


@dataclass(frozen=True)
class _NumberForm:
    """How one form writes each kind of number."""

    number: Callable[[float], float]  # a probability, log-probability or score
    row: Callable[[tuple[float, ...]], Sequence[float]]  # attention scores and weights
    state: Callable[[Floats], Sequence[float] | str]  # the model's state vectors


def _same(value: T) -> T:
    return value


def _rounded(precision: int) -> _NumberForm:
    def rounded_all(values: Sequence[float]) -> tuple[float, ...]:
        return tuple(round(x, precision) for x in values)

    return _NumberForm(number=lambda x: round(x, precision), row=rounded_all, state=rounded_all)


_EXACT = _NumberForm(number=_same, row=_same, state=Floats.tolist)
# A student's session then never holds a trace's thousands of numbers as Python floats, not
# even while parsing (~2.5 MB per session, measured).
_PACKED = _NumberForm(number=_same, row=_same, state=lambda v: base64.b64encode(v.tobytes()).decode("ascii"))


def to_json_dict(trace: Trace, *, precision: int | None = None) -> dict[str, Any]:
    """The documented JSON form; ``precision`` rounds every float to that many decimals."""
    return _trace_dict(trace, _EXACT if precision is None else _rounded(precision))


def to_wire_dict(trace: Trace) -> dict[str, Any]:
    """The form the SSH server's model service sends its sessions, read by
    :func:`attnstep.trace.reader.from_wire_dict`: state vectors packed as base64 of their float32 bytes."""
    return _trace_dict(trace, _PACKED)


def dumps(trace: Trace, *, precision: int | None = None, indent: bool = False) -> bytes:
    """Strict, deterministic JSON bytes (UTF-8, no NaN/Infinity) of the documented form of one trace."""
    return _dumps(to_json_dict(trace, precision=precision), indent=indent)


def trace_file_bytes(trace: Trace, *, precision: int | None = None, indent: bool = True) -> bytes:
    """A trace as ``attnstep dump`` writes it and the app's x exports it: :func:`dumps` and a newline
    (without ``indent``, one line of a JSON Lines file)."""
    return dumps(trace, precision=precision, indent=indent) + b"\n"


def dumps_wire(trace: Trace) -> bytes:
    """:func:`to_wire_dict` as JSON bytes, on one line."""
    return _dumps(to_wire_dict(trace), indent=False)


def _dumps(data: dict[str, Any], *, indent: bool) -> bytes:
    import orjson

    return orjson.dumps(data, option=orjson.OPT_INDENT_2 if indent else 0)


def _trace_dict(trace: Trace, form: _NumberForm) -> dict[str, Any]:
    steps = _steps_list(trace, form)
    out: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "checkpoint": checkpoint_dict(trace),
        "vectors": trace.has_vectors,
        "source": [{"surface": t.surface, "token": t.token, "id": t.id, "word": t.word} for t in trace.source],
        "words": [_word_dict(w) for w in trace.source_words],
    }
    if trace.view is not None:
        out["view"] = {"layer": trace.view.layer, "head": trace.view.head}
    if trace.encoder_states is not None:
        out["encoder_states"] = [form.state(v) for v in trace.encoder_states]
    if trace.keys is not None:
        out["keys"] = [form.state(v) for v in trace.keys]
    if trace.v_a is not None:
        out["v_a"] = form.state(trace.v_a)
    for name, table in (("cross_keys", trace.cross_keys), ("cross_values", trace.cross_values)):
        if table is not None:
            out[name] = [[[form.state(v) for v in head] for head in layer] for layer in table]
    out.update(
        steps=steps,
        output_tokens=trace.output_tokens,
        output_words=[_word_dict(w) for w in trace.target_words],
        translation=trace.translation,
        alignment=[step["weights"] for step in steps],
        finished=trace.finished,
    )
    if trace.beam is not None:
        out["beam"] = _beam_dict(trace.beam, form)
    if trace.reference is not None:
        out["reference"] = _reference_dict(trace, form.number)
    return out


def _steps_list(trace: Trace, form: _NumberForm) -> list[dict[str, Any]]:
    one = form.number
    steps = []
    for s in trace.steps:
        step: dict[str, Any] = {
            "step": s.index,
            "input": {"token": s.input_token, "id": s.input_id},
            "scores": form.row(s.scores),
            "weights": form.row(s.weights),
        }
        if s.hidden is not None and not s.layers:  # a Transformer's h_t is its top layer's output
            assert s.context is not None and s.concat is not None and s.attentional is not None  # all or none
            step.update(
                hidden=form.state(s.hidden),
                context=form.state(s.context),
                concat=form.state(s.concat),
                attentional=form.state(s.attentional),
            )
        if s.query is not None:
            step["query"] = form.state(s.query)
        if s.layers:
            step["layers"] = [_layer_dict(layer, form) for layer in s.layers]
        if s.embedding is not None:
            step["embedding"] = form.state(s.embedding)
        if s.position is not None:
            step["position"] = form.state(s.position)
        if s.cell is not None:
            step["cell"] = form.state(s.cell)
        if s.layer_states:
            step["layer_states"] = [form.state(v) for v in s.layer_states]
        if s.layer_cells:
            step["layer_cells"] = [form.state(v) for v in s.layer_cells]
        step["candidates"] = [{"token": c.token, "id": c.id, "prob": one(c.prob)} for c in s.candidates]
        step["chosen"] = {
            "token": s.chosen_token,
            "id": s.chosen_id,
            "logprob": one(s.chosen_logprob),
            "prob": one(s.chosen_prob),
        }
        step["forced"] = s.forced
        if s.edit is not None:
            step["edit"] = _edit_dict(s.edit, trace, form)
        steps.append(step)
    return steps


def _edit_dict(made: StepEdit, trace: Trace, form: _NumberForm) -> dict[str, Any]:
    out = edit_to_json(made.edit)
    out["own"] = [form.row(row) for row in made.own]
    out["edited"] = [form.row(row) for row in made.edited]
    out["before"] = _steps_list(replace(trace, steps=(made.before,)), form)[0]  # the one step, written alike
    return out


def checkpoint_dict(trace: Trace) -> dict[str, Any]:
    """The checkpoint block as files write it: what a toolkit's model alone names left out when empty."""
    info = {key: value for key, value in vars(trace.checkpoint).items() if key != "architecture"}
    for key in ("scorer", "attentional_formula", "output_formula"):  # a toolkit's model's own, else absent
        if not info[key]:
            del info[key]
    if trace.architecture is not None:
        info["architecture"] = dict(vars(trace.architecture))
    return info


def _layer_dict(layer: LayerStep, form: _NumberForm) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cross": [_head_dict(head, form) for head in layer.cross],
        "self_weights": [form.row(row) for row in layer.self_weights],
    }
    for name in LAYER_VECTORS:
        if (vector := getattr(layer, name)) is not None:
            out[name] = form.state(vector)
    return out


def _head_dict(head: HeadStep, form: _NumberForm) -> dict[str, Any]:
    out: dict[str, Any] = {"scores": form.row(head.scores), "weights": form.row(head.weights)}
    if head.query is not None:
        out["query"] = form.state(head.query)
    if head.context is not None:
        out["context"] = form.state(head.context)
    return out


def _beam_dict(beam: Beam, form: _NumberForm) -> dict[str, Any]:
    one = form.number
    n_best = [
        {
            "step": r.step,
            "index": r.index,
            "translation": r.translation,
            "score": one(r.score),
            "normalized": one(r.normalized),
        }
        for r in beam.n_best
    ]
    return {
        "width": beam.width,
        "alpha": beam.alpha,
        "normalization": beam.normalization,
        "start": beam.start,
        "best": beam.best,
        "steps": [
            [
                {
                    "parent": h.parent,
                    "token": h.token,
                    "id": h.id,
                    "logprob": one(h.logprob),
                    "score": one(h.score),
                    "normalized": one(h.normalized),
                    "status": h.status,
                    "weights": form.row(h.weights),
                }
                for h in hypotheses
            ]
            for hypotheses in beam.steps
        ],
    } | ({"n_best": n_best} if n_best else {})


def _reference_dict(trace: Trace, one: Callable[[float], float]) -> dict[str, Any]:
    return {
        "text": trace.reference,
        "logprob": one(trace.logprob),
        "average": one(trace.logprob / len(trace.steps)),
        "mismatches": [
            {
                "step": s.index,
                "token": s.candidates[0].token,
                "id": s.candidates[0].id,
                "prob": one(s.candidates[0].prob),
            }
            for s in trace.mismatches
        ],
    }


def _word_dict(word: Word) -> dict[str, Any]:
    return {"text": word.text, "start": word.start, "end": word.end}
