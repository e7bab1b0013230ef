"""A program in a real pseudo-terminal, as a person's terminal would run it: bytes in, bytes out.

Shared by ``tui_latency.py`` and ``startup.py``. Keystrokes are written to the pty and the
app's output is read back with timestamps; pyte keeps a screen so a script can wait for
text to appear.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time

import pyte

CLI = ["-c", "from attnstep.cli import main; main()"]


class Terminal:
    def __init__(self, argv: list[str], size: tuple[int, int] = (160, 48), env: dict[str, str] | None = None):
        self.columns, self.rows = size
        self.screen = pyte.Screen(self.columns, self.rows)
        self.stream = pyte.ByteStream(self.screen)
        self.started = time.perf_counter()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ.update(TERM="xterm-256color", COLUMNS=str(self.columns), LINES=str(self.rows), **(env or {}))
            os.execv(argv[0], argv)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.columns, 0, 0))
        self.closed = False

    def read(self, timeout: float) -> tuple[bytes, float]:
        """Bytes available within ``timeout`` seconds, and when the last of them arrived."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b"", 0.0
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            return b"", 0.0
        self.stream.feed(chunk)
        return chunk, time.perf_counter()

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, text: str, timeout: float = 120.0) -> float:
        """Read until ``text`` is on screen; returns the time it appeared."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and not self.closed:
            _, when = self.read(0.05)
            if when and text in self.text():
                return when
        raise SystemExit(f"bench: {text!r} never appeared on screen:\n{self.text()}")

    def quiet(self, period: float) -> tuple[int, float]:
        """Read until nothing arrives for ``period`` seconds: (bytes read, time of the last byte)."""
        total, last = 0, 0.0
        while True:
            chunk, when = self.read(period)
            if not chunk:
                return total, last
            total += len(chunk)
            last = when

    def press(self, keys: bytes, expect: str, period: float, timeout: float = 10.0) -> tuple[float, int] | None:
        """Write ``keys``, wait until ``expect`` is on screen, then read until quiet for ``period``.

        Returns (seconds to the last byte of the answer, bytes written back), or None if ``expect``
        did not appear within ``timeout`` — a slow frame is measured however slow it is, and a
        frame that never comes is an error, never a fast key.
        """
        if expect in self.text():
            raise ValueError(f"{expect!r} is on screen already: it cannot mark the answer to this key")
        sent = time.perf_counter()
        os.write(self.fd, keys)
        deadline = sent + timeout
        size, last = 0, 0.0
        while expect not in self.text():
            chunk, when = self.read(max(0.0, deadline - time.perf_counter()))
            if not chunk:
                return None
            size, last = size + len(chunk), when
        more, when = self.quiet(period)
        return (max(last, when) - sent), size + more

    def peak_rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # it has ended already
            os.kill(self.pid, signal.SIGTERM)
        while not self.closed:
            if not self.read(0.5)[0]:
                break
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
