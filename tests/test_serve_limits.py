"""`attnstep serve` in a lecture hall: no student can hurt the others (issue 10), over real SSH on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys

import asyncssh
import pytest

from attnstep.serve.auth import LoginThrottle, add_user
from attnstep.serve.zygote import Limits
from tests.serve_helpers import (
    PASSWORD,
    Screen,
    connect,
    open_on_sentence,
    serving,
    session_pids,
    settle,
    wait_until,
)
from tests.tui_helpers import async_test

# Every test here starts a server and its sessions: the full suite's, not the fast one's.
pytestmark = pytest.mark.slow

LEAVE_ALTERNATE_SCREEN, SHOW_CURSOR, MOUSE_OFF = b"\x1b[?1049l", b"\x1b[?25h", b"\x1b[?1000l"


def assert_restored_then(output: bytes, message: bytes) -> None:
    """The terminal is given back (main screen, cursor shown, mouse off) and then ``message`` is shown."""
    assert message in output, output[-400:]
    said = output.rindex(message)
    for sequence in (LEAVE_ALTERNATE_SCREEN, SHOW_CURSOR, MOUSE_OFF):
        assert sequence in output[:said], f"{sequence!r} is not sent before {message!r}"


def server_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def writable(fd: int) -> bool:
    return bool(select.select([], [fd], [], 0)[1])


# --- 1. input and resources ---------------------------------------------------------------------


@async_test
async def test_typing_stops_at_the_sentence_limit(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server, connect(server.port) as conn:
        screen = await Screen.open(conn)
        await screen.until("Type a French sentence")
        screen.press("anticonstitutionnellement " * 200)  # 5,200 characters, typed (no bracketed paste)
        screen.press("\r")
        await screen.until("step 0 of")  # the first 1,000 were taken, and translated
        assert "the maximum is" not in screen.text()


@async_test
async def test_a_session_over_its_memory_limit_is_closed_with_a_message(tiny_checkpoint):
    # Every session uses more than 1 MB: the zygote's watch ends it within a second of starting.
    async with serving(tiny_checkpoint, limits=Limits(memory_mb=1)) as server, connect(server.port) as conn:
        screen = await Screen.open(conn)
        assert_restored_then(await screen.rest(), b"this session used more than 1 MB of memory and was closed.")
        assert screen.process.exit_status == 1
        await settle(server)


@async_test
async def test_a_session_over_its_cpu_limit_is_closed_with_a_message(tiny_checkpoint):
    async with serving(tiny_checkpoint, limits=Limits(cpu_seconds=1)) as server, connect(server.port) as conn:
        screen = await Screen.open(conn)
        await screen.until("Type a French sentence")
        ended = asyncio.ensure_future(screen.rest())
        with contextlib.suppress(BrokenPipeError):  # the session has ended
            while not ended.done():  # typing costs the app a redraw per key, until its second of CPU is used up
                screen.press("a")
                await asyncio.sleep(0.005)
        assert_restored_then(await ended, b"this session used its 1 second of CPU time and was closed.")


@async_test
async def test_a_session_whose_app_is_stuck_ends_when_the_client_leaves(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server:
        async with connect(server.port) as conn:
            screen = await Screen.open(conn)
            await screen.until("Type a French sentence")
            [child] = session_pids(server)
            os.kill(child, signal.SIGSTOP)  # an app too busy to read its keys
            screen.press(b"x" * 200_000)  # more than its pty holds
            [session] = server.sessions
            await wait_until(lambda: not writable(session.master), "the stuck app's pty to fill up with keys")
        await settle(server)


# --- 2 and 3. window sizes ----------------------------------------------------------------------


@async_test
async def test_a_huge_window_is_clamped_and_the_student_told(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server, connect(server.port) as conn:
        screen = await Screen.open(conn, size=(600, 250))
        text = await screen.until("uses 500×200 of it")
        assert "Type a French sentence" in text
        assert all(not line[500:].strip() for line in screen.screen.display)  # nothing drawn right of column 500
        assert not "".join(screen.screen.display[200:]).strip()  # nor below row 200


@async_test
async def test_a_window_over_65535_neither_leaks_a_pty_nor_ends_the_session(tiny_checkpoint):
    async def huge_session() -> None:
        process = await conn.create_process(term_type="xterm", term_size=(70000, 70000), encoding=None)
        screen = Screen(process, 500, 200)  # pyte draws the corner the app uses
        await screen.until("500×200")  # the notice, however its toast wraps
        process.change_terminal_size(80000, 90000)  # and once more, mid-session
        screen.press("q")
        await screen.rest()
        assert process.exit_status == 0  # the app quit on the q: the session lived through both sizes
        await settle(server)  # the session's pty is closed, and the backend has seen its sockets close

    async with serving(tiny_checkpoint, teachers=("teach",)) as server, connect(server.port) as conn:
        await huge_session()
        await asyncio.sleep(0)  # the sockets of the connections that ended are closed on the loop's next turn
        first = server_fds()  # whatever the server opens once and keeps
        for _ in range(3):
            await huge_session()
            await wait_until(lambda: server_fds() == first, f"the server's {first} open files", server_fds)


# --- 4 and 5. the terminal is given back --------------------------------------------------------


async def start_real_server(checkpoint, tmp_path) -> tuple[asyncio.subprocess.Process, int]:
    """The real `attnstep serve` process for ann and bob, listening: it and its port."""
    passwords = tmp_path / "passwords"
    add_user(passwords, "ann", PASSWORD)
    add_user(passwords, "bob", PASSWORD)
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from attnstep.cli import main; main()",
        "serve",
        "--checkpoint",
        str(checkpoint),
        "--port",
        "0",
        "--passwords",
        str(passwords),
        "--host-key",
        str(tmp_path / "host_key"),
        stderr=subprocess.PIPE,
    )
    while b"students connect with" not in (line := await asyncio.wait_for(server.stderr.readline(), 120)):
        assert line, "the server did not start"
    return server, int(line.split(b"ssh -p ")[1].split()[0])


async def stopped_with(server: asyncio.subprocess.Process) -> tuple[int, list[str]]:
    """A stopped server's exit status and its last lines on stderr."""
    rest = await asyncio.wait_for(server.stderr.read(), 60)
    return await asyncio.wait_for(server.wait(), 60), rest.decode().splitlines()


@async_test
async def test_sigterm_says_goodbye_and_restores_every_terminal(tiny_checkpoint, tmp_path):
    """The real `attnstep serve` process, stopped as a service manager stops it: 143 and one line, as the README says."""
    server, port = await start_real_server(tiny_checkpoint, tmp_path)
    try:
        async with connect(port, "ann") as a, connect(port, "bob") as b:
            ann = await open_on_sentence(a)
            bob = await Screen.open(b)
            await bob.until("Type a French sentence")
            server.send_signal(signal.SIGTERM)
            for screen in (ann, bob):
                assert_restored_then(await screen.rest(), b"the class has ended. Goodbye!")
                assert screen.process.exit_status == 0
        status, lines = await stopped_with(server)
        assert (status, lines[-1]) == (128 + signal.SIGTERM, "attnstep: terminated")
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


@async_test
async def test_ctrl_c_ends_the_server_with_130_and_one_line(tiny_checkpoint, tmp_path):
    server, _ = await start_real_server(tiny_checkpoint, tmp_path)
    try:
        server.send_signal(signal.SIGINT)
        status, lines = await stopped_with(server)
        assert (status, lines[-1]) == (128 + signal.SIGINT, "attnstep: interrupted")
        assert not any("Traceback" in line for line in lines)
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


def test_a_host_that_cannot_be_listened_on_is_one_line(tiny_checkpoint, tmp_path):
    """Not first that the session zygote has exited, nor a traceback at exit: the zygote is stopped cleanly."""
    passwords = tmp_path / "passwords"
    add_user(passwords, "ann", PASSWORD)
    serve = ["serve", "--host", "999.1.1.1", "--port", "0", "--checkpoint", str(tiny_checkpoint)]
    logins = ["--passwords", str(passwords), "--host-key", str(tmp_path / "key")]
    result = subprocess.run(
        [sys.executable, "-c", "from attnstep.cli import main; main()", *serve, *logins],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("attnstep: error: cannot serve on 999.1.1.1:0: ")
    assert "zygote" not in result.stderr and "Traceback" not in result.stderr


@async_test
async def test_a_session_killed_outright_gives_the_terminal_back_with_a_message(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server, connect(server.port) as conn:
        screen = await open_on_sentence(conn)
        [child] = session_pids(server)
        os.kill(child, signal.SIGKILL)  # as the out-of-memory killer does
        assert_restored_then(await screen.rest(), b"the session ended unexpectedly (SIGKILL).")
        assert screen.process.exit_status == 1


# --- 6. password guessing ---------------------------------------------------------------------


class Guesser(asyncssh.SSHClient):
    """Offers a wrong password again each time the server asks for one."""

    attempts = 0

    def password_auth_requested(self) -> str:
        Guesser.attempts += 1
        return f"guess {Guesser.attempts}"


@async_test
async def test_one_connection_gets_a_few_guesses_then_is_cut_off(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server:
        Guesser.attempts = 0
        with pytest.raises((asyncssh.PermissionDenied, asyncssh.DisconnectError, ConnectionError)):
            await asyncssh.connect(
                "127.0.0.1",
                server.port,
                username="teach",
                client_factory=Guesser,
                known_hosts=None,
                client_keys=None,
                agent_path=None,
            )
        assert Guesser.attempts <= 6


@async_test
async def test_guessing_one_name_is_throttled_while_others_log_in(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server:
        server.throttle = LoginThrottle(base=60)  # turns a minute apart: none comes during the test
        checked = []
        accounts = server.settings.accounts
        password_ok = accounts.password_ok
        accounts.password_ok = lambda name, password: checked.append(name) or password_ok(name, password)

        async def guess(number: int) -> None:
            async with connect(server.port, "teach", password=f"guess {number}"):
                pass

        guessers = [asyncio.ensure_future(guess(n)) for n in range(12)]
        try:
            await wait_until(
                lambda: server.throttle.attempts("127.0.0.1", "teach") >= len(guessers),
                f"all {len(guessers)} guessers to have asked",
                lambda: server.throttle.attempts("127.0.0.1", "teach"),
            )
            async with connect(server.port, "ann") as conn:  # a student from the same address gets in
                screen = await Screen.open(conn)
                await screen.until("Type a French sentence")
            assert checked.count("teach") == 3  # the free tries; the rest wait for their turn, unchecked
        finally:
            for task in guessers:
                task.cancel()
            await asyncio.gather(*guessers, return_exceptions=True)


# --- 7. slots are given back --------------------------------------------------------------------


@async_test
async def test_a_window_too_small_for_too_long_gives_its_slot_back(tiny_checkpoint):
    async with serving(tiny_checkpoint, max_sessions=1, wait_timeout=1.5) as server, connect(server.port) as conn:
        tiny = await Screen.open(conn, size=(20, 5))
        tiny.screen.resize(24, 120)  # only pyte's screen: the messages are read unwrapped
        assert b"the window stayed smaller than 40\xc3\x9710 for 1.5 seconds" in await tiny.rest()
        screen = await Screen.open(conn)  # the slot is free again
        await screen.until("Type a French sentence")


@async_test
async def test_a_connection_without_a_session_is_closed(tiny_checkpoint):
    # ssh -N: logged in, asks for nothing
    async with serving(tiny_checkpoint, wait_timeout=1.5) as server, connect(server.port) as conn:
        await asyncio.wait_for(conn.wait_closed(), 60)


# --- 8. small things ----------------------------------------------------------------------------


@async_test
async def test_a_student_who_arrives_before_the_teacher_can_quit_with_q(tiny_checkpoint):
    async with serving(tiny_checkpoint, teachers=("teach",)) as server, connect(server.port, "ann") as conn:
        screen = await Screen.open(conn)
        await screen.until("following (no teacher yet)")
        screen.press("q")
        await screen.rest()
        assert screen.process.exit_status == 0


@async_test
async def test_a_student_in_a_class_without_teachers_opens_on_the_sentence_box(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server, connect(server.port, "ann") as conn:
        screen = await Screen.open(conn)
        await screen.until("on your own")
        await screen.until("Type a French sentence")
