"""The SSH side of ``attnstep serve``: the class's server, and each session from login to goodbye.

Each session's process (:mod:`attnstep.serve.session`, forked by :mod:`attnstep.serve.zygote`)
runs on a pseudo-terminal of its own (:mod:`attnstep.serve.pty`) that the server bridges to the
SSH channel: output goes to the client only as fast as it takes it, and resizes reach the app
clamped to what one session may draw. When a session ends for any reason — the app quit or died,
the client vanished, idle, shutdown — its process group is hung up, then killed if it lingers,
so nothing outlives it; and unless the app ended by itself, the client's terminal is given back
(main screen, cursor, no mouse reporting) with one line saying why.

Nothing holds a slot for long without being used: logins are throttled at the gate
(:mod:`attnstep.serve.gate`), a session waiting for a larger window is closed after
``wait_timeout``, and a session without a key press after ``idle_timeout``. A student may get a
session started ahead of them (:mod:`attnstep.serve.spares`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import tempfile
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from attnstep.serve.auth import Accounts, LoginThrottle
from attnstep.serve.backend import Backend
from attnstep.serve.gate import Gate, duration
from attnstep.serve.pty import (
    KILL_GRACE,
    MAX_COLUMNS,
    MAX_ROWS,
    READ_CHUNK,
    child_environment,
    fit,
    read_output,
    set_size,
    spawn_on_pty,
    stop_process,
    write_input,
    zygote_environment,
)
from attnstep.serve.service import ModelService
from attnstep.serve.spares import Spares
from attnstep.serve.wire import crash_report_name
from attnstep.serve.zygote import Limits, SessionProcess, Zygote, ZygoteError

if TYPE_CHECKING:
    from attnstep.serve.web import WebFront

log = logging.getLogger("attnstep.serve")

MIN_COLUMNS, MIN_ROWS = 40, 10
SHUTDOWN_GRACE = 3 * KILL_GRACE  # seconds that shutting down waits for sessions to say goodbye
CLIENT_GRACE = 2.0  # seconds that shutting down then waits for clients to close their connections
# What a killed app leaves switched on in the client's terminal: mouse reporting, bracketed
# paste, focus events, the kitty keyboard protocol, a hidden cursor, the alternate screen.
RESTORE_TERMINAL = (
    b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?2004l\x1b[?1004l\x1b[<u\x1b[0m\x1b[?25h\x1b[?1049l"
)
_NO_CURSOR_TERMS = {"dumb", "unknown"}


@dataclass
class ServeSettings:
    checkpoint: Path
    accounts: Accounts
    host_key: asyncssh.SSHKey
    host: str = "127.0.0.1"
    port: int | None = 8022  # None: no SSH, only the web page
    web_port: int | None = None  # the browsers' port (attnstep.serve.web); None: SSH only
    web_tls: ssl.SSLContext | None = None  # the web page over HTTPS (--certfile, --keyfile)
    max_sessions: int = 40
    idle_timeout: float = 60 * 60.0  # seconds without a key, unless following a teacher who shows something
    wait_timeout: float = 2 * 60.0  # seconds for a window to grow large enough, and for a login to open a session
    keepalive: float = 30.0  # seconds between SSH keepalives: a vanished client is noticed within 3 of them
    limits: Limits = field(default_factory=Limits)  # what each session's process may use
    spares: int = 0  # student sessions kept started ahead of their students
    files: Path = field(default_factory=Path.cwd)  # where a teacher's x writes (students' stays on their screen)


class ClassServer:
    """The class on one port: its connections, sessions and spares, and the backend they talk to."""

    def __init__(self, settings: ServeSettings, service: ModelService) -> None:
        self.settings = settings
        self.backend = Backend(service)
        self.sessions: set[Session] = set()
        self.connections: dict[asyncssh.SSHServerConnection, Gate] = {}
        self.throttle = LoginThrottle()
        # scrypt takes 16 MB and ~50 ms a check: a few threads, however many logins arrive at once.
        self.password_checks = ThreadPoolExecutor(
            max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="attnstep-login"
        )
        self.folder = tempfile.TemporaryDirectory(prefix="attnstep-serve-")  # mkdtemp: mode 0700
        self.socket_path = os.path.join(self.folder.name, "backend.sock")
        self.zygote = Zygote(settings.limits)
        self.spares = Spares(self)
        self.last_login = 0.0
        self.acceptor: asyncssh.SSHAcceptor | None = None
        self.web: WebFront | None = None

    async def start(self) -> int | None:
        """Start the session zygote and listen; returns the SSH port (useful with port 0), None without SSH."""
        await self.backend.start(self.socket_path)
        await self.zygote.start(self.folder.name, zygote_environment())
        s = self.settings
        if s.web_port is not None:
            # Imported here: aiohttp only where a class is served to browsers (and web.py imports this module).
            from attnstep.serve.web import WebFront

            self.web = WebFront(self)
            await self.web.start(s.host, s.web_port, s.web_tls)
        if s.port is not None:
            self.acceptor = await asyncssh.create_server(
                lambda: Gate(self),
                s.host,
                s.port,
                server_host_keys=[s.host_key],
                process_factory=self.session,
                encoding=None,
                line_editor=False,
                allow_scp=False,
                sftp_factory=None,
                agent_forwarding=False,
                x11_forwarding=False,
                login_timeout=60,
                keepalive_interval=s.keepalive,
                keepalive_count_max=3,
            )
        self.spares.start()  # once listening: a port that cannot be had leaves no spare half-started
        return None if self.acceptor is None else self.acceptor.sockets[0].getsockname()[1]

    def session_argv(self, session_id: int, user: str, teacher: bool) -> list[str]:
        """What a session process is told: who it is for, and whether it starts out following a teacher."""
        follows = not teacher and bool(self.settings.accounts.teachers)
        return [
            "--socket",
            self.socket_path,
            "--session",
            str(session_id),
            "--user",
            user,
            "--checkpoint",
            str(self.settings.checkpoint),
            *(["--teacher", "--files", str(self.settings.files)] if teacher else []),
            *(["--follow"] if follows else []),
        ]

    async def spawn(
        self, session_id: int, user: str, teacher: bool, env: dict[str, str], size: tuple[int, int]
    ) -> tuple[int, SessionProcess]:
        """A session's process on a pty of its own: the pty's master end, and the process."""
        return await spawn_on_pty(self.zygote, session_id, self.session_argv(session_id, user, teacher), env, size)

    async def close(self, message: str) -> None:
        """Stop listening, end every session with ``message`` and close every connection, then stop."""
        if self.acceptor is not None:
            self.acceptor.close()
        if self.web is not None:
            await self.web.stop_listening()
        await self.spares.close()
        sessions = list(self.sessions)
        for session in sessions:
            session.end(message)
        if sessions:  # their processes are hung up and their goodbyes written before anything is torn down
            await asyncio.wait([session.finished for session in sessions], timeout=SHUTDOWN_GRACE)
        gates = list(self.connections.values())
        if gates:  # a client whose session has ended closes its connection itself, and its ssh exits 0;
            # one cut off first exits 255 ("Received disconnect"). Those with no session (ssh -N) are cut.
            await asyncio.wait([gate.closed for gate in gates], timeout=CLIENT_GRACE)
        for gate in gates:
            gate.conn.close()  # after what is queued for the client: the goodbyes reach it
        if gates:
            await asyncio.wait([gate.closed for gate in gates], timeout=SHUTDOWN_GRACE)
        await self.stop()

    async def stop(self) -> None:
        """Stop the zygote, the backend and the model service (all that runs once the sessions have ended)."""
        if self.web is not None:
            await self.web.close()
        await self.zygote.close()
        await self.backend.stop()
        self.backend.service.close()
        self.password_checks.shutdown(wait=False, cancel_futures=True)
        self.folder.cleanup()

    async def check_password(self, peer: str, username: str, password: str) -> bool:
        """Whether ``password`` is ``username``'s, checked in turn (over SSH or from the login page): guessing waits."""
        # Unknown names share one throttle per address, so that trying names is no way around it.
        name = username if username in self.settings.accounts.passwords else ""
        wait = self.throttle.turn(peer, name)
        # A turn too far away is refused unchecked, but not at once: a guesser that got its answers
        # quickly would spend them on new connections, and the server its CPU on their handshakes.
        await asyncio.sleep(self.throttle.most if wait is None else wait)
        ok = wait is not None and await asyncio.get_running_loop().run_in_executor(
            self.password_checks, self.settings.accounts.password_ok, username, password
        )
        if ok:
            self.throttle.succeeded(peer, name)
            return True
        log.info(
            "refused password for %r from %s%s",
            username,
            peer,
            "" if wait is not None else " unchecked: too many guesses",
        )
        return False

    async def session(self, process: asyncssh.SSHServerProcess) -> None:
        gate = self.connections.get(process.get_extra_info("connection"))
        if gate is not None:
            gate.session_opened()
        try:
            await self.admit(process)
        finally:
            if gate is not None:
                gate.session_closed()

    async def admit(self, process: asyncssh.SSHServerProcess) -> None:
        user = process.get_extra_info("username")
        if process.command is not None or process.subsystem is not None:
            return await refuse(process, "this server runs only the stepping app; log in without a command.")
        term = process.get_terminal_type()
        if not term:
            return await refuse(process, "the stepping app needs a terminal: connect with `ssh -t`.")
        if term.lower() in _NO_CURSOR_TERMS:
            return await refuse(
                process,
                f"the stepping app needs a terminal that can move its cursor, and TERM={term} cannot: connect from a terminal emulator.",
            )
        await self.host(SSHSession(self, process, user, term))

    async def host(self, session: Session) -> None:
        """Run ``session`` (over SSH or from a browser) in one of the class's slots, or refuse it when all are taken."""
        if len(self.sessions) >= self.settings.max_sessions:
            log.info("refused %s: %d sessions already", session.user, len(self.sessions))
            return await session.refuse(
                f"The class is full ({self.settings.max_sessions} sessions). Try again in a few minutes."
            )
        self.last_login = time.monotonic()
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            session.finished.set_result(None)


async def refuse(process: asyncssh.SSHServerProcess, message: str) -> None:
    with contextlib.suppress(OSError, asyncssh.Error):
        process.stdout.write(f"attnstep: {message}\r\n".encode())
        await process.stdout.drain()
        process.exit(1)


class Session(ABC):
    """One session, from its window's size to its exit status: the app's process, its pty, the bridge.

    The client's side is the few abstract methods below: an SSH channel (:class:`SSHSession`) or
    a browser's websocket (:class:`attnstep.serve.web.WebSession`); the rest is the same for both.
    """

    def __init__(self, server: ClassServer, user: str, term: str, peer: str) -> None:
        self.server = server
        self.user = user
        self.term = term
        self.peer = peer  # the client's address, for the log
        settings = server.settings
        self.teacher = user in settings.accounts.teachers
        self.child: SessionProcess | None = None
        self.session_id = 0
        self.master = -1
        self.clamped = False  # the window is larger than the app is drawn (and the student was told)
        self.active = time.monotonic()
        self.ending: asyncio.Future = asyncio.get_running_loop().create_future()  # result: message to show
        self.finished: asyncio.Future = asyncio.get_running_loop().create_future()  # done once run() has returned

    # --- the client's side

    @abstractmethod
    def window(self) -> tuple[int, int]:
        """The client's window as the session starts: columns, rows."""

    @abstractmethod
    def environment(self) -> dict[str, str]:
        """The app process's environment, from what the client says of its terminal."""

    @abstractmethod
    async def receive(self) -> bytes | tuple[int, int]:
        """The client's next keys, or its window's new size (columns, rows); b"" once it has gone."""

    @abstractmethod
    async def gone(self) -> None:
        """Return once the client has gone, even while nobody reads its keys."""

    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Send ``data`` to the client's screen, returning once it has taken it: only then is more read from the pty."""

    @abstractmethod
    def exit(self, status: int) -> None:
        """End the client's side with ``status`` (an SSH client's exit status); never raises."""

    async def refuse(self, message: str) -> None:
        """One line, and the end (status 1)."""
        with contextlib.suppress(OSError, asyncssh.Error):
            await self.write(f"attnstep: {message}\r\n".encode())
        self.exit(1)

    # --- the session

    async def run(self) -> None:
        columns, rows = self.window()
        if columns < MIN_COLUMNS or rows < MIN_ROWS:
            size = await self.wait_for_room(columns, rows)
            if size is None:
                if self.ending.done():
                    await self.refuse(self.ending.result())
                else:
                    self.exit(0)
                return
            columns, rows = size
        status = 1
        try:
            await self.start_child(columns, rows)
            status = await self.bridge()
        except (OSError, ZygoteError) as exc:  # no pty left, say, or the zygote gone
            log.error("session %d could not start: %s", self.session_id, exc)
            await self.say(
                f"the session could not start ({exc.strerror if isinstance(exc, OSError) else exc}); try again in a moment."
            )
        finally:
            await self.stop_child()
            self.server.backend.dismiss(self.session_id)
            crash = Path(self.server.folder.name) / crash_report_name(self.session_id)
            if crash.exists():
                log.error("session %d: the app crashed:\n%s", self.session_id, crash.read_text(encoding="utf-8"))
                crash.unlink()
            log.info("session %d ended", self.session_id)
        self.exit(status)

    async def wait_for_room(self, columns: int, rows: int) -> tuple[int, int] | None:
        """Ask for a larger window; the size once it is large enough, None if the user leaves or the wait ends."""
        await self.write(
            f"attnstep needs a terminal of at least {MIN_COLUMNS}×{MIN_ROWS}; this one is {columns}×{rows}.\r\n"
            "Make the window larger to start, or press q to leave.\r\n".encode()
        )
        timeout = self.server.settings.wait_timeout
        timer = asyncio.get_running_loop().call_later(
            timeout,
            self.end,
            f"closed: the window stayed smaller than {MIN_COLUMNS}×{MIN_ROWS} for {duration(timeout)}.",
        )
        try:
            while not self.ending.done():
                read = asyncio.ensure_future(self.receive())
                await asyncio.wait([read, self.ending], return_when=asyncio.FIRST_COMPLETED)
                if not read.done():
                    read.cancel()
                    return None
                data = read.result()
                if isinstance(data, tuple):
                    if data[0] >= MIN_COLUMNS and data[1] >= MIN_ROWS:
                        return data
                    continue
                if not data or data[:1] in (b"q", b"Q", b"\x03", b"\x04"):
                    return None
            return None
        finally:
            timer.cancel()

    async def start_child(self, columns: int, rows: int) -> None:
        """A spare if one fits, else a new session process; either way on its own pty, at the window's size."""
        server, env = self.server, self.environment()
        spare = None if self.teacher else await server.spares.take(env)
        self.session_id = spare.session_id if spare is not None else server.backend.admit(self.user, self.teacher)
        log.info(
            "session %d: %s%s from %s%s",
            self.session_id,
            self.user,
            " (teacher)" if self.teacher else "",
            self.peer,
            " (a spare)" if spare is not None else "",
        )
        if spare is not None:
            self.master, self.child = spare.master, spare.process
            server.backend.assign(self.session_id, self.user)
            self.resize(columns, rows)  # before the output so far goes out: the repaint comes after it
            await self.write(bytes(spare.output))
            return
        self.master, self.child = await server.spawn(self.session_id, self.user, self.teacher, env, fit(columns, rows))
        self.tell_if_clamped(columns, rows)

    def resize(self, columns: int, rows: int) -> None:
        """Give the app the window's size, clamped."""
        set_size(self.master, *fit(columns, rows))
        self.tell_if_clamped(columns, rows)

    def tell_if_clamped(self, columns: int, rows: int) -> None:
        """Say so when the window grows past what the app draws."""
        clamped = columns > MAX_COLUMNS or rows > MAX_ROWS
        if clamped and not self.clamped:
            self.server.backend.tell(
                self.session_id, f"Your window is {columns}×{rows}; the app uses {MAX_COLUMNS}×{MAX_ROWS} of it."
            )
        self.clamped = clamped

    async def bridge(self) -> int:
        """Copy bytes both ways until the app exits or the session is ended; the exit status."""
        output = asyncio.ensure_future(self.pump_output())
        # The client leaving ends the session even while the app is too busy to read its keys.
        gone = asyncio.ensure_future(self.gone())
        pumps = [output, asyncio.ensure_future(self.pump_input()), asyncio.ensure_future(self.watch_idle()), gone]
        child = self.child
        assert child is not None  # started by start_child
        exited = asyncio.ensure_future(child.wait())
        done, _ = await asyncio.wait([*pumps, exited, self.ending], return_when=asyncio.FIRST_COMPLETED)
        if output in done and not output.exception():
            # The app closed its terminal: it is exiting, and its status is worth waiting for.
            await asyncio.wait([exited], timeout=KILL_GRACE)
        for task in pumps:
            task.cancel()
        # Before the pty is closed: a cancelled pump still has the pty's fd registered with the loop.
        await asyncio.gather(*pumps, return_exceptions=True)
        if exited.done():
            await self.drain_output()
            status = exited.result()
            if status < 0:
                await self.say(self.why_killed(status, child.over_memory))
                return 1
            return status
        exited.cancel()
        await self.stop_child()
        if self.ending.done():
            await self.say(self.ending.result())
        return 0

    def why_killed(self, status: int, over_memory: bool) -> str:
        limits = self.server.settings.limits
        if over_memory:
            return f"this session used more than {limits.memory_mb} MB of memory and was closed."
        if status == -signal.SIGXCPU:
            return f"this session used its {duration(limits.cpu_seconds)} of CPU time and was closed."
        return f"the session ended unexpectedly ({signal.Signals(-status).name})."

    def end(self, message: str) -> None:
        """End the session with ``message`` (from shutdown, the idle timer, or the wait for a larger window)."""
        if not self.ending.done():
            self.ending.set_result(message)

    async def say(self, message: str) -> None:
        """Give the client's terminal back as the app found it, then one line."""
        with contextlib.suppress(OSError, asyncssh.Error):
            await self.write(RESTORE_TERMINAL + f"\r\nattnstep: {message}\r\n".encode())

    async def pump_output(self) -> None:
        async with contextlib.aclosing(read_output(self.master)) as chunks:
            async for data in chunks:
                await self.write(data)

    async def drain_output(self) -> None:
        """What the app wrote just before exiting (its terminal restore) still reaches the client."""
        with contextlib.suppress(OSError):
            while data := os.read(self.master, READ_CHUNK):
                await self.write(data)

    async def pump_input(self) -> None:
        while data := await self.receive():  # b"": the client closed the channel or vanished
            if isinstance(data, tuple):
                self.resize(*data)
                continue
            self.active = time.monotonic()
            await write_input(self.master, data)

    async def watch_idle(self) -> None:
        """End the session after the idle timeout without a key, unless it is watching a teacher."""
        timeout = self.server.settings.idle_timeout
        while True:
            left = self.active + timeout - time.monotonic()
            if left <= 0 and not self.server.backend.watching(self.session_id):
                break
            await asyncio.sleep(left if left > 0 else timeout)
        self.end(f"closed after {duration(timeout)} without a key press.")

    async def stop_child(self) -> None:
        """Stop the app's process and close the pty."""
        await stop_process(self.child)
        if self.master >= 0:
            # Reads and writes of a closed fd must not be left registered with the loop.
            os.close(self.master)
            self.master = -1


class SSHSession(Session):
    """A session over SSH: the client's pty request, its channel's bytes, its exit status."""

    def __init__(self, server: ClassServer, process: asyncssh.SSHServerProcess, user: str, term: str) -> None:
        super().__init__(server, user, term, process.get_extra_info("peername")[0])
        self.process = process

    def window(self) -> tuple[int, int]:
        columns, rows = self.process.get_terminal_size()[:2]
        return columns, rows

    def environment(self) -> dict[str, str]:
        return child_environment(self.term, self.process.env)

    async def receive(self) -> bytes | tuple[int, int]:
        while True:
            try:
                return await self.process.stdin.read(READ_CHUNK)
            except asyncssh.TerminalSizeChanged as change:
                return change.width, change.height
            except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                continue

    async def gone(self) -> None:
        await self.process.channel.wait_closed()

    async def write(self, data: bytes) -> None:
        self.process.stdout.write(data)
        await self.process.stdout.drain()

    def exit(self, status: int) -> None:
        with contextlib.suppress(OSError, asyncssh.Error):
            self.process.exit(status)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run(settings: ServeSettings, top_k: int, beam: int | None = None, *, device: str = "cpu", threads: int = 0) -> int:
    """Load the model once (onto ``device``), then serve until a stop signal (what `attnstep serve` runs); the signal's number."""
    service = ModelService.load(settings.checkpoint, top_k, beam, device, threads)
    return asyncio.run(serve(settings, service))


async def serve(settings: ServeSettings, service: ModelService) -> int:
    """Run until SIGINT, SIGTERM or SIGHUP, then end every session with a message; the signal's number."""
    server = ClassServer(settings, service)
    try:
        port = await server.start()
    except BaseException:  # e.g. a --host that cannot be listened on: nothing to end but what start() began
        await server.stop()
        raise
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[int] = loop.create_future()

    def stopped_by(signum: int) -> None:
        if not stop.done():  # a second signal while shutting down changes nothing
            stop.set_result(signum)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stopped_by, sig)
    teachers = ", ".join(sorted(settings.accounts.teachers)) or "none"
    if port is None:
        log.info("serving %s on %s to browsers only; teachers: %s", settings.checkpoint.name, settings.host, teachers)
    else:
        log.info(
            "serving %s on %s port %d; host key %s; teachers: %s",
            settings.checkpoint.name,
            settings.host,
            port,
            settings.host_key.get_fingerprint(),
            teachers,
        )
        log.info("students connect with: ssh -p %d NAME@%s", port, settings.host)
    if settings.spares:
        log.info("starting %d spare sessions, for students who log in at once", settings.spares)
    try:
        return await stop
    finally:
        log.info("shutting down: ending %d sessions", len(server.sessions))
        await server.close("the server is shutting down; the class has ended. Goodbye!")
