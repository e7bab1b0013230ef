"""`attnstep serve --web` (issue 24): the class in a browser, over aiohttp's client and a real headless chromium."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import matplotlib.image
import numpy
import orjson
import pyte
import pytest
import yarl

from attnstep.serve.auth import add_user
from attnstep.serve.web import COOKIE, tls_context
from attnstep.serve.zygote import Limits
from tests.serve_helpers import (
    PASSWORD,
    RIGHT,
    SENTENCE,
    BrowserTab,
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


class WebScreen(Screen):
    """A browser tab's terminal as textual.js has it: the server's frames fed to pyte, keys sent as text frames."""

    @classmethod
    async def open_ws(cls, client: aiohttp.ClientSession, url: str, size=(120, 36)) -> WebScreen:
        socket = await client.ws_connect(f"{url}ws?width={size[0]}&height={size[1]}")
        return cls(BrowserTab(socket), *size)  # type: ignore[arg-type]

    def resize(self, columns: int, rows: int) -> None:
        self.screen.resize(rows, columns)
        self.process.send(["resize", {"width": columns, "height": rows}])

    async def close(self) -> None:
        await self.process.close()


def url_of(server) -> str:
    return f"http://127.0.0.1:{server.web.port}/"


def browser(**options) -> aiohttp.ClientSession:
    # unsafe: the cookie jar keeps cookies from an address (127.0.0.1), not only from a host name
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **options)


async def log_in(client: aiohttp.ClientSession, url: str, user: str = "ann", password: str = PASSWORD):
    return await client.post(f"{url}login", data={"user": user, "password": password}, allow_redirects=False)


@contextlib.asynccontextmanager
async def web_session(server, user: str = "ann", size=(120, 36)):
    async with browser() as client:
        response = await log_in(client, url_of(server), user)
        assert response.status == 303, await response.text()
        screen = await WebScreen.open_ws(client, url_of(server), size)
        try:
            yield screen
        finally:
            await screen.close()


# --- the aiohttp client -------------------------------------------------------------------------


@async_test
async def test_log_in_see_the_app_type_step_and_leave(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0) as server, browser() as client:
        url = url_of(server)
        async with client.get(url) as page:
            assert page.status == 200
            assert '<form method="post" action="/login">' in await page.text()
        response = await log_in(client, url)
        assert response.status == 303 and response.headers["Location"] == "/"
        cookie = response.headers["Set-Cookie"]
        assert re.search(rf"{COOKIE}=[\w-]{{40,}};", cookie), cookie  # 32 random bytes
        for flag in ("HttpOnly", "Path=/", "SameSite=Strict"):
            assert flag in cookie, cookie
        async with client.get(url) as page:  # the cookie now opens the app's page
            html = await page.text()
            assert "/static/js/textual.js" in html and "<form" not in html
            assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html)  # nothing from another host
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        for path in ("static/js/textual.js", "static/css/xterm.css", "static/fonts/RobotoMono-VariableFont_wght.ttf"):
            async with client.get(url + path) as static:
                assert static.status == 200, path
        screen = await WebScreen.open_ws(client, url)
        await screen.until("Type a French sentence")
        screen.press(SENTENCE + "\r")
        await screen.until("step 0 of")
        screen.press(RIGHT)
        await screen.until("step 1 of")
        [child] = session_pids(server)
        [session] = server.sessions
        assert session.user == "ann" and not session.teacher
        await screen.close()  # the tab is closed
        await settle(server)
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)


@async_test
async def test_the_websocket_is_refused_without_a_cookie_with_a_forged_one_and_on_replay(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0) as server:
        url = url_of(server)
        async with browser() as client:  # no login
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(url + "ws")
            assert refused.value.status == 403
        async with browser() as client:
            client.cookie_jar.update_cookies({COOKIE: secrets.token_urlsafe(32)})  # forged
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await client.ws_connect(url + "ws")
        async with browser() as client:
            await log_in(client, url)
            screen = await WebScreen.open_ws(client, url)
            await screen.until("Type a French sentence")
            with pytest.raises(aiohttp.WSServerHandshakeError):  # the same cookie again, while its session runs
                await client.ws_connect(url + "ws")
            stolen = client.cookie_jar.filter_cookies(yarl.URL(url))[COOKIE].value
            await screen.close()
            await settle(server)
        async with browser() as client:  # and after it has ended, from another browser
            client.cookie_jar.update_cookies({COOKIE: stolen})
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await client.ws_connect(url + "ws")
            async with client.get(url) as page:  # the page asks for a login instead
                assert "<form" in await page.text()
        assert session_pids(server) == []


@async_test
async def test_another_sites_page_can_neither_log_in_nor_open_the_websocket(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0) as server, browser() as client:
        url, elsewhere = url_of(server), {"Origin": "http://attacker.example"}
        form = {"user": "ann", "password": PASSWORD}
        async with client.post(f"{url}login", data=form, headers=elsewhere, allow_redirects=False) as response:
            assert response.status == 403 and COOKIE not in response.cookies
        await log_in(client, url)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(url + "ws", headers=elsewhere)
        assert refused.value.status == 403
        screen = await WebScreen.open_ws(client, url)  # the cookie was not spent by the refusal
        await screen.until("Type a French sentence")
        await screen.close()


@async_test
async def test_a_cookie_opens_nothing_from_another_address(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0) as server:
        url = url_of(server)
        async with browser() as client:
            await log_in(client, url)
            token = client.cookie_jar.filter_cookies(yarl.URL(url))[COOKIE].value
        elsewhere = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with browser(connector=elsewhere) as client:
            client.cookie_jar.update_cookies({COOKIE: token})
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await client.ws_connect(url + "ws")


@async_test
async def test_a_student_cannot_become_the_teacher(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0, teachers=("teach",)) as server, browser() as client:
        server.settings.accounts.allow_anonymous = True
        url = url_of(server)
        for user, password in [("teach", ""), ("teach", "guess"), ("../teach", PASSWORD), ("te ach", "")]:
            response = await log_in(client, url, user, password)
            assert response.status in (400, 403), (user, response.status)
            assert COOKIE not in response.cookies
        response = await log_in(client, url, "anyone", "")  # anonymous: a student, under any other name
        assert response.status == 303
        screen = await WebScreen.open_ws(client, url)
        await screen.until("following (no teacher yet)")
        [session] = server.sessions
        assert session.user == "anyone" and not session.teacher
        await screen.close()


@async_test
async def test_a_wrong_password_is_delayed_as_over_ssh(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0) as server, browser() as client:
        url = url_of(server)
        took = []
        for guess in range(5):
            start = time.monotonic()
            response = await log_in(client, url, "teach", f"guess {guess}")
            took.append(time.monotonic() - start)
            assert response.status == 403
            assert "Wrong user name or password." in await response.text()
        # The throttle's free tries are answered at once; each one after waits for its turn, longer each time.
        assert max(took[:3]) < 1.0 and took[3] >= 0.9 and took[4] >= 1.9, took
        assert server.throttle.attempts("127.0.0.1", "teach") == 5


@async_test
async def test_50_kb_typed_at_once_and_a_10000_column_window_are_bounded(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0) as server:
        async with web_session(server, size=(10_000, 50)) as screen:
            screen.screen.resize(50, 600)  # pyte draws the columns the app may use, and a hundred more
            await screen.until("uses 500×200 of it")
            assert all(not line[500:].strip() for line in screen.screen.display)
            screen.process.write(("anticonstitutionnellement " * 2000)[:50_000].encode())  # one 50 KB message
            screen.press("\r")
            text = await screen.until("step 0 of")  # the first 1,000 characters were taken, and translated
            assert "the maximum is" not in text
            screen.resize(120, 36)
            await screen.until("step 0 of")
        await settle(server)


@async_test
async def test_a_vanished_browser_ends_its_session_with_nothing_left_running(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0, keepalive=1.0) as server:
        async with browser() as client:
            await log_in(client, url_of(server))
            token = client.cookie_jar.filter_cookies(yarl.URL(url_of(server)))[COOKIE].value
        # A closed lid: the websocket is opened, then nothing more is ever read or sent, not even a
        # pong for the server's pings, and no goodbye.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.web.port)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        writer.write(
            f"GET /ws?width=120&height=36 HTTP/1.1\r\nHost: 127.0.0.1:{server.web.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nCookie: {COOKIE}={token}\r\n\r\n".encode()
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        try:
            [child] = await wait_until(lambda: session_pids(server), "the session to start")
            start = time.monotonic()
            await wait_until(lambda: not server.sessions, "the session to end once its pings went unanswered")
            assert time.monotonic() - start < 10
            await settle(server)
        finally:
            writer.close()
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
        cpu = time.process_time()
        await asyncio.sleep(2.0)
        assert time.process_time() - cpu < 0.2  # the server idles: nothing of the session spins


@async_test
async def test_a_teacher_over_ssh_and_a_student_in_a_browser_and_the_reverse(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0, teachers=("teach",)) as server:
        async with connect(server.port, "teach") as t, web_session(server, "ann") as ann:
            teacher = await open_on_sentence(t)
            await ann.until("following teach")
            await ann.until("step 0 of")
            teacher.press(RIGHT)
            await ann.until("step 1 of")
            teacher.press("q")
            await teacher.rest()
        await settle(server)
        async with web_session(server, "teach") as teacher, connect(server.port, "bob") as b:
            await teacher.until("teaching as teach")
            bob = await Screen.open(b)
            await bob.until("following teach")
            await teacher.until("Type a French sentence")
            teacher.press(SENTENCE + "\r")
            await teacher.until("step 0 of")
            teacher.press(RIGHT)
            await bob.until("step 1 of")


@async_test
async def test_an_idle_tab_and_a_session_over_its_memory_are_closed_as_over_ssh(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0, idle_timeout=1.5) as server:
        async with web_session(server) as screen:
            await screen.until("Type a French sentence")
            assert b"attnstep: closed after 1.5 seconds without a key press." in await screen.rest()
        assert session_pids(server) == []
    async with serving(tiny_checkpoint, web_port=0, limits=Limits(memory_mb=1)) as server:
        async with web_session(server) as screen:
            assert b"this session used more than 1 MB of memory and was closed." in await screen.rest()
        await settle(server)


@async_test
async def test_browsers_and_ssh_share_the_session_limit(tiny_checkpoint):
    async with serving(tiny_checkpoint, web_port=0, max_sessions=1) as server, connect(server.port) as conn:
        ssh = await Screen.open(conn)
        await ssh.until("Type a French sentence")
        async with web_session(server, "bob") as full:
            text = (await full.rest()).decode()
            assert "The class is full (1 sessions)" in text
        assert len(server.sessions) == 1


# --- the command --------------------------------------------------------------------------------


def test_web_options_that_do_not_go_together_are_usage_errors(tiny_checkpoint):
    from typer.testing import CliRunner

    from attnstep.cli import app

    for options, said in [
        (["--no-ssh"], "--no-ssh goes with --web PORT"),
        (["--certfile", "c.pem"], "--certfile goes with --web PORT"),
        (["--web", "0", "--keyfile", "k.pem"], "--keyfile goes with --certfile FILE"),
    ]:
        result = CliRunner().invoke(app, ["serve", "--checkpoint", str(tiny_checkpoint), *options])
        assert result.exit_code == 2, result.output
        assert said in result.output


@async_test
async def test_the_command_serves_browsers_alone_warns_of_plain_http_and_says_goodbye(tiny_checkpoint, tmp_path):
    passwords = tmp_path / "passwords"
    add_user(passwords, "ann", PASSWORD)
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from attnstep.cli import main; main()",
        "serve",
        *("--checkpoint", str(tiny_checkpoint), "--host", "0.0.0.0", "--web", "0", "--no-ssh"),
        *("--passwords", str(passwords), "--host-key", str(tmp_path / "host_key"), "--spares", "0"),
        stderr=subprocess.PIPE,
    )
    try:
        log = []
        while b"to browsers only" not in (line := await asyncio.wait_for(server.stderr.readline(), 120)):
            assert line, f"the server did not start: {log}"
            log.append(line.decode())
        assert any("passwords typed into it cross the network unencrypted" in line for line in log), log
        assert not any("ssh -p" in line for line in log), log
        [port] = [int(line.rsplit(":", 1)[1].strip(" /\n")) for line in log if "browsers connect to: http://" in line]
        async with browser() as client:
            await log_in(client, f"http://127.0.0.1:{port}/")
            screen = await WebScreen.open_ws(client, f"http://127.0.0.1:{port}/")
            await screen.until("Type a French sentence")
            server.send_signal(signal.SIGTERM)
            assert b"the class has ended. Goodbye!" in await screen.rest()
        rest = await asyncio.wait_for(server.stderr.read(), 60)
        assert await asyncio.wait_for(server.wait(), 60) == 128 + signal.SIGTERM
        assert rest.decode().splitlines()[-1] == "attnstep: terminated"
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


def test_a_web_port_in_use_is_one_line(tiny_checkpoint, tmp_path):
    passwords = tmp_path / "passwords"
    add_user(passwords, "ann", PASSWORD)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        serve = ["serve", "--port", "0", "--web", str(port), "--checkpoint", str(tiny_checkpoint)]
        logins = ["--passwords", str(passwords), "--host-key", str(tmp_path / "key")]
        result = subprocess.run(
            [sys.executable, "-c", "from attnstep.cli import main; main()", *serve, *logins],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"attnstep: error: cannot serve on 127.0.0.1:0 or {port}: ")
    assert "zygote" not in result.stderr and "Traceback" not in result.stderr


def self_signed(tmp_path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert, private = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, private


@async_test
async def test_https_with_a_certificate_and_a_secure_cookie(tiny_checkpoint, tmp_path):
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    async with serving(tiny_checkpoint, web_port=0, web_tls=tls_context(cert, key)) as server:
        url = f"https://127.0.0.1:{server.web.port}/"
        async with browser(connector=aiohttp.TCPConnector(ssl=trust)) as client:
            response = await log_in(client, url)
            assert response.status == 303 and "Secure" in response.headers["Set-Cookie"]
            screen = await WebScreen.open_ws(client, url)  # wss://
            await screen.until("Type a French sentence")
            await screen.close()
        async with browser() as client:  # plain HTTP on the HTTPS port gets nothing
            with pytest.raises(aiohttp.ClientError):
                await client.get(f"http://127.0.0.1:{server.web.port}/")


# --- a real browser -----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEEDS_CHROMIUM = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)"
)


class BrowserScreen:
    """What a real browser's page was sent over its websocket, drawn by pyte at the size its xterm.js asked for.

    xterm.js draws on a canvas, and textual.js keeps its terminal to itself: the screen is read
    from the frames the page received (and the page's own screenshot shows what it drew)."""

    def __init__(self) -> None:
        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen)
        self.sockets: list[str] = []

    def watch(self, socket) -> None:
        self.sockets.append(socket.url)
        match = re.search(r"width=(\d+)&height=(\d+)", socket.url)
        if match:
            self.screen.resize(int(match[2]), int(match[1]))
        socket.on("framereceived", lambda payload: isinstance(payload, bytes) and self.stream.feed(payload))
        socket.on("framesent", self.sent)

    def sent(self, payload: str | bytes) -> None:
        kind, *rest = orjson.loads(payload)
        if kind == "resize":
            self.screen.resize(rest[0]["height"], rest[0]["width"])

    def text(self) -> str:
        return "\n".join(self.screen.display)

    async def until(self, text: str) -> str:
        await wait_until(lambda: text in self.text(), f"{text!r} on the page's screen", self.text)
        return self.text()


@NEEDS_CHROMIUM
@async_test
async def test_a_real_browser_logs_in_types_steps_and_fetches_nothing_from_elsewhere(tiny_checkpoint, tmp_path):
    from playwright.async_api import async_playwright

    async with serving(tiny_checkpoint, web_port=0) as server, async_playwright() as playwright:
        url = url_of(server)
        # --no-sandbox: the tests run as root, where chromium's sandbox will not start
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await chromium.new_page(viewport={"width": 1400, "height": 900})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            screen = BrowserScreen()
            page.on("websocket", screen.watch)
            await page.goto(url)
            await page.fill("#user", "ann")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_selector("body.-first-byte", timeout=60_000)  # textual.js has drawn the app's bytes
            await screen.until("Type a French sentence")
            await page.focus(".xterm-helper-textarea")  # the keyboard's focus, as a click gives it, without the click
            await page.keyboard.type(SENTENCE)
            await page.keyboard.press("Enter")
            await screen.until("step 0 of")
            await screen.until("Next word")  # the panels are drawn: the keys go to the stepper
            await page.keyboard.press("ArrowRight")
            await screen.until("step 1 of")
            await page.keyboard.press("l")
            text = await screen.until("step 2 of")
            assert "Output: " in text
            [session] = server.sessions
            assert session.user == "ann"
            shot = await page.screenshot(path=str(tmp_path / "browser.png"))
            pixels = matplotlib.image.imread(io.BytesIO(shot))
            assert len(numpy.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 8  # the app's colours, drawn
            [socket] = screen.sockets
            assert socket.startswith(f"ws://127.0.0.1:{server.web.port}/ws?")
            elsewhere = [address for address in requested if not address.startswith(url)]
            assert not elsewhere, elsewhere
            assert f"{url}static/fonts/RobotoMono-VariableFont_wght.ttf" in requested  # the font, from the server
        finally:
            await chromium.close()
        await settle(server)  # the browser closed: the session ended
