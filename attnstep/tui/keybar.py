"""The bottom line of keys: what Textual's ``Footer`` shows, drawn by one widget.

The Footer is a widget per key, remade whenever the bindings change (focus, a dialog, a key
turned off): ~5 MB of a served session's ~24 MB (bench/serve_load.py --burst 30: 24.2 MB per
session with it, 19.3 MB without), and a remount of ~35 widgets at every such change. Here
the keys are one line of text, redrawn. A click on a key presses it, as on the Footer.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget


class KeyBar(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"keybar--key", "keybar--description", "keybar--disabled"}
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $footer-background; color: $footer-foreground; }
    KeyBar > .keybar--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
    KeyBar > .keybar--description { color: $footer-description-foreground; background: $footer-description-background; }
    KeyBar > .keybar--disabled { text-style: dim; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._keys: list[tuple[int, int, str]] = []  # (first cell, end cell, key) as last drawn, for clicks

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen) -> None:
        if screen is self.screen:
            self.refresh()

    def render(self) -> Text:
        key_style, text_style, off = (
            self.get_component_rich_style(f"keybar--{name}") for name in ("key", "description", "disabled")
        )
        line = Text(" ", no_wrap=True, overflow="crop", end="")
        self._keys = []
        shown: set[str] = set()
        for _, binding, enabled, _ in self.screen.active_bindings.values():
            if not binding.show or binding.action in shown:  # one entry per action, as the Footer has
                continue
            shown.add(binding.action)
            start = len(line)  # "key description", one space between keys: all of them fit in 80 columns
            line.append(self.app.get_key_display(binding), key_style if enabled else key_style + off)
            line.append(f" {binding.description}", text_style if enabled else text_style + off)
            self._keys.append((start, len(line), binding.key.split(",")[0]))
            line.append(" ", text_style)
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._keys:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
