"""Reading a trace's JSON form back into records, refusing any that does not add up.

Trace files are untrusted: :func:`parse` and :func:`load` take only the documented form
(:mod:`attnstep.trace.writer`), valid against ``schema.json`` beside this module, and then check
that its parts fit together — as many weights as source tokens, summing to 1; each step's input
the word chosen before; a beam whose hypotheses link up; a Transformer's layers and heads as many
as its architecture says, each vector as long as it should be, and step-level weights that are
its view's. Every problem is one line of
:class:`~attnstep.errors.AttnstepError` that names the file (:class:`InconsistentTrace` for parts
that do not fit). :func:`from_wire_dict` reads what the SSH server's model service sends, packed
vectors included, with the same consistency checks but not the schema.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import json
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from attnstep.data.files import read_limited
from attnstep.errors import AttnstepError
from attnstep.trace.edits import edit_from_json
from attnstep.trace.records import (
    ALIVE,
    EOS_TOKEN,
    FINISHED,
    GNMT,
    LENGTH_PENALTY,
    MULTI_HEAD,
    NO_ATTENTION,
    PRUNED,
    RNN_ENDS,
    Architecture,
    Beam,
    Candidate,
    CheckpointInfo,
    Floats,
    HeadStep,
    Hypothesis,
    LayerStep,
    Ranked,
    SourceToken,
    Step,
    StepEdit,
    Trace,
    Vector,
    View,
    Word,
    default_view,
)
from attnstep.trace.writer import LAYER_VECTORS

# An RNN trace of 100 words with all vectors is ~10 MB; a base-size Marian's (6 layers of 8 heads, d_model
# 512) is 1.1 MB a step as dump indents it (measured: 33 MB for 30 steps, read in ~1 s at a peak of ~4×
# its size in memory), so this is ~230 steps of it.
MAX_TRACE_BYTES = 256 * 1024 * 1024
MAX_JSON_DEPTH = 16  # a valid trace nests 5 deep
# Every number a float32 model can write; 1e999 would parse to infinity, and the app's arithmetic
# on numbers beyond this range overflows to NaN.
FLOAT32_MAX = 3.4028234663852886e38
STATE_KEYS = ("hidden", "context", "concat", "attentional")  # a step's state vectors: all or none
RNN_LAYER_KEYS = ("cell", "layer_states", "layer_cells")  # a toolkit RNN's: an LSTM's c_t, a stacked RNN's layers
# What only a Transformer's trace has, at the top and in a step.
TRANSFORMER_KEYS = ("view", "cross_keys", "cross_values")
TRANSFORMER_STEP_KEYS = ("layers", "embedding", "position")
WEIGHT_SUM_TOLERANCE = 1e-3  # softmax weights, written unrounded, sum to 1 within this

JsonVector = list[float] | str  # a state vector as numbers, or packed (see writer.to_wire_dict)


class InconsistentTrace(AttnstepError):
    """A trace whose parts do not fit together. The checks raise it saying what is wrong; the
    entry points raise it again with the trace's origin in front, as one line."""


def schema() -> dict[str, Any]:
    return json.loads(resources.files("attnstep.trace").joinpath("schema.json").read_text(encoding="utf-8"))


def load(path: str | Path) -> Trace:
    path = Path(path)
    return parse(
        read_limited(path, MAX_TRACE_BYTES, "{path} is {size} bytes; the limit for a trace is {limit}"),
        origin=str(path),
    )


def parse(text: str | bytes, *, origin: str = "trace") -> Trace:
    """Parse and validate untrusted JSON into a Trace; every problem is one AttnstepError line."""
    if len(text) > MAX_TRACE_BYTES:
        raise AttnstepError(f"{origin} is {len(text)} bytes; the limit is {MAX_TRACE_BYTES}")
    data, depth = _fast_json(text)
    if depth:
        if depth > MAX_JSON_DEPTH:
            raise AttnstepError(f"{origin} is nested too deeply to be a trace")
    else:
        data = _json(text, origin)
        if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise AttnstepError(f"{origin} is nested too deeply to be a trace")
    import fastjsonschema

    try:
        _schema_validator()(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise AttnstepError(f"{origin} does not match the trace schema: {exc.message[:200]}") from None
    return _checked_trace(data, origin)


def _fast_json(text: str | bytes) -> tuple[Any, int]:
    """orjson's reading of ``text`` and its depth, where orjson takes it and its numbers are within
    float32's range, about 3× faster than :func:`_json` on a Transformer's vectors; else (None, 0)."""
    import orjson

    try:
        data = orjson.loads(text)
        return data, _depth(data, MAX_JSON_DEPTH, ranged=True)
    except (orjson.JSONDecodeError, _OutOfRange):
        return None, 0


def _json(text: str | bytes, origin: str) -> Any:
    """The JSON value of ``text``, read with a check of every number, and errors that say what is wrong."""
    try:
        return json.loads(
            text, parse_constant=_reject_constant, parse_float=_number, parse_int=functools.partial(_number, kind=int)
        )
    except RecursionError:
        raise AttnstepError(f"{origin} is nested too deeply to be a trace") from None
    except _OutOfRange as exc:
        raise AttnstepError(
            f"{origin} has a number out of range: {exc} (numbers must be finite, within ±3.4e38)"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise AttnstepError(f"{origin} is not valid JSON: {exc}") from None


def from_wire_dict(data: dict[str, Any], *, origin: str) -> Trace:
    """A Trace from the wire form made by a process we started (the SSH server's model service).

    The consistency checks of :func:`parse`, without its schema validation, which costs more
    than decoding the sentence did.
    """
    return _checked_trace(data, origin)


# --- the JSON text --------------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


class _OutOfRange(ValueError):
    pass


def _number(text: str, kind: Callable[[str], float] = float) -> float:
    value = kind(text)
    if not abs(value) <= FLOAT32_MAX:
        raise _OutOfRange(text[:40])
    return value


def _depth(value: Any, limit: int, *, ranged: bool = False) -> int:
    """Nesting depth, giving up (returning limit + 1) as soon as it exceeds limit; ``ranged``: raising
    _OutOfRange at a number beyond float32's range."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, list) and item and type(item[0]) in (int, float):
            try:  # a vector's thousands of numbers, compared in C: min and max refuse anything else
                low, high = min(item), max(item)
            except TypeError:
                pass
            else:
                if ranged and not -FLOAT32_MAX <= low <= high <= FLOAT32_MAX:
                    raise _OutOfRange
                continue
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if ranged and not all(-FLOAT32_MAX <= x <= FLOAT32_MAX for x in children if type(x) is float):
            raise _OutOfRange
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


@functools.cache
def _schema_validator() -> Callable[[Any], Any]:
    """The schema compiled to Python: ~30 ms for a 40-word trace, where a generic validator took ~0.8 s."""
    import fastjsonschema

    return fastjsonschema.compile(schema())


# --- consistency: a Trace whose parts fit together ------------------------------------------


def _checked_trace(data: dict[str, Any], origin: str) -> Trace:
    try:
        return _trace(data)
    except InconsistentTrace as exc:
        raise InconsistentTrace(f"{origin} is inconsistent: {exc}") from None


def _trace(data: dict[str, Any]) -> Trace:
    """Build a Trace from schema-valid data, checking that its numbers fit together."""
    version = data["format_version"]
    architecture = _architecture(data, version)
    source = tuple(
        SourceToken(t["surface"], t["token"], t["id"], t.get("word", i)) for i, t in enumerate(data["source"])
    )
    states = _optional_vectors(data.get("encoder_states"))
    words = _source_words(data["words"], source) if version >= 2 else ()
    _check_encoder_states(states, data["vectors"], len(source), architecture)
    decimals = _written_decimals(data["steps"])
    steps = _steps(data, len(source), architecture, decimals)
    if data["alignment"] != [s["weights"] for s in data["steps"]]:
        raise InconsistentTrace("alignment does not equal the steps' weights")
    keys, v_a = _scorer_terms(data, steps, len(source))
    info = data["checkpoint"]
    fields = {k: info[k] for k in CheckpointInfo.__dataclass_fields__ if k in info}
    trace = Trace(
        checkpoint=CheckpointInfo(**fields | {"architecture": architecture}),
        source=source,
        encoder_states=states,
        steps=steps,
        finished=data["finished"],
        words=words,
        keys=keys,
        v_a=v_a,
    )
    if architecture is not None:
        trace = _transformer_parts(data, trace, architecture, decimals)
    _check_ending(trace, data["output_tokens"])
    if version >= 2:
        output_words = _words(data["output_words"], len(trace.output_tokens), "output")
        trace = replace(trace, output_words=output_words, translation_text=data["translation"])
    if "beam" in data:
        trace = replace(trace, beam=_beam(data["beam"], trace, decimals))
    if "reference" in data:
        trace = replace(trace, reference=_reference(data["reference"], trace))
    return trace


def _vector(value: JsonVector) -> Floats:
    if not isinstance(value, str):
        return Floats.of(value)
    try:
        return Floats(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        raise InconsistentTrace("a packed vector is not base64 of float32 numbers") from None


def _optional_vector(value: JsonVector | None) -> Floats | None:
    return None if value is None else _vector(value)


def _optional_vectors(values: list[JsonVector] | None) -> tuple[Floats, ...] | None:
    return None if values is None else tuple(map(_vector, values))


def _words(items: list[dict[str, Any]], count: int, side: str) -> tuple[Word, ...]:
    """Words whose spans cover tokens 0..count-1 in order, each at least one token long."""
    words = tuple(Word(w["text"], w["start"], w["end"]) for w in items)
    position = 0
    for word in words:
        if word.start != position or word.end <= word.start:
            raise InconsistentTrace(f"the {side} words' spans do not cover the tokens in order")
        position = word.end
    if position != count:
        raise InconsistentTrace(f"the {side} words cover {position} tokens, not {count}")
    return words


def _source_words(items: list[dict[str, Any]], source: tuple[SourceToken, ...]) -> tuple[Word, ...]:
    """The source words, each containing the tokens that say they belong to it."""
    words = _words(items, len(source), "source")
    if words and any(not words[t.word].start <= i < words[t.word].end for i, t in enumerate(source)):
        raise InconsistentTrace("a source token's word does not contain it")
    return words


def _check_encoder_states(
    states: tuple[Floats, ...] | None, has_vectors: bool, n: int, architecture: Architecture | None
) -> None:
    if has_vectors != (states is not None):
        raise InconsistentTrace("'vectors' does not match whether encoder_states is present")
    if states is not None:
        if len(states) != n:
            raise InconsistentTrace(f"{len(states)} encoder states for {n} source tokens")
        if len({len(v) for v in states}) > 1:
            raise InconsistentTrace("encoder states have different sizes")
        if architecture is not None and len(states[0]) != architecture.d_model:
            raise InconsistentTrace(f"encoder states of {len(states[0])} numbers, not d_model {architecture.d_model}")


def _steps(data: dict[str, Any], n: int, architecture: Architecture | None, decimals: int) -> tuple[Step, ...]:
    """The steps in order, each fed the word chosen at the step before, none after <eos>."""
    attends = data["checkpoint"]["attention"] != NO_ATTENTION
    width = n if attends else 0  # a model without attention scores nothing
    tolerance = _sum_tolerance(width, decimals)
    steps: list[Step] = []
    for position, s in enumerate(data["steps"]):
        # a Transformer starts from its own decoder start token (Marian's is <pad>), an RNN from one of RNN_ENDS
        first = s["input"]["token"] if architecture is not None or s["input"]["token"] in RNN_ENDS else "<bos>"
        expected_input = first if position == 0 else steps[-1].chosen_token
        if architecture is not None and any(key in s for key in STATE_KEYS + RNN_LAYER_KEYS):
            raise InconsistentTrace(f"step {position} has an RNN's state vectors in a Transformer's trace")
        rnn_vectors = data["vectors"] and architecture is None
        step = _step(s, position, width, tolerance if attends else 0.0, rnn_vectors, expected_input)
        if architecture is not None:
            step = _transformer_step(s, step, architecture, data["vectors"], decimals)
        elif any(key in s for key in TRANSFORMER_STEP_KEYS):
            raise InconsistentTrace(f"step {position} has a Transformer's layers in the trace of an RNN")
        if "edit" in s:
            if not attends:
                raise InconsistentTrace(f"step {position} has an attention edit, but the model has no attention")
            if "edit" in s["edit"]["before"]:
                raise InconsistentTrace(f"step {position}'s 'before' is the model's own step: it has no edit")
            before = _step(s["edit"]["before"], position, width, tolerance, rnn_vectors, expected_input)
            if architecture is not None:
                before = _transformer_step(s["edit"]["before"], before, architecture, data["vectors"], decimals)
            step = replace(step, edit=_step_edit(s["edit"], step, before, architecture, tolerance, decimals))
        steps.append(step)
    # A Transformer's end token is its own (Marian's </s>): the one that finished it, if it did.
    if architecture is not None:
        end = steps[-1].chosen_token if data["finished"] and steps else EOS_TOKEN
    else:
        end = RNN_ENDS[steps[0].input_token] if steps else EOS_TOKEN
    if any(s.chosen_token == end for s in steps[:-1]):
        raise InconsistentTrace(f"a step after {end}")
    return tuple(steps)


def _step(
    s: dict[str, Any], position: int, width: int, tolerance: float, has_vectors: bool, expected_input: str
) -> Step:
    """Step ``position``, with ``width`` scores and weights (summing to 1 within ``tolerance``, where it is
    not 0: a model without attention has none)."""
    if s["step"] != position:
        raise InconsistentTrace(f"step number {s['step']} at position {position}: steps out of order")
    if len(s["scores"]) != width or len(s["weights"]) != width:
        raise InconsistentTrace(f"step {position} has {len(s['weights'])} weights for {width} source tokens")
    if tolerance:
        _check_sum(s["weights"], tolerance, f"step {position}'s weights")
    hidden, context, concat, attentional = _step_states(s, position, has_vectors) or (None, None, None, None)
    if s["input"]["token"] != expected_input:
        raise InconsistentTrace(f"step {position}'s input is not the word chosen at the step before")
    return Step(
        index=position,
        input_token=s["input"]["token"],
        input_id=s["input"]["id"],
        scores=tuple(s["scores"]),
        weights=tuple(s["weights"]),
        hidden=hidden,
        context=context,
        concat=concat,
        attentional=attentional,
        candidates=tuple(Candidate(c["token"], c["id"], c["prob"]) for c in s["candidates"]),
        chosen_token=s["chosen"]["token"],
        chosen_id=s["chosen"]["id"],
        chosen_logprob=s["chosen"]["logprob"],
        forced=s["forced"],
        query=_optional_vector(s.get("query")),
        **_rnn_layers(s, position, hidden),
    )


def _rnn_layers(s: dict[str, Any], position: int, hidden: Floats | None) -> dict[str, Any]:
    """An LSTM's c_t and a stacked RNN's every layer's h_t and c_t, where the step has them: only with h_t, each
    as long as it, the top layer's h_t and c_t the step's own."""
    cell = _optional_vector(s.get("cell"))
    states, cells = (tuple(map(_vector, s.get(key, ()))) for key in ("layer_states", "layer_cells"))
    if hidden is None and (cell is not None or states or cells):
        raise InconsistentTrace(f"step {position} has an RNN's layers or cell state without its h_t")
    if hidden is None:
        return {}
    if any(len(v) != len(hidden) for v in (*states, *cells, *([cell] if cell is not None else []))):
        raise InconsistentTrace(f"step {position}'s layer or cell states are not as long as its h_t")
    if states and (len(states) < 2 or states[-1] != hidden):
        raise InconsistentTrace(f"step {position}'s layer_states are not two or more layers ending with its h_t")
    if cells and (len(cells) != len(states) or cells[-1] != cell):
        raise InconsistentTrace(f"step {position}'s layer_cells are not one per layer ending with its cell state")
    return {"cell": cell, "layer_states": states, "layer_cells": cells}


def _step_edit(
    item: dict[str, Any], step: Step, before: Step, architecture: Architecture | None, tolerance: float, decimals: int
) -> StepEdit:
    """An edited step's edit: the model's and the edited weights, a row per edited head, each one weight per
    source token summing to 1, the edited ones those the step has."""
    t, n = step.index, len(step.weights)
    layer, head = item.get("layer"), item.get("head")
    if architecture is None and layer is not None:
        raise InconsistentTrace(f"step {t}'s edit names a layer, in the trace of an RNN")
    if architecture is not None and not (
        layer is not None and layer < architecture.layers and (head is None or head < architecture.heads)
    ):
        raise InconsistentTrace(f"step {t}'s edit is not of one of the model's layers and heads")
    rows = 1 if architecture is None or head is not None else architecture.heads
    own, edited = (tuple(tuple(row) for row in item[key]) for key in ("own", "edited"))
    for name, table in (("own", own), ("edited", edited)):
        if len(table) != rows or any(len(row) != n for row in table):
            raise InconsistentTrace(f"step {t}'s edit has {name} weights that are not {rows} rows of {n}")
        for row in table:
            _check_sum(list(row), tolerance, f"step {t}'s {name} weights")
    if architecture is None:
        used = [step.weights]
    else:
        assert layer is not None
        heads = range(architecture.heads) if head is None else [head]
        used = [step.layers[layer].cross[j].weights for j in heads]
    if not all(_close(u, e, decimals) for u, e in zip(used, edited)):
        raise InconsistentTrace(f"step {t}'s weights are not its edit's edited weights")
    if any(i >= n for i in item.get("tokens", ())):
        raise InconsistentTrace(f"step {t}'s edit names a source token past the sentence's {n}")
    return StepEdit(edit_from_json(item), own, edited, before)


def _step_states(s: dict[str, Any], position: int, has_vectors: bool) -> tuple[Floats, Floats, Floats, Floats] | None:
    """h_t, C_t, [h_t; C_t] and h~_t, present exactly when the trace has vectors."""
    present = [v for v in map(_optional_vector, map(s.get, STATE_KEYS)) if v is not None]
    if len(present) != (len(STATE_KEYS) if has_vectors else 0):
        raise InconsistentTrace(f"step {position} has vectors that do not match 'vectors': {has_vectors}")
    if not present:
        return None
    hidden, context, concat, attentional = present
    if len(concat) != len(hidden) + len(context):
        raise InconsistentTrace(f"step {position}'s [h_t; C_t] is not as long as h_t and C_t together")
    return hidden, context, concat, attentional


def _written_decimals(steps: list[dict[str, Any]]) -> int:
    """The precision the steps' scores and weights were written with: the most decimals any has
    (``--precision`` P gives at most P; unrounded numbers have about 17)."""
    most = 0
    for s in steps:
        for x in itertools.chain(s["scores"], s["weights"]):
            mantissa, _, exponent = repr(float(x)).partition("e")  # 1.5e-07: 1 + 7 decimals
            most = max(most, len(mantissa.partition(".")[2].rstrip("0")) - int(exponent or 0))
    return most


def _rounding(decimals: int) -> float:
    """How far a number written with ``decimals`` decimals may be from the one it was rounded from, twice
    over (an average of rounded numbers, itself rounded)."""
    return 10.0**-decimals


def _sum_tolerance(width: int, decimals: int) -> float:
    """How far from 1 ``width`` weights written with ``decimals`` decimals may sum."""
    return max(WEIGHT_SUM_TOLERANCE, width * _rounding(decimals) / 2)


def _close(written: Vector, computed: Vector, decimals: int) -> bool:
    """Whether numbers written with ``decimals`` decimals are those computed from others written so (a
    float32 mean's last digits aside)."""
    rounding = _rounding(decimals)
    return all(abs(w - c) <= max(rounding, 1e-6 * max(1.0, abs(c))) for w, c in zip(written, computed))


def _check_sum(weights: list[float], tolerance: float, what: str) -> None:
    if abs(sum(weights) - 1.0) > tolerance:
        raise InconsistentTrace(f"{what} sum to {sum(weights):.4f}, not 1")


def _check_ending(trace: Trace, output_tokens: list[str]) -> None:
    if trace.architecture is None:
        ended = bool(trace.steps) and trace.steps[-1].chosen_token == RNN_ENDS[trace.steps[0].input_token]
    else:  # a Transformer's end token is its own (Marian's </s>): only its trace says it chose it
        ended = trace.finished and bool(trace.steps)
    if trace.finished != ended:
        raise InconsistentTrace("'finished' does not match whether the last step chose <eos>")
    if output_tokens != trace.output_tokens:
        raise InconsistentTrace("output_tokens do not equal the steps' chosen words")


def _scorer_terms(
    data: dict[str, Any], steps: tuple[Step, ...], n: int
) -> tuple[tuple[Floats, ...] | None, Floats | None]:
    """The keys and v_a of a trace, checked to fit its source, its steps and each other."""
    v_a = _optional_vector(data.get("v_a"))
    keys = _optional_vectors(data.get("keys"))
    queries = [s.query for s in steps if s.query is not None]
    if (keys is not None or v_a is not None or queries) and not data["vectors"]:
        raise InconsistentTrace("keys, v_a or query vectors in a trace without vectors")
    if (keys is not None or v_a is not None) and data["checkpoint"]["attention"] == NO_ATTENTION:
        raise InconsistentTrace("keys or v_a in the trace of a model without attention")
    _check_scorer_term_sizes(keys, v_a, queries, n, len(steps))
    return keys, v_a


def _check_scorer_term_sizes(
    keys: tuple[Floats, ...] | None, v_a: Floats | None, queries: list[Floats], n: int, step_count: int
) -> None:
    if keys is not None and (len(keys) != n or len({len(k) for k in keys}) > 1):
        raise InconsistentTrace(f"{len(keys)} keys of different sizes for {n} source tokens")
    if (v_a is not None) != bool(queries) or (queries and len(queries) != step_count):
        raise InconsistentTrace("v_a and the steps' query terms come together, one per step")
    if v_a is not None and ({len(q) for q in queries} != {len(v_a)} or (keys is not None and len(keys[0]) != len(v_a))):
        raise InconsistentTrace("query terms, keys and v_a have different sizes")


# --- a Transformer's layers, heads and view --------------------------------------------------


def _architecture(data: dict[str, Any], version: int) -> Architecture | None:
    """A Transformer trace's architecture, whose sizes agree; None for an RNN's trace, which has no
    Transformer block."""
    info = data["checkpoint"]
    if "architecture" not in info:
        if info["attention"] == MULTI_HEAD:
            raise InconsistentTrace("a multi-head attention trace without an architecture")
        if present := [key for key in TRANSFORMER_KEYS if key in data]:
            raise InconsistentTrace(f"{present[0]} in the trace of an RNN, which has no layers and heads")
        return None
    architecture = Architecture(**info["architecture"])
    if info["attention"] != MULTI_HEAD or version < 3:
        raise InconsistentTrace(f"an architecture in a format {version} trace of {info['attention']} attention")
    if architecture.d_model != architecture.heads * architecture.head_dim:
        raise InconsistentTrace(
            f"d_model {architecture.d_model} is not {architecture.heads} heads of {architecture.head_dim}"
        )
    return architecture


def _transformer_parts(data: dict[str, Any], trace: Trace, architecture: Architecture, decimals: int) -> Trace:
    """``trace`` with its view, whose scores and weights the steps' are (within the written precision),
    and its heads' keys and values of every source token."""
    if "view" not in data:
        raise InconsistentTrace("a Transformer's trace without a view")
    view = View(data["view"]["layer"], data["view"]["head"])
    if view.layer >= architecture.layers or (view.head is not None and view.head >= architecture.heads):
        raise InconsistentTrace(
            f"the view (layer {view.layer}, head {view.head}: 0-based) is out of range for "
            f"{architecture.layers} layers of {architecture.heads} heads"
        )
    for step, expected in zip(trace.steps, trace.with_view(view).steps):
        if not (_close(step.scores, expected.scores, decimals) and _close(step.weights, expected.weights, decimals)):
            raise InconsistentTrace(
                f"step {step.index}'s scores or weights are not the view's: {view.label(architecture)}"
            )
    n = len(trace.source)
    tables = [_head_table(data.get(name), name, architecture, n) for name in ("cross_keys", "cross_values")]
    if any((table is None) == data["vectors"] for table in tables):
        raise InconsistentTrace(f"cross_keys and cross_values do not match 'vectors': {data['vectors']}")
    return replace(trace, view=view, cross_keys=tables[0], cross_values=tables[1])


def _head_table(
    value: list[list[list[JsonVector]]] | None, name: str, architecture: Architecture, n: int
) -> tuple[tuple[tuple[Floats, ...], ...], ...] | None:
    """cross_keys or cross_values: [layer][head][source token], each head_dim numbers."""
    if value is None:
        return None
    table = tuple(tuple(tuple(map(_vector, head)) for head in layer) for layer in value)
    shape = (architecture.layers, architecture.heads, n, architecture.head_dim)
    if len(table) != shape[0] or any(
        len(layer) != shape[1] or any(len(head) != n or any(len(v) != shape[3] for v in head) for head in layer)
        for layer in table
    ):
        raise InconsistentTrace(
            f"{name} is not {' × '.join(map(str, shape))} numbers (layers × heads × tokens × head_dim)"
        )
    return table


def _transformer_step(
    s: dict[str, Any], step: Step, architecture: Architecture, has_vectors: bool, decimals: int
) -> Step:
    """``step`` with its decoder layers, embedding and position, each as many and as long as
    ``architecture`` says; h_t is the top layer's output."""
    t = step.index
    items = s.get("layers", [])
    if len(items) != architecture.layers:
        raise InconsistentTrace(f"step {t} has {len(items)} layers, not {architecture.layers}")
    n = len(step.weights)
    layers = tuple(_layer(item, t, layer, architecture.heads, n, decimals) for layer, item in enumerate(items))
    embedding = _optional_vector(s.get("embedding"))
    position = _optional_vector(s.get("position"))
    vectors = [embedding, position] + [getattr(layer, name) for layer in layers for name in LAYER_VECTORS]
    heads = [v for layer in layers for head in layer.cross for v in (head.query, head.context)]
    if any((v is None) == has_vectors for v in vectors + heads):
        raise InconsistentTrace(f"step {t} has layer vectors that do not match 'vectors': {has_vectors}")
    if has_vectors and (
        any(len(v) != architecture.d_model for v in vectors if v is not None)
        or any(len(v) != architecture.head_dim for v in heads if v is not None)
    ):
        raise InconsistentTrace(
            f"step {t} has a vector that is not d_model {architecture.d_model} or, a head's, "
            f"head_dim {architecture.head_dim} numbers long"
        )
    return replace(step, layers=layers, embedding=embedding, position=position, hidden=layers[-1].output)


def _layer(item: dict[str, Any], t: int, layer: int, heads: int, n: int, decimals: int) -> LayerStep:
    """Layer ``layer`` (0-based) of step ``t``: ``heads`` heads' n scores and weights, and as many
    self-attention rows of t + 1 weights, every row summing to 1."""
    where = f"step {t}, layer {layer + 1}"
    if len(item["cross"]) != heads or len(item["self_weights"]) != heads:
        raise InconsistentTrace(
            f"{where} has {len(item['cross'])} cross- and {len(item['self_weights'])} self-attention heads, not {heads}"
        )
    cross_tolerance, self_tolerance = _sum_tolerance(n, decimals), _sum_tolerance(t + 1, decimals)
    for head, h in enumerate(item["cross"]):
        if len(h["scores"]) != n or len(h["weights"]) != n:
            raise InconsistentTrace(f"{where}, head {head + 1} has {len(h['weights'])} weights for {n} source tokens")
        _check_sum(h["weights"], cross_tolerance, f"{where}, head {head + 1}'s weights")
    for head, row in enumerate(item["self_weights"]):
        if len(row) != t + 1:
            raise InconsistentTrace(f"{where}, head {head + 1} has {len(row)} self-attention weights, not {t + 1}")
        _check_sum(row, self_tolerance, f"{where}, head {head + 1}'s self-attention weights")
    return LayerStep(
        cross=tuple(
            HeadStep(
                tuple(h["scores"]),
                tuple(h["weights"]),
                _optional_vector(h.get("query")),
                _optional_vector(h.get("context")),
            )
            for h in item["cross"]
        ),
        self_weights=tuple(map(tuple, item["self_weights"])),
        **{name: _optional_vector(item.get(name)) for name in LAYER_VECTORS},
    )


def _beam(data: dict[str, Any], trace: Trace, decimals: int) -> Beam:
    """A Beam whose hypotheses link up: parents that were alive, statuses that match the children, and a
    best hypothesis whose tokens and attention rows are the trace's steps."""
    n = len(trace.source) if trace.checkpoint.attends else 0
    end = _beam_end(data, trace)
    normalization = data.get("normalization", GNMT)  # absent: written before generate's beams were
    if normalization == GNMT and data["alpha"] < 0:
        raise InconsistentTrace(f"GNMT's length normalization alpha must be 0 or more, not {data['alpha']}")
    beam_steps: list[tuple[Hypothesis, ...]] = []
    for t, items in enumerate(data["steps"]):
        before = beam_steps[-1] if beam_steps else ()
        hypotheses = tuple(_hypothesis(h, t, before, n, end) for h in items)
        # generate's keeps its K running hypotheses and the finished ones among its K best candidates
        if not hypotheses or len(hypotheses) > data["width"] * (2 if normalization == LENGTH_PENALTY else 1):
            raise InconsistentTrace(f"beam step {t} has {len(hypotheses)} hypotheses for a beam of {data['width']}")
        beam_steps.append(hypotheses)
    _check_beam_links(beam_steps, normalization)
    beam = Beam(
        data["width"], data["alpha"], data["start"], tuple(beam_steps), data["best"], normalization=normalization
    )
    _check_best(beam, trace, decimals)
    if "n_best" in data:
        beam = replace(beam, n_best=_n_best(data["n_best"], beam, len(trace.steps) - 1))
    return beam


def _beam_end(data: dict[str, Any], trace: Trace) -> str | None:
    """The token that finishes a hypothesis: <eos>; a Transformer's own (Marian's </s>), which its trace
    says only by ending with it or by a finished hypothesis (None: none finished)."""
    if trace.architecture is None:
        return RNN_ENDS[trace.steps[0].input_token] if trace.steps else EOS_TOKEN
    if trace.finished:
        return trace.steps[-1].chosen_token
    return next((h["token"] for step in data["steps"] for h in step if h["status"] == FINISHED), None)


def _hypothesis(h: dict[str, Any], t: int, before: tuple[Hypothesis, ...], n: int, end: str | None) -> Hypothesis:
    """A hypothesis of beam step ``t`` extending an alive one of ``before``, with an attention row over
    ``n`` tokens, finished where its token is ``end``."""
    parent = h["parent"]
    if (parent is None) != (t == 0) or (
        parent is not None and not (parent < len(before) and before[parent].status == ALIVE)
    ):
        raise InconsistentTrace(f"a hypothesis of beam step {t} extends one that is not alive in the step before")
    if (h["token"] == end) != (h["status"] == FINISHED) or len(h["weights"]) != n:
        raise InconsistentTrace(f"a hypothesis of beam step {t} has a status or attention row that does not fit it")
    return Hypothesis(
        parent, h["token"], h["id"], h["logprob"], h["score"], h["normalized"], h["status"], tuple(h["weights"])
    )


def _check_beam_links(beam_steps: list[tuple[Hypothesis, ...]], normalization: str) -> None:
    """Alive hypotheses, and only they, are extended at the next step; the last step prunes none but in
    generate's search, which ends with its running hypotheses pruned when none can beat the finished ones."""
    for t, (hypotheses, after) in enumerate(itertools.pairwise(beam_steps)):
        parents = {h.parent for h in after}
        if any((i in parents) != (h.status == ALIVE) for i, h in enumerate(hypotheses)):
            raise InconsistentTrace(f"beam step {t}: an alive hypothesis has no extension, or a pruned one has one")
    if normalization == GNMT and beam_steps and any(h.status == PRUNED for h in beam_steps[-1]):
        raise InconsistentTrace("the last beam step has a pruned hypothesis")


def _check_best(beam: Beam, trace: Trace, decimals: int) -> None:
    """The beam's best hypothesis, at the trace's last step, is the trace's words and weights (a
    Transformer's: its default view's, within the written precision)."""
    last = len(trace.steps) - 1
    if not (0 <= last < len(beam.steps) and beam.best < len(beam.steps[last]) and beam.start <= len(trace.steps)):
        raise InconsistentTrace("the beam's best hypothesis is not at the trace's last step")
    best = beam.history(last, beam.best)
    if trace.architecture is None:
        if [(h.id, h.token, h.weights) for h in best] == [
            (s.chosen_id, s.chosen_token, s.weights) for s in trace.steps
        ]:
            return
    # A Transformer's beam rows are its default view's, whichever view the steps show (Trace.with_view
    # has only the best hypothesis's layers to read another off).
    elif [(h.id, h.token) for h in best] == [(s.chosen_id, s.chosen_token) for s in trace.steps] and all(
        _close(h.weights, s.weights, decimals)
        for h, s in zip(best, trace.with_view(default_view(trace.architecture)).steps)
    ):
        return
    raise InconsistentTrace("the beam's best hypothesis is not the words and weights of the steps")


def _n_best(items: list[dict[str, Any]], beam: Beam, last: int) -> tuple[Ranked, ...]:
    """An n-best list of results the search ended with (finished, or stopped at its last step), with
    their scores, whose first is the trace's own (the beam's best, at the trace's last step ``last``)."""
    listed = tuple(Ranked(r["step"], r["index"], r["translation"], r["score"], r["normalized"]) for r in items)
    for r in listed:
        h = beam.steps[r.step][r.index] if r.step < len(beam.steps) and r.index < len(beam.steps[r.step]) else None
        ended = h is not None and (h.status == FINISHED or (h.status == ALIVE and r.step == len(beam.steps) - 1))
        if not (h is not None and ended and (h.score, h.normalized) == (r.score, r.normalized)):
            raise InconsistentTrace(
                f"the n-best entry of beam step {r.step}, index {r.index}, is not a result of the search"
            )
    if (listed[0].step, listed[0].index) != (last, beam.best):
        raise InconsistentTrace("the n-best list does not start with the beam's best hypothesis")
    return listed


def _reference(data: dict[str, Any], trace: Trace) -> str:
    """The given translation of a trace whose every step was forced to it, to the final <eos>."""
    if not (trace.finished and all(s.forced for s in trace.steps)):
        raise InconsistentTrace("a reference trace has a step that was not forced, or no final <eos>")
    return data["text"]
