"""What session processes and the server say to each other: one JSON object per line over a Unix socket.

Torch-free: both ends import it. A session opens two connections, each starting with a hello
line ``{"session": ID, "channel": "model" | "class"}``; the server knows each session's user
and role by ID, so a child cannot promote itself to teacher.

``model`` — request, then one answer line:
    {"op": "translate", "sentence": S}
    {"op": "decode", "source": [[surface, token, id], …], "prefix": [[id, forced], …], "word": W?,
     "edits": [{"step": t, "operation": …, …}, …]?}
        the trace of that source with those choices at its first steps (then W, forced), and those
        steps' attention edited (each edit as a trace's edit block has it, without its weights)
    answer: {"trace": {…}, "version": V} or {"error": "one line"}; V numbers a teacher's traces.
    Traces here have their state vectors packed (base64 float32: see trace.writer.to_wire_dict).

``class`` — a teacher sends {"op": "move", "version": V, "position": P, "stage": S, "view": {…}}
whenever its screen changes (the view: :class:`SharedView`), and receives {"class": {"following": F,
"exploring": E}}, its students' count, as that changes; a student sends {"following": true | false}
when that changes, and receives {"teacher": NAME, "position": P, "stage": S, "view": {…}} and, when
the trace changed, "trace": {…} too; {"teacher": null, "waiting": NAME} while a teacher is logged
in but shows nothing yet, {"teacher": null, "left": NAME} once the last teacher has gone, and
{"teacher": null} before any came. On either role's class channel the server may also send
{"notice": TEXT}: one line to show (the window is larger than the app draws, say).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson

from attnstep.trace.reader import MAX_TRACE_BYTES, from_wire_dict
from attnstep.trace.records import SourceToken, Trace

MAX_REQUEST = 256 * 1024  # a 100-token source and a 210-step prefix are under 20 KB
# An answer holds one trace, which may be as large as a trace file (a base-size Marian's, every vector
# kept, is ~1 MB a step as dump writes it), and its envelope.
MAX_ANSWER = MAX_TRACE_BYTES + 1024 * 1024


def line(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


def with_trace(head: dict[str, Any], trace_json: bytes) -> bytes:
    """``head`` plus a "trace" member holding already-serialized trace JSON, without re-encoding it."""
    return orjson.dumps(head)[:-1] + (b',"trace":' if head else b'"trace":') + trace_json + b"}\n"


SCREENS = ("worked", "map", "compare", "beam", "heads")  # the views over the steps a teacher can open for the class


@dataclass(frozen=True)
class SharedView:
    """What a teacher's screen shows besides the step: the toggles, the view open over the steps,
    and what the teacher points at. Indices are the screen's: source words (or words, with
    ``words``), steps from 0, a beam step's hypotheses."""

    words: bool = False  # v
    numbers: bool = False  # #
    screen: str | None = None  # one of SCREENS, or the steps themselves
    word: int | None = None  # the source word selected (the Source panel, or the worked score's)
    cell: tuple[int, int] | None = None  # (step, source word): the grid cell selected
    beam: tuple[int, int] | None = None  # (step, hypothesis) the beam view shows
    layer: int | None = None  # a Transformer's decoder layer in view (a, d); None: the trace's own view
    head: int | None = None  # its head in view; None, with a layer: the layer's mean of heads

    def to_wire(self) -> dict[str, Any]:
        # "is", not "in (None, False)": 0 == False, and layer 0 or word 0 is a value to send
        return {name: value for name, value in asdict(self).items() if value is not None and value is not False}

    @classmethod
    def from_wire(cls, data: object) -> SharedView:
        """The view a message describes; what is missing or malformed is left out, not an error."""
        if not isinstance(data, dict):
            return cls()

        def index(value: object) -> int | None:
            return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 20 else None

        def pair(value: object) -> tuple[int, int] | None:
            if not isinstance(value, list | tuple) or len(value) != 2:
                return None
            first, second = index(value[0]), index(value[1])
            return None if first is None or second is None else (first, second)

        return cls(
            words=data.get("words") is True,
            numbers=data.get("numbers") is True,
            screen=data["screen"] if data.get("screen") in SCREENS else None,
            word=index(data.get("word")),
            cell=pair(data.get("cell")),
            beam=pair(data.get("beam")),
            layer=index(data.get("layer")),
            head=index(data.get("head")),
        )


def source_to_wire(source: tuple[SourceToken, ...]) -> list[list]:
    return [[t.surface, t.token, t.id] for t in source]


def trace_from_wire(data: dict[str, Any]) -> Trace:
    return from_wire_dict(data, origin="the model service's answer")


def crash_report_name(session_id: int) -> str:
    """Where a session's process leaves a crash's traceback, in the server's private folder, for its log."""
    return f"session-{session_id}.crash"
