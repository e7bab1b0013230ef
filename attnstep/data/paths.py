"""Where the shipped checkpoints live, and checkpoint names (importable without torch)."""

import os
from pathlib import Path

DEFAULT_NAME = "fr-en"  # the general-domain subword model; multi30k-fr-en is the caption model
CHECKPOINTS_VARIABLE = "ATTNSTEP_CHECKPOINTS"  # where the named checkpoints are, if not beside the package


def checkpoints_dir() -> Path:
    """Where checkpoint names are looked up: $ATTNSTEP_CHECKPOINTS, else the repository's checkpoints/
    beside the package (an editable install), else checkpoints/ under the current folder (the weights
    are not in the package: a `pip install .` leaves them in the clone)."""
    if chosen := os.environ.get(CHECKPOINTS_VARIABLE):
        return Path(chosen)
    beside_package = Path(__file__).resolve().parents[2] / "checkpoints"
    return beside_package if beside_package.is_dir() else Path.cwd() / "checkpoints"


def resolve_checkpoint(value: Path | str) -> Path:
    """A checkpoint given as a path, or as a name under checkpoints/ (``multi30k-fr-en``, ``zoo/dot``).

    An existing path wins, so a folder named like a shipped checkpoint in the current
    directory is taken as given.
    """
    path = Path(value)
    if path.exists() or path.is_absolute():
        return path
    named = checkpoints_dir() / path
    return named if named.is_dir() else path


def display_name(path: Path) -> str:
    """How to name a checkpoint on screen: its name under checkpoints/ (``zoo/none``), else its folder's name."""
    try:
        return str(path.resolve().relative_to(checkpoints_dir().resolve()))
    except ValueError:
        return path.name


def shipped_names() -> list[str]:
    """Names of the checkpoints under checkpoints/, for error messages and help."""
    root = checkpoints_dir()
    return sorted(str(config.parent.relative_to(root)) for config in root.glob("**/config.json"))


def named_checkpoints() -> str:
    """The names a checkpoint may be given by, or, where there are none, where they were looked for."""
    if names := shipped_names():
        return f"names under {checkpoints_dir()}: {', '.join(names)}"
    return (
        f"no checkpoints under {checkpoints_dir()}: set {CHECKPOINTS_VARIABLE} to the folder that holds them"
        " (a clone's checkpoints/), or give a checkpoint's path"
    )


DEFAULT_CHECKPOINT = checkpoints_dir() / DEFAULT_NAME
