"""The bottom lines of keys: what Textual's ``Footer`` shows, drawn by one widget.

The Footer is a widget per key, remade whenever the bindings change (focus, a dialog, a key
turned off): ~5 MB of a served session's ~24 MB (bench/serve_load.py --burst 30: 24.2 MB per
session with it, 19.3 MB without), and a remount of ~35 widgets at every such change. Here
the keys are lines of text, redrawn. A click on a key presses it, as on the Footer.

The keys wrap onto a second line rather than being cut; where even two lines are too few,
the last line says how many keys ``?`` lists beyond those shown.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.screen import Screen
from textual.widget import Widget

MAX_LINES = 2  # the panels keep the rest of the screen


class KeyBar(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"keybar--key", "keybar--description", "keybar--disabled"}
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: auto; background: $footer-background; color: $footer-foreground; }
    KeyBar > .keybar--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
    KeyBar > .keybar--description { color: $footer-description-foreground; background: $footer-description-background; }
    KeyBar > .keybar--disabled { text-style: dim; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._keys: list[tuple[int, int, int, str]] = []  # (line, first cell, end cell, key) as last drawn, for clicks

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen) -> None:
        if screen is self.screen:
            self.refresh(layout=True)  # the keys may now take another number of lines

    def entries(self) -> list[tuple[Text, str]]:
        """Each key shown, as "key description" and the key it presses, one per action as the Footer has."""
        key_style, text_style, off = (
            self.get_component_rich_style(f"keybar--{name}") for name in ("key", "description", "disabled")
        )
        entries = []
        shown: set[str] = set()
        for _, binding, enabled, _ in self.screen.active_bindings.values():
            if not binding.show or binding.action in shown:
                continue
            shown.add(binding.action)
            entry = Text.assemble(
                (self.app.get_key_display(binding), key_style if enabled else key_style + off),
                (f" {binding.description}", text_style if enabled else text_style + off),
            )
            entries.append((entry, binding.key.split(",")[0]))
        return entries

    def lines(self, width: int) -> list[list[tuple[Text, str]]]:
        """The entries laid out in lines of ``width`` cells (a space before each), never one cut in two;
        at most MAX_LINES, the last ending in a note of the keys left out (which presses ?)."""
        entries = self.entries()
        lines: list[list[tuple[Text, str]]] = [[]]
        used = 0
        for n, (entry, key) in enumerate(entries):
            if used + 1 + entry.cell_len > width and lines[-1]:
                if len(lines) == MAX_LINES:
                    return self.with_note(lines, entries[n:], width)
                lines.append([])
                used = 0
            lines[-1].append((entry, key))
            used += 1 + entry.cell_len
        return lines

    def with_note(
        self, lines: list[list[tuple[Text, str]]], left: list[tuple[Text, str]], width: int
    ) -> list[list[tuple[Text, str]]]:
        """``lines`` full, their last entries giving way to "+N more: ?" until it fits."""
        last = lines[-1]
        while True:
            note = Text(f"+{len(left)} more: ?", style=self.get_component_rich_style("keybar--description"))
            if sum(1 + entry.cell_len for entry, _ in last) + 1 + note.cell_len <= width or len(last) <= 1:
                break
            left.insert(0, last.pop())
        last.append((note, "question_mark"))
        return lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines(width))

    def render(self) -> Text:
        text_style = self.get_component_rich_style("keybar--description")
        out = Text(no_wrap=True, overflow="crop", end="")
        self._keys = []
        for y, line in enumerate(self.lines(self.size.width)):
            if y:
                out.append("\n")
            start = len(out)  # offsets within this line
            for entry, key in line:
                out.append(" ", text_style)
                first = len(out) - start
                out.append_text(entry)
                self._keys.append((y, first, len(out) - start, key))
            out.append(" ", text_style)
        return out

    def on_click(self, event: events.Click) -> None:
        for y, start, end, key in self._keys:
            if y == event.y and start <= event.x < end:
                self.app.simulate_key(key)
                return
