"""Running the CLI inside the test process, as every CLI test does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from typer.testing import CliRunner

from attnstep.cli import app

runner = CliRunner()


def invoke(*args):
    """``attnstep ARGS`` in-process; errors must be one line and a clean exit, never a traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


# `attnstep train`'s settings for a model small enough to train in a test
TINY_MODEL = ["--emb-dim", 8, "--enc-hidden", 8, "--dec-hidden", 16, "--batch-size", 4]


def write_parallel(
    folder: Path, name: str, pairs: Sequence[tuple[str, str]], languages: tuple[str, str] = ("fr", "en")
) -> None:
    """NAME.fr and NAME.en (or ``languages``) in ``folder``, a line per pair: line-aligned files, as a
    Multi30k split or a ``--corpus NAME.{lang}`` is."""
    for side, language in enumerate(languages):
        (folder / f"{name}.{language}").write_text("".join(pair[side] + "\n" for pair in pairs), encoding="utf-8")
