"""`attnstep replay`: no torch in the process, real terminal bytes, and refused files."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyte
import pytest
from typer.testing import CliRunner

import attnstep.trace.reader
from attnstep.cli import app as cli
from attnstep.trace.writer import dumps
from tests.test_tui_untrusted import hostile_trace
from tests.tui_helpers import SENTENCE

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trace_file(stepper, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "trace.json"
    path.write_bytes(dumps(stepper.translate(SENTENCE), indent=True))
    return path


@pytest.mark.slow
def test_replay_never_imports_torch(trace_file):
    script = textwrap.dedent(
        f"""
        import sys
        from attnstep.cli import app as cli  # the command line's own imports count too
        from attnstep.trace.reader import load
        from attnstep.tui import replay_app

        async def drive(pilot):
            await pilot.press("right", "s", "s", "e", "f", "n", "r")
            pilot.app.exit()

        replay_app(load({str(trace_file)!r}), "trace.json").run(headless=True, size=(100, 30), auto_pilot=drive)
        print("torch" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def run_in_terminal(
    args: list[str], keys: list[bytes | tuple[str, bytes]], size=(100, 30), wait_for="Output:", term="xterm-256color"
) -> tuple[bytes, pyte.Screen]:
    """Run the CLI in a pseudo-terminal; send ``keys`` once ``wait_for`` is on screen; return every byte written.

    A key given as (text, key) waits until ``text`` is on screen too: a q sent with no wait
    can end the app before the frame of the key before it is drawn.
    """
    columns, rows = size
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI in a terminal of known size and kind
        os.environ.pop("COLORTERM", None)
        os.environ.update(TERM=term, COLUMNS=str(columns), LINES=str(rows))
        os.execv(sys.executable, [sys.executable, "-c", "from attnstep.cli import main; main()", *args])
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    written = bytearray()
    pending = list(keys)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                written += chunk
                stream.feed(chunk)
            elif pending:
                text, key = pending[0] if isinstance(pending[0], tuple) else (wait_for, pending[0])
                shown = "\n".join(screen.display)
                if wait_for in shown and text in shown:
                    os.write(fd, key)
                    pending.pop(0)
    finally:
        if pending:  # the screen never showed what a key waited for: end the app rather than wait on it forever
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert not pending, f"never on screen: {pending[0]!r}\n" + "\n".join(screen.display)
    assert os.waitstatus_to_exitcode(status) == 0, bytes(written[-2000:])
    return bytes(written), screen


@pytest.mark.slow
def test_hostile_strings_reach_the_terminal_as_text(stepper, tmp_path):
    path = tmp_path / "hostile.json"
    path.write_bytes(dumps(hostile_trace(stepper)))
    written, screen = run_in_terminal(["replay", str(path)], [b"\x1b[C", b"\x1b[C", b"q"])
    for raw in ("\x9b", "\u202e", "\u200f"):
        assert raw.encode() not in written
    for sequence in (b"pwned\x07", b"ckpt\x07", b"\x1b]8;;http://x", b"\x1b[31mred", b"\x1b[2J\x1b"):
        assert sequence not in written
    shown = "\n".join(screen.display)
    assert "␛]0;pwned␇" in shown and "[bold]b" in shown


@pytest.mark.slow
def test_a_16_colour_terminal_gets_16_colours_and_weights_as_numbers(stepper, trace_file):
    written, screen = run_in_terminal(
        ["replay", str(trace_file)], [b"\x1b[C", ("step 1 of", b"q")], term="xterm-16color"
    )
    assert not re.search(rb"\x1b\[[0-9;]*[34]8;[25];", written)  # no 256-colour or true-colour codes
    shown = "\n".join(screen.display)
    weights = stepper.translate(SENTENCE).steps[0].weights
    assert f"{max(weights):.2f}" in shown


def bad_files() -> dict[str, object]:
    return {
        "invalid JSON": (b"{not json", "is not valid JSON"),
        "NaN": ("nan", "is not valid JSON"),
        "deep nesting": (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        "weights not matching the source": ("short weights", "weights for"),
        "steps out of order": ("swap steps", "steps out of order"),
    }


@pytest.mark.parametrize("case", list(bad_files()))
def test_bad_replay_files_get_one_line_and_exit_1(case, stepper, tmp_path):
    content, message = bad_files()[case]
    if isinstance(content, str):
        data = json.loads(dumps(stepper.translate(SENTENCE)))
        if content == "nan":
            data["steps"][0]["scores"][0] = float("nan")
        elif content == "short weights":
            data["steps"][0]["weights"] = data["steps"][0]["weights"][:-1]
            data["steps"][0]["scores"] = data["steps"][0]["scores"][:-1]
            data["alignment"][0] = data["steps"][0]["weights"]
        else:
            data["steps"][0]["step"], data["steps"][1]["step"] = 1, 0
        content = json.dumps(data).encode()
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = runner.invoke(cli, ["replay", str(path)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("attnstep: error: ") and message in result.stderr


def test_oversized_replay_file_is_refused(trace_file, monkeypatch):
    monkeypatch.setattr(attnstep.trace.reader, "MAX_TRACE_BYTES", 1000)
    result = runner.invoke(cli, ["replay", str(trace_file)])
    assert result.exit_code == 1
    assert "the limit for a trace is 1000" in result.stderr and result.stderr.count("\n") == 1
