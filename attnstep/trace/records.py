"""The trace: immutable records of one decoding, their JSON form, and a cursor over them.

A trace is plain Python data (no tensors) so that everything downstream — ``attnstep dump``,
the TUI, replay and the SSH server — can read it without importing torch. The model's state vectors
are :class:`Floats` (their float32 bytes), the other numbers Python floats. The engine
(:mod:`attnstep.engine.stepper`) produces traces; the UI only moves a :class:`StepCursor` over them.

JSON layout (``format_version`` 2; the schema is ``attnstep/trace/schema.json``)::

    format_version, checkpoint{…, tokenizer}, source[{surface, token, id, word}],
    words[{text, start, end}], encoder_states[n][M], keys[n][K]?, v_a[A]?,
    steps[{step, input, scores[n], weights[n], hidden, context, concat, attentional, query?,
           candidates[{token, id, prob}], chosen{token, id, logprob, prob}, forced}],
    output_tokens, output_words[{text, start, end}], translation, alignment[T][n], finished,
    beam{width, alpha, start, best, steps[[{parent, token, id, logprob, score, normalized, status, weights}]]}?,
    reference{text, logprob, average, mismatches[{step, token, id, prob}]}?

Two views of the same decoding: ``source`` and ``steps`` are the tokens the model saw and
wrote (subword pieces for a SentencePiece model); ``words`` and ``output_words`` group them
into the words a person reads, as spans [start, end) of tokens or steps. Version 1 traces
(word-level models, no ``words``) are still read: each token is then its own word.

Two optional blocks: ``beam`` when the decoding was a beam search (``steps`` are then the
records of its best hypothesis), ``reference`` when every step was forced to a given
translation (teacher forcing; its numbers are recomputed from the steps when read).

The scorer's own terms, for a worked score: ``keys[n][K]`` (W_a h_i, or W_k h_i + b), and for
concat/additive ``v_a`` and each step's ``query`` term.

``--no-vectors`` drops ``encoder_states``, ``keys``, ``v_a`` and the per-step ``hidden``/``context``/
``concat``/``attentional``/``query`` (the schema makes them optional); ``vectors`` says which form a
file has.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, overload

from attnstep.data.files import read_limited
from attnstep.errors import AttnstepError
from attnstep.text.words import detokenize

FORMAT_VERSION = 2
WORD_TOKENIZER = "attnstep-words"
EOS_TOKEN = "<eos>"
NO_ATTENTION = "none"  # the attention of an encoder–decoder that has none (Cho et al. 2014)
SCORER_NAMES = {
    "dot": "Luong dot",
    "general": "Luong general",
    "concat": "Luong concat",
    "additive": "Bahdanau additive",
    NO_ATTENTION: "no attention",
}
STAGE_COUNT = 7  # sub-steps of one decoder step: RNN, score, softmax, weight, sum, output layer, pick
NO_ATTENTION_STAGE_COUNT = 4  # without attention: RNN, the (fixed) context, output layer, pick
MAX_TRACE_BYTES = 64 * 1024 * 1024  # a 100-word sentence with all vectors is ~10 MB
MAX_JSON_DEPTH = 16  # a valid trace nests 5 deep
Vector = tuple[float, ...]  # a few numbers per source token or candidate: scores, weights


class Floats(Sequence[float]):
    """An immutable vector of float32 numbers kept as their bytes: the model's states in a trace
    (h_i, h_t, C_t, [h_t; C_t], h~_t, keys, query terms).

    They are a thousand numbers and more per step. As a tuple of Python floats each number costs
    32 bytes, and making them was most of the engine's overhead over a plain decoder step; here
    a step's numbers leave torch as one copy of bytes, and its vectors are spans of it
    (numbers ``start`` to ``stop``). Items are Python floats (float32 values, as the model
    computed them); equality is exact.
    """

    __slots__ = ("_data", "_start", "_stop")

    def __init__(self, data: bytes, start: int = 0, stop: int | None = None) -> None:
        if len(data) % 4:
            raise ValueError("float32 data must be a multiple of 4 bytes long")
        stop = len(data) // 4 if stop is None else stop
        if not 0 <= start <= stop <= len(data) // 4:
            raise ValueError(f"numbers {start} to {stop} are not within the data")
        object.__setattr__(self, "_data", bytes(data))
        object.__setattr__(self, "_start", start)
        object.__setattr__(self, "_stop", stop)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Floats are immutable")

    @classmethod
    def of(cls, values: Iterable[float]) -> Floats:
        """Numbers rounded to float32 (out-of-range ones become ±inf)."""
        return cls(array("f", values).tobytes())

    def _view(self) -> memoryview:
        return memoryview(self._data).cast("f")[self._start : self._stop]

    def tobytes(self) -> bytes:
        return self._data[4 * self._start : 4 * self._stop]

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[float, ...]: ...
    def __getitem__(self, index):
        item = self._view()[index]
        return tuple(item.tolist()) if isinstance(index, slice) else item

    def __iter__(self) -> Iterator[float]:
        return iter(self._view().tolist())

    def tolist(self) -> list[float]:
        return self._view().tolist()

    def __eq__(self, other: object) -> bool:
        return self.tobytes() == other.tobytes() if isinstance(other, Floats) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.tobytes())

    def __repr__(self) -> str:
        return f"Floats({self.tolist()!r})"

    def __reduce__(self):
        return Floats, (self.tobytes(),)


@dataclass(frozen=True)
class CheckpointInfo:
    name: str  # checkpoint directory name
    sha256: str  # of model.safetensors: which exact weights made this trace
    attention: str  # dot | general | concat | additive | none (no attention: steps have no scores or weights)
    formula: str  # the scorer's formula, for display
    source_language: str
    target_language: str
    tokenizer: str = WORD_TOKENIZER  # attnstep-words | sentencepiece

    @property
    def attends(self) -> bool:
        return self.attention != NO_ATTENTION

    @property
    def scorer_name(self) -> str:
        """ "Luong general", "no attention": the attention as people name it."""
        return SCORER_NAMES.get(self.attention, self.attention)


@dataclass(frozen=True)
class SourceToken:
    surface: str  # as a reader sees it: the user's word, or a piece without its "▁"
    token: str  # vocabulary form the model saw ("<unk>" if unknown, "<0xNN>" for a byte)
    id: int  # source vocabulary id
    word: int = 0  # index in Trace.words of the user's word this token belongs to


@dataclass(frozen=True)
class Word:
    """A word as a person reads it, and the span of tokens (source) or steps (output) it is made of."""

    text: str
    start: int
    end: int  # exclusive


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
    hidden: Floats | None  # h_t (None when vectors were dropped)
    context: Floats | None  # C_t = Σ_i a_ti h_i
    concat: Floats | None  # [h_t; C_t]
    attentional: Floats | None  # h~_t = tanh(W_c [h_t; C_t])
    candidates: tuple[Candidate, ...]  # top-k next words, most probable first
    chosen_token: str  # the word this step outputs ("<eos>" ends the sentence)
    chosen_id: int
    chosen_logprob: float  # log p(chosen)
    forced: bool  # True when a user chose the word instead of the model
    # concat/additive, with vectors: the scorer's query term, W_q h_t (Luong concat) or
    # W_a s_{t-1} (Bahdanau); e_ti = v_aᵀ tanh(query + keys_i). dot/general score h_t itself.
    query: Floats | None = None

    @property
    def chosen_prob(self) -> float:
        return math.exp(self.chosen_logprob)


ALIVE, FINISHED, PRUNED = "alive", "finished", "pruned"
DEFAULT_ALPHA = 0.6  # GNMT's length normalization exponent (Wu et al. 2016 found 0.6–0.7 best)
MAX_BEAM = 100  # the schema's limit on hypotheses per step


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016, eq. 14): a hypothesis's score is divided by it."""
    return ((5 + length) / 6) ** alpha


@dataclass(frozen=True)
class Hypothesis:
    """One hypothesis of a beam step: the one at ``parent`` in the step before, plus ``token``."""

    parent: int | None  # index in the previous beam step (None at step 0)
    token: str  # the token it adds
    id: int
    logprob: float  # log p(token | the parent's tokens, x)
    score: float  # cumulative log-probability: the parent's score + logprob
    normalized: float  # score / lp(length): what finished hypotheses are ranked by (see Beam.alpha)
    # alive: extended at the next step, or still in the beam when the length limit ended the search;
    # finished: ends with <eos>; pruned: none of its extensions stayed in the beam.
    status: str
    weights: Vector  # a_t of the step that wrote ``token`` (computed from the parent's state)


@dataclass(frozen=True)
class Beam:
    """A whole beam search: each step's hypotheses, highest score first."""

    width: int  # K
    alpha: float  # length normalization: normalized = score / ((5 + length) / 6) ** alpha (GNMT)
    start: int  # steps before this one were a fixed prefix (a forced word and the choices before it)
    steps: tuple[tuple[Hypothesis, ...], ...]
    best: int  # index, in beam step len(trace.steps) - 1, of the hypothesis that trace.steps records

    def lineage(self, t: int, index: int) -> tuple[int, ...]:
        """Indices, at beam steps 0..t, of hypothesis ``index`` of step ``t`` and its ancestors."""
        path = [index]
        for step in range(t, 0, -1):
            path.append(self.steps[step][path[-1]].parent)
        return tuple(reversed(path))

    def history(self, t: int, index: int) -> tuple[Hypothesis, ...]:
        """The hypotheses along ``lineage(t, index)``: its tokens and attention rows, step by step."""
        return tuple(self.steps[step][i] for step, i in enumerate(self.lineage(t, index)))


@dataclass(frozen=True)
class Trace:
    checkpoint: CheckpointInfo
    source: tuple[SourceToken, ...]
    encoder_states: tuple[Floats, ...] | None  # h_1..h_n, once per trace (None when dropped)
    steps: tuple[Step, ...]
    finished: bool  # True when the last step chose <eos>, False when the length limit stopped it
    words: tuple[Word, ...] = ()  # the user's words over ``source``; () means one word per token
    output_words: tuple[Word, ...] | None = None  # words over the steps; None means one per token
    translation_text: str | None = None  # the detokenized output; None means word-model detokenization
    beam: Beam | None = None  # the search, when the decoding was a beam search
    reference: str | None = None  # the given translation every step was forced to (teacher forcing)
    # What the scorer compares the query with, once per source token (with vectors): W_a h_i
    # (general), W_k h_i + b (concat; U_a h_i + b in Bahdanau's notation). None for dot, whose
    # keys are the encoder states themselves.
    keys: tuple[Floats, ...] | None = None
    v_a: Floats | None = None  # concat/additive: e_ti = v_aᵀ tanh(…)

    @property
    def output_tokens(self) -> list[str]:
        return [s.chosen_token for s in self.steps if s.chosen_token != EOS_TOKEN]

    @property
    def translation(self) -> str:
        return detokenize(self.output_tokens) if self.translation_text is None else self.translation_text

    @property
    def logprob(self) -> float:
        """log p(output | source): the sum of every step's log p(chosen)."""
        return sum(s.chosen_logprob for s in self.steps)

    @property
    def mismatches(self) -> tuple[Step, ...]:
        """Steps whose word is not the model's own top choice (candidates[0]): forced ones, in practice."""
        return tuple(s for s in self.steps if s.candidates[0].id != s.chosen_id)

    def mark(self, step: Step) -> str:
        """ "*" after a word the user forced; in a given translation (all forced), "≠" where the model disagrees."""
        if self.reference is not None:
            return "≠" if step.candidates[0].id != step.chosen_id else ""
        return "*" if step.forced else ""

    @property
    def source_words(self) -> tuple[Word, ...]:
        return self.words or tuple(Word(t.surface, i, i + 1) for i, t in enumerate(self.source))

    @property
    def target_words(self) -> tuple[Word, ...]:
        if self.output_words is not None:
            return self.output_words
        return tuple(Word(token, i, i + 1) for i, token in enumerate(self.output_tokens))

    @property
    def subword(self) -> bool:
        return self.checkpoint.tokenizer != WORD_TOKENIZER

    @property
    def stage_count(self) -> int:
        """How many sub-steps one step of this decoding has."""
        return STAGE_COUNT if self.checkpoint.attends else NO_ATTENTION_STAGE_COUNT

    @property
    def has_vectors(self) -> bool:
        return self.encoder_states is not None

    def without_vectors(self) -> Trace:
        steps = tuple(
            replace(s, hidden=None, context=None, concat=None, attentional=None, query=None) for s in self.steps
        )
        return replace(self, encoder_states=None, keys=None, v_a=None, steps=steps)


# --- JSON -----------------------------------------------------------------------------------


def _rounder(precision: int | None, packed: bool):
    if packed:  # Floats as base64 of their float32 bytes; other numbers as they are
        return lambda v: base64.b64encode(v.tobytes()).decode("ascii") if isinstance(v, Floats) else v
    if precision is None:
        return lambda v: v.tolist() if isinstance(v, Floats) else v
    return lambda v: tuple(round(x, precision) for x in v)


def to_json_dict(trace: Trace, *, precision: int | None = None, packed: bool = False) -> dict[str, Any]:
    """The documented JSON form; ``precision`` rounds every float to that many decimals.

    ``packed`` writes each state vector as a base64 string of its float32 bytes: not the
    documented form, but the one the SSH server's model service sends its sessions, which
    :func:`from_json_dict` reads. A student's session then never holds a trace's thousands of
    numbers as Python floats, not even while parsing (~2.5 MB per session, measured).
    """
    r = _rounder(None if packed else precision, packed)
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
        if s.query is not None:
            step["query"] = r(s.query)
        step["candidates"] = [{"token": c.token, "id": c.id, "prob": one(c.prob)} for c in s.candidates]
        step["chosen"] = {
            "token": s.chosen_token,
            "id": s.chosen_id,
            "logprob": one(s.chosen_logprob),
            "prob": one(s.chosen_prob),
        }
        step["forced"] = s.forced
        steps.append(step)
    out: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "checkpoint": vars(trace.checkpoint).copy(),
        "vectors": trace.has_vectors,
        "source": [{"surface": t.surface, "token": t.token, "id": t.id, "word": t.word} for t in trace.source],
        "words": [_word_dict(w) for w in trace.source_words],
    }
    if trace.encoder_states is not None:
        out["encoder_states"] = [r(v) for v in trace.encoder_states]
    if trace.keys is not None:
        out["keys"] = [r(v) for v in trace.keys]
    if trace.v_a is not None:
        out["v_a"] = r(trace.v_a)
    out.update(
        steps=steps,
        output_tokens=trace.output_tokens,
        output_words=[_word_dict(w) for w in trace.target_words],
        translation=trace.translation,
        alignment=[step["weights"] for step in steps],
        finished=trace.finished,
    )
    if trace.beam is not None:
        out["beam"] = _beam_dict(trace.beam, one, r)
    if trace.reference is not None:
        out["reference"] = {
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
    return out


def _beam_dict(beam: Beam, one, r) -> dict[str, Any]:
    return {
        "width": beam.width,
        "alpha": beam.alpha,
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
                    "weights": r(h.weights),
                }
                for h in hypotheses
            ]
            for hypotheses in beam.steps
        ],
    }


def _word_dict(word: Word) -> dict[str, Any]:
    return {"text": word.text, "start": word.start, "end": word.end}


def dumps(trace: Trace, *, precision: int | None = None, indent: bool = False, packed: bool = False) -> bytes:
    """Strict, deterministic JSON bytes (UTF-8, no NaN/Infinity) for one trace (``packed``: see :func:`to_json_dict`)."""
    import orjson

    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(to_json_dict(trace, precision=precision, packed=packed), option=option)


def schema() -> dict[str, Any]:
    return json.loads(resources.files("attnstep.trace").joinpath("schema.json").read_text(encoding="utf-8"))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


# Every number a float32 model can write; 1e999 would parse to infinity, and the app's arithmetic
# on numbers beyond this range overflows to NaN.
FLOAT32_MAX = 3.4028234663852886e38


class _OutOfRange(ValueError):
    pass


def _number(text: str, kind=float):
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
    return parse(
        read_limited(path, MAX_TRACE_BYTES, "{path} is {size} bytes; the limit for a trace is {limit}"),
        origin=str(path),
    )


def _from_dict(data: dict[str, Any], origin: str) -> Trace:
    """Build a Trace from schema-valid data, checking that its numbers fit together."""
    version = data["format_version"]
    source = tuple(
        SourceToken(t["surface"], t["token"], t["id"], t.get("word", i)) for i, t in enumerate(data["source"])
    )
    n = len(source)
    has_vectors = data["vectors"]

    def bad(message: str) -> AttnstepError:
        return AttnstepError(f"{origin} is inconsistent: {message}")

    def vector(value: list[float] | str | None) -> Floats | None:
        """A state vector: a list of numbers, or packed (see to_json_dict) where our own service sent it."""
        if value is None:
            return None
        if not isinstance(value, str):
            return Floats.of(value)
        try:
            return Floats(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise bad("a packed vector is not base64 of float32 numbers") from None

    states = data.get("encoder_states")
    states = None if states is None else tuple(map(vector, states))

    words = _words(data["words"], n, "source", bad) if version >= 2 else ()
    if words and any(not words[t.word].start <= i < words[t.word].end for i, t in enumerate(source)):
        raise bad("a source token's word does not contain it")

    if has_vectors != (states is not None):
        raise bad("'vectors' does not match whether encoder_states is present")
    if states is not None:
        if len(states) != n:
            raise bad(f"{len(states)} encoder states for {n} source tokens")
        if len({len(v) for v in states}) > 1:
            raise bad("encoder states have different sizes")
    attends = data["checkpoint"]["attention"] != NO_ATTENTION
    width = n if attends else 0  # a model without attention scores nothing
    steps = []
    for position, s in enumerate(data["steps"]):
        if s["step"] != position:
            raise bad(f"step number {s['step']} at position {position}: steps out of order")
        if len(s["scores"]) != width or len(s["weights"]) != width:
            raise bad(f"step {position} has {len(s['weights'])} weights for {width} source tokens")
        if attends and abs(sum(s["weights"]) - 1.0) > 1e-3:
            raise bad(f"step {position}'s weights sum to {sum(s['weights']):.4f}, not 1")
        vectors = [vector(s.get(k)) for k in ("hidden", "context", "concat", "attentional")]
        if has_vectors != all(v is not None for v in vectors) or (
            not has_vectors and any(v is not None for v in vectors)
        ):
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
                hidden=vectors[0],
                context=vectors[1],
                concat=vectors[2],
                attentional=vectors[3],
                candidates=tuple(Candidate(c["token"], c["id"], c["prob"]) for c in s["candidates"]),
                chosen_token=s["chosen"]["token"],
                chosen_id=s["chosen"]["id"],
                chosen_logprob=s["chosen"]["logprob"],
                forced=s["forced"],
                query=vector(s.get("query")),
            )
        )
    if any(s.chosen_token == EOS_TOKEN for s in steps[:-1]):
        raise bad("a step after <eos>")
    if data["alignment"] != [s["weights"] for s in data["steps"]]:
        raise bad("alignment does not equal the steps' weights")
    keys, v_a = _scorer_terms(data, steps, n, bad, vector)
    info = data["checkpoint"]
    trace = Trace(
        checkpoint=CheckpointInfo(**{k: info[k] for k in CheckpointInfo.__dataclass_fields__ if k in info}),
        source=source,
        encoder_states=states,
        steps=tuple(steps),
        finished=data["finished"],
        words=words,
        keys=keys,
        v_a=v_a,
    )
    if trace.finished != bool(steps and steps[-1].chosen_token == EOS_TOKEN):
        raise bad("'finished' does not match whether the last step chose <eos>")
    if data["output_tokens"] != trace.output_tokens:
        raise bad("output_tokens do not equal the steps' chosen words")
    if version >= 2:
        output_words = _words(data["output_words"], len(trace.output_tokens), "output", bad)
        trace = replace(trace, output_words=output_words, translation_text=data["translation"])
    if "beam" in data:
        trace = replace(trace, beam=_beam(data["beam"], trace, bad))
    if "reference" in data:
        if not (trace.finished and all(s.forced for s in steps)):
            raise bad("a reference trace has a step that was not forced, or no final <eos>")
        trace = replace(trace, reference=data["reference"]["text"])
    return trace


def _beam(data: dict[str, Any], trace: Trace, bad) -> Beam:
    """A Beam whose hypotheses link up: parents that were alive, statuses that match the children, and a
    best hypothesis whose tokens and attention rows are the trace's steps."""
    n = len(trace.source) if trace.checkpoint.attends else 0
    beam_steps = []
    for t, items in enumerate(data["steps"]):
        before = beam_steps[-1] if beam_steps else ()
        hypotheses = []
        for h in items:
            parent = h["parent"]
            if (parent is None) != (t == 0) or (
                parent is not None and not (parent < len(before) and before[parent].status == ALIVE)
            ):
                raise bad(f"a hypothesis of beam step {t} extends one that is not alive in the step before")
            if (h["token"] == EOS_TOKEN) != (h["status"] == FINISHED) or len(h["weights"]) != n:
                raise bad(f"a hypothesis of beam step {t} has a status or attention row that does not fit it")
            hypotheses.append(
                Hypothesis(
                    parent,
                    h["token"],
                    h["id"],
                    h["logprob"],
                    h["score"],
                    h["normalized"],
                    h["status"],
                    tuple(h["weights"]),
                )
            )
        if not hypotheses or len(hypotheses) > data["width"]:
            raise bad(f"beam step {t} has {len(hypotheses)} hypotheses for a beam of {data['width']}")
        beam_steps.append(tuple(hypotheses))
    for t, (hypotheses, after) in enumerate(zip(beam_steps, beam_steps[1:])):
        parents = {h.parent for h in after}
        if any((i in parents) != (h.status == ALIVE) for i, h in enumerate(hypotheses)):
            raise bad(f"beam step {t}: an alive hypothesis has no extension, or a pruned one has one")
    if beam_steps and any(h.status == PRUNED for h in beam_steps[-1]):
        raise bad("the last beam step has a pruned hypothesis")
    beam = Beam(data["width"], data["alpha"], data["start"], tuple(beam_steps), data["best"])
    last = len(trace.steps) - 1
    if not (0 <= last < len(beam_steps) and beam.best < len(beam_steps[last]) and beam.start <= len(trace.steps)):
        raise bad("the beam's best hypothesis is not at the trace's last step")
    best = beam.history(last, beam.best)
    if [(h.id, h.token, h.weights) for h in best] != [(s.chosen_id, s.chosen_token, s.weights) for s in trace.steps]:
        raise bad("the beam's best hypothesis is not the words and weights of the steps")
    return beam


def _scorer_terms(
    data: dict[str, Any], steps: list[Step], n: int, bad, vector
) -> tuple[tuple[Floats, ...] | None, Floats | None]:
    """The keys and v_a of a trace, checked to fit its source, its steps and each other."""
    keys, v_a = data.get("keys"), vector(data.get("v_a"))
    keys = None if keys is None else tuple(map(vector, keys))
    queries = [s.query for s in steps if s.query is not None]
    if (keys is not None or v_a is not None or queries) and not data["vectors"]:
        raise bad("keys, v_a or query vectors in a trace without vectors")
    if (keys is not None or v_a is not None) and data["checkpoint"]["attention"] == NO_ATTENTION:
        raise bad("keys or v_a in the trace of a model without attention")
    if keys is not None and (len(keys) != n or len({len(k) for k in keys}) > 1):
        raise bad(f"{len(keys)} keys of different sizes for {n} source tokens")
    if (v_a is not None) != bool(queries) or (queries and len(queries) != len(steps)):
        raise bad("v_a and the steps' query terms come together, one per step")
    if v_a is not None and ({len(q) for q in queries} != {len(v_a)} or (keys is not None and len(keys[0]) != len(v_a))):
        raise bad("query terms, keys and v_a have different sizes")
    return keys, v_a


def _words(items: list[dict[str, Any]], count: int, side: str, bad) -> tuple[Word, ...]:
    """Words whose spans cover tokens 0..count-1 in order, each at least one token long."""
    words = tuple(Word(w["text"], w["start"], w["end"]) for w in items)
    position = 0
    for word in words:
        if word.start != position or word.end <= word.start:
            raise bad(f"the {side} words' spans do not cover the tokens in order")
        position = word.end
    if position != count:
        raise bad(f"the {side} words cover {position} tokens, not {count}")
    return words


# --- the word view: piece weights gathered per word ------------------------------------------


def word_weights(trace: Trace, weights: Vector) -> Vector:
    """One step's attention over the user's words: the weights of each word's pieces summed."""
    return tuple(sum(weights[w.start : w.end]) for w in trace.source_words)


def word_alignment(trace: Trace, steps: tuple[Step, ...] | None = None) -> list[tuple[Word, Vector]]:
    """Rows of the word-level grid: one per output word written so far, columns = the user's words.

    A target word's row is the mean of its pieces' rows (each piece row sums to 1, so the
    word row does too); a column sums its word's pieces. A word whose pieces are not all
    among ``steps`` yet (decoding has reached only part of it) gets the mean of those shown.
    """
    steps = trace.steps if steps is None else steps
    rows = []
    for word in trace.target_words:
        shown = [word_weights(trace, s.weights) for s in steps[word.start : word.end]]
        if shown:
            rows.append((word, tuple(sum(column) / len(shown) for column in zip(*shown))))
    return rows


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


class StepCursor(TraceCursor):
    """A :class:`TraceCursor` that can also stop inside a step, at one of its sub-steps.

    ``stage`` (1..``trace.stage_count``) says how much of the current step is shown; the last is
    the whole step, and the only stage there is at position 0 (the encoder alone). Which
    computation each stage is depends on the scorer; that is the UI's business, the
    arithmetic of moving is here.
    """

    def __init__(self, trace: Trace, position: int = 0, stage: int = STAGE_COUNT):
        self.stage = trace.stage_count
        super().__init__(trace)
        self.goto(position, stage)

    @property
    def partial(self) -> bool:
        """True when the current step is shown only up to a stage before the pick."""
        return self.position > 0 and self.stage < self.trace.stage_count

    def goto(self, position: int, stage: int = STAGE_COUNT) -> bool:
        """Move to ``position`` (clamped) at ``stage`` (clamped; whole step by default)."""
        before = (self.position, self.stage)
        super().goto(position)
        last = self.trace.stage_count
        self.stage = max(1, min(stage, last)) if self.position else last
        return (self.position, self.stage) != before

    def step(self) -> bool:
        """Complete a partly shown step, or else take the next one whole."""
        if self.partial:
            return self.goto(self.position)
        return self.goto(self.position + 1)

    def sub_step(self, delta: int) -> bool:
        """One stage forward (into the next step's first stage) or back (to the previous step, whole)."""
        if delta > 0:
            if self.partial:
                return self.goto(self.position, self.stage + 1)
            return self.position < self.total and self.goto(self.position + 1, 1)
        if self.stage > 1 and self.position:
            return self.goto(self.position, self.stage - 1)
        return self.back()
