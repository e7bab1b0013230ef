"""Writing output files without ever destroying what a user owns.

A regular file (or a new path) is written atomically: to a temporary file beside it, renamed over
it only once complete, so the old file stays intact until then. Anything else — /dev/null, a
terminal, a FIFO — is written in place, since renaming over it would replace the device with a
regular file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from attnstep.errors import AttnstepError

STDOUT = "-"  # the path that means standard output, as in most Unix tools


def shared_mode(mode: int) -> int:
    """``mode`` less the user's umask: for files that mkstemp or mkdtemp made owner-only but are meant
    to be shared as a plain ``open`` would have made them."""
    umask = os.umask(0)  # the only way to read the umask is to set it
    os.umask(umask)
    return mode & ~umask


@contextmanager
def atomic_writer(path: Path, mode: str = "w") -> Iterator[IO]:
    """Write ``path`` atomically if it is a regular file or new, else in place; raises OSError."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()  # replace the file the link names, and keep the link
    encoding = None if "b" in mode else "utf-8"
    try:
        existing = path.stat()
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(path, mode, encoding=encoding) as handle:
            yield handle
        return
    # The name is chosen before the file is made, so that a signal arriving at any moment after
    # (Ctrl-C, SIGTERM) finds it in the handler below: mkstemp returns it only after creating it.
    temp_name = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(temp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if existing is not None:
            os.chmod(temp_name, stat.S_IMODE(existing.st_mode))
        else:
            os.chmod(temp_name, shared_mode(0o666))
        os.replace(temp_name, path)
    except BaseException as exc:
        if not isinstance(exc, FileExistsError):  # else the name was someone else's
            temp_name.unlink(missing_ok=True)
        raise


@contextmanager
def output(path: Path | None, mode: str = "wb") -> Iterator[IO]:
    """Where a command writes: stdout for None or ``-``, else :func:`atomic_writer`.

    A failure to write (a missing folder, a full disk) is one AttnstepError line; a closed pipe
    stays a BrokenPipeError, which the command line ends quietly, as ``head`` expects.
    """
    to_stdout = path is None or str(path) == STDOUT
    name = output_name(path)
    try:
        if to_stdout:
            handle = sys.stdout.buffer if "b" in mode else sys.stdout
            yield handle
            handle.flush()
        else:
            assert path is not None  # to_stdout otherwise
            with atomic_writer(path, mode) as handle:
                yield handle
    except OSError as exc:
        if to_stdout:
            discard_stdout()
        if isinstance(exc, BrokenPipeError):
            raise
        raise AttnstepError(f"cannot write {name}: {exc.strerror or exc}") from None


def refuse_writing_over(opened: IO, path: Path | None, name: str) -> None:
    """Refuse to write ``path`` when it is the regular file ``opened`` (named ``name``), itself or
    through a link: the command would replace what it is reading. A terminal may be both stdin and
    stdout, and is not refused."""
    if path is None or str(path) == STDOUT:
        return
    try:
        source, target = os.fstat(opened.fileno()), os.stat(path)
    except (OSError, ValueError):  # no such output yet, or an input without a descriptor (a test's stdin)
        return
    if stat.S_ISREG(source.st_mode) and (source.st_dev, source.st_ino) == (target.st_dev, target.st_ino):
        raise AttnstepError(f"{path} is the input {name}: give another --output")


def output_name(path: Path | None) -> str:
    """How messages name where :func:`output` writes."""
    return "standard output" if path is None or str(path) == STDOUT else str(path)


def discard_stdout() -> None:
    """After a failed write, send stdout's file descriptor to /dev/null: Python flushes stdout
    again at exit, and would print a traceback when that fails too."""
    with contextlib.suppress(OSError, ValueError):  # no descriptor: a test's captured stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def read_limited(path: Path, limit: int, refusal: str) -> bytes:
    """A file's bytes, refusing (before reading) one larger than ``limit`` with ``refusal``, formatted
    with the path, size and limit; every failure is one line."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise AttnstepError(refusal.format(path=path, size=size, limit=limit))
        return path.read_bytes()
    except OSError as exc:
        raise AttnstepError(f"cannot read {path}: {exc.strerror or exc}") from None
