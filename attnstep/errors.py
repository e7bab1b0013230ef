"""The one exception type users see: its message is printed as one line, never a traceback."""


class AttnstepError(Exception):
    """A problem with the user's input, files or checkpoint, explained in one line."""
