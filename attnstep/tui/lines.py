"""A scrollable panel of text lines that repaints only the cells that changed.

Every panel of the app is one of these. A move sets the panel's lines anew; the panel
compares each line with what it showed before and marks dirty only the span of cells that
differs, so a step writes the new grid row and the changed numbers — not whole panels —
to the terminal (the latency and bytes-per-step budgets depend on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import ClassVar, Generic, Literal, Protocol, TypeVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from attnstep.report.glyphs import (
    LEVEL_STARTS,
    RAMP_COLOR_SYSTEMS,
    cell_number,
    level_ranges,
    shade,
    shaded_number,
    strip,
    weight_level,
)
from attnstep.trace.records import Trace
from attnstep.tui.safe import safe_text

Cell = tuple[str, Style | None]


class OfTrace(Protocol):
    """What a panel is built from: something shown of one trace."""

    @property
    def trace(self) -> Trace: ...


ViewT = TypeVar("ViewT", bound=OfTrace)  # the app's View, or the beam screen's BeamView


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
    """[start, end) of the cells that differ between two lines, widened to whole characters.

    One span per line, not one per changed run: Textual writes a dirty span from the widget's
    left edge (its border) to the span's end, so several spans on a line would resend its
    start each time. What a changed line costs is therefore set by where it *ends*.
    """
    if old is new or old == new:
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
    while start > 0 and "" in (a[start][0], b[start][0]):
        start -= 1
    while end < length and "" in (a[end][0], b[end][0]):
        end += 1
    return start, end


class _Deferred(Enum):
    NOTHING = "nothing"  # no view deferred (None is a view: the one before there is a trace)


LINE_CLASSES = {
    "lines--text",  # plain text in its own segment, so a column repaints without its neighbours
    "lines--pos",  # vector components ≥ 0
    "lines--neg",  # vector components < 0 (reverse video: they hang from the top, glyphs.strip)
    "lines--bar",  # weight and probability bars
    "lines--label",  # row and column labels
    "lines--dim",  # placeholders for quantities not computed yet
    "lines--chosen",  # the chosen word
    "lines--current",  # the current step's row
    "lines--changed",  # what the sub-step just computed
    "lines--cursor",  # the row the keyboard selects in a focused panel
}
LEVELS = len(LEVEL_STARTS)  # backgrounds for the weights of a grid (lines--level-1 … 4), strongest last


class LineStyles(Widget):
    """Where every panel's and bar's styles come from (app.tcss: ``LineStyles > .lines--…``).

    Textual keeps a virtual DOM node for each component class of each widget, and makes them
    anew whenever the widget's classes change: ten per panel and bar, ~110 in the app, most of
    a megabyte of each served session. One hidden node holds one set for all of them.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = LINE_CLASSES | {f"lines--level-{i}" for i in range(1, LEVELS + 1)}
    DEFAULT_CSS = "LineStyles { display: none; }"


class LinesView(ScrollView, Generic[ViewT], can_focus=True, inherit_bindings=False):
    """Shows a list of Rich ``Text`` lines; subclasses build them from a view (``ViewT``).

    Scrolling bindings are its own: ← → and Home/End step through the translation in every
    panel, so horizontal scrolling is on Shift+← →, a page at a time. The first
    ``FROZEN_ROWS`` lines and the first ``frozen_columns`` cells of every line are labels:
    they stay in place while the rest scrolls under them.
    """

    SCROLLS = True  # False: lines beyond the widget are cut off, never scrolled to
    FROZEN_ROWS = 0
    ROW_ANCHOR = 0.5  # where a line scrolled into view lands: 0 the top of the panel, 1 the bottom

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "scroll_up", "scroll up", show=False),
        Binding("down", "scroll_down", "scroll down", show=False),
        Binding("shift+left", "page_sideways(-1)", "scroll left", show=False),
        Binding("shift+right", "page_sideways(1)", "scroll right", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown", "page_down", "page down", show=False),
    ]

    def __init__(self, *, id: str, classes: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self._texts: list[Text] = []
        self._lines: list[Strip] = []
        self._styles: dict[str, Style] = {}
        self.view: ViewT | None = None
        self._titles: tuple[str, str | Text] | None = None
        self._resized = False  # the last set_lines changed the panel's virtual size
        self._deferred: ViewT | Literal[_Deferred.NOTHING] | None = (
            _Deferred.NOTHING
        )  # the latest view, taken while hidden (see defer)
        self._pending_scroll: tuple[int, tuple[int, int] | None] | None = (
            None  # (line, cells) to bring into view once laid out
        )
        self.frozen_columns = 0  # set by build: the width of the label column

    def style_of(self, name: str) -> Style:
        # Cached: resolving a component style walks the CSS, and rows ask for them hundreds of times a step.
        if name not in self._styles:
            self._styles[name] = self.component_style(name)
        return self._styles[name]

    @property
    def shows_ramp(self) -> bool:
        """Whether weights are drawn as the backgrounds of LEVELS (else as their glyphs, SHADES):
        the terminal must show them as distinct colours, and NO_COLOR asks for none."""
        return self.app.console.color_system in RAMP_COLOR_SYSTEMS and not self.app.no_color

    def weight_style(self, weight: float) -> Style | str:
        """A weight's background in a grid (level 0, under .2: none), where the ramp is shown."""
        level = weight_level(weight)
        return self.style_of(f"level-{level}") if level and self.shows_ramp else ""

    def weight_cell(self, weight: float, width: int) -> Text:
        """A weight as a number in ``width`` cells, on its level's background, or right-aligned on its
        level's glyph where there is no ramp (glyphs.shaded_number)."""
        if self.shows_ramp:
            return Text(cell_number(weight).rjust(width), self.weight_style(weight), end="")
        return Text(shaded_number(weight, width), end="")

    def shade_cell(self, weight: float, width: int) -> Text:
        """A weight as ``width`` cells of its level's glyph (one dot, centred, for level 0: a column
        of them would be noise), drawn in the level's colour on it where the ramp is shown: a solid
        cell as strong as the weight, its glyph still there for a copy of the screen."""
        glyph = shade(weight)
        level = weight_level(weight)
        if not level:
            return Text(glyph.center(width), self.style_of("label"), end="")
        if not self.shows_ramp:
            return Text(glyph * width, end="")
        background = self.style_of(f"level-{level}").bgcolor
        return Text(glyph * width, Style(color=background, bgcolor=background), end="")

    def legend(self) -> Text:
        """What each level means, each drawn as a grid draws it: "a: · <.2  ░░ .2–.4 …"."""
        out = Text("a:", end="")
        for level, meaning in enumerate(level_ranges()):
            weight = 0.1 if level == 0 else LEVEL_STARTS[level - 1]
            out.append(" ")
            out.append_text(self.shade_cell(weight, 2))
            out.append(f" {meaning}")
        return out

    def component_style(self, name: str) -> Style:
        """Style ``lines--{name}`` of the app's one LineStyles node.

        A level's background is a theme colour at an alpha ("$foreground 25%"): the partial style
        Textual gives for a component keeps the colour and drops the alpha, so every level came out
        at full strength; the full style blends it over the screen's background."""
        styles = self.app.query_one(LineStyles)
        return styles.get_component_rich_style(f"lines--{name}", partial=not name.startswith("level-"))

    def notify_style_update(self) -> None:
        self._styles.clear()  # the theme or the CSS changed
        super().notify_style_update()

    def set_titles(self, title: str, subtitle: str | Text = "") -> None:
        """Set the border titles, only when they change: setting one repaints the whole panel.
        A ``subtitle`` given as Text (a legend) is the app's own, and kept as it is styled."""
        if (title, subtitle) != self._titles:
            self._titles = (title, subtitle)
            self.border_title = safe_text(title)
            self.border_subtitle = (
                (subtitle if isinstance(subtitle, Text) else safe_text(subtitle)) if subtitle else None
            )

    def vector(self, values: Sequence[float], width: int, scale: float) -> Text:
        """A vector as a strip of glyphs: positive components stand up, negative ones hang down
        (glyphs.strip), in the sign's colour.

        Cells of one style are appended as one run: each run is one segment, and every
        segment costs a colour escape when it is written to the terminal.
        """
        pos, neg = self.style_of("pos"), self.style_of("neg")
        out = Text(end="")
        run, run_style = "", pos
        for glyph, negative in strip(values, width, scale):
            style = neg if negative else pos
            if style is not run_style and run:
                out.append(run, run_style)
                run = ""
            run, run_style = run + glyph, style
        if run:
            out.append(run, run_style)
        return out

    def defer(self, view: ViewT | None) -> None:
        """Take ``view`` without building it: the panel is a tab not on screen. Building the lines
        of hidden panels was a fifth of a step's CPU time in the tabbed layout, the one an 80×24
        or 120×36 terminal gets (and so every student of a class). :meth:`catch_up` builds it."""
        self._deferred = view

    def catch_up(self) -> None:
        """Show the view deferred while hidden, if any: the panel is on screen again."""
        view = self._deferred
        if view is not _Deferred.NOTHING:
            self._deferred = _Deferred.NOTHING
            self.show(view)

    def show(self, view: ViewT | None) -> None:
        self._deferred = _Deferred.NOTHING
        new_trace = view is None or self.view is None or view.trace is not self.view.trace
        self.view = view
        self.redraw()
        if new_trace:
            # A new decoding (sentence, forced word) arrives while the loading overlay covers
            # the panels: repaint whole, rather than trust spans marked under the overlay.
            self.refresh()

    def build(self, view: ViewT | None) -> list[Text]:
        """The panel's lines for ``view`` (None: no trace yet)."""
        raise NotImplementedError

    def redraw(self) -> None:
        self.set_lines(self.build(self.view))

    def set_lines(self, texts: list[Text]) -> None:
        console = self.app.console
        old, old_texts = self._lines, self._texts
        # A line whose text did not change keeps its rendered strip: most lines, most moves.
        # Neighbouring runs of one style are joined: each segment costs the terminal a colour
        # escape (~25 bytes) every time its line is resent.
        new = [
            old[y]
            if y < len(old_texts) and text == old_texts[y]
            else Strip(list(text.render(console, end=""))).simplify()
            for y, text in enumerate(texts)
        ]
        self._lines, self._texts = new, texts
        size = Size(max((line.cell_length for line in new), default=0), len(new))
        # Changing the virtual size runs a layout pass, which repaints every panel's scrollbars
        # (and, see changed_span, the whole panel row of each scrollbar cell). Fixed bars never
        # scroll and skip it; so does a change between two sizes that both fit, where no
        # scrollbar comes or goes.
        room = self.container_size
        fits = size.width <= room.width and size.height <= room.height
        fitted = self.virtual_size.width <= room.width and self.virtual_size.height <= room.height
        self._resized = self.SCROLLS and size != self.virtual_size and not (fits and fitted)
        if self._resized:
            # A new size may bring or take away scrollbars and move the view: repaint it all.
            self.virtual_size = size
            self.refresh()
            return
        # Only lines in view are marked: a region outside the content area would land on the
        # scrollbars or borders and repaint them.
        view = self.scrollable_content_region.size.region
        frozen_rows, scroll_y = min(self.FROZEN_ROWS, len(new)), self.scroll_offset.y
        shown = [*range(frozen_rows), *range(scroll_y + frozen_rows, scroll_y + view.height)]
        for y in shown:
            if y >= max(len(old), len(new)):
                break
            span = changed_span(old[y] if y < len(old) else None, new[y] if y < len(new) else None)
            if span is not None:
                start, end = self.screen_x(span[0]), self.screen_x(span[1] - 1) + 1
                row = y if y < frozen_rows else y - scroll_y
                dirty = Region(start, row, end - start, 1).intersection(view)
                if dirty:
                    self.refresh(dirty)

    def screen_x(self, x: int) -> int:
        """Where cell ``x`` of a line is drawn: labels stay put, the rest moves with the scroll
        (a cell scrolled off to the left counts as the first one after the labels)."""
        if x < self.frozen_columns:
            return x
        return max(self.frozen_columns, x - self.scroll_offset.x)

    def on_resize(self) -> None:
        self.redraw()  # column widths follow the panel's width
        if self._pending_scroll is not None:
            self._scroll_into_view(*self._pending_scroll)

    def on_mount(self) -> None:
        self.redraw()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = y if y < self.FROZEN_ROWS else y + scroll_y
        if index >= len(self._lines):
            return Strip.blank(self.size.width, self.rich_style)
        line, labels = self._lines[index], self.frozen_columns
        if labels and scroll_x:
            line = Strip.join([line.crop(0, labels), line.crop(labels + scroll_x, scroll_x + self.size.width)])
        else:
            line = line.crop(scroll_x, scroll_x + self.size.width)
        return line.apply_style(self.rich_style).extend_cell_length(self.size.width, self.rich_style)

    def action_page_sideways(self, direction: int) -> None:
        """Scroll a page of the cells right of the labels, so none is skipped or seen twice."""
        page = max(1, self.scrollable_content_region.width - self.frozen_columns)
        target = self.scroll_offset.x + direction * page
        snapped = self.snap_x(target)
        self.scroll_to(x=snapped if snapped != self.scroll_offset.x else target, animate=False)

    def snap_x(self, x: int) -> int:
        """The horizontal scroll position to use for ``x``: subclasses with columns start at one."""
        return x

    @property
    def plain_lines(self) -> list[str]:
        """The text of every line (for tests and for reading the screen in words)."""
        self.catch_up()
        return [line.text for line in self._lines]

    def scroll_into_view(self, y: int, cells: tuple[int, int] | None = None) -> None:
        """Scroll only if line ``y`` (and cells [start, end) of it) are out of view, then put them
        at ROW_ANCHOR (mid-panel): every scroll repaints the whole panel, so it should happen
        rarely, not a row at a time. When the lines were just resized, wait for the refresh that gives the panel
        its new size."""
        if self._resized:
            self.call_after_refresh(self._scroll_into_view, y, cells)
        else:
            self._scroll_into_view(y, cells)

    def _scroll_into_view(self, y: int, cells: tuple[int, int] | None) -> None:
        if not self.size.height:  # hidden or not laid out (the loading overlay): scroll once it has a size
            self._pending_scroll = (y, cells)
            return
        self._pending_scroll = None
        region = self.scrollable_content_region
        scroll_x, scroll_y = self.scroll_offset
        rows = region.height - self.FROZEN_ROWS  # lines that scroll
        if y >= self.FROZEN_ROWS and not scroll_y <= y - self.FROZEN_ROWS < scroll_y + rows:
            scroll_y = y - self.FROZEN_ROWS - int(rows * self.ROW_ANCHOR)
        if cells is not None:
            width = region.width - self.frozen_columns  # cells that scroll
            start, end = cells[0] - self.frozen_columns, cells[1] - self.frozen_columns
            if start < scroll_x or end > scroll_x + width:
                # A quarter in from the left: attention mostly moves rightwards, so this leaves
                # room for the next steps before the panel has to scroll again.
                scroll_x = self.snap_x(start - max(0, width - (end - start)) // 4)
        if (scroll_x, scroll_y) != tuple(self.scroll_offset):
            self.scroll_to(scroll_x, scroll_y, animate=False, immediate=True)


def first_numbers(values: Sequence[float], count: int) -> str:
    """The first ``count`` of ``values`` ("  0.50  -0.31"), then " …" only where some are left out."""
    listed = " ".join(f"{x:6.2f}" for x in values[:count])
    return listed + " …" if len(values) > count else listed


def fit(text: str | Text, width: int, style: str | Style = "", *, right: bool = False) -> Text:
    """``text`` (untrusted strings made safe) cut or padded to exactly ``width`` cells."""
    out = safe_text(text, style) if isinstance(text, str) else text.copy()
    if right and out.cell_len < width:
        out.pad_left(width - out.cell_len)
    out.truncate(width, overflow="ellipsis", pad=True)
    return out
