"""Classroom mode: what the teacher shows (trace, step, sub-step, and the view: see
:class:`~attnstep.serve.wire.SharedView`), relayed to every student.

A teacher's traces arrive here from the model service as it answers the teacher (so the
teacher never uploads one); the teacher's moves then say which of those traces is on screen
and where. Each student gets only the latest state: a follower's writer wakes on a change,
sends the state as it is then and waits for the student's socket to drain, so a slow
student skips intermediate steps instead of queueing them, and never holds up the others.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from attnstep.serve.wire import line, with_trace

RECENT = 8  # teacher traces kept for moves that arrive after a newer decoding was requested


@dataclass
class _Shown:
    version: int
    teacher: str
    trace_json: bytes
    position: int = 0
    stage: int = 0
    view: dict[str, Any] = field(default_factory=dict)  # a SharedView's wire form, checked by the backend


@dataclass(eq=False)
class _Follower:
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    sent_version: int = 0


class Hub:
    def __init__(self) -> None:
        self.recent: OrderedDict[int, tuple[str, bytes]] = OrderedDict()
        self.versions = 0
        self.shown: _Shown | None = None
        self.followers: set[_Follower] = set()
        self.present: list[str] = []  # teachers logged in, in order of arrival (a name once per session)
        self.left: str | None = None  # the teacher who left last, while no other is logged in

    def publish(self, teacher: str, trace_json: bytes) -> int:
        """Remember a trace decoded for ``teacher``; it is shown once the teacher's screen moves to it."""
        self.versions += 1
        self.recent[self.versions] = (teacher, trace_json)
        while len(self.recent) > RECENT:
            self.recent.popitem(last=False)
        return self.versions

    def move(self, teacher: str, version: int, position: int, stage: int, view: dict[str, Any]) -> None:
        if version not in self.recent or self.recent[version][0] != teacher:
            return  # a trace this teacher never got from the model service, or long replaced
        if self.shown is None or self.shown.version != version:
            self.shown = _Shown(version, teacher, self.recent[version][1])
        self.shown.position, self.shown.stage, self.shown.view = position, stage, view
        self._changed()

    def teacher_arrived(self, teacher: str) -> None:
        """A teacher's session joined the class: until it shows something, students are told who they wait for."""
        self.present.append(teacher)
        self.left = None
        self._changed()

    def teacher_left(self, teacher: str) -> None:
        """One of ``teacher``'s sessions ended; what it showed goes once none of its sessions is left."""
        if teacher in self.present:
            self.present.remove(teacher)
        if teacher not in self.present:
            if self.shown is not None and self.shown.teacher == teacher:
                self.shown = None
            if not self.present:
                self.left = teacher
        self._changed()

    def _changed(self) -> None:
        for follower in self.followers:
            follower.changed.set()

    async def follow(self, writer: asyncio.StreamWriter) -> None:
        """Send the state to one student until the connection ends."""
        follower = _Follower()
        follower.changed.set()  # the current state first
        self.followers.add(follower)
        try:
            while True:
                await follower.changed.wait()
                follower.changed.clear()
                writer.write(self._message(follower))
                await writer.drain()
        finally:
            self.followers.discard(follower)

    def _message(self, follower: _Follower) -> bytes:
        shown = self.shown
        if shown is None:
            follower.sent_version = 0
            if self.present:
                return line({"teacher": None, "waiting": self.present[0]})
            return line({"teacher": None, "left": self.left} if self.left else {"teacher": None})
        head = {"teacher": shown.teacher, "position": shown.position, "stage": shown.stage, "view": shown.view}
        if follower.sent_version == shown.version:
            return line(head)
        follower.sent_version = shown.version
        return with_trace(head, shown.trace_json)
