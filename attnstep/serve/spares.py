"""Spare sessions: student sessions started ahead, at a common window size, while nobody is logging in.

A student who arrives gets one — its output so far, then a repaint if the window differs —
instead of waiting for an app to start, which on two cores is what a class arriving at once
queues for. Spares are never reused: each becomes exactly one session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING

from attnstep.serve.pty import child_environment, read_output, stop_process
from attnstep.serve.zygote import SessionProcess, ZygoteError

if TYPE_CHECKING:
    from attnstep.serve.server import ClassServer

log = logging.getLogger("attnstep.serve")

SPARE_SIZE = (120, 36)  # a spare's window until its student arrives; another size costs the app one repaint
SPARE_TERM = "xterm-256color"  # what OpenSSH sends from most terminal emulators; others start a session anew
SPARE_OUTPUT = 512 * 1024  # what a spare may draw while it waits (it draws once, then idles); more and it is replaced
QUIET = 2.0  # seconds without a login before spares are started: never while a class is arriving
DRAWN = 0.25  # seconds without output after which a spare has drawn its first screen


class Spare:
    """A student session started before its student arrives: drawn once, then waiting."""

    def __init__(self, session_id: int, master: int, process: SessionProcess) -> None:
        self.session_id, self.master, self.process = session_id, master, process
        self.output = bytearray()
        self.drawn = asyncio.Event()  # its first screen is drawn: the next spare may start
        self.pump = asyncio.ensure_future(self.keep_output())

    async def keep_output(self) -> None:
        """Keep what the app draws, for its student's terminal, so that it never blocks; ends if the app does."""
        quiet = None
        try:
            async with contextlib.aclosing(read_output(self.master)) as chunks:
                async for data in chunks:
                    self.output += data
                    if len(self.output) > SPARE_OUTPUT:
                        return
                    if quiet is not None:
                        quiet.cancel()
                    quiet = asyncio.get_running_loop().call_later(DRAWN, self.drawn.set)
        finally:
            if quiet is not None:
                quiet.cancel()
            self.drawn.set()


class Spares:
    """The server's spares: kept started for free slots only, starting them only while nobody logs in."""

    def __init__(self, server: ClassServer) -> None:
        self.server = server
        self.waiting: list[Spare] = []
        self.env = child_environment(SPARE_TERM, {})
        self.keeper: asyncio.Task | None = None
        self.retiring: set[asyncio.Task] = set()  # the loop itself keeps only a weak reference to a task

    def start(self) -> None:
        if self.server.settings.spares:
            self.keeper = asyncio.ensure_future(self.keep())

    async def keep(self) -> None:
        """Keep ``spares`` sessions started ahead.

        A class that is in keeps its cores for stepping: with every slot taken no spare is started,
        and spares taken or ended are replaced once nobody has logged in for QUIET seconds."""
        server, s = self.server, self.server.settings
        while True:
            wanted = min(s.spares, s.max_sessions - len(server.sessions))
            if len(self.waiting) < wanted and time.monotonic() - server.last_login > QUIET:
                try:
                    spare = await self.start_one()
                except (OSError, ZygoteError) as exc:
                    log.error("could not start a spare session: %s", exc)
                    await asyncio.sleep(QUIET)
                    continue
                await spare.drawn.wait()  # one at a time: a class arriving meanwhile waits for one start, not many
                if len(self.waiting) == wanted:
                    log.info("%d spare sessions ready", wanted)
            else:
                await asyncio.sleep(QUIET / 4)

    async def start_one(self) -> Spare:
        backend = self.server.backend
        session_id = backend.admit(None)
        try:
            master, process = await self.server.spawn(session_id, "", False, self.env, SPARE_SIZE)
        except BaseException:
            backend.dismiss(session_id)
            raise
        spare = Spare(session_id, master, process)
        self.waiting.append(spare)
        spare.pump.add_done_callback(lambda _: self.ended(spare))
        return spare

    def ended(self, spare: Spare) -> None:
        """Its app drew too much or went away while waiting (a taken spare's pump is cancelled first)."""
        if spare in self.waiting:
            self.waiting.remove(spare)
            retiring = asyncio.ensure_future(self.retire(spare))
            retiring.add_done_callback(self.retiring.discard)
            self.retiring.add(retiring)

    async def take(self, env: dict[str, str]) -> Spare | None:
        """A spare for a student whose terminal is the spares' kind, if one is waiting."""
        if env != self.env or not self.waiting:
            return None
        spare = self.waiting.pop(0)
        spare.pump.cancel()
        await asyncio.gather(spare.pump, return_exceptions=True)  # its reader off the pty before the session's
        return spare

    async def retire(self, spare: Spare) -> None:
        spare.pump.cancel()
        await asyncio.gather(spare.pump, return_exceptions=True)
        await stop_process(spare.process)
        os.close(spare.master)
        self.server.backend.dismiss(spare.session_id)

    async def close(self) -> None:
        """Stop starting spares, and end those waiting."""
        if self.keeper is not None:
            self.keeper.cancel()
            await asyncio.gather(self.keeper, return_exceptions=True)
        spares, self.waiting = self.waiting, []
        await asyncio.gather(*(self.retire(spare) for spare in spares))
