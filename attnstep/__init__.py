"""attnstep: a stepping debugger for attention seq2seq translation models."""


def __getattr__(name: str) -> str:
    # The version is pyproject.toml's, read from the installed metadata. Only when asked for:
    # importing importlib.metadata costs ~25 ms, which `attnstep replay` and every served
    # session would otherwise pay at launch.
    if name == "__version__":
        from importlib.metadata import version

        return version("attnstep")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
