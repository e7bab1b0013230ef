"""Where the shipped checkpoints live, and checkpoint names (importable without torch)."""

from pathlib import Path

DEFAULT_NAME = "fr-en"  # the general-domain subword model; multi30k-fr-en is the caption model


def checkpoints_dir() -> Path:
    """The repository's checkpoints/: beside the package (editable install), else under the current folder."""
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


DEFAULT_CHECKPOINT = checkpoints_dir() / DEFAULT_NAME
