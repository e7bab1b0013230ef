"""Editing a step's attention, without torch: the edited weights of an :class:`~attnstep.trace.records.Edit`,
the checks an edit must pass against a trace, and the ``dump --edit`` grammar.

The engine (:mod:`attnstep.engine.edit`) computes the rest of the step from the weights made here, so
the app, ``dump`` and the probe experiment share one definition of each operation.

The grammar of a SPEC (steps and source positions 1-based, as the app shows them)::

    STEP[@LLAYER[HHEAD]]:OPERATION[=VALUE]
    3:zero=étudiant      the word's weight to 0, the rest renormalised (a word, or a 1-based position)
    3:one=2              all the weight on source token 2 (or on a word)
    3:uniform            1/n each
    3:temperature=0.5    softmax(e_t / 0.5): sharper; over 1, flatter
    3:reverse            the weights in reverse order
    3:permute=7          shuffled with seed 7
    3:weights=0.1,0.9    typed: one per source token, non-negative, summing to 1
    3@L5H2:uniform       a Transformer: head 2 of decoder layer 5
    3@L5:uniform         every head of layer 5
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from attnstep.errors import AttnstepError
from attnstep.trace.records import EDIT_OPERATIONS, Architecture, Edit, Trace, Vector


class EditError(AttnstepError):
    """An attention edit that the step or its model cannot take, or a SPEC that does not parse: a usage error."""


MAX_TOKENS = 200  # the schema's limit on source tokens
SUM_TOLERANCE = 1e-3  # typed weights must sum to 1 within this (a person types a few decimals)
EDIT_GRAMMAR = (
    "STEP[@L<layer>[H<head>]]:OPERATION[=VALUE], steps, positions, layers and heads from 1: "
    "zero=WORD|POS, one=WORD|POS, uniform, temperature=T, reverse, permute=SEED, weights=W1,W2,..."
)


def edited_weights(edit: Edit, scores: Sequence[float], weights: Sequence[float]) -> Vector:
    """The weights a'_t that ``edit`` makes of one head's (or an RNN's) scores e_t and weights a_t."""
    n = len(weights)
    operation = edit.operation
    if operation in ("zero", "one"):
        chosen = set(edit.tokens)
        kept = [w if (i in chosen) == (operation == "one") else 0.0 for i, w in enumerate(weights)]
        total = sum(kept)
        if total > 0:
            return tuple(w / total for w in kept)
        # the kept tokens had no weight at all: share it equally among them
        share = [1.0 if (i in chosen) == (operation == "one") else 0.0 for i in range(n)]
        return tuple(w / sum(share) for w in share)
    if operation == "uniform":
        return tuple(1.0 / n for _ in range(n))
    if operation == "temperature":
        assert edit.temperature is not None
        scaled = [e / edit.temperature for e in scores]
        top = max(scaled)
        exps = [math.exp(e - top) for e in scaled]
        return tuple(x / sum(exps) for x in exps)
    if operation == "reverse":
        return tuple(reversed(weights))
    if operation == "permute":
        order = list(range(n))
        random.Random(edit.seed).shuffle(order)
        return tuple(weights[j] for j in order)
    if operation == "weights":
        return tuple(edit.weights)
    raise EditError(f"unknown attention edit {operation!r} (one of {', '.join(EDIT_OPERATIONS)})")


def check_edit(trace: Trace, t: int, edit: Edit) -> None:
    """Refuse, in one line, an edit that step ``t`` (0-based) of ``trace`` cannot take."""
    if not trace.checkpoint.attends:
        raise EditError(f"{trace.checkpoint.name} has no attention to edit (a model without attention)")
    if not 0 <= t < len(trace.steps):
        raise EditError(f"step {t + 1} is past the end: the decoding has {len(trace.steps)} steps")
    if trace.reference is not None:
        raise EditError("a given translation's steps are all forced: its attention is not edited here")
    check_edit_fits(edit, len(trace.source), trace.architecture)


def check_edit_fits(edit: Edit, n: int, architecture: Architecture | None) -> None:
    """Refuse, in one line, an edit that a step over ``n`` source tokens of a model of ``architecture``
    (None: an RNN) cannot take: what a decoding asked for from another process is checked by."""
    if edit.operation not in EDIT_OPERATIONS:
        raise EditError(f"unknown attention edit {edit.operation!r} (one of {', '.join(EDIT_OPERATIONS)})")
    if architecture is None and (edit.layer is not None or edit.head is not None):
        raise EditError("an RNN's attention has no layers or heads: leave out @L…H…")
    if architecture is not None:
        if edit.layer is None:
            raise EditError(
                f"say which layer (and head) to edit: {architecture.layers} layers @L1 to @L{architecture.layers}"
            )
        if not 0 <= edit.layer < architecture.layers:
            raise EditError(f"layer {edit.layer + 1} is not one of the model's {architecture.layers}")
        if edit.head is not None and not 0 <= edit.head < architecture.heads:
            raise EditError(f"head {edit.head + 1} is not one of the layer's {architecture.heads}")
    if edit.operation in ("zero", "one"):
        if not edit.tokens or any(not 0 <= i < n for i in edit.tokens):
            raise EditError(f"source token {edit.tokens} is outside the sentence's {n} tokens")
        if edit.operation == "zero" and len(set(edit.tokens)) >= n:
            raise EditError("zeroing every source token leaves no weight to renormalise")
    if edit.operation == "temperature" and not (edit.temperature is not None and edit.temperature > 0):
        raise EditError(f"the temperature must be over 0, not {edit.temperature}")
    if edit.operation == "weights":
        check_weights(edit.weights, n)


def check_weights(weights: Sequence[float], n: int) -> None:
    """Typed weights: one per source token, finite, non-negative, summing to 1."""
    if len(weights) != n:
        raise EditError(f"{len(weights)} weights for {n} source tokens: give one per token")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise EditError("attention weights must be non-negative numbers")
    if abs(sum(weights) - 1) > SUM_TOLERANCE:
        raise EditError(f"attention weights must sum to 1, not {sum(weights):.6g}")


def edit_to_json(edit: Edit) -> dict[str, Any]:
    """An edit as the trace's JSON and a decode request write it: the operation, its parameters, a layer and head."""
    out: dict[str, Any] = {"operation": edit.operation}
    if edit.tokens:
        out["tokens"] = list(edit.tokens)
    if edit.temperature is not None:
        out["temperature"] = edit.temperature
    if edit.seed is not None:
        out["seed"] = edit.seed
    if edit.weights:
        out["typed"] = list(edit.weights)
    if edit.layer is not None:
        out.update(layer=edit.layer, head=edit.head)
    return out


def edit_from_json(item: object) -> Edit:
    """:func:`edit_to_json`'s form back, its types checked (a request from another process is untrusted)."""
    if not isinstance(item, dict) or item.get("operation") not in EDIT_OPERATIONS:
        raise EditError("an attention edit is an object with an operation")

    def numbers(key: str, kind: type | tuple[type, ...]) -> tuple:
        value = item.get(key, [])
        if not isinstance(value, list) or len(value) > MAX_TOKENS or not all(_is(v, kind) for v in value):
            raise EditError(f"an attention edit's {key} must be a list of numbers")
        return tuple(value)

    def number(key: str, kind: type | tuple[type, ...]) -> Any:
        value = item.get(key)
        if value is not None and not _is(value, kind):
            raise EditError(f"an attention edit's {key} must be a number")
        return value

    return Edit(
        item["operation"],
        tokens=numbers("tokens", int),
        temperature=number("temperature", (int, float)),
        seed=number("seed", int),
        weights=tuple(float(w) for w in numbers("typed", (int, float))),
        layer=number("layer", int),
        head=number("head", int),
    )


def _is(value: object, kind: type | tuple[type, ...]) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def parse_edit(spec: str, trace: Trace) -> tuple[int, Edit]:
    """A SPEC of the grammar above, read against ``trace`` (its words, its length): (0-based step, edit)."""
    where, colon, operation = spec.partition(":")
    if not colon:
        raise EditError(f"attention edit {spec!r}: expected {EDIT_GRAMMAR}")
    step_text, at, place = where.partition("@")
    t = _positive(step_text, spec, "step") - 1
    layer = head = None
    if at:
        layer_text, h, head_text = place.upper().removeprefix("L").partition("H")
        if not place.upper().startswith("L"):
            raise EditError(f"attention edit {spec!r}: a layer is written @L5 or @L5H2")
        layer = _positive(layer_text, spec, "layer") - 1
        head = _positive(head_text, spec, "head") - 1 if h else None
    name, equals, value = operation.partition("=")
    name = name.strip()
    if name not in EDIT_OPERATIONS:
        raise EditError(f"attention edit {spec!r}: unknown operation {name!r}; expected {EDIT_GRAMMAR}")
    valued = name not in ("uniform", "reverse")
    if valued != bool(value.strip()) or (equals and not valued):
        need = f"needs a value ({name}=…)" if valued else "takes no value"
        raise EditError(f"attention edit {spec!r}: {name} {need}")
    edit = Edit(
        name,
        tokens=_tokens(value.strip(), trace, spec) if name in ("zero", "one") else (),
        temperature=_number(value, spec) if name == "temperature" else None,
        seed=_positive(value, spec, "seed", zero=True) if name == "permute" else None,
        weights=tuple(_number(v, spec) for v in value.split(",")) if name == "weights" else (),
        layer=layer,
        head=head,
    )
    try:
        check_edit(trace, t, edit)
    except EditError as exc:
        raise EditError(f"attention edit {spec!r}: {exc}") from None
    return t, edit


def apply_edits(trace: Trace, specs: Sequence[str], edit: Callable[[Trace, int, Edit], Trace]) -> Trace:
    """``trace`` with each SPEC applied by ``edit`` (the engine's), the earliest step first: an edit
    decodes the steps after it again, so a later step is read from the decoding it continues."""

    def step_of(spec: str) -> int:
        digits = spec.partition(":")[0].partition("@")[0].strip()
        return int(digits) if digits.isdigit() else 0  # parse_edit refuses it, in order

    for spec in sorted(specs, key=step_of):
        t, made = parse_edit(spec, trace)
        if t in trace.edits:
            raise EditError(f"attention edit {spec!r}: step {t + 1} is edited twice")
        trace = edit(trace, t, made)
    return trace


def _positive(text: str, spec: str, what: str, *, zero: bool = False) -> int:
    text = text.strip()
    if not text.isdigit() or (int(text) < 1 and not zero):
        raise EditError(f"attention edit {spec!r}: the {what} must be a whole number from {0 if zero else 1}")
    return int(text)


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise EditError(f"attention edit {spec!r}: {text.strip()!r} is not a number") from None


def _tokens(value: str, trace: Trace, spec: str) -> tuple[int, ...]:
    """A 1-based source position, or a word of the sentence: the source tokens it names (0-based)."""
    if value.isdigit():
        return (int(value) - 1,)
    for word in trace.source_words:
        if word.text == value:
            return tuple(range(word.start, word.end))
    for i, token in enumerate(trace.source):  # a piece or a vocabulary form, as the grid shows them
        if value in (token.surface, token.token):
            return (i,)
    raise EditError(f"attention edit {spec!r}: {value!r} is not a word of the sentence")


def describe(edit: Edit, trace: Trace) -> str:
    """What the edit did, for a narration: "étudiant 0 → the rest renormalised", "layer 5, head 2: uniform"."""
    named = " ".join(trace.source[i].surface for i in edit.tokens)
    what = {
        "zero": f"{named} 0 → the rest renormalised",
        "one": f"all on {named}",
        "uniform": "uniform",
        "temperature": f"softmax(e/τ), τ = {edit.temperature:g}" if edit.temperature is not None else "",
        "reverse": "reversed",
        "permute": f"permuted (seed {edit.seed})",
        "weights": "typed",
    }.get(edit.operation, edit.operation)
    if edit.layer is None:
        return what
    heads = "every head" if edit.head is None else f"head {edit.head + 1}"
    return f"layer {edit.layer + 1}, {heads}: {what}"
