"""Running the CLI inside the test process, as every CLI test does."""

from __future__ import annotations

from typer.testing import CliRunner

from attnstep.cli import app

runner = CliRunner()


def invoke(*args):
    """``attnstep ARGS`` in-process; errors must be one line and a clean exit, never a traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result
