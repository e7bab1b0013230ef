"""The app's gate for untrusted text on its way to the terminal (on :func:`attnstep.report.visible.visible`).

Sentences, vocabulary tokens, file names and strings from replayed traces are data. Rich
markup is never applied to them (they become :class:`rich.text.Text`), and characters a
terminal would act on are made visible first: Rich and Textual pass C0/C1 controls (ESC,
U+009B CSI), bidi overrides and other format characters through even with markup off.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from attnstep.report.visible import visible


def safe_text(text: str, style: str | Style = "") -> Text:
    """Untrusted ``text`` as a Rich Text: no markup, controls made visible."""
    return Text(visible(text), style=style, no_wrap=True, end="")
