"""The one gate for untrusted text on its way to the terminal.

Sentences, vocabulary tokens, file names and strings from replayed traces are data. Rich
markup is never applied to them (they become :class:`rich.text.Text`), and characters a
terminal would act on are made visible first: Rich and Textual pass C0/C1 controls (ESC,
U+009B CSI), bidi overrides and other format characters through even with markup off.
"""

from __future__ import annotations

import unicodedata

from rich.style import Style
from rich.text import Text

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
    return "".join(
        _visible_char(char) if unicodedata.category(char) in _HIDDEN_CATEGORIES else char for char in text
    )


def safe_text(text: str, style: str | Style = "") -> Text:
    """Untrusted ``text`` as a Rich Text: no markup, controls made visible."""
    return Text(visible(text), style=style, no_wrap=True, end="")
