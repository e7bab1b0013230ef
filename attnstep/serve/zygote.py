"""The session zygote: one process that imports the app once, then forks a process per SSH session.

A new Python process that imports Textual costs ~0.3 s of CPU, so a class that logs in at once
used to queue for seconds on two cores. The server instead starts this process once — a fresh
interpreter, so torch, which the server loads for the model, is never in it — and it imports
and warms up the app, hides its objects from the garbage collector (``gc.freeze``) and waits.
For each session it forks: the child takes the session's pty as its controlling terminal and
runs the app, sharing the zygote's memory copy-on-write, as gunicorn's ``--preload`` workers
and Chromium's zygote do. The zygote is the children's parent, so it also enforces their
limits (CPU and memory) and reports how each one ended.

Requests, on a Unix socket (the zygote's stdin), one JSON line each:

    {"op": "spawn", "session": ID, "argv": [...], "env": {...}} with the pty's slave attached (SCM_RIGHTS)
    {"op": "signal", "pid": PID, "signal": N}

Reports, on a pipe (the zygote's stdout), one JSON line each:

    {"ready": true} once warmed up; {"spawned": ID, "pid": PID};
    {"exited": PID, "status": CODE, "memory": true?}: CODE as subprocess's returncode (-N: signal N),
    "memory" when the zygote killed it for using more than its memory limit.

When the server goes away (stdin closes), every child is hung up, then killed, and the zygote exits.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import gc
import logging
import os
import resource
import selectors
import signal
import socket
import sys
import termios
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from attnstep.serve.wire import crash_report_name

log = logging.getLogger("attnstep.serve")
MAX_FDS = 8  # a spawn request carries one; room for several arriving in one read
WATCH_INTERVAL = 1.0  # seconds between checks of the children's memory
HANGUP_GRACE = 2.0  # seconds between hanging up the children at exit and killing them
BACKSTOP_MB = 256  # the least room over the zygote's own data that RLIMIT_DATA leaves a child


@dataclass(frozen=True)
class Limits:
    """What one session process may use; both are far above what a lesson needs."""

    memory_mb: int = 400  # resident memory, shared pages included; checked every second
    cpu_seconds: int = 900  # CPU time over the session's life (SIGXCPU ends it)


# --- the zygote process ----------------------------------------------------------------------


def warm_up() -> None:
    """Import what every session needs and run the app once, headless, so children inherit it all."""
    import concurrent.futures.thread  # noqa: F401  (imported by the app's first worker)

    import textual.scrollbar  # noqa: F401  (imported by the first scrolling panel)

    from attnstep.serve import session  # noqa: F401  (the app, Textual, Rich: the expensive imports)
    from attnstep.tui.app import AttnstepApp

    async def first_frame() -> None:
        app = AttnstepApp()
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()

    asyncio.run(first_frame())


def take_channels() -> tuple[socket.socket, int]:
    """The request socket and the report pipe, moved off fds 0 and 1, which become /dev/null: a
    child's dup2 of its pty then never lands on them, and nothing printed can garble a report."""
    requests, reports = socket.socket(fileno=os.dup(0)), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    return requests, reports


class _Zygote:
    def __init__(self, limits: Limits, requests: socket.socket, reports: int) -> None:
        self.limits, self.requests, self.reports = limits, requests, reports
        self.buffer = b""
        self.fds: list[int] = []  # received with requests not yet read in full
        self.children: set[int] = set()
        self.over_memory: set[int] = set()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd is written
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.requests, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20

    def report(self, message: dict) -> None:
        os.write(self.reports, orjson.dumps(message) + b"\n")

    def serve(self) -> None:
        self.report({"ready": True})
        next_watch = time.monotonic() + WATCH_INTERVAL
        while True:
            for key, _ in self.selector.select(max(0.0, next_watch - time.monotonic())):
                if key.fileobj == self.wake_r:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 512):
                            pass
                    self.reap()
                elif not self.read_requests():
                    return self.stop()
            if time.monotonic() >= next_watch:
                self.watch_memory()
                next_watch = time.monotonic() + WATCH_INTERVAL

    def read_requests(self) -> bool:
        """Handle every complete request line; False once the server has gone."""
        data, ancillary, _, _ = self.requests.recvmsg(1 << 16, socket.CMSG_SPACE(MAX_FDS * 4))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                self.fds.extend(fds)
        if not data:
            return False
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            request = orjson.loads(line)
            if request["op"] == "spawn":
                self.spawn(request, self.fds.pop(0))
            elif request["op"] == "signal" and request["pid"] in self.children:
                kill(request["pid"], request["signal"])  # not yet reaped: its pid cannot have been reused
        return True

    def spawn(self, request: dict, pty: int) -> None:
        pid = os.fork()
        if pid == 0:
            status = 1
            crash_report = Path(crash_report_name(request["session"])).absolute()  # a teacher's session changes folder
            try:
                self.close_inherited()
                status = run_session(request, pty, self.limits)
            except Exception:  # noqa: BLE001 (whatever ends a session's start is reported, never the zygote's end)
                # As session.main does for the app: the details to the server's log, one line to the student.
                crash_report.write_text(traceback.format_exc(), encoding="utf-8")
                print(
                    "attnstep: the session could not start; the details are in the server's log",
                    file=sys.stderr,
                    flush=True,
                )
            finally:
                os._exit(status)
        os.close(pty)
        self.children.add(pid)
        self.report({"spawned": request["session"], "pid": pid})

    def close_inherited(self) -> None:
        """In a new child: nothing of the zygote's channels or signal handling stays."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        self.requests.close()
        for fd in (self.reports, self.wake_r, self.wake_w, *self.fds):
            os.close(fd)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            memory = pid in self.over_memory
            self.over_memory.discard(pid)
            self.report(
                {"exited": pid, "status": os.waitstatus_to_exitcode(status)} | ({"memory": True} if memory else {})
            )

    def watch_memory(self) -> None:
        """Kill a child whose resident memory is over the limit (RLIMIT_DATA is only the backstop)."""
        for pid in self.children - self.over_memory:
            try:
                with open(f"/proc/{pid}/statm") as statm:
                    resident_mb = int(statm.read().split()[1]) * self.page_mb
            except (OSError, ValueError, IndexError):
                continue  # ending, or a system without /proc: the rlimit still holds
            if resident_mb > self.limits.memory_mb:
                self.over_memory.add(pid)
                kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """The server is gone: hang up every child, kill those that linger, and exit."""
        for sig in (signal.SIGHUP, signal.SIGKILL):
            for pid in self.children:
                kill(pid, sig)
            deadline = time.monotonic() + HANGUP_GRACE
            while self.children and time.monotonic() < deadline:
                time.sleep(0.05)
                self.reap()


def kill(pid: int, sig: int) -> None:
    """Signal a child's process group (it is a session leader): the app and anything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def run_session(request: dict, pty: int, limits: Limits) -> int:
    """In the forked child: take the pty as the controlling terminal, apply the limits, run the app."""
    os.setsid()
    fcntl.ioctl(pty, termios.TIOCSCTTY, 0)  # the kernel then sends SIGWINCH when the server resizes the pty
    for fd in (0, 1, 2):
        os.dup2(pty, fd)
    os.close(pty)
    os.environ.clear()
    os.environ.update(request["env"])
    # CPU: SIGXCPU at the soft limit ends the process, and the server says why. Memory: the
    # zygote's watch is what ends a session; the rlimit bounds what it may take between two
    # checks (a failed allocation then ends it as a crash). No core files.
    _lower(resource.RLIMIT_CPU, limits.cpu_seconds)
    _lower(resource.RLIMIT_CORE, 0)
    data_mb = _data_size_mb()
    if data_mb is not None:
        _lower(resource.RLIMIT_DATA, (data_mb + max(2 * limits.memory_mb, BACKSTOP_MB)) * 2**20)

    from attnstep.serve import session

    status = session.main(request["argv"])
    sys.stdout.flush()
    sys.stderr.flush()
    return status


def _lower(limit: int, value: int) -> None:
    """Set the soft limit to ``value``, or to the hard limit if that is lower."""
    hard = resource.getrlimit(limit)[1]
    resource.setrlimit(limit, (value if hard == resource.RLIM_INFINITY else min(value, hard), hard))


def _data_size_mb() -> int | None:
    """This process's data size in MB (VmData, what RLIMIT_DATA counts); None where /proc does not say."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def main() -> None:
    limits = Limits(*(int(arg) for arg in sys.argv[1:3]))
    channels = take_channels()
    warm_up()
    gc.collect()
    gc.freeze()  # children's collections never walk (and so never copy) the zygote's objects
    _Zygote(limits, *channels).serve()


# --- the server's side --------------------------------------------------------------------------


@dataclass(eq=False)
class SessionProcess:
    """One session's process, as the server sees it."""

    zygote: Zygote
    pid: int
    exited: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    over_memory: bool = False

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self.exited)

    def send_signal(self, sig: int) -> None:
        self.zygote.send({"op": "signal", "pid": self.pid, "signal": int(sig)})


class ZygoteError(Exception):
    """The zygote could not start, or has gone."""


class Zygote:
    """Starts the zygote process, asks it for session processes and learns how they end."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.process: asyncio.subprocess.Process | None = None
        self.requests: socket.socket | None = None
        self.spawning: dict[int, asyncio.Future] = {}  # session id → its process, once forked
        self.running: dict[int, SessionProcess] = {}  # pid → process
        self.listener: asyncio.Task | None = None

    async def start(self, cwd: str, env: dict[str, str]) -> None:
        """Start the zygote in ``cwd`` (where sessions leave crash reports) and wait until it is warm."""
        ours, theirs = socket.socketpair()
        process = self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "attnstep.serve.zygote",
            str(self.limits.memory_mb),
            str(self.limits.cpu_seconds),
            stdin=theirs.fileno(),
            stdout=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,  # the teacher's Ctrl-C reaches the server, which ends the class in order
        )
        theirs.close()
        self.requests = ours
        assert process.stdout is not None  # stdout=PIPE
        ready = await process.stdout.readline()
        if orjson.loads(ready or b"{}").get("ready") is not True:
            raise ZygoteError("the session process could not start; the server's log says why")
        self.listener = asyncio.ensure_future(self.listen(process.stdout, ours))

    async def spawn(self, session: int, argv: list[str], env: dict[str, str], pty: int) -> SessionProcess:
        future = self.spawning[session] = asyncio.get_running_loop().create_future()
        try:
            self.send({"op": "spawn", "session": session, "argv": argv, "env": env}, pty)
            return await future
        finally:
            self.spawning.pop(session, None)

    def send(self, request: dict, fd: int | None = None) -> None:
        # A few hundred bytes to a process that reads as fast as it forks: the socket's buffer takes it.
        if self.requests is None or self.listener is None or self.listener.done():
            raise ZygoteError("the session process has gone")
        socket.send_fds(self.requests, [orjson.dumps(request) + b"\n"], [fd] if fd is not None else [])

    async def listen(self, reports: asyncio.StreamReader, requests: socket.socket) -> None:
        try:
            while line := await reports.readline():
                report = orjson.loads(line)
                if "spawned" in report:
                    process = self.running[report["pid"]] = SessionProcess(self, report["pid"])
                    future = self.spawning.get(report["spawned"])
                    if future is not None and not future.done():
                        future.set_result(process)
                elif "exited" in report and (ended := self.running.pop(report["exited"], None)):
                    ended.over_memory = bool(report.get("memory"))
                    ended.exited.set_result(report["status"])
        finally:
            # The zygote has gone: whatever waits on it learns so.
            if requests.fileno() != -1:  # not closed by close(): it never should
                log.error("the session zygote has exited: no session can start until the server is restarted")
            for future in self.spawning.values():
                if not future.done():
                    future.set_exception(ZygoteError("the session process has gone"))
            for process in self.running.values():
                if not process.exited.done():
                    process.exited.set_result(-signal.SIGKILL)
            self.running.clear()

    async def close(self) -> None:
        """Close the request socket: the zygote hangs up any child left, and exits."""
        if self.requests is not None:
            self.requests.close()
        if self.process is not None:
            await self.process.wait()
        if self.listener is not None:
            await self.listener


if __name__ == "__main__":
    main()
