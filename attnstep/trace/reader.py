"""Reading a trace's JSON form back into records, refusing any that does not add up.

Trace files are untrusted: :func:`parse` and :func:`load` take only the documented form
(:mod:`attnstep.trace.writer`), valid against ``schema.json`` beside this module, and then check
that its parts fit together — as many weights as source tokens, summing to 1; each step's input
the word chosen before; a beam whose hypotheses link up. Every problem is one line of
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
from attnstep.trace.records import (
    ALIVE,
    EOS_TOKEN,
    FINISHED,
    NO_ATTENTION,
    PRUNED,
    Beam,
    Candidate,
    CheckpointInfo,
    Floats,
    Hypothesis,
    Ranked,
    SourceToken,
    Step,
    Trace,
    Word,
)

MAX_TRACE_BYTES = 64 * 1024 * 1024  # a 100-word sentence with all vectors is ~10 MB
MAX_JSON_DEPTH = 16  # a valid trace nests 5 deep
# Every number a float32 model can write; 1e999 would parse to infinity, and the app's arithmetic
# on numbers beyond this range overflows to NaN.
FLOAT32_MAX = 3.4028234663852886e38
STATE_KEYS = ("hidden", "context", "concat", "attentional")  # a step's state vectors: all or none

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
    try:
        data = json.loads(
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
    if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise AttnstepError(f"{origin} is nested too deeply to be a trace")
    import fastjsonschema

    try:
        _schema_validator()(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise AttnstepError(f"{origin} does not match the trace schema: {exc.message[:200]}") from None
    return _checked_trace(data, origin)


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


def _depth(value: Any, limit: int) -> int:
    """Nesting depth, giving up (returning limit + 1) as soon as it exceeds limit."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
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
    source = tuple(
        SourceToken(t["surface"], t["token"], t["id"], t.get("word", i)) for i, t in enumerate(data["source"])
    )
    states = _optional_vectors(data.get("encoder_states"))
    words = _source_words(data["words"], source) if version >= 2 else ()
    _check_encoder_states(states, data["vectors"], len(source))
    steps = _steps(data, len(source))
    if data["alignment"] != [s["weights"] for s in data["steps"]]:
        raise InconsistentTrace("alignment does not equal the steps' weights")
    keys, v_a = _scorer_terms(data, steps, len(source))
    info = data["checkpoint"]
    trace = Trace(
        checkpoint=CheckpointInfo(**{k: info[k] for k in CheckpointInfo.__dataclass_fields__ if k in info}),
        source=source,
        encoder_states=states,
        steps=steps,
        finished=data["finished"],
        words=words,
        keys=keys,
        v_a=v_a,
    )
    _check_ending(trace, data["output_tokens"])
    if version >= 2:
        output_words = _words(data["output_words"], len(trace.output_tokens), "output")
        trace = replace(trace, output_words=output_words, translation_text=data["translation"])
    if "beam" in data:
        trace = replace(trace, beam=_beam(data["beam"], trace))
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


def _check_encoder_states(states: tuple[Floats, ...] | None, has_vectors: bool, n: int) -> None:
    if has_vectors != (states is not None):
        raise InconsistentTrace("'vectors' does not match whether encoder_states is present")
    if states is not None:
        if len(states) != n:
            raise InconsistentTrace(f"{len(states)} encoder states for {n} source tokens")
        if len({len(v) for v in states}) > 1:
            raise InconsistentTrace("encoder states have different sizes")


def _steps(data: dict[str, Any], n: int) -> tuple[Step, ...]:
    """The steps in order, each fed the word chosen at the step before, none after <eos>."""
    attends = data["checkpoint"]["attention"] != NO_ATTENTION
    width = n if attends else 0  # a model without attention scores nothing
    steps: list[Step] = []
    for position, s in enumerate(data["steps"]):
        expected_input = "<bos>" if position == 0 else steps[-1].chosen_token
        steps.append(_step(s, position, width, attends, data["vectors"], expected_input))
    if any(s.chosen_token == EOS_TOKEN for s in steps[:-1]):
        raise InconsistentTrace("a step after <eos>")
    return tuple(steps)


def _step(s: dict[str, Any], position: int, width: int, attends: bool, has_vectors: bool, expected_input: str) -> Step:
    """Step ``position``, with ``width`` scores and weights (summing to 1 where the model ``attends``)."""
    if s["step"] != position:
        raise InconsistentTrace(f"step number {s['step']} at position {position}: steps out of order")
    if len(s["scores"]) != width or len(s["weights"]) != width:
        raise InconsistentTrace(f"step {position} has {len(s['weights'])} weights for {width} source tokens")
    if attends and abs(sum(s["weights"]) - 1.0) > 1e-3:
        raise InconsistentTrace(f"step {position}'s weights sum to {sum(s['weights']):.4f}, not 1")
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
    )


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


def _check_ending(trace: Trace, output_tokens: list[str]) -> None:
    if trace.finished != bool(trace.steps and trace.steps[-1].chosen_token == EOS_TOKEN):
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


def _beam(data: dict[str, Any], trace: Trace) -> Beam:
    """A Beam whose hypotheses link up: parents that were alive, statuses that match the children, and a
    best hypothesis whose tokens and attention rows are the trace's steps."""
    n = len(trace.source) if trace.checkpoint.attends else 0
    beam_steps: list[tuple[Hypothesis, ...]] = []
    for t, items in enumerate(data["steps"]):
        before = beam_steps[-1] if beam_steps else ()
        hypotheses = tuple(_hypothesis(h, t, before, n) for h in items)
        if not hypotheses or len(hypotheses) > data["width"]:
            raise InconsistentTrace(f"beam step {t} has {len(hypotheses)} hypotheses for a beam of {data['width']}")
        beam_steps.append(hypotheses)
    _check_beam_links(beam_steps)
    beam = Beam(data["width"], data["alpha"], data["start"], tuple(beam_steps), data["best"])
    _check_best(beam, trace)
    if "n_best" in data:
        beam = replace(beam, n_best=_n_best(data["n_best"], beam, len(trace.steps) - 1))
    return beam


def _hypothesis(h: dict[str, Any], t: int, before: tuple[Hypothesis, ...], n: int) -> Hypothesis:
    """A hypothesis of beam step ``t`` extending an alive one of ``before``, with an attention row over ``n`` tokens."""
    parent = h["parent"]
    if (parent is None) != (t == 0) or (
        parent is not None and not (parent < len(before) and before[parent].status == ALIVE)
    ):
        raise InconsistentTrace(f"a hypothesis of beam step {t} extends one that is not alive in the step before")
    if (h["token"] == EOS_TOKEN) != (h["status"] == FINISHED) or len(h["weights"]) != n:
        raise InconsistentTrace(f"a hypothesis of beam step {t} has a status or attention row that does not fit it")
    return Hypothesis(
        parent, h["token"], h["id"], h["logprob"], h["score"], h["normalized"], h["status"], tuple(h["weights"])
    )


def _check_beam_links(beam_steps: list[tuple[Hypothesis, ...]]) -> None:
    """Alive hypotheses, and only they, are extended at the next step; the last step prunes none."""
    for t, (hypotheses, after) in enumerate(itertools.pairwise(beam_steps)):
        parents = {h.parent for h in after}
        if any((i in parents) != (h.status == ALIVE) for i, h in enumerate(hypotheses)):
            raise InconsistentTrace(f"beam step {t}: an alive hypothesis has no extension, or a pruned one has one")
    if beam_steps and any(h.status == PRUNED for h in beam_steps[-1]):
        raise InconsistentTrace("the last beam step has a pruned hypothesis")


def _check_best(beam: Beam, trace: Trace) -> None:
    """The beam's best hypothesis, at the trace's last step, is the trace's words and weights."""
    last = len(trace.steps) - 1
    if not (0 <= last < len(beam.steps) and beam.best < len(beam.steps[last]) and beam.start <= len(trace.steps)):
        raise InconsistentTrace("the beam's best hypothesis is not at the trace's last step")
    best = beam.history(last, beam.best)
    if [(h.id, h.token, h.weights) for h in best] != [(s.chosen_id, s.chosen_token, s.weights) for s in trace.steps]:
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
