"""Where the shipped checkpoint lives (importable without torch)."""

from pathlib import Path

_NAME = Path("checkpoints") / "multi30k-fr-en"


def default_checkpoint() -> Path:
    """The repository's shipped checkpoint: beside the package (editable install), else under the current folder."""
    beside_package = Path(__file__).resolve().parent.parent / _NAME
    return beside_package if beside_package.is_dir() else Path.cwd() / _NAME


DEFAULT_CHECKPOINT = default_checkpoint()
