"""Who may log in to ``attnstep serve``: passwords hashed at rest, authorized keys, the host key.

Passwords file: one ``NAME:scrypt$N$r$p$SALT$HASH`` line per account (salt and hash in hex),
written by ``attnstep serve add-user NAME`` with mode 0600. Authorized keys: OpenSSH's
``authorized_keys`` format. A path with ``%u`` is per user (``keys/%u.pub``, as sshd's
``AuthorizedKeysFile``); a path without it is one file for the whole class, and its keys may
log in under any name except a teacher's, so that a student cannot become the teacher by
typing the teacher's name.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from attnstep.errors import AttnstepError

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
# scrypt at N=2**14, r=8: 16 MiB and ~50 ms per check, the interactive-login parameters of its paper.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def valid_username(name: str) -> bool:
    return USERNAME.fullmatch(name) is not None


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        computed = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), maxmem=256 * 1024 * 1024
        )
        return hmac.compare_digest(computed, bytes.fromhex(digest))
    except ValueError:
        return False


def private_file(path: Path, what: str) -> None:
    """Refuse a secret file that other users can read or write (as ssh refuses a private key)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise AttnstepError(f"the {what} {path} is readable by others (mode {mode:o}): chmod 600 it")


def read_passwords(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise AttnstepError(f"cannot read the passwords file {path}: {reason}") from None
    users = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not valid_username(name) or not stored.startswith("scrypt$"):
            raise AttnstepError(
                f"{path} line {number} is not NAME:scrypt$… (add users with `attnstep serve add-user NAME`)"
            )
        users[name] = stored
    return users


def check_new_user(path: Path, name: str) -> dict[str, str]:
    """The accounts of a passwords file that ``name`` can be added to; refused before anyone types a password."""
    if not valid_username(name):
        raise AttnstepError(f"{name!r} is not a user name: use letters, digits, '.', '_' or '-' (at most 32)")
    users = read_passwords(path)
    folder = path.parent
    if not folder.is_dir():
        raise AttnstepError(f"cannot write the passwords file {path}: there is no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AttnstepError(f"cannot write the passwords file {path}: the folder {folder} is not writable")
    return users


def add_user(path: Path, name: str, password: str) -> None:
    """Add or replace ``name``'s password in the file, which is (re)written with mode 0600."""
    from attnstep.data.files import atomic_writer

    users = check_new_user(path, name)
    users[name] = hash_password(password)
    try:
        with atomic_writer(path) as handle:
            handle.write("".join(f"{user}:{stored}\n" for user, stored in users.items()))
        os.chmod(path, 0o600)
    except OSError as exc:
        raise AttnstepError(f"cannot write the passwords file {path}: {exc.strerror or exc}") from None


# The hash checked for an unknown name, so that a wrong name takes as long as a wrong password.
_DUMMY = hash_password(secrets.token_hex(8))


@dataclass
class Accounts:
    passwords: dict[str, str] = field(default_factory=dict)
    keys_path: str | None = None  # may hold %u
    teachers: frozenset[str] = frozenset()
    allow_anonymous: bool = False

    @property
    def shared_keys(self) -> bool:
        return self.keys_path is not None and "%u" not in self.keys_path

    def needs_auth(self, name: str) -> bool:
        return not self.allow_anonymous or name in self.teachers

    def password_ok(self, name: str, password: str) -> bool:
        """Blocking (scrypt): the server calls it in a thread."""
        stored = self.passwords.get(name)
        return check_password(password, stored or _DUMMY) and stored is not None

    def key_ok(self, name: str, key: asyncssh.SSHKey, peer: str) -> bool:
        if self.keys_path is None or not valid_username(name) or (self.shared_keys and name in self.teachers):
            return False
        path = Path(self.keys_path.replace("%u", name))
        try:
            keys = asyncssh.read_authorized_keys(str(path))
        except (OSError, ValueError, asyncssh.KeyImportError):
            return False
        return keys.validate(key, peer, peer) is not None  # {} for a line without options


def load_accounts(keys: Path | None, passwords: Path | None, teachers: list[str], allow_anonymous: bool) -> Accounts:
    for name in teachers:
        if not valid_username(name):
            raise AttnstepError(f"--teacher {name!r} is not a user name: use letters, digits, '.', '_' or '-'")
    accounts = Accounts(
        passwords=read_passwords(passwords) if passwords else {},
        keys_path=str(keys) if keys else None,
        teachers=frozenset(teachers),
        allow_anonymous=allow_anonymous,
    )
    if keys is not None and accounts.shared_keys and not keys.is_file():
        raise AttnstepError(f"no authorized-keys file at {keys}")
    if passwords and not passwords.is_file():
        raise AttnstepError(
            f"no passwords file at {passwords} (create it with `attnstep serve add-user NAME --passwords {passwords}`)"
        )
    if passwords:
        private_file(passwords, "passwords file")
    if not (accounts.passwords or accounts.keys_path or allow_anonymous):
        raise AttnstepError(
            "nobody could log in: give --authorized-keys FILE and/or --passwords FILE (or --allow-anonymous)"
        )
    if keys is not None and accounts.shared_keys and not _holds_keys(keys):
        if not (accounts.passwords or allow_anonymous):
            raise AttnstepError(f"nobody could log in: {keys} holds no valid key (OpenSSH authorized_keys lines)")
        # Read again at each login: it may be mended while the class runs.
        logging.getLogger("attnstep.serve").warning(
            "WARNING: %s holds no valid key (OpenSSH authorized_keys lines): nobody can log in with a key", keys
        )
    for name in sorted(accounts.teachers):
        if name not in accounts.passwords and not _own_key(accounts, name):
            raise AttnstepError(f"--teacher {name} could not log in: {_no_way_in(name, passwords)}")
    return accounts


def _holds_keys(path: Path) -> bool:
    try:
        asyncssh.read_authorized_keys(str(path))
    except (OSError, ValueError, asyncssh.KeyImportError):  # ValueError: "No valid entries found"
        return False
    return True


def _own_key(accounts: Accounts, name: str) -> bool:
    """Whether ``name`` has a key file of their own (a teacher never logs in with a shared one)."""
    return (
        accounts.keys_path is not None
        and not accounts.shared_keys
        and _holds_keys(Path(accounts.keys_path.replace("%u", name)))
    )


def _no_way_in(name: str, passwords: Path | None) -> str:
    if passwords is None:
        return "a teacher logs in with a password (--passwords FILE) or a key of their own (--authorized-keys 'keys/%u.pub')"
    return f"{passwords} has no password for {name} (add one with `attnstep serve add-user {name} --passwords {passwords}`)"


@dataclass
class _Pair:
    attempts: int = 0
    next_turn: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """Backoff for password guessing, by address and user name.

    Each (address, name) pair may try ``free`` passwords straight away (typos); every further
    attempt waits for its turn, one after another, ``base`` seconds apart and doubling with
    each attempt up to ``most`` seconds, so a flood of guessers for one name queues instead of
    keeping scrypt busy; a turn more than ``give_up`` seconds away is refused unchecked. Unknown
    names share one pair per address, so trying many names is throttled alike. A success
    clears its pair; a pair is forgotten ``forget`` seconds after its last attempt. Other names
    from the same address — a class behind one NAT — never wait for a guesser.
    """

    def __init__(
        self,
        *,
        free: int = 3,
        base: float = 1.0,
        most: float = 30.0,
        give_up: float = 50.0,
        forget: float = 600.0,
        clock=time.monotonic,
    ) -> None:
        self.free, self.base, self.most, self.give_up, self.forget, self.clock = (
            free,
            base,
            most,
            give_up,
            forget,
            clock,
        )
        self.pairs: dict[tuple[str, str], _Pair] = {}
        self.swept = clock()

    def turn(self, address: str, name: str) -> float | None:
        """Seconds to wait before checking this attempt's password; None: refuse it unchecked."""
        now = self.clock()
        if now - self.swept > 60:
            self.pairs = {key: pair for key, pair in self.pairs.items() if now - pair.last < self.forget}
            self.swept = now
        pair = self.pairs.setdefault((address, name), _Pair())
        pair.attempts += 1
        pair.last = now
        if pair.attempts <= self.free:
            pair.next_turn = now + self.base  # the first turn after the free attempts
            return 0.0
        start = max(now, pair.next_turn)
        if start - now > self.give_up:
            return None
        pair.next_turn = start + min(self.base * 2 ** (pair.attempts - self.free), self.most)
        return start - now

    def succeeded(self, address: str, name: str) -> None:
        self.pairs.pop((address, name), None)

    def attempts(self, address: str, name: str) -> int:
        """Attempts for the pair since it was last cleared or forgotten."""
        pair = self.pairs.get((address, name))
        return pair.attempts if pair else 0


def host_key(path: Path) -> asyncssh.SSHKey:
    """The server's ed25519 key: made once with mode 0600 and reused, so students' known_hosts stay valid."""
    if path.exists():
        private_file(path, "host key")
        try:
            return asyncssh.read_private_key(str(path))
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise AttnstepError(f"cannot read the host key {path}: {exc}") from None
    key = asyncssh.generate_private_key("ssh-ed25519", comment="attnstep serve")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.export_private_key())
    return key


def default_host_key() -> Path:
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "attnstep" / "ssh_host_ed25519_key"
