"""Messages that thread workers post back to the app (workers never touch widgets)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from attnstep.trace.records import Trace
from attnstep.tui.trace_source import TraceSource


@dataclass
class SourceReady(Message):
    """The model (or another trace source) is loaded and can decode."""

    source: TraceSource


@dataclass
class OtherReady(Message):
    """The second checkpoint's decoding of ``trace``'s sentence, for c to set beside it."""

    trace: Trace
    other: Trace


@dataclass
class TraceReady(Message):
    """A new decoding arrived; show it at ``position`` (steps shown)."""

    trace: Trace
    position: int
    note: str  # what happened, for a notification ("" for none)
