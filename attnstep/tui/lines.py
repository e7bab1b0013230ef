"""A scrollable panel of text lines that repaints only the cells that changed.

Every panel of the app is one of these. A move sets the panel's lines anew; the panel
compares each line with what it showed before and marks dirty only the span of cells that
differs, so a step writes the new grid row and the changed numbers — not whole panels —
to the terminal (the latency and bytes-per-step budgets depend on it).
"""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from attnstep.tui.glyphs import strip
from attnstep.tui.safe import safe_text
from attnstep.tui.stages import View

Cell = tuple[str, Style | None]


def _cells(strip: Strip) -> list[Cell]:
    """One entry per terminal cell; the second cell of a wide character is ("", style)."""
    cells: list[Cell] = []
    for text, style, _ in strip:
        for char in text:
            width = cell_len(char)
            if width == 0 and cells:  # a combining mark belongs to the cell before it
                cells[-1] = (cells[-1][0] + char, cells[-1][1])
                continue
            cells.append((char, style))
            if width == 2:
                cells.append(("", style))
    return cells


def changed_span(old: Strip | None, new: Strip | None) -> tuple[int, int] | None:
    """[start, end) of the cells that differ between two lines, widened to whole characters."""
    if old == new:
        return None
    a = _cells(old) if old is not None else []
    b = _cells(new) if new is not None else []
    length = max(len(a), len(b))
    blank: Cell = (" ", None)
    a += [blank] * (length - len(a))
    b += [blank] * (length - len(b))
    start = next((i for i in range(length) if a[i] != b[i]), None)
    if start is None:
        return None
    end = next(i for i in range(length, 0, -1) if a[i - 1] != b[i - 1])
    while start > 0 and ("" in (a[start][0], b[start][0])):
        start -= 1
    while end < length and ("" in (a[end][0], b[end][0])):
        end += 1
    return start, end


class LinesView(ScrollView, can_focus=True, inherit_bindings=False):
    """Shows a list of Rich ``Text`` lines; subclasses build them from a :class:`View`.

    Scrolling bindings are its own: ← → and Home/End step through the translation in every
    panel, so horizontal scrolling is on Shift+← →.
    """

    BINDINGS = [
        Binding("up", "scroll_up", "scroll up", show=False),
        Binding("down", "scroll_down", "scroll down", show=False),
        Binding("shift+left", "scroll_left", "scroll left", show=False),
        Binding("shift+right", "scroll_right", "scroll right", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown", "page_down", "page down", show=False),
    ]

    COMPONENT_CLASSES = {
        "lines--pos",  # vector components ≥ 0
        "lines--neg",  # vector components < 0
        "lines--bar",  # weight and probability bars
        "lines--label",  # row and column labels
        "lines--dim",  # placeholders for quantities not computed yet
        "lines--chosen",  # the chosen word
        "lines--current",  # the current step's row
        "lines--changed",  # what the sub-step just computed
        "lines--cursor",  # the row the keyboard selects in a focused panel
    }

    def __init__(self, *, id: str, classes: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[Strip] = []
        self.view: View | None = None
        self._titles: tuple[str, str] | None = None

    def style_of(self, name: str) -> Style:
        return self.get_component_rich_style(f"lines--{name}", partial=True)

    def set_titles(self, title: str, subtitle: str = "") -> None:
        """Set the border titles, only when they change: setting one repaints the whole panel."""
        if (title, subtitle) != self._titles:
            self._titles = (title, subtitle)
            self.border_title = safe_text(title)
            self.border_subtitle = safe_text(subtitle) if subtitle else None

    def vector(self, values: Sequence[float], width: int, scale: float) -> Text:
        """A vector as a strip of glyphs, coloured by sign (runs of one sign share a style)."""
        pos, neg = self.style_of("pos"), self.style_of("neg")
        out = Text(end="")
        for glyph, negative in strip(values, width, scale):
            out.append(glyph, neg if negative else pos)
        return out

    def build(self, view: View | None) -> list[Text]:
        """The panel's lines for ``view`` (None: no sentence yet)."""
        raise NotImplementedError

    def show(self, view: View | None) -> None:
        self.view = view
        self.redraw()

    def redraw(self) -> None:
        self.set_lines(self.build(self.view))

    def set_lines(self, texts: list[Text]) -> None:
        console = self.app.console
        new = [Strip(list(text.render(console, end=""))) for text in texts]
        old = self._lines
        self._lines = new
        width = max((line.cell_length for line in new), default=0)
        if Size(width, len(new)) != self.virtual_size:
            self.virtual_size = Size(width, len(new))
        scroll_x, scroll_y = self.scroll_offset
        for y in range(max(len(old), len(new))):
            span = changed_span(old[y] if y < len(old) else None, new[y] if y < len(new) else None)
            if span is not None:
                start, end = span
                self.refresh(Region(start - scroll_x, y - scroll_y, end - start, 1))

    def on_resize(self) -> None:
        self.redraw()  # column widths follow the panel's width

    def on_mount(self) -> None:
        self.redraw()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = y + scroll_y
        if index >= len(self._lines):
            return Strip.blank(self.size.width, self.rich_style)
        line = self._lines[index].crop(scroll_x, scroll_x + self.size.width)
        return line.apply_style(self.rich_style).extend_cell_length(self.size.width, self.rich_style)

    @property
    def plain_lines(self) -> list[str]:
        """The text of every line (for tests and for reading the screen in words)."""
        return [line.text for line in self._lines]

    def scroll_line_into_view(self, y: int) -> None:
        self.scroll_to_region(Region(0, y, 1, 1), animate=False, immediate=True)


def fit(text: str | Text, width: int, style: str | Style = "", *, right: bool = False) -> Text:
    """``text`` (untrusted strings made safe) cut or padded to exactly ``width`` cells."""
    out = safe_text(text, style) if isinstance(text, str) else text.copy()
    if right and out.cell_len < width:
        out.pad_left(width - out.cell_len)
    out.truncate(width, overflow="ellipsis", pad=True)
    return out
