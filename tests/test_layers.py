"""The package's layers: which folder may import which, read from every module's imports.

The table is the architecture: ``data`` and ``text`` at the bottom, the model above them, the
trace beside the model (torch-free), reports over traces, the engine joining model and trace,
the app over traces and reports (never the engine), commands joining them all. A module that
imports against the table fails here, at the top or inside a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import attnstep

PACKAGE = Path(attnstep.__file__).parent

# layer -> the layers it may import (besides itself). "errors" is the one exception type.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "data": {"errors"},
    "text": {"errors", "data"},
    "model": {"errors", "text"},
    "trace": {"errors", "data", "text"},
    "report": {"errors", "data", "text", "trace"},
    "engine": {"errors", "data", "text", "model", "trace"},
    "tui": {"errors", "data", "text", "trace", "report"},
    "commands": {"errors", "data", "text", "model", "trace", "report", "engine", "tui"},
    "serve": {"errors", "data", "text", "trace", "report", "tui", "engine", "model"},
    "cli": {"errors", "data", "text", "trace", "report", "commands", "serve"},
    "__main__": {"cli"},
    "__init__": set(),
}
# Within serve, only the model service (in the server process) holds the engine and the model;
# the sessions never do.
SERVE_ENGINE = {"service"}


def imported_modules(path: Path) -> set[str]:
    """Every attnstep module ``path`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name.startswith("attnstep.")}


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer_in_the_table():
    assert {layer_of(path) for path in modules()} <= set(ALLOWED)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path):
    own = layer_of(path)
    offenders = set()
    for name in imported_modules(path):
        target = name.split(".")[1]
        if target == own:
            continue
        if target not in ALLOWED[own] or (
            own == "serve" and target in {"engine", "model"} and path.stem not in SERVE_ENGINE
        ):
            offenders.add(name)
    assert not offenders, f"{path.relative_to(PACKAGE)} imports against the layers: {sorted(offenders)}"


@pytest.mark.slow
def test_the_local_source_and_the_model_card_load_without_torch():
    script = (
        "import sys, attnstep.commands.translate, attnstep.data.model_card, attnstep.tui.app, "
        "attnstep.trace.alignment, attnstep.report.plot, attnstep.report.compare; print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_reports_and_traces_load_without_the_app():
    script = (
        "import sys, attnstep.trace.alignment, attnstep.report.plot, attnstep.report.compare; "
        "print(sorted(m for m in sys.modules if m.startswith(('attnstep.tui', 'textual'))))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
