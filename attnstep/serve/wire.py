"""What session processes and the server say to each other: one JSON object per line over a Unix socket.

Torch-free: both ends import it. A session opens two connections, each starting with a hello
line ``{"session": ID, "channel": "model" | "class"}``; the server knows each session's user
and role by ID, so a child cannot promote itself to teacher.

``model`` — request, then one answer line:
    {"op": "translate", "sentence": S}
    {"op": "decode", "source": [[surface, token, id], …], "prefix": [[id, forced], …], "word": W?}
        the trace of that source with those choices at its first steps (then W, forced)
    answer: {"trace": {…}, "version": V} or {"error": "one line"}; V numbers a teacher's traces.
    Traces here have their state vectors packed (base64 float32: see trace.writer.to_wire_dict).

``class`` — a teacher sends {"op": "move", "version": V, "position": P, "stage": S} whenever
its screen changes; a student sends {"following": true | false} when that changes, and receives {"teacher": NAME, "position": P, "stage": S} and,
when the trace changed, "trace": {…} too; {"teacher": null} when no teacher is showing anything.
On either role's class channel the server may also send {"notice": TEXT}: one line to show
(the window is larger than the app draws, say).
"""

from __future__ import annotations

from typing import Any

import orjson

from attnstep.trace.reader import from_wire_dict
from attnstep.trace.records import SourceToken, Trace

MAX_REQUEST = 256 * 1024  # a 100-token source and a 210-step prefix are under 20 KB
MAX_ANSWER = 96 * 1024 * 1024  # a trace is at most MAX_TRACE_BYTES; room for the envelope


def line(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


def with_trace(head: dict[str, Any], trace_json: bytes) -> bytes:
    """``head`` plus a "trace" member holding already-serialized trace JSON, without re-encoding it."""
    return orjson.dumps(head)[:-1] + (b',"trace":' if head else b'"trace":') + trace_json + b"}\n"


def source_to_wire(source: tuple[SourceToken, ...]) -> list[list]:
    return [[t.surface, t.token, t.id] for t in source]


def trace_from_wire(data: dict[str, Any]) -> Trace:
    return from_wire_dict(data, origin="the model service's answer")


def crash_report_name(session_id: int) -> str:
    """Where a session's process leaves a crash's traceback, in the server's private folder, for its log."""
    return f"session-{session_id}.crash"
