"""The trace: immutable records of one decoding, their JSON form, and a cursor over them.

A trace is plain Python data (no tensors) so that everything downstream — ``attnstep dump``,
the TUI, replay and the SSH server — can read it without importing torch. The engine
(:mod:`attnstep.stepper`) produces traces; the UI only moves a :class:`TraceCursor` over them.

JSON layout (``format_version`` 1; the schema is ``attnstep/trace_schema.json``)::

    format_version, checkpoint{…}, source[{surface, token, id}], encoder_states[n][M],
    steps[{step, input, scores[n], weights[n], hidden, context, concat, attentional,
           candidates[{token, id, prob}], chosen{token, id, logprob, prob}, forced}],
    output_tokens, translation, alignment[T][n], finished

``--no-vectors`` drops ``encoder_states`` and the per-step ``hidden``/``context``/``concat``/
``attentional`` (the schema makes them optional); ``vectors`` says which form a file has.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from attnstep.errors import AttnstepError
from attnstep.text import detokenize

FORMAT_VERSION = 1
EOS_TOKEN = "<eos>"
MAX_TRACE_BYTES = 64 * 1024 * 1024  # a 100-word sentence with all vectors is ~10 MB
MAX_JSON_DEPTH = 16  # a valid trace nests 5 deep
Vector = tuple[float, ...]


@dataclass(frozen=True)
class CheckpointInfo:
    name: str  # checkpoint directory name
    sha256: str  # of model.safetensors: which exact weights made this trace
    attention: str  # dot | general | concat | additive
    formula: str  # the scorer's formula, for display
    source_language: str
    target_language: str


@dataclass(frozen=True)
class SourceToken:
    surface: str  # as the user wrote it
    token: str  # vocabulary form the model saw ("<unk>" if unknown)
    id: int  # source vocabulary id


@dataclass(frozen=True)
class Candidate:
    token: str
    id: int
    prob: float  # p(y_t = token | y_<t, x)


@dataclass(frozen=True)
class Step:
    """Everything the decoder computed at time step ``index`` (0-based)."""

    index: int
    input_token: str  # y_{t-1}: "<bos>" at step 0, else the word chosen at the previous step
    input_id: int
    scores: Vector  # e_t: one raw score per source token
    weights: Vector  # a_t = softmax(e_t): one weight per source token, sums to 1
    hidden: Vector | None  # h_t (None when vectors were dropped)
    context: Vector | None  # C_t = Σ_i a_ti h_i
    concat: Vector | None  # [h_t; C_t]
    attentional: Vector | None  # h~_t = tanh(W_c [h_t; C_t])
    candidates: tuple[Candidate, ...]  # top-k next words, most probable first
    chosen_token: str  # the word this step outputs ("<eos>" ends the sentence)
    chosen_id: int
    chosen_logprob: float  # log p(chosen)
    forced: bool  # True when a user chose the word instead of the model

    @property
    def chosen_prob(self) -> float:
        return math.exp(self.chosen_logprob)


@dataclass(frozen=True)
class Trace:
    checkpoint: CheckpointInfo
    source: tuple[SourceToken, ...]
    encoder_states: tuple[Vector, ...] | None  # h_1..h_n, once per trace (None when dropped)
    steps: tuple[Step, ...]
    finished: bool  # True when the last step chose <eos>, False when the length limit stopped it

    @property
    def output_tokens(self) -> list[str]:
        return [s.chosen_token for s in self.steps if s.chosen_token != EOS_TOKEN]

    @property
    def translation(self) -> str:
        return detokenize(self.output_tokens)

    @property
    def has_vectors(self) -> bool:
        return self.encoder_states is not None

    def without_vectors(self) -> "Trace":
        steps = tuple(replace(s, hidden=None, context=None, concat=None, attentional=None) for s in self.steps)
        return replace(self, encoder_states=None, steps=steps)


# --- JSON -----------------------------------------------------------------------------------


def _rounder(precision: int | None):
    if precision is None:
        return lambda v: v
    return lambda v: tuple(round(x, precision) for x in v)


def to_json_dict(trace: Trace, *, precision: int | None = None) -> dict[str, Any]:
    """The documented JSON form; ``precision`` rounds every float to that many decimals."""
    r = _rounder(precision)
    one = (lambda x: x) if precision is None else (lambda x: round(x, precision))
    steps = []
    for s in trace.steps:
        step: dict[str, Any] = {
            "step": s.index,
            "input": {"token": s.input_token, "id": s.input_id},
            "scores": r(s.scores),
            "weights": r(s.weights),
        }
        if s.hidden is not None:
            step.update(hidden=r(s.hidden), context=r(s.context), concat=r(s.concat), attentional=r(s.attentional))
        step["candidates"] = [{"token": c.token, "id": c.id, "prob": one(c.prob)} for c in s.candidates]
        step["chosen"] = {"token": s.chosen_token, "id": s.chosen_id, "logprob": one(s.chosen_logprob), "prob": one(s.chosen_prob)}
        step["forced"] = s.forced
        steps.append(step)
    out: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "checkpoint": vars(trace.checkpoint).copy(),
        "vectors": trace.has_vectors,
        "source": [{"surface": t.surface, "token": t.token, "id": t.id} for t in trace.source],
    }
    if trace.encoder_states is not None:
        out["encoder_states"] = [r(v) for v in trace.encoder_states]
    out.update(
        steps=steps,
        output_tokens=trace.output_tokens,
        translation=trace.translation,
        alignment=[step["weights"] for step in steps],
        finished=trace.finished,
    )
    return out


def dumps(trace: Trace, *, precision: int | None = None, indent: bool = False) -> bytes:
    """Strict, deterministic JSON bytes (UTF-8, no NaN/Infinity) for one trace."""
    import orjson

    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(to_json_dict(trace, precision=precision), option=option)


def schema() -> dict[str, Any]:
    return json.loads(resources.files("attnstep").joinpath("trace_schema.json").read_text(encoding="utf-8"))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


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


def parse(text: str | bytes, *, origin: str = "trace") -> Trace:
    """Parse and validate untrusted JSON into a Trace; every problem is one AttnstepError line."""
    if len(text) > MAX_TRACE_BYTES:
        raise AttnstepError(f"{origin} is {len(text)} bytes; the limit is {MAX_TRACE_BYTES}")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise AttnstepError(f"{origin} is nested too deeply to be a trace") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise AttnstepError(f"{origin} is not valid JSON: {exc}") from None
    if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise AttnstepError(f"{origin} is nested too deeply to be a trace")
    import fastjsonschema

    try:
        _schema_validator()(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise AttnstepError(f"{origin} does not match the trace schema: {exc.message[:200]}") from None
    return _from_dict(data, origin)


@functools.cache
def _schema_validator():
    """The schema compiled to Python: ~30 ms for a 40-word trace, where a generic validator took ~0.8 s."""
    import fastjsonschema

    return fastjsonschema.compile(schema())


def from_json_dict(data: dict[str, Any], *, origin: str) -> Trace:
    """A Trace from the JSON form made by a process we started (the SSH server's model service).

    The consistency checks of :func:`parse`, without its schema validation, which costs more
    than decoding the sentence did.
    """
    return _from_dict(data, origin)


def load(path: str | Path) -> Trace:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_TRACE_BYTES:
            raise AttnstepError(f"{path} is {size} bytes; the limit for a trace is {MAX_TRACE_BYTES}")
        raw = path.read_bytes()
    except OSError as exc:
        raise AttnstepError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse(raw, origin=str(path))


def _from_dict(data: dict[str, Any], origin: str) -> Trace:
    """Build a Trace from schema-valid data, checking that its numbers fit together."""
    source = tuple(SourceToken(t["surface"], t["token"], t["id"]) for t in data["source"])
    n = len(source)
    states = data.get("encoder_states")
    has_vectors = data["vectors"]

    def bad(message: str) -> AttnstepError:
        return AttnstepError(f"{origin} is inconsistent: {message}")

    if has_vectors != (states is not None):
        raise bad("'vectors' does not match whether encoder_states is present")
    if states is not None:
        if len(states) != n:
            raise bad(f"{len(states)} encoder states for {n} source tokens")
        if len({len(v) for v in states}) > 1:
            raise bad("encoder states have different sizes")
    steps = []
    for position, s in enumerate(data["steps"]):
        if s["step"] != position:
            raise bad(f"step number {s['step']} at position {position}: steps out of order")
        if len(s["scores"]) != n or len(s["weights"]) != n:
            raise bad(f"step {position} has {len(s['weights'])} weights for {n} source tokens")
        if abs(sum(s["weights"]) - 1.0) > 1e-3:
            raise bad(f"step {position}'s weights sum to {sum(s['weights']):.4f}, not 1")
        vectors = [s.get(k) for k in ("hidden", "context", "concat", "attentional")]
        if has_vectors != all(v is not None for v in vectors) or (not has_vectors and any(v is not None for v in vectors)):
            raise bad(f"step {position} has vectors that do not match 'vectors': {has_vectors}")
        if has_vectors and len(vectors[2]) != len(vectors[0]) + len(vectors[1]):
            raise bad(f"step {position}'s [h_t; C_t] is not as long as h_t and C_t together")
        expected_input = "<bos>" if position == 0 else steps[-1].chosen_token
        if s["input"]["token"] != expected_input:
            raise bad(f"step {position}'s input is not the word chosen at the step before")
        steps.append(
            Step(
                index=position,
                input_token=s["input"]["token"],
                input_id=s["input"]["id"],
                scores=tuple(s["scores"]),
                weights=tuple(s["weights"]),
                hidden=_vector(vectors[0]),
                context=_vector(vectors[1]),
                concat=_vector(vectors[2]),
                attentional=_vector(vectors[3]),
                candidates=tuple(Candidate(c["token"], c["id"], c["prob"]) for c in s["candidates"]),
                chosen_token=s["chosen"]["token"],
                chosen_id=s["chosen"]["id"],
                chosen_logprob=s["chosen"]["logprob"],
                forced=s["forced"],
            )
        )
    if any(s.chosen_token == EOS_TOKEN for s in steps[:-1]):
        raise bad("a step after <eos>")
    if data["alignment"] != [s["weights"] for s in data["steps"]]:
        raise bad("alignment does not equal the steps' weights")
    info = data["checkpoint"]
    trace = Trace(
        checkpoint=CheckpointInfo(**{k: info[k] for k in CheckpointInfo.__dataclass_fields__}),
        source=source,
        encoder_states=None if states is None else tuple(tuple(v) for v in states),
        steps=tuple(steps),
        finished=data["finished"],
    )
    if trace.finished != bool(steps and steps[-1].chosen_token == EOS_TOKEN):
        raise bad("'finished' does not match whether the last step chose <eos>")
    if data["output_tokens"] != trace.output_tokens:
        raise bad("output_tokens do not equal the steps' chosen words")
    return trace


def _vector(value: list[float] | None) -> Vector | None:
    return None if value is None else tuple(value)


# --- the cursor the UI moves ------------------------------------------------------------------


class TraceCursor:
    """Step/back/goto over a trace's records: what the UI's moves are, with no torch involved.

    ``position`` counts the steps shown: 0 shows only the encoder, ``len(trace.steps)``
    shows the whole decoding. ``current`` is the step the screen describes.
    """

    def __init__(self, trace: Trace, position: int = 0):
        self.trace = trace
        self.position = 0
        self.goto(position)

    @property
    def total(self) -> int:
        return len(self.trace.steps)

    @property
    def current(self) -> Step | None:
        return self.trace.steps[self.position - 1] if self.position else None

    @property
    def visible(self) -> tuple[Step, ...]:
        return self.trace.steps[: self.position]

    def step(self) -> bool:
        return self.goto(self.position + 1)

    def back(self) -> bool:
        return self.goto(self.position - 1)

    def goto(self, position: int) -> bool:
        """Move to ``position`` (clamped); returns whether the cursor moved."""
        clamped = max(0, min(position, self.total))
        moved = clamped != self.position
        self.position = clamped
        return moved

    def end(self) -> bool:
        return self.goto(self.total)

    def restart(self) -> bool:
        return self.goto(0)
