"""The package's layers: the app (attnstep.tui) builds on traces, never on the engine."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import attnstep

PACKAGE = Path(attnstep.__file__).parent
# Modules that hold or build a model; the app is handed traces and a source of them instead.
ENGINE = {"checkpoint", "stepper", "model", "train", "data", "evaluate", "dump", "batch", "local", "serve"}


def imported_modules(path: Path) -> set[str]:
    """Every attnstep module ``path`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("attnstep.")}


def test_the_app_imports_no_engine_module():
    offenders = {
        f"{path.name}: {name}"
        for path in sorted((PACKAGE / "tui").glob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[1] in ENGINE
    }
    assert not offenders


def test_the_local_source_and_the_model_card_load_without_torch():
    script = "import sys, attnstep.local, attnstep.model_card, attnstep.tui.app; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
