"""The Unix socket that session processes talk to: model requests and the classroom channel.

The socket lives in a private (0700) temporary folder of the server. The SSH side admits
each session here before starting its process, with the user's name and role; a connection
names its session in its hello line and gets only what that session's role allows. A spare
session (started before its student arrives) is admitted as a student without a name, and
follows no teacher until :meth:`Backend.assign` gives it its student.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass, field

import orjson

from attnstep.errors import AttnstepError
from attnstep.serve.hub import Hub
from attnstep.serve.service import ModelService, RateLimit
from attnstep.serve.wire import MAX_REQUEST, SharedView, line, with_trace

log = logging.getLogger("attnstep.serve")
HELLO_TIMEOUT = 10.0


@dataclass
class Member:
    """One SSH session, as the backend knows it."""

    user: str
    teacher: bool
    rate: RateLimit = field(default_factory=RateLimit)
    following: bool = False  # a student's screen follows the teacher's
    class_writer: asyncio.StreamWriter | None = None  # the session's class channel, while connected
    notices: list[str] = field(default_factory=list)  # told before it connected
    assigned: asyncio.Event = field(default_factory=asyncio.Event)  # set: the session has its user


class Backend:
    def __init__(self, service: ModelService, hub: Hub | None = None) -> None:
        self.service = service
        self.hub = hub or Hub()
        self.members: dict[int, Member] = {}
        self._ids = itertools.count(1)
        self.server: asyncio.AbstractServer | None = None
        self.connections: set[asyncio.Task] = set()

    async def start(self, path: str) -> None:
        self.server = await asyncio.start_unix_server(self.connected, path, limit=MAX_REQUEST)

    async def stop(self) -> None:
        """Stop listening and end every connection still open."""
        if self.server is not None:
            self.server.close()
        for task in self.connections:
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)

    def admit(self, user: str | None, teacher: bool = False) -> int:
        """A new session's id; ``user`` None: a spare, whose student :meth:`assign` names later."""
        session = next(self._ids)
        member = self.members[session] = Member(user or "", teacher)
        if user is not None:
            member.assigned.set()
        return session

    def assign(self, session: int, user: str) -> None:
        member = self.members[session]
        member.user = user
        member.assigned.set()

    def watching(self, session: int) -> bool:
        """Whether the session's screen is following a teacher who is showing something (so not idle)."""
        member = self.members.get(session)
        return member is not None and member.following and self.hub.shown is not None

    def tell(self, session: int, notice: str) -> None:
        """Show ``notice`` (one line) on the session's screen, now or as soon as its class channel connects."""
        member = self.members.get(session)
        if member is None:
            return
        if member.class_writer is None:
            member.notices.append(notice)
        else:
            member.class_writer.write(line({"notice": notice}))

    def dismiss(self, session: int) -> None:
        self.members.pop(session, None)

    def count_students(self) -> None:
        """Tell every teacher how many students follow and how many explore on their own."""
        students = [m for m in self.members.values() if not m.teacher and m.class_writer and m.assigned.is_set()]
        following = sum(m.following for m in students)
        count = line({"class": {"following": following, "exploring": len(students) - following}})
        for member in self.members.values():
            if member.teacher and member.class_writer is not None:
                member.class_writer.write(count)

    async def connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # asyncio's server serves each connection in a task
        self.connections.add(task)
        try:
            hello = orjson.loads(await asyncio.wait_for(reader.readline(), HELLO_TIMEOUT))
            session = hello.get("session") if isinstance(hello, dict) else None
            member = self.members.get(session) if isinstance(session, int) else None
            if member is None:
                return
            if hello.get("channel") == "model":
                await self.model_channel(member, reader, writer)
            elif hello.get("channel") == "class":
                member.class_writer = writer
                for notice in member.notices:
                    writer.write(line({"notice": notice}))
                member.notices.clear()
                try:
                    await (
                        self.teacher_channel(member, reader)
                        if member.teacher
                        else self.student_channel(member, reader, writer)
                    )
                finally:
                    member.class_writer = None
                    self.count_students()
        except (asyncio.TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            pass  # a session process that went away or spoke out of turn: drop the connection
        except asyncio.CancelledError:
            pass  # stop(): asyncio's server would log a cancelled connection task as an error
        finally:
            self.connections.discard(task)
            writer.close()

    async def model_channel(self, member: Member, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request_line := await reader.readline():
            request = orjson.loads(request_line)
            writer.write(await self.answer(member, request if isinstance(request, dict) else {}))
            await writer.drain()

    async def answer(self, member: Member, request: dict) -> bytes:
        if not member.rate.allow():
            return line({"error": "Too many requests: wait a moment and try again."})
        try:
            trace_json = await self.service.answer(request)
        except AttnstepError as exc:
            return line({"error": str(exc)})
        except Exception as exc:  # the model failing on one request must not end the class
            log.exception("decoding failed for %s", member.user)
            return line({"error": f"the model failed on this request ({type(exc).__name__})"})
        head = {"version": self.hub.publish(member.user, trace_json)} if member.teacher else {}
        return with_trace(head, trace_json)

    async def teacher_channel(self, member: Member, reader: asyncio.StreamReader) -> None:
        self.hub.teacher_arrived(member.user)
        self.count_students()
        try:
            while move_line := await reader.readline():
                move = orjson.loads(move_line)
                if isinstance(move, dict) and all(
                    isinstance(move.get(k), int) for k in ("version", "position", "stage")
                ):
                    view = SharedView.from_wire(move.get("view")).to_wire()  # only what students' apps can show
                    self.hub.move(member.user, move["version"], move["position"], move["stage"], view)
        finally:
            self.hub.teacher_left(member.user)

    async def student_channel(self, member: Member, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await member.assigned.wait()  # a spare draws nothing more until it has its student
        follow = asyncio.ensure_future(self.hub.follow(writer))
        self.count_students()
        try:
            while said := await reader.readline():  # whether the student follows, until the session ends
                message = orjson.loads(said)
                if isinstance(message, dict) and isinstance(message.get("following"), bool):
                    member.following = message["following"]
                    self.count_students()
        finally:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await follow
