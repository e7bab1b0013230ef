"""Helpers for the SSH server tests: a server on a loopback port, and clients that render with pyte."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import asyncssh
import orjson
import pyte

from attnstep.serve.auth import Accounts, hash_password
from attnstep.serve.server import ClassServer, ServeSettings
from attnstep.serve.service import ModelService

PASSWORD = "correct horse"
SENTENCE = "une voiture rouge court dans la rue ."
WAIT = 60.0  # seconds before a wait gives up: generous on a loaded 2-core machine
POLL = 0.02  # seconds between two looks at a condition
T = TypeVar("T")
_services: dict[Path, ModelService] = {}


@contextlib.asynccontextmanager
async def serving(checkpoint: Path, *, users=("ann", "bob", "cy", "teach"), teachers=(), keys_path=None, **settings):
    """A ClassServer on a free loopback port; yields it with ``.port`` set. No teacher unless named."""
    # Loaded once per checkpoint: the executor thread is made anew for each server.
    service = _services.get(checkpoint) or ModelService.load(checkpoint, 5)
    _services[checkpoint] = service
    accounts = Accounts(
        passwords={user: hash_password(PASSWORD, n=2**10) for user in users},
        keys_path=str(keys_path) if keys_path else None,
        teachers=frozenset(teachers),
    )
    server = ClassServer(
        ServeSettings(checkpoint=checkpoint, accounts=accounts, host_key=HOST_KEY, port=0, **settings),
        ModelService(service.stepper),
    )
    server.port = await server.start()
    try:
        yield server
    finally:
        await server.close("the test is over")


HOST_KEY = asyncssh.generate_private_key("ssh-ed25519")


def connect(port: int, username: str = "ann", **options):
    options.setdefault("password", PASSWORD)
    options.setdefault("client_keys", None)
    return asyncssh.connect("127.0.0.1", port, username=username, known_hosts=None, agent_path=None, **options)


class Screen:
    """One SSH session's terminal: bytes from the server fed to pyte, keys sent back."""

    def __init__(self, process: asyncssh.SSHClientProcess, columns: int, rows: int) -> None:
        self.process = process
        self.screen = pyte.Screen(columns, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()

    @classmethod
    async def open(cls, conn, *, size=(120, 36), term="xterm-256color", env=None) -> Screen:
        process = await conn.create_process(term_type=term, term_size=size, encoding=None, env=env or {})
        return cls(process, *size)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def drawn(self, text: str) -> bool:
        """Whether ``text`` is on one of the lines drawn since the last look.

        Only those lines are read: reading all of a 500×200 screen after every chunk made the client
        so slow that a toast (shown for 5 s) could come and go within one chunk, unseen."""
        rows, self.screen.dirty = self.screen.dirty, set()
        buffer, columns = self.screen.buffer, range(self.screen.columns)
        # A wide character's second cell holds "": the line reads as pyte's display shows it.
        return any(text in "".join(buffer[row][x].data for x in columns) for row in rows)

    async def until(self, text: str, timeout: float = WAIT) -> str:
        """Read until ``text`` (one line's worth) is on screen; fails with the screen as it is."""
        deadline = time.monotonic() + timeout
        self.screen.dirty.clear()
        shown = text in self.text()
        while not shown:
            try:
                data = await asyncio.wait_for(self.process.stdout.read(1 << 16), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise AssertionError(f"{text!r} never appeared; the screen:\n{self.text()}") from None
            if not data:
                raise AssertionError(f"the session ended before {text!r} appeared; the screen:\n{self.text()}")
            self.raw += data
            self.stream.feed(data)
            shown = self.drawn(text)
        return self.text()

    async def rest(self, timeout: float = WAIT) -> bytes:
        """Everything until the session ends."""

        async def read_all():
            while data := await self.process.stdout.read(1 << 16):
                self.raw += data
                self.stream.feed(data)

        try:
            await asyncio.wait_for(read_all(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"the session did not end; the screen:\n{self.text()}") from None
        return bytes(self.raw)

    def press(self, keys: bytes | str) -> None:
        self.process.stdin.write(keys.encode() if isinstance(keys, str) else keys)

    def resize(self, columns: int, rows: int) -> None:
        self.screen.resize(rows, columns)
        self.process.change_terminal_size(columns, rows)


RIGHT = b"\x1b[C"


async def open_on_sentence(conn, sentence: str = SENTENCE, **options) -> Screen:
    """A session that has translated ``sentence`` and shows its encoder step."""
    screen = await Screen.open(conn, **options)
    await screen.until("Type a French sentence")
    screen.press(sentence + "\r")
    await screen.until("step 0 of")
    return screen


def children(pid: int | None = None) -> list[int]:
    """Processes whose parent is ``pid`` (this process by default), from /proc."""
    pid = pid or os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def session_pids(server: ClassServer) -> list[int]:
    """The server's session processes: the zygote's children."""
    return children(server.zygote.process.pid)


async def wait_until(
    condition: Callable[[], T], awaited: str, seen: Callable[[], object] | None = None, timeout: float = WAIT
) -> T:
    """Look at ``condition`` until it holds, and return it; fails naming what was ``awaited`` and what was ``seen``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {awaited}; saw {seen() if seen else value!r}")
        await asyncio.sleep(POLL)
    return value


async def settle(server: ClassServer) -> None:
    """Wait until every session has ended: its process gone, its connections to the backend closed."""
    await wait_until(
        lambda: not (session_pids(server) or server.sessions or server.backend.connections),
        "every session to end",
        lambda: (
            f"{len(server.sessions)} sessions, processes {session_pids(server)}, "
            f"{len(server.backend.connections)} backend connections"
        ),
    )


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class BrowserTab:
    """A browser tab's websocket in the shape of an asyncssh client process (what :class:`Screen` and the
    benchmarks' students read and write): stdout reads the server's binary frames (b"" once it is closed),
    stdin writes textual.js's ``["stdin", …]`` text frames, in order."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.stdout = self.stdin = self
        self.sending: asyncio.Queue[str] = asyncio.Queue()
        self.sender = asyncio.ensure_future(self.send_in_order())

    async def send_in_order(self) -> None:
        while True:
            await self.socket.send_str(await self.sending.get())

    async def read(self, _size: int) -> bytes:
        while True:
            message = await self.socket.receive()
            if message.type == aiohttp.WSMsgType.BINARY:
                return message.data
            if message.type != aiohttp.WSMsgType.TEXT:
                return b""

    def write(self, data: bytes) -> None:
        self.send(["stdin", data.decode()])

    def send(self, envelope: list) -> None:
        self.sending.put_nowait(orjson.dumps(envelope).decode())

    async def wait_closed(self) -> None:
        while await self.read(1 << 16):
            pass

    async def close(self) -> None:
        self.sender.cancel()
        await self.socket.close()
