"""Who gets in: one SSH connection's logins (throttled) and how long it may stay without a session.

A password guesser waits its turn (:class:`~attnstep.serve.auth.LoginThrottle`) and is cut off
after a few guesses; a connection that never opens a session is closed after ``wait_timeout``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncssh

from attnstep.serve.auth import valid_username

if TYPE_CHECKING:
    from attnstep.serve.server import ClassServer

MAX_PASSWORDS = 6  # wrong passwords one connection may try before it is cut off (as OpenSSH's MaxAuthTries)


def duration(seconds: float) -> str:
    """'1.5 seconds', '1 minute', '60 minutes': seconds below a minute, whole minutes from there."""
    amount, unit = (f"{seconds:.3g}", "second") if seconds < 60 else (str(round(seconds / 60)), "minute")
    return f"{amount} {unit}{'' if amount == '1' else 's'}"


class Gate(asyncssh.SSHServer):
    """One connection: who logs in (throttled), and how long it may stay without a session."""

    conn: asyncssh.SSHServerConnection  # set by connection_made, which asyncssh calls first

    def __init__(self, server: ClassServer) -> None:
        self.server = server
        self.accounts = server.settings.accounts
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
        if await self.server.check_password(self.peer, username, password):
            return True
        self.failures += 1
        if self.failures >= MAX_PASSWORDS:
            self.conn.disconnect(asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "too many wrong passwords")
        return False

    def public_key_auth_supported(self) -> bool:
        return self.accounts.keys_path is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return self.accounts.key_ok(username, key, self.peer)
