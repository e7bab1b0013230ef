"""`attnstep serve` over real SSH on loopback: an asyncssh client, its byte stream rendered with pyte."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh
import pytest

if TYPE_CHECKING:
    from typing_extensions import Self

from tests.serve_helpers import (
    RIGHT,
    SENTENCE,
    Screen,
    connect,
    open_on_sentence,
    rss_mb,
    serving,
    session_pids,
    settle,
    wait_until,
)
from tests.tui_helpers import async_test

# Every test here starts a server and its sessions: the full suite's, not the fast one's.
pytestmark = pytest.mark.slow

NEEDS_OPENSSH = pytest.mark.skipif(
    not (shutil.which("ssh") and shutil.which("tmux")), reason="needs the ssh client and tmux"
)


@async_test
async def test_log_in_step_resize_and_disconnect(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server:
        async with connect(server.port) as conn:
            screen = await open_on_sentence(conn)
            # a wide terminal: every panel at once
            await screen.until("Decoder")
            await screen.until("Next word")
            screen.press(RIGHT)  # step 1
            await screen.until("step 1 of")
            screen.press(RIGHT)  # step 2
            text = await screen.until("step 2 of")
            assert "Output: " in text
            # the app follows a resize: at 80×24 the panels become tabs
            screen.resize(80, 24)
            screen.press("l")  # step 3, drawn at the new size
            await screen.until("Step 3: attended most to")
            assert len(screen.screen.display) == 24
            [child] = session_pids(server)
            # the client goes away mid-session, without quitting the app
        await settle(server)
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)


@async_test
async def test_quit_ends_the_session_with_the_apps_status(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server, connect(server.port) as conn:
        screen = await open_on_sentence(conn)
        screen.press("q")
        await screen.rest()
        assert screen.process.exit_status == 0


@async_test
async def test_the_session_process_has_no_torch(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server, connect(server.port) as conn:
        screen = await open_on_sentence(conn)
        screen.press(RIGHT)
        await screen.until("step 1 of")
        # the session process, and the zygote it was forked from, while the server has the model loaded
        for pid in [server.zygote.process.pid, *session_pids(server)]:
            libraries = Path(f"/proc/{pid}/maps").read_text()
            assert "libtorch" not in libraries and "torch/lib" not in libraries
        assert "libtorch" in Path(f"/proc/{os.getpid()}/maps").read_text()  # the check can see torch where it is
        # it forks: a thread of its warm-up left running would be copied half-way
        assert "Threads:\t1\n" in Path(f"/proc/{server.zygote.process.pid}/status").read_text()


@async_test
async def test_wrong_password_and_unknown_user_are_refused(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server:
        for user, password in [("ann", "wrong"), ("nobody", "correct horse")]:
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(server.port, user, password=password):
                    pass


@async_test
async def test_keys_from_a_shared_file_log_in_students_but_never_a_teacher(tiny_checkpoint, tmp_path):
    student_key, stranger_key = (
        asyncssh.generate_private_key("ssh-ed25519"),
        asyncssh.generate_private_key("ssh-ed25519"),
    )
    keys = tmp_path / "authorized_keys"
    keys.write_bytes(student_key.export_public_key())
    async with serving(tiny_checkpoint, keys_path=keys, teachers=("teach",)) as server:
        async with connect(server.port, "dana", password=None, client_keys=[student_key]) as conn:
            screen = await Screen.open(conn)
            await screen.until("following (no teacher yet)")
        for user, key in [("dana", stranger_key), ("teach", student_key)]:
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(server.port, user, password=None, client_keys=[key]):
                    pass


@async_test
async def test_commands_subsystems_and_forwarding_are_refused(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server, connect(server.port) as conn:
        result = await conn.run("cat /etc/passwd", encoding=None)
        assert result.exit_status == 1
        assert b"runs only the stepping app" in result.stdout and b"root:" not in result.stdout
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.start_sftp_client()
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.open_connection("127.0.0.1", server.port)  # ssh -L
        with pytest.raises(asyncssh.ChannelListenError):
            await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", 22)  # ssh -R
        assert session_pids(server) == []


@async_test
async def test_no_terminal_a_dumb_one_and_a_tiny_one(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server, connect(server.port) as conn:
        process = await conn.create_process(encoding=None)  # ssh -T: no pty
        output = await process.stdout.read()
        assert b"needs a terminal" in output and (await process.wait()).exit_status == 1
        dumb = await Screen.open(conn, term="dumb")
        assert b"TERM=dumb cannot" in await dumb.rest()
        tiny = await Screen.open(conn, size=(20, 5))
        tiny.screen.resize(24, 80)  # only pyte's screen: the message is read unwrapped
        await tiny.until("at least 40×10; this one is 20×5")
        assert session_pids(server) == []  # nothing started yet
        tiny.resize(60, 20)
        await tiny.until("Type a French sentence")


@async_test
async def test_an_odd_term_and_no_color_still_get_the_app(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server, connect(server.port) as conn:
        odd = await Screen.open(conn, term="\x1b[31m;rm -rf", env={"NO_COLOR": "1"})
        await odd.until("Type a French sentence")
        assert b"\x1b[38;5" not in odd.raw and b"\x1b[38;2" not in odd.raw  # no 256 or true colours
        plain = await Screen.open(conn, term="vt220-unknown")
        await plain.until("Type a French sentence")


@async_test
async def test_over_the_session_limit_is_refused_with_a_message(tiny_checkpoint):
    async with serving(tiny_checkpoint, max_sessions=1) as server, connect(server.port) as first:
        screen = await Screen.open(first)
        await screen.until("Type a French sentence")
        async with connect(server.port, "bob") as second:
            extra = await Screen.open(second)
            assert b"The class is full (1 sessions)" in await extra.rest()
            assert extra.process.exit_status == 1


@async_test
async def test_shutdown_ends_every_session_with_a_message(tiny_checkpoint):
    async with serving(tiny_checkpoint) as server, connect(server.port) as conn:
        screen = await open_on_sentence(conn)
        await server.close("the server is shutting down; the class has ended. Goodbye!")
        output = await screen.rest()
        assert b"the class has ended" in output
        assert output.rindex(b"\x1b[?1049l") < output.rindex(b"the class has ended")  # back on the main screen first
        assert session_pids(server) == []


@async_test
async def test_idle_sessions_are_closed(tiny_checkpoint):
    async with serving(tiny_checkpoint, idle_timeout=1.5) as server, connect(server.port) as conn:
        screen = await Screen.open(conn)
        await screen.until("Type a French sentence")  # the input box's cursor blinks: output is no activity
        assert b"attnstep: closed after 1.5 seconds without a key press." in await screen.rest()  # not "0 minutes"
        assert session_pids(server) == []


@async_test
async def test_connect_disconnect_cycles_leave_no_process_or_memory_behind(tiny_checkpoint):
    async def cycle(port: int, wait_for_app: bool) -> None:
        async with connect(port) as conn:
            screen = await Screen.open(conn)
            if wait_for_app:
                await screen.until("Type a French sentence")

    async with serving(tiny_checkpoint) as server:
        for _ in range(5):  # warm-up: imports, caches and buffers that stay for the server's life
            await cycle(server.port, True)
        await settle(server)
        baseline = rss_mb()
        for i in range(50):
            # most clients leave while their app is still starting, the case most likely to leak
            await cycle(server.port, wait_for_app=i % 10 == 0)
        await settle(server)
        assert not server.backend.members
        assert rss_mb() - baseline < 25, f"RSS grew from {baseline:.0f} MB to {rss_mb():.0f} MB"


@async_test
async def test_students_follow_the_teacher_and_one_detaches(tiny_checkpoint):
    async with (
        serving(tiny_checkpoint, teachers=("teach",)) as server,
        connect(server.port, "teach") as t,
        connect(server.port, "ann") as a,
        connect(server.port, "bob") as b,
    ):
        teacher = await open_on_sentence(t)
        await teacher.until("teaching as teach")
        ann, bob = await Screen.open(a), await Screen.open(b)
        for student in (ann, bob):  # they arrive mid-lesson and see the teacher's sentence
            await student.until("following teach")
            await student.until("step 0 of")
        teacher.press(RIGHT)
        teacher.press(RIGHT)  # the teacher steps twice
        await teacher.until("step 2 of")
        for student in (ann, bob):
            await student.until("step 2 of")
        ann.press(RIGHT)  # ann explores on her own: step 3
        await ann.until("on your own")
        await ann.until("step 3 of")
        teacher.press("h")  # the teacher goes back to step 1
        await bob.until("step 1 of")
        teacher.press("s")  # and shows step 2 one stage at a time
        await bob.until("stage 1/9")
        assert "step 3 of" in ann.text() and "on your own" in ann.text()
        ann.press("t")  # one key: ann follows again
        await ann.until("stage 1/9")
        assert "following teach" in ann.text()


@async_test
async def test_students_are_told_about_the_teacher_and_the_teacher_counts_them(tiny_checkpoint):
    async with (
        serving(tiny_checkpoint, teachers=("teach",)) as server,
        connect(server.port, "ann") as a,
    ):
        ann = await Screen.open(a, size=(80, 24))
        await ann.until("following (no teacher yet)")
        async with connect(server.port, "teach") as t:
            teacher = await Screen.open(t, size=(80, 24))
            await teacher.until("teaching as teach · 1 following, 0 exploring")
            await ann.until("following teach (no sentence yet)")
            await teacher.until("Type a French sentence")
            teacher.press(SENTENCE + "\r")
            await teacher.until("step 0 of")
            teacher.press(RIGHT)
            await ann.until("step 1 of")
            text = await ann.until("following teach")  # whole at 80 columns, beside the step
            assert "stage" in text.splitlines()[0]
            ann.press(RIGHT)
            await teacher.until("teaching: 0 follow, 1 explore")  # beside the step, at 80 columns, in fewer words
            teacher.press("q")
            await teacher.rest()
        ann.press("t")
        await ann.until("following (teach has left)")


@NEEDS_OPENSSH
@async_test
async def test_the_system_ssh_client_in_tmux(tiny_checkpoint, tmp_path):
    """Once as a person would: OpenSSH's client in a tmux window, keys typed, the window resized."""
    async with serving(tiny_checkpoint, keys_path=authorized_key(tmp_path)) as server, Tmux() as tmux:
        await tmux.start(openssh(server.port, tmp_path))
        await tmux.until("Type a French sentence")
        await tmux.run("send-keys", "-t", "class", "-l", SENTENCE)
        await tmux.run("send-keys", "-t", "class", "Enter")
        await tmux.until("step 0 of")
        await tmux.run("send-keys", "-t", "class", "Right")
        await tmux.until("step 1 of")
        await tmux.run("resize-window", "-t", "class", "-x", "90", "-y", "26")
        await tmux.run("send-keys", "-t", "class", "Right")
        screen = await tmux.until("Step 2:")
        assert "Attention  Decoder" in screen  # the narrow layout's tabs
        await tmux.run("send-keys", "-t", "class", "q")
        await settle(server)


@NEEDS_OPENSSH
@async_test
async def test_the_system_ssh_client_exits_0_with_the_goodbye_when_the_server_stops(tiny_checkpoint, tmp_path):
    """The real `attnstep serve`, stopped by SIGTERM: it lets OpenSSH's client close its own
    connection. Cut off first, the client exits 255 ("Received disconnect")."""
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from attnstep.cli import main; main()",
        "serve",
        "--checkpoint",
        str(tiny_checkpoint),
        "--port",
        "0",
        "--authorized-keys",
        str(authorized_key(tmp_path)),
        "--host-key",
        str(tmp_path / "host_key"),
        stderr=subprocess.PIPE,
    )
    try:
        while b"students connect with" not in (line := await asyncio.wait_for(server.stderr.readline(), 120)):
            assert line, "the server did not start"
        port = int(line.split(b"ssh -p ")[1].split()[0])
        async with Tmux() as tmux:
            await tmux.start(f"{openssh(port, tmp_path)}; echo ssh exited $?; sleep 30")
            await tmux.until("Type a French sentence")
            server.send_signal(signal.SIGTERM)
            screen = await tmux.until("ssh exited")
            assert "the class has ended. Goodbye!" in screen and "ssh exited 0" in screen
        assert await asyncio.wait_for(server.wait(), 60) == 128 + signal.SIGTERM  # the server's own status
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


def authorized_key(folder) -> Path:
    """A client key in ``folder``/id, and the authorized_keys file that lets it in."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(folder / "id")
    (folder / "id").chmod(0o600)
    (folder / "authorized_keys").write_bytes(key.export_public_key())
    return folder / "authorized_keys"


def openssh(port: int, folder) -> str:
    return (
        f"ssh -p {port} -i {folder / 'id'} -o IdentitiesOnly=yes -o PasswordAuthentication=no"
        " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR ann@127.0.0.1"
    )


class Tmux:
    """A tmux server of the test's own with one 120×36 window, "class"."""

    def __init__(self) -> None:
        self.tmux = ["tmux", "-L", f"attnstep-test-{os.getpid()}", "-f", "/dev/null"]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.run("kill-server")

    async def run(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *self.tmux, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        return (await process.communicate())[0].decode()

    async def start(self, command: str) -> None:
        await self.run("new-session", "-d", "-s", "class", "-x", "120", "-y", "36", command)

    async def until(self, text: str) -> str:
        for _ in range(300):
            screen = await self.run("capture-pane", "-p", "-t", "class")
            if text in screen:
                return screen
            await asyncio.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared in tmux:\n{screen}")


@async_test
async def test_a_student_gets_a_spare_session_drawn_ahead(tiny_checkpoint):
    async with serving(tiny_checkpoint, spares=2, teachers=("teach",)) as server:
        waiting = server.spares.waiting
        await wait_until(lambda: len(waiting) == 2, "2 spares, started while nobody logs in", lambda: len(waiting))
        spare_ids = {spare.session_id for spare in waiting}
        async with connect(server.port, "teach") as t, connect(server.port, "ann") as a:
            teacher = await open_on_sentence(t)  # the teacher never gets a spare
            teacher.press(RIGHT)
            await teacher.until("step 1 of")
            ann = await Screen.open(a, size=(110, 30))
            await ann.until("following teach")  # a spare follows the teacher only once it has its student
            await ann.until("step 1 of")
            assert next(s.session_id for s in server.sessions if s.user == "ann") in spare_ids
            ann.press("l")  # and takes keys, at its student's size: the narrow layout's tabs
            await ann.until("Step 2:")
            assert "Attention  Decoder" in ann.text() and len(ann.screen.display) == 30
            other = await Screen.open(a, term="xterm")  # another kind of terminal: a session of its own
            await other.until("following teach")
            assert next(s.session_id for s in server.sessions if s.term == "xterm") not in spare_ids
    await settle(server)
    assert not server.spares.waiting
