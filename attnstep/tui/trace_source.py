"""Where the app gets its traces: the small protocol a source of traces keeps.

The app never holds a model. It asks a :class:`TraceSource` for a new trace when the
decoding must change (a new sentence, a forced word, an edited step's attention) and otherwise only moves a cursor, so
a source may equally be a model in another process (the SSH server). Calls may block; the
app makes them from a thread worker. Replay has no source at all. The implementations live
outside the app: a local Stepper (:mod:`attnstep.commands.translate`) and the SSH server's model
(:mod:`attnstep.serve.remote`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from attnstep.trace.records import Edit, Trace


class TraceSource(Protocol):
    def translate(self, sentence: str) -> Trace: ...

    def force(self, trace: Trace, t: int, word: str) -> Trace: ...

    def unforce(self, trace: Trace, t: int) -> Trace: ...

    def edit(self, trace: Trace, t: int, edit: Edit) -> Trace: ...

    def unedit(self, trace: Trace, t: int) -> Trace: ...


@runtime_checkable
class ScoringSource(TraceSource, Protocol):
    """A source that can also score a given translation (``translate --target``): the local model."""

    def score_reference(self, sentence: str, reference: str) -> Trace: ...


SourceFactory = Callable[[], TraceSource]
