"""A session's app process on a pseudo-terminal of its own: its environment, the pty, its window size, its bytes.

The server holds the pty's master end, non-blocking, on the event loop. :func:`read_output` is
the one loop that reads what the app draws; its consumer takes each chunk before the next is
read, so an app whose output nobody takes stalls only itself. A window size becomes TIOCSWINSZ
on the pty (the kernel then sends the app SIGWINCH), clamped by :func:`fit` to what one app
may draw.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import re
import signal
import struct
import termios
import tty
from collections.abc import AsyncGenerator, Mapping

from attnstep.serve.zygote import SessionProcess, Zygote, ZygoteError

# A larger window gets the app in its top-left corner: a 10000×10000 one cost a session 1.4 GB.
MAX_COLUMNS, MAX_ROWS = 500, 200
READ_CHUNK = 64 * 1024
KILL_GRACE = 2.0  # seconds between hanging a session's process group up and killing it
_TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def zygote_environment() -> dict[str, str]:
    """The zygote's environment, and so every session's before its own: nothing of the server's."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    if "PYTHONPATH" in os.environ:  # a checkout run without installing
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def child_environment(term: str, client_env: Mapping[str, str]) -> dict[str, str]:
    """The app process's environment: the client's TERM (cleaned) and colour wishes, nothing of the server's."""
    # An unreadable TERM becomes plain xterm: 16 colours, which every terminal emulator draws.
    env = zygote_environment() | {"TERM": term if _TERM.fullmatch(term) else "xterm"}
    if "NO_COLOR" in client_env:
        env["NO_COLOR"] = "1"
    if str(client_env.get("COLORTERM", "")) in ("truecolor", "24bit"):
        env["COLORTERM"] = str(client_env["COLORTERM"])
    return env


def fit(columns: int, rows: int) -> tuple[int, int]:
    """The size the app is given for a window of ``columns``×``rows``: at most the largest one it draws."""
    return max(1, min(columns, MAX_COLUMNS)), max(1, min(rows, MAX_ROWS))


def set_size(master: int, columns: int, rows: int) -> None:
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


async def spawn_on_pty(
    zygote: Zygote, session_id: int, argv: list[str], env: dict[str, str], size: tuple[int, int]
) -> tuple[int, SessionProcess]:
    """A session process started on a new pty of ``size``: the pty's master end (non-blocking), and the process."""
    master, slave = os.openpty()
    try:
        tty.setraw(slave)  # Ctrl-C is a key for the app from the first byte, not a SIGINT before it starts
        set_size(master, *size)
        os.set_blocking(master, False)
        return master, await zygote.spawn(session_id, argv, env, slave)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)  # the app's end: the process has its own copy


async def _ready(fd: int, writing: bool) -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    add, remove = (loop.add_writer, loop.remove_writer) if writing else (loop.add_reader, loop.remove_reader)

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    add(fd, wake)
    try:
        await future
    finally:
        remove(fd)  # before the fd is closed: a closed fd must not stay registered with the loop


async def read_output(master: int) -> AsyncGenerator[bytes, None]:
    """What the app draws, chunk by chunk, until it closes its side of the pty; the next read waits for the consumer."""
    while True:
        await _ready(master, writing=False)
        try:
            data = os.read(master, READ_CHUNK)
        except BlockingIOError:
            continue
        except OSError as exc:  # EIO: the app closed its side of the pty
            if exc.errno == errno.EIO:
                return
            raise
        if not data:
            return
        yield data


async def write_input(master: int, data: bytes) -> None:
    """Give the app ``data`` (keys), waiting while its pty is full."""
    while data:
        try:
            written = os.write(master, data)
        except BlockingIOError:
            await _ready(master, writing=True)
            continue
        data = data[written:]


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
