"""The alignment grid: one row per decoded word, one column per source word, a row added per step.

Each cell is the weight as a number (".81"; "·" below 0.005) on its level's background, light
to strong (glyphs.weight_level), or, where the terminal has no ramp of colours (16 colours,
NO_COLOR), right-aligned on its level's glyph. Source words take the room the panel has, and are
cut only where it has not.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events

from attnstep.report.glyphs import fit_columns
from attnstep.trace.records import Step, Trace
from attnstep.tui.lines import LinesView, fit
from attnstep.tui.safe import visible
from attnstep.tui.stages import View, grid_in_words, piece_text, source_word

MAX_LABEL = 10


def column_widths(trace: Trace, room: int | None = None, *, glyphs: bool = False) -> list[int]:
    """Cells of each source word's column in ``room`` cells (None: as cut as they may be), see glyphs.fit_columns."""
    return fit_columns([cell_len(visible(source_word(t))) for t in trace.source], room, glyphs=glyphs)


def label_width(trace: Trace) -> int:
    """Cells of the row labels: a marker ("▶ "), the output word, a space."""
    return min(MAX_LABEL, max([5, *(cell_len(visible(piece_text(trace, s.chosen_token))) for s in trace.steps)])) + 3


def grid_width(trace: Trace, columns: int | None = None) -> int:
    """Cells the labels and the first ``columns`` source columns (all by default) take."""
    return label_width(trace) + sum(width + 1 for width in column_widths(trace)[:columns])


def reach_last_column(header: Text, starts: list[int], labels: int, room: int) -> None:
    """Pad ``header`` (``labels`` cells, then columns starting at ``starts`` after them) so that a
    scroll that stops at column starts (snap_x), the last page too, can reach the first start
    that shows the last column whole in ``room`` cells."""
    body = header.cell_len - labels
    if body > room:
        last = min((start for start in starts if start >= body - room), default=body - room)
        header.append(" " * (last + room - body))


class AlignmentGrid(LinesView[View]):
    """The header of source words and the column of target words stay put; the cells scroll."""

    FROZEN_ROWS = 1

    def __init__(self, *, id: str, classes: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self.columns: list[tuple[int, int]] = []  # [start, end) cells of each source word's column
        self.pointed: tuple[int, int] | None = None  # (step, source word): the cell clicked, highlighted

    TITLE = "Alignment so far: target rows × source columns"
    VIEW_TITLE = "Alignment so far, {}"  # a Transformer's: which head, or mean of heads, it shows

    def build(self, view: View | None) -> list[Text]:
        heads = view.trace.view_label if view is not None else ""
        self.set_titles(
            self.VIEW_TITLE.format(heads) if heads else self.TITLE,
            self.legend() if view is not None and view.trace.checkpoint.attends else "",
        )
        if view is None:
            return []
        trace = view.trace
        label = self.style_of("label")
        if not trace.checkpoint.attends:
            self.columns = []
            note = "No alignment: this model has no attention, so every word it writes comes from the same context c."
            return list(Text(note, style=label).wrap(self.app.console, max(20, self.size.width - 1)))
        labels = self.frozen_columns = self.label_width(trace)
        room = self.scrollable_content_region.width - labels
        widths = column_widths(trace, room, glyphs=not self.shows_ramp)
        header = Text.assemble(fit("", labels))
        self.columns = []
        for token, width in zip(trace.source, widths):
            self.columns.append((header.cell_len, header.cell_len + width))
            header.append_text(fit(source_word(token), width, label))
            header.append(" ")
        for word in trace.source_words if trace.subword else ():
            if word.end - word.start > 1:  # one underline under all of a word's pieces groups them
                header.stylize("underline", self.columns[word.start][0], self.columns[word.end - 1][1])
        reach_last_column(header, [start - labels for start, _ in self.columns], labels, room)
        lines = [header]
        rows = view.position if view.shows("softmax") or not view.step else view.position - 1
        # Rows not decoded yet are blank lines, so the panel's size stays that of the whole
        # trace: a step then repaints the one new row instead of the whole resized panel.
        lines += [Text(" " * header.cell_len) for _ in trace.steps]
        for step in trace.steps[:rows]:
            current = self.marked(step, view)
            row = Text.assemble(self.MARK if current else "  ", fit(self.row_label(step, view), labels - 3), " ")
            for weight, width in zip(step.weights, widths):
                row.append_text(self.cell(weight, width))
                row.append(" ")
            if self.pointed is not None and self.pointed[0] == step.index and self.pointed[1] < len(self.columns):
                row.stylize(self.style_of("cursor"), *self.columns[self.pointed[1]])
            if current:
                row.stylize(
                    self.style_of("changed") if view.just_done("softmax") else self.style_of("current"), 0, labels
                )
            lines[step.index + 1] = row
        return lines

    MARK = "▶ "  # before the label of the marked row

    def on_click(self, event: events.Click) -> None:
        """A click on a cell selects it (a class's teacher points at it so); a click on it again, or off the cells, lets go."""
        offset = event.get_content_offset(self)
        if offset is None or self.view is None:
            return
        x, y = offset.x, offset.y
        x += self.scroll_offset.x if x >= self.frozen_columns else 0
        y += self.scroll_offset.y if y >= self.FROZEN_ROWS else 0
        column = next((i for i, (start, end) in enumerate(self.columns) if start <= x < end), None)
        cell = None if column is None or not 0 < y <= self.view.position else (y - 1, column)
        self.point(None if cell == self.pointed else cell)

    def point(self, cell: tuple[int, int] | None) -> None:
        if cell != self.pointed:
            self.pointed = cell
            self.redraw()

    def marked(self, step: Step, view: View) -> bool:
        """The row to mark: the current step."""
        return step.index == view.position - 1

    def row_label(self, step: Step, view: View) -> str:
        """The output word of a row (* when forced), "?" until the current step has picked it."""
        word = (
            piece_text(view.trace, step.chosen_token) if step.index < view.position - 1 or view.shows("pick") else "?"
        )
        return word + view.trace.mark(step)

    def label_width(self, trace: Trace) -> int:
        return label_width(trace)

    def cell(self, weight: float, width: int) -> Text:
        return self.weight_cell(weight, width)

    def snap_x(self, x: int) -> int:
        """Scroll to the start of a column, so no source word in the header is cut in two."""
        starts = [start - self.frozen_columns for start, _ in self.columns]
        return max((start for start in starts if start <= x), default=0)

    def show(self, view: View | None) -> None:
        if view is not None and view.in_words and view.trace.checkpoint.attends:
            view = grid_in_words(view)
        super().show(view)
        if (
            view is None or view.step is None or not view.trace.checkpoint.attends
        ):  # the encoder alone (r): back to the first row and column
            if self.scroll_offset != (0, 0):
                self.scroll_to(0, 0, animate=False, immediate=True)
            return
        step = view.step
        best = max(range(len(step.weights)), key=lambda i: step.weights[i]) if view.shows("softmax") else None
        # The current row, and the word it attends to most: the cell the eye looks for.
        self.scroll_into_view(step.index + 1, None if best is None else self.columns[best])
