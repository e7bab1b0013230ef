"""The browser side of ``attnstep serve --web PORT``: the same class at a URL, on the same accounts.

A student logs in on a page of attnstep's own (:mod:`attnstep.serve.web_pages`); the password is
checked as over SSH (:meth:`ClassServer.check_password`: the same throttle, the same scrypt
threads). A login is a *ticket*: a random cookie (HttpOnly, SameSite=Strict, Secure over HTTPS)
that opens one websocket, from the address that logged in, within ``wait_timeout``; the
websocket is the session, and the ticket ends with it, so a cookie copied or replayed from
another session opens nothing.

The page is textual-serve's front end (``textual.js``: xterm.js, its CSS and the Roboto Mono
fonts, served from the installed package; nothing is fetched from any other host). textual.js
speaks a small protocol over the websocket: text frames ``["stdin", KEYS]``, ``["resize",
{"width": W, "height": H}]``, ``["ping", X]`` (answered ``["pong", X]``), ``["focus"]`` and
``["blur"]``; binary frames from the server are the terminal's bytes, which xterm.js draws.
textual-serve runs a new process through a shell for each tab, on Textual's web driver, whose
packets (``D`` data, ``M`` meta) it unwraps into those binary frames. Here a browser session is
instead the very session an SSH student gets — forked from the zygote (a spare where one is
waiting), the app on a pty of its own, Textual's ordinary terminal driver — and the bytes that
would go to an SSH channel go into binary frames. So every limit, follow mode, the idle
time-out and the goodbye are :class:`~attnstep.serve.server.Session`'s, whichever way a student
came in.

A closed tab closes the websocket; a laptop shut or a lost network stops answering the
websocket's pings, and the connection is closed after ``keepalive`` seconds and half as many
again: either way the session ends and its process group is hung up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import textual_serve
from aiohttp import WSMsgType, web

from attnstep.errors import AttnstepError
from attnstep.serve.auth import valid_username
from attnstep.serve.pty import child_environment
from attnstep.serve.server import ClassServer, Session
from attnstep.serve.spares import SPARE_TERM
from attnstep.serve.web_pages import app_page, login_page

log = logging.getLogger("attnstep.serve")

COOKIE = "attnstep-ticket"
STATIC = Path(textual_serve.__file__).parent / "static"  # textual.js, xterm.css, the Roboto Mono fonts
MAX_FORM = 16 * 1024  # bytes of a login form (and of any request body)
# Bytes of one websocket message (textual.js sends a paste as one): a 50 KB paste, JSON-escaped, fits
# many times over; a larger message closes the socket (1009), and so ends the session.
MAX_MESSAGE = 1024 * 1024
GONE_POLL = 1.0  # seconds between two looks at whether a browser's connection has closed
TICKETS_PER_SLOT = 4  # logins waiting for their websocket, per session slot: more are refused
# The page's rules for the browser: its own files only, the one inline script by its nonce, no frames.
POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


@dataclass
class Ticket:
    """One login, waiting for its websocket; it opens one session, from the address that logged in."""

    user: str
    peer: str
    issued: float  # time.monotonic()
    used: bool = False


def tls_context(certfile: Path, keyfile: Path | None) -> ssl.SSLContext:
    """The web page's HTTPS context; a certificate or key that cannot be read is one AttnstepError line."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise AttnstepError(
            f"cannot serve HTTPS with {certfile}{f' and {keyfile}' if keyfile else ''}: {exc.strerror or exc}"
        ) from None
    return context


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class WebFront:
    """The class's web server, on the server's event loop: the login page, the app's page and its websockets."""

    def __init__(self, server: ClassServer) -> None:
        self.server = server
        self.accounts = server.settings.accounts
        self.tickets: dict[str, Ticket] = {}
        self.runner: web.AppRunner | None = None
        self.site: web.TCPSite | None = None
        self.port = 0
        self.secure = False

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_FORM, middlewares=[self.headers])
        app.router.add_get("/", self.index)
        app.router.add_post("/login", self.login)
        app.router.add_get("/ws", self.websocket)
        app.router.add_static("/static/", STATIC, follow_symlinks=False)
        return app

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self.secure = tls is not None
        self.runner = web.AppRunner(self.application(), access_log=None)
        await self.runner.setup()
        self.site = web.TCPSite(self.runner, host, port, ssl_context=tls)
        try:
            await self.site.start()
        except BaseException:
            await self.close()
            raise
        self.port = self.runner.addresses[0][1]  # the port it got, for port 0
        scheme = "https" if self.secure else "http"
        log.info("browsers connect to: %s://%s:%d/", scheme, host, self.port)
        if not self.secure and not loopback(host) and self.accounts.passwords:
            log.warning(
                "WARNING: the web page is plain HTTP on %s: passwords typed into it cross the network unencrypted "
                "(give --certfile and --keyfile to serve HTTPS)",
                host,
            )

    async def stop_listening(self) -> None:
        """No new connection; those open stay until their sessions have ended."""
        if self.site is not None:
            await self.site.stop()
            self.site = None

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # --- pages

    @web.middleware
    async def headers(self, request: web.Request, handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers.setdefault("Content-Security-Policy", POLICY.format(nonce="-"))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"  # no-referrer would make a form's Origin "null"
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    def page(self, html: str, status: int = 200, nonce: str = "-") -> web.Response:
        response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
        response.headers["Content-Security-Policy"] = POLICY.format(nonce=nonce)
        return response

    async def index(self, request: web.Request) -> web.Response:
        """The app's page for a fresh login, else the login page."""
        token = request.cookies.get(COOKIE, "")
        if self.valid(token, request) is None:
            response = self.page(login_page(anonymous=self.accounts.allow_anonymous))
            if token:
                response.del_cookie(COOKIE, path="/")
            return response
        nonce = secrets.token_urlsafe(16)
        return self.page(app_page(nonce), nonce=nonce)

    async def login(self, request: web.Request) -> web.Response:
        if not same_origin(request):  # another site's form would log its visitor in under a name of its own
            raise web.HTTPForbidden(text="attnstep: log in on this server's own page")
        form = await request.post()
        user, password = str(form.get("user", "")), str(form.get("password", ""))
        peer = request.remote or "?"
        anonymous = self.accounts.allow_anonymous
        if not valid_username(user):
            return self.page(
                login_page(anonymous=anonymous, error="A user name is letters, digits, '.', '_' or '-'."), 400
            )
        if self.accounts.needs_auth(user) and not await self.server.check_password(peer, user, password):
            return self.page(login_page(anonymous=anonymous, error="Wrong user name or password."), 403)
        self.sweep()
        if len(self.tickets) >= TICKETS_PER_SLOT * self.server.settings.max_sessions:
            return self.page(login_page(anonymous=anonymous, error="Too many logins at once: try again soon."), 503)
        token = secrets.token_urlsafe(32)
        self.tickets[token] = Ticket(user, peer, time.monotonic())
        log.info("web login: %s from %s", user, peer)
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Strict", secure=self.secure)
        return response

    def sweep(self) -> None:
        """Forget logins whose websocket never came within ``wait_timeout``."""
        oldest = time.monotonic() - self.server.settings.wait_timeout
        for token in [token for token, t in self.tickets.items() if not t.used and t.issued < oldest]:
            del self.tickets[token]

    def valid(self, token: str, request: web.Request) -> Ticket | None:
        """The ticket behind a cookie, if it may still open a session from this request's address."""
        self.sweep()
        ticket = self.tickets.get(token)
        if ticket is None or ticket.used or ticket.peer != (request.remote or "?"):
            return None
        return ticket

    # --- the session

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        token = request.cookies.get(COOKIE, "")
        if not same_origin(request):
            raise web.HTTPForbidden(text="attnstep: this page's websocket is for this server's own page")
        ticket = self.valid(token, request)
        if ticket is None:
            raise web.HTTPForbidden(text="attnstep: log in first")
        ticket.used = True  # one session per login: a replay, during it or after, is refused
        # heartbeat: a browser that stops answering pings (a closed lid) is cut off, as SSH's keepalives do.
        # No compression: a deflate context per session costs the server more memory than LAN bandwidth is worth.
        socket = web.WebSocketResponse(
            heartbeat=self.server.settings.keepalive, max_msg_size=MAX_MESSAGE, compress=False
        )
        try:
            await socket.prepare(request)
            session = WebSession(self.server, socket, request.transport, ticket.user, ticket.peer, window(request))
            await self.server.host(session)
        finally:
            del self.tickets[token]
            await socket.close()
        return socket


def same_origin(request: web.Request) -> bool:
    """Whether the request comes from this server's own page (or says nothing of where it comes from)."""
    origin = request.headers.get("Origin")
    return origin is None or origin.split("://", 1)[-1] == request.host


def window(request: web.Request) -> tuple[int, int]:
    """The browser's first window size (textual.js puts it in the websocket's URL); 80×24 if unreadable."""
    try:
        return int(request.query.get("width", "80")), int(request.query.get("height", "24"))
    except ValueError:
        return 80, 24


class WebSession(Session):
    """A session in a browser tab: keys and sizes from textual.js's text frames, the screen in binary ones."""

    def __init__(
        self,
        server: ClassServer,
        socket: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        user: str,
        peer: str,
        size: tuple[int, int],
    ) -> None:
        super().__init__(server, user, SPARE_TERM, peer)  # xterm.js is an xterm: a spare's kind of terminal
        self.socket = socket
        self.transport = transport  # the browser's connection
        self.size = size

    def window(self) -> tuple[int, int]:
        return self.size

    def environment(self) -> dict[str, str]:
        return child_environment(self.term, {})

    async def receive(self) -> bytes | tuple[int, int]:
        while True:
            try:
                message = await self.socket.receive()
            except (ConnectionError, RuntimeError):  # RuntimeError: a socket already closed
                return b""
            if message.type != WSMsgType.TEXT:
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    return b""
                continue  # binary frames: textual.js sends none
            try:
                kind, *rest = orjson.loads(message.data)
            except (orjson.JSONDecodeError, TypeError, ValueError):
                continue
            if kind == "stdin" and rest and isinstance(rest[0], str) and rest[0]:
                return rest[0].encode()
            if kind == "resize" and rest and isinstance(rest[0], dict):
                with contextlib.suppress(KeyError, TypeError, ValueError, OverflowError):
                    return int(rest[0]["width"]), int(rest[0]["height"])
            elif kind == "ping" and rest and isinstance(rest[0], str):
                with contextlib.suppress(ConnectionError):
                    await self.socket.send_str(orjson.dumps(["pong", rest[0][:64]]).decode())

    async def gone(self) -> None:
        # The websocket's close frame reaches receive(); this notices a connection dropped (or cut off
        # by the heartbeat) while the app is too busy to take its keys, and so nobody reads them.
        while self.transport is not None and not self.transport.is_closing():
            await asyncio.sleep(GONE_POLL)

    async def write(self, data: bytes) -> None:
        await self.socket.send_bytes(data)  # returns once the connection's buffer has room

    def exit(self, status: int) -> None:
        """The websocket is closed once the session has ended (:meth:`WebFront.websocket`); textual.js then says so."""
