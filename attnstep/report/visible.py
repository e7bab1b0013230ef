"""Making untrusted text safe to print on a terminal (the CLI's messages and the app's panels).

Rich and Textual pass C0/C1 controls (ESC, U+009B CSI), bidi overrides and other format
characters through even with markup off, so every string from a user, a file name, a
vocabulary or a trace goes through :func:`visible` on its way to a terminal.
"""

from __future__ import annotations

import unicodedata

# Categories a terminal may interpret or that change how neighbouring text is laid out:
# controls (C0, DEL, C1), format characters (bidi embeddings/overrides/isolates, zero-width
# joiners, soft hyphen), line/paragraph separators and lone surrogates.
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def _visible_char(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # Unicode "control pictures": ␛ for ESC, ␊ for newline
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{code:04X}>"


def visible(text: str) -> str:
    """``text`` with every control or format character replaced by a visible stand-in."""
    if text.isprintable():  # the common case: nothing to replace
        return text
    return "".join(_visible_char(char) if unicodedata.category(char) in _HIDDEN_CATEGORIES else char for char in text)
