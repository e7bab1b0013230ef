"""The one exception type users see: its message is printed as one line, never a traceback."""


class AttnstepError(Exception):
    """A problem with the user's input, files or checkpoint, explained in one line."""


def first_line(error: BaseException | str) -> str:
    """The first line of an error's message, since a library's may run to many; an exception without
    a message is named by its type."""
    text = str(error)
    if not text and isinstance(error, BaseException):
        return type(error).__name__
    return text.splitlines()[0] if text else ""
