"""The SSH side of ``attnstep serve``: logins, one app process per session on its own pty, limits, shutdown.

Each session's process (:mod:`attnstep.serve.session`, forked by :mod:`attnstep.serve.zygote`)
runs on a pseudo-terminal that the server bridges to the SSH channel. Output is read from the
pty only after the channel has taken the previous chunk (``drain``), so a slow client fills its
own pty and stalls only its own process. Resizes become TIOCSWINSZ on the pty (the kernel then
sends the app SIGWINCH), clamped to what one session may draw. When a session ends for any
reason — the app quit or died, the client vanished, idle, shutdown — its process group is hung
up, then killed if it lingers, so nothing outlives it; and unless the app ended by itself, the
client's terminal is given back (main screen, cursor, no mouse reporting) with one line saying why.

Spare sessions (``spares``) are student sessions started ahead, at a common window size, while
nobody is logging in: a student who arrives gets one — its output so far, then a repaint if the
window differs — instead of waiting for an app to start, which on two cores is what a class
arriving at once queues for. Spares are never reused: each becomes exactly one session.

Nothing holds a slot for long without being used: a password guesser waits its turn
(:class:`~attnstep.serve.auth.LoginThrottle`) and is cut off after a few guesses, a session
waiting for a larger window and a connection that never opens a session are closed after
``wait_timeout``, and a session without a key press after ``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import re
import signal
import struct
import tempfile
import termios
import time
import tty
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from attnstep.serve.auth import Accounts, LoginThrottle, valid_username
from attnstep.serve.backend import Backend
from attnstep.serve.service import ModelService
from attnstep.serve.wire import crash_report_name
from attnstep.serve.zygote import Limits, SessionProcess, Zygote, ZygoteError

log = logging.getLogger("attnstep.serve")

MIN_COLUMNS, MIN_ROWS = 40, 10
# A larger window gets the app in its top-left corner: a 10000×10000 one cost a session 1.4 GB.
MAX_COLUMNS, MAX_ROWS = 500, 200
MAX_PASSWORDS = 6  # wrong passwords one connection may try before it is cut off (as OpenSSH's MaxAuthTries)
SPARE_SIZE = (120, 36)  # a spare's window until its student arrives; another size costs the app one repaint
SPARE_TERM = "xterm-256color"  # what OpenSSH sends from most terminal emulators; others start a session anew
SPARE_OUTPUT = 512 * 1024  # what a spare may draw while it waits (it draws once, then idles); more and it is replaced
QUIET = 2.0  # seconds without a login before spares are started: never while a class is arriving
DRAWN = 0.25  # seconds without output after which a spare has drawn its first screen
READ_CHUNK = 64 * 1024
KILL_GRACE = 2.0  # seconds between hanging a session's process group up and killing it
SHUTDOWN_GRACE = 3 * KILL_GRACE  # seconds that shutting down waits for sessions to say goodbye
CLIENT_GRACE = 2.0  # seconds that shutting down then waits for clients to close their connections
# What a killed app leaves switched on in the client's terminal: mouse reporting, bracketed
# paste, focus events, the kitty keyboard protocol, a hidden cursor, the alternate screen.
RESTORE_TERMINAL = (
    b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?2004l\x1b[?1004l\x1b[<u\x1b[0m\x1b[?25h\x1b[?1049l"
)
_TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_NO_CURSOR_TERMS = {"dumb", "unknown"}


@dataclass
class ServeSettings:
    checkpoint: Path
    accounts: Accounts
    host_key: asyncssh.SSHKey
    host: str = "127.0.0.1"
    port: int = 8022
    max_sessions: int = 40
    idle_timeout: float = 60 * 60.0  # seconds without a key, unless following a teacher who shows something
    wait_timeout: float = 2 * 60.0  # seconds for a window to grow large enough, and for a login to open a session
    keepalive: float = 30.0  # seconds between SSH keepalives: a vanished client is noticed within 3 of them
    limits: Limits = field(default_factory=Limits)  # what each session's process may use
    spares: int = 0  # student sessions kept started ahead of their students


def zygote_environment() -> dict[str, str]:
    """The zygote's environment, and so every session's before its own: nothing of the server's."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    if "PYTHONPATH" in os.environ:  # a checkout run without installing
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def child_environment(term: str, client_env: dict) -> dict[str, str]:
    """The app process's environment: the client's TERM (cleaned) and colour wishes, nothing of the server's."""
    # An unreadable TERM becomes plain xterm: 16 colours, which every terminal emulator draws.
    env = zygote_environment() | {"TERM": term if _TERM.fullmatch(term) else "xterm"}
    if "NO_COLOR" in client_env:
        env["NO_COLOR"] = "1"
    if str(client_env.get("COLORTERM", "")) in ("truecolor", "24bit"):
        env["COLORTERM"] = str(client_env["COLORTERM"])
    return env


def duration(seconds: float) -> str:
    """'1.5 seconds', '1 minute', '60 minutes': seconds below a minute, whole minutes from there."""
    amount, unit = (f"{seconds:.3g}", "second") if seconds < 60 else (str(round(seconds / 60)), "minute")
    return f"{amount} {unit}{'' if amount == '1' else 's'}"


def set_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def fit(columns: int, rows: int) -> tuple[int, int]:
    """The size the app is given for a window of ``columns``×``rows``: at most the largest one it draws."""
    return max(1, min(columns, MAX_COLUMNS)), max(1, min(rows, MAX_ROWS))


async def _ready(fd: int, writing: bool) -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    add, remove = (loop.add_writer, loop.remove_writer) if writing else (loop.add_reader, loop.remove_reader)
    add(fd, lambda: future.done() or future.set_result(None))
    try:
        await future
    finally:
        remove(fd)


async def stop_process(child: SessionProcess | None) -> None:
    """Hang up a session process's group, and kill it if it lingers: no orphans."""
    if child is not None and child.returncode is None:
        for sig, grace in ((signal.SIGHUP, KILL_GRACE), (signal.SIGKILL, None)):
            with contextlib.suppress(ZygoteError):  # gone: it hangs up its children itself
                child.send_signal(sig)
            try:
                await asyncio.wait_for(child.wait(), grace)
                break
            except asyncio.TimeoutError:
                continue


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
            while len(self.output) <= SPARE_OUTPUT:
                await _ready(self.master, writing=False)
                try:
                    data = os.read(self.master, READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the app has gone
                    return
                if not data:
                    return
                self.output += data
                if quiet is not None:
                    quiet.cancel()
                quiet = asyncio.get_running_loop().call_later(DRAWN, self.drawn.set)
        finally:
            if quiet is not None:
                quiet.cancel()
            self.drawn.set()


class _Gate(asyncssh.SSHServer):
    """One connection: who logs in (throttled), and how long it may stay without a session."""

    def __init__(self, server: ClassServer) -> None:
        self.server = server
        self.accounts = server.settings.accounts
        self.conn: asyncssh.SSHServerConnection | None = None
        self.peer = ""
        self.failures = 0  # wrong passwords on this connection
        self.sessions = 0  # open session channels
        self.timer: asyncio.TimerHandle | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.peer = (conn.get_extra_info("peername") or ("?",))[0]
        self.server.connections[conn] = self

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.pop(self.conn, None)
        if self.timer is not None:
            self.timer.cancel()
        self.closed.set_result(None)

    def begin_auth(self, username: str) -> bool:
        return not valid_username(username) or self.accounts.needs_auth(username)

    def auth_completed(self) -> None:
        self.expect_session()

    def expect_session(self) -> None:
        """Close the connection unless it opens a session in time (``ssh -N`` would hold it forever)."""
        timeout = self.server.settings.wait_timeout
        self.timer = asyncio.get_running_loop().call_later(
            timeout,
            self.conn.disconnect,
            asyncssh.DISC_BY_APPLICATION,
            f"no session was opened within {duration(timeout)}",
        )

    def session_opened(self) -> None:
        self.sessions += 1
        if self.timer is not None:
            self.timer.cancel()

    def session_closed(self) -> None:
        self.sessions -= 1
        if not self.sessions:
            self.expect_session()

    def password_auth_supported(self) -> bool:
        return bool(self.accounts.passwords)

    async def validate_password(self, username: str, password: str) -> bool:
        # Unknown names share one throttle per address, so that trying names is no way around it.
        name = username if username in self.accounts.passwords else ""
        throttle = self.server.throttle
        wait = throttle.turn(self.peer, name)
        # A turn too far away is refused unchecked, but not at once: a guesser that got its answers
        # quickly would spend them on new connections, and the server its CPU on their handshakes.
        await asyncio.sleep(throttle.most if wait is None else wait)
        ok = wait is not None and await asyncio.get_running_loop().run_in_executor(
            self.server.password_checks, self.accounts.password_ok, username, password
        )
        if ok:
            throttle.succeeded(self.peer, name)
            return True
        self.failures += 1
        log.info(
            "refused password for %r from %s%s",
            username,
            self.peer,
            "" if wait is not None else " unchecked: too many guesses",
        )
        if self.failures >= MAX_PASSWORDS:
            self.conn.disconnect(asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "too many wrong passwords")
        return False

    def public_key_auth_supported(self) -> bool:
        return self.accounts.keys_path is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return self.accounts.key_ok(username, key, self.peer)


class ClassServer:
    def __init__(self, settings: ServeSettings, service: ModelService) -> None:
        self.settings = settings
        self.backend = Backend(service)
        self.sessions: set[Session] = set()
        self.connections: dict[asyncssh.SSHServerConnection, _Gate] = {}
        self.throttle = LoginThrottle()
        # scrypt takes 16 MB and ~50 ms a check: a few threads, however many logins arrive at once.
        self.password_checks = ThreadPoolExecutor(
            max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="attnstep-login"
        )
        self.folder = tempfile.TemporaryDirectory(prefix="attnstep-serve-")  # mkdtemp: mode 0700
        self.socket_path = os.path.join(self.folder.name, "backend.sock")
        self.zygote = Zygote(settings.limits)
        self.spares: list[Spare] = []
        self.spare_env = child_environment(SPARE_TERM, {})
        self.spare_keeper: asyncio.Task | None = None
        self.last_login = 0.0
        self.acceptor: asyncssh.SSHAcceptor | None = None

    async def start(self) -> int:
        """Start the session zygote and listen; returns the port (useful with port 0)."""
        await self.backend.start(self.socket_path)
        await self.zygote.start(self.folder.name, zygote_environment())
        s = self.settings
        self.acceptor = await asyncssh.create_server(
            lambda: _Gate(self),
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
        if s.spares:
            self.spare_keeper = asyncio.ensure_future(self.keep_spares())
        return self.acceptor.sockets[0].getsockname()[1]

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
            *(["--teacher"] if teacher else []),
            *(["--follow"] if follows else []),
        ]

    async def keep_spares(self) -> None:
        """Keep ``spares`` sessions started ahead, for free slots only, starting them only while nobody logs in.

        A class that is in keeps its cores for stepping: with every slot taken no spare is started,
        and spares taken or ended are replaced once nobody has logged in for QUIET seconds."""
        s = self.settings
        while True:
            wanted = min(s.spares, s.max_sessions - len(self.sessions))
            if len(self.spares) < wanted and time.monotonic() - self.last_login > QUIET:
                try:
                    spare = await self.start_spare()
                except (OSError, ZygoteError) as exc:
                    log.error("could not start a spare session: %s", exc)
                    await asyncio.sleep(QUIET)
                    continue
                await spare.drawn.wait()  # one at a time: a class arriving meanwhile waits for one start, not many
                if len(self.spares) == wanted:
                    log.info("%d spare sessions ready", wanted)
            else:
                await asyncio.sleep(QUIET / 4)

    async def start_spare(self) -> Spare:
        session_id = self.backend.admit(None)
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            set_size(master, *SPARE_SIZE)
            os.set_blocking(master, False)
            process = await self.zygote.spawn(
                session_id, self.session_argv(session_id, "", False), self.spare_env, slave
            )
        except BaseException:
            os.close(master)
            self.backend.dismiss(session_id)
            raise
        finally:
            os.close(slave)
        spare = Spare(session_id, master, process)
        self.spares.append(spare)
        spare.pump.add_done_callback(lambda _: self.spare_ended(spare))
        return spare

    def spare_ended(self, spare: Spare) -> None:
        """Its app drew too much or went away while waiting (a taken spare's pump is cancelled first)."""
        if spare in self.spares:
            self.spares.remove(spare)
            asyncio.ensure_future(self.retire(spare))

    async def take_spare(self, env: dict[str, str]) -> Spare | None:
        """A spare for a student whose terminal is the spares' kind, if one is waiting."""
        if env != self.spare_env or not self.spares:
            return None
        spare = self.spares.pop(0)
        spare.pump.cancel()
        await asyncio.gather(spare.pump, return_exceptions=True)  # its reader off the pty before the session's
        return spare

    async def retire(self, spare: Spare) -> None:
        spare.pump.cancel()
        await asyncio.gather(spare.pump, return_exceptions=True)
        await stop_process(spare.process)
        os.close(spare.master)
        self.backend.dismiss(spare.session_id)

    async def close(self, message: str) -> None:
        """Stop listening, end every session with ``message`` and close every connection, then stop."""
        if self.acceptor is not None:
            self.acceptor.close()
        if self.spare_keeper is not None:
            self.spare_keeper.cancel()
            await asyncio.gather(self.spare_keeper, return_exceptions=True)
        spares, self.spares = self.spares, []
        await asyncio.gather(*(self.retire(spare) for spare in spares))
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
        await self.zygote.close()
        await self.backend.stop()
        self.backend.service.close()
        self.password_checks.shutdown(wait=False, cancel_futures=True)
        self.folder.cleanup()

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
        if len(self.sessions) >= self.settings.max_sessions:
            log.info("refused %s: %d sessions already", user, len(self.sessions))
            return await refuse(
                process, f"The class is full ({self.settings.max_sessions} sessions). Try again in a few minutes."
            )
        self.last_login = time.monotonic()
        session = Session(self, process, user, term)
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


class Session:
    def __init__(self, server: ClassServer, process: asyncssh.SSHServerProcess, user: str, term: str) -> None:
        self.server = server
        self.process = process
        self.user = user
        self.term = term
        settings = server.settings
        self.teacher = user in settings.accounts.teachers
        self.child: SessionProcess | None = None
        self.session_id = 0
        self.master = -1
        self.clamped = False  # the window is larger than the app is drawn (and the student was told)
        self.active = time.monotonic()
        self.ending: asyncio.Future = asyncio.get_running_loop().create_future()  # result: message to show
        self.finished: asyncio.Future = asyncio.get_running_loop().create_future()  # done once run() has returned

    async def run(self) -> None:
        columns, rows = self.process.get_terminal_size()[:2]
        if columns < MIN_COLUMNS or rows < MIN_ROWS:
            size = await self.wait_for_room(columns, rows)
            if size is None:
                if self.ending.done():
                    await refuse(self.process, self.ending.result())
                else:
                    with contextlib.suppress(OSError, asyncssh.Error):
                        self.process.exit(0)
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
        with contextlib.suppress(OSError, asyncssh.Error):
            self.process.exit(status)

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
                read = asyncio.ensure_future(self.process.stdin.read(1024))
                await asyncio.wait([read, self.ending], return_when=asyncio.FIRST_COMPLETED)
                if not read.done():
                    read.cancel()
                    return None
                try:
                    data = read.result()
                except asyncssh.TerminalSizeChanged as change:
                    if change.width >= MIN_COLUMNS and change.height >= MIN_ROWS:
                        return change.width, change.height
                    continue
                except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                    continue
                if not data or data[:1] in (b"q", b"Q", b"\x03", b"\x04"):
                    return None
            return None
        finally:
            timer.cancel()

    async def start_child(self, columns: int, rows: int) -> None:
        """A spare if one fits, else a new session process; either way on its own pty, at the window's size."""
        server, env = self.server, child_environment(self.term, self.process.env)
        spare = None if self.teacher else await server.take_spare(env)
        self.session_id = spare.session_id if spare is not None else server.backend.admit(self.user, self.teacher)
        log.info(
            "session %d: %s%s from %s%s",
            self.session_id,
            self.user,
            " (teacher)" if self.teacher else "",
            self.process.get_extra_info("peername")[0],
            " (a spare)" if spare is not None else "",
        )
        if spare is not None:
            self.master, self.child = spare.master, spare.process
            server.backend.assign(self.session_id, self.user)
            self.resize(columns, rows)  # before the output so far goes out: the repaint comes after it
            await self.write(bytes(spare.output))
            return
        master, slave = os.openpty()
        self.master = master  # closed by stop_child, whatever fails below
        try:
            tty.setraw(slave)  # Ctrl-C is a key for the app from the first byte, not a SIGINT before it starts
            self.resize(columns, rows)
            os.set_blocking(master, False)
            argv = server.session_argv(self.session_id, self.user, self.teacher)
            self.child = await server.zygote.spawn(self.session_id, argv, env, slave)
        finally:
            os.close(slave)

    def resize(self, columns: int, rows: int) -> None:
        """Give the app the window's size, clamped; say so when the window grows past what it draws."""
        fitted = fit(columns, rows)
        set_size(self.master, *fitted)
        clamped = fitted != (columns, rows) and (columns > MAX_COLUMNS or rows > MAX_ROWS)
        if clamped and not self.clamped:
            self.server.backend.tell(
                self.session_id, f"Your window is {columns}×{rows}; the app uses {MAX_COLUMNS}×{MAX_ROWS} of it."
            )
        self.clamped = clamped

    async def bridge(self) -> int:
        """Copy bytes both ways until the app exits or the session is ended; the exit status."""
        output = asyncio.ensure_future(self.pump_output())
        # The client leaving ends the session even while the app is too busy to read its keys.
        gone = asyncio.ensure_future(self.process.channel.wait_closed())
        pumps = [output, asyncio.ensure_future(self.pump_input()), asyncio.ensure_future(self.watch_idle()), gone]
        exited = asyncio.ensure_future(self.child.wait())
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
                await self.say(self.why_killed(status))
                return 1
            return status
        exited.cancel()
        await self.stop_child()
        if self.ending.done():
            await self.say(self.ending.result())
        return 0

    def why_killed(self, status: int) -> str:
        limits = self.server.settings.limits
        if self.child.over_memory:
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
        while True:
            await _ready(self.master, writing=False)
            try:
                data = os.read(self.master, READ_CHUNK)
            except BlockingIOError:
                continue
            except OSError as exc:  # EIO: the app closed its side of the pty
                if exc.errno == errno.EIO:
                    return
                raise
            if not data:
                return
            await self.write(data)

    async def drain_output(self) -> None:
        """What the app wrote just before exiting (its terminal restore) still reaches the client."""
        with contextlib.suppress(OSError):
            while data := os.read(self.master, READ_CHUNK):
                await self.write(data)

    async def write(self, data: bytes) -> None:
        self.process.stdout.write(data)
        await self.process.stdout.drain()  # the client has taken it: only then read more from the pty

    async def pump_input(self) -> None:
        while True:
            try:
                data = await self.process.stdin.read(READ_CHUNK)
            except asyncssh.TerminalSizeChanged as change:
                self.resize(change.width, change.height)
                continue
            except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                continue
            if not data:
                return  # the client closed the channel or vanished
            self.active = time.monotonic()
            while data:
                try:
                    written = os.write(self.master, data)
                except BlockingIOError:
                    await _ready(self.master, writing=True)
                    continue
                data = data[written:]

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


def run(settings: ServeSettings, top_k: int, beam: int | None = None) -> None:
    """Load the model once, then serve until SIGINT or SIGTERM (what `attnstep serve` runs)."""
    asyncio.run(serve(settings, ModelService.load(settings.checkpoint, top_k, beam)))


async def serve(settings: ServeSettings, service: ModelService) -> None:
    """Run until SIGINT or SIGTERM, then end every session with a message."""
    server = ClassServer(settings, service)
    port = await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    teachers = ", ".join(sorted(settings.accounts.teachers)) or "none"
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
        await stop.wait()
    finally:
        log.info("shutting down: ending %d sessions", len(server.sessions))
        await server.close("the server is shutting down; the class has ended. Goodbye!")
