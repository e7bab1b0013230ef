"""A session process's side of the backend socket: a TraceSource over the wire, and the class link.

Torch-free, and blocking: the app calls the source from a thread worker, as it would call a
local Stepper, and reads the class channel in another thread.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from attnstep.errors import AttnstepError
from attnstep.serve.wire import MAX_ANSWER, SharedView, line, source_to_wire, trace_from_wire
from attnstep.trace.edits import check_edit, edit_to_json
from attnstep.trace.forcing import check_forceable
from attnstep.trace.records import Edit, Trace


def connect(path: str, session: int, channel: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.sendall(line({"session": session, "channel": channel}))
    return sock


def answer_lines(sock: socket.socket) -> Iterator[bytes]:
    """Lines from ``sock`` until it closes; refuses a line longer than any answer can be."""
    with sock.makefile("rb") as stream:
        while raw := stream.readline(MAX_ANSWER + 1):
            if len(raw) > MAX_ANSWER:
                raise AttnstepError("the server sent an answer larger than any trace")
            yield raw


class RemoteTraceSource:
    """The :class:`~attnstep.tui.trace_source.TraceSource` of a served session: the server's model decodes."""

    def __init__(self, path: str, session: int) -> None:
        self.sock = connect(path, session, "model")
        self.answers = answer_lines(self.sock)
        # A cancelled worker may still be waiting for its answer when the next request starts:
        # one request at a time keeps each answer with its question.
        self.lock = threading.Lock()
        self.versions: list[tuple[Trace, int]] = []  # a teacher's recent traces and their class versions

    def translate(self, sentence: str) -> Trace:
        return self._ask({"op": "translate", "sentence": sentence})

    def force(self, trace: Trace, t: int, word: str) -> Trace:
        check_forceable(trace, t)
        edits = {k: e for k, e in trace.edits.items() if k <= t}  # step t's edit stays with its new word
        return self._ask(self._decode(trace, t, edits) | {"word": word})

    def unforce(self, trace: Trace, t: int) -> Trace:
        return self._ask(self._decode(trace, t, {k: e for k, e in trace.edits.items() if k < t}))

    def edit(self, trace: Trace, t: int, edit: Edit) -> Trace:
        """Step ``t``'s attention edited, decoding on from it (as :meth:`~attnstep.engine.stepper.Stepper.edit`)."""
        check_edit(trace, t, edit)
        kept = t + 1 if trace.steps[t].forced else t  # a word forced at the edited step stays
        return self._ask(self._decode(trace, kept, {k: e for k, e in trace.edits.items() if k < t} | {t: edit}))

    def unedit(self, trace: Trace, t: int) -> Trace:
        kept = t + 1 if trace.steps[t].forced else t
        return self._ask(self._decode(trace, kept, {k: e for k, e in trace.edits.items() if k < t}))

    def version_of(self, trace: Trace) -> int | None:
        """The class version the server gave ``trace`` (None for a student's, or an old one)."""
        return next((version for known, version in self.versions if known is trace), None)

    def close(self) -> None:
        self.sock.close()

    @staticmethod
    def _decode(trace: Trace, t: int, edits: dict[int, Edit] | None = None) -> dict[str, Any]:
        prefix = [[s.chosen_id, s.forced] for s in trace.steps[:t]]
        request: dict[str, Any] = {"op": "decode", "source": source_to_wire(trace.source), "prefix": prefix}
        if edits:
            request["edits"] = [{"step": k} | edit_to_json(e) for k, e in sorted(edits.items())]
        return request

    def _ask(self, request: dict[str, Any]) -> Trace:
        with self.lock:
            try:
                self.sock.sendall(line(request))
                answer = orjson.loads(next(self.answers))
            except (OSError, StopIteration):
                raise AttnstepError("the server is gone: the class has ended") from None
        if "error" in answer:
            raise AttnstepError(str(answer["error"]))
        trace = trace_from_wire(answer["trace"])
        if "version" in answer:
            self.versions = [*self.versions[-3:], (trace, answer["version"])]
        return trace


@dataclass(frozen=True)
class Notice:
    """One line from the server for the session's screen."""

    text: str


@dataclass
class TeacherShows:
    """What the teacher's screen shows now, for a student."""

    teacher: str | None  # None: no teacher is showing anything
    trace: Trace | None  # a new trace, or None when only the position or the view changed
    position: int = 0
    stage: int = 0
    view: SharedView = field(default_factory=SharedView)
    waiting: str | None = None  # with no teacher: the teacher logged in who has yet to show a sentence
    left: str | None = None  # with no teacher: the teacher who has left


@dataclass(frozen=True)
class ClassCount:
    """For a teacher: how many students follow, and how many explore on their own."""

    following: int
    exploring: int


class ClassLink:
    """The class channel: a teacher sends where it is; a student reads what the teacher shows; both get notices."""

    def __init__(self, path: str, session: int) -> None:
        self.sock = connect(path, session, "class")

    def move(self, version: int, position: int, stage: int, view: SharedView) -> None:
        self._send({"op": "move", "version": version, "position": position, "stage": stage, "view": view.to_wire()})

    def following(self, on: bool) -> None:
        """A student tells the server whether its screen follows the teacher (then it is never idle)."""
        self._send({"following": on})

    def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the server is gone; the session's own connection will say so
            self.sock.sendall(line(message))

    def updates(self) -> Iterator[TeacherShows | ClassCount | Notice]:
        """What the teacher shows as it changes (for a student), the class's count (for a teacher), and notices."""
        for raw in answer_lines(self.sock):
            update = orjson.loads(raw)
            if "notice" in update:
                yield Notice(str(update["notice"]))
            elif "class" in update:
                yield ClassCount(int(update["class"]["following"]), int(update["class"]["exploring"]))
            else:
                yield TeacherShows(
                    update.get("teacher"),
                    trace_from_wire(update["trace"]) if "trace" in update else None,
                    int(update.get("position", 0)),
                    int(update.get("stage", 0)),
                    SharedView.from_wire(update.get("view")),
                    update.get("waiting"),
                    update.get("left"),
                )

    def close(self) -> None:
        """Also ends a thread blocked in :meth:`updates`."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
