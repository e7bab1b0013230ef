"""The alignment grid: one row per decoded word, one column per source word, a row added per step.

Each cell is the weight as a number (".81"; "·" below 0.005) on a background whose
strength is the weight, so the grid reads in 16 colours and with NO_COLOR alike.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text

from attnstep.tui.glyphs import num
from attnstep.tui.lines import LinesView, fit
from attnstep.tui.safe import visible
from attnstep.tui.stages import View, forced_mark

LEVELS = 4  # background strengths for weights, strongest last
MAX_COLUMN = 8
MAX_LABEL = 10


def cell_number(weight: float) -> str:
    """A weight in three cells: ".81", "1.0", or "·" when it rounds to 0.00."""
    text = num(weight)
    if text == "0.00":
        return "·"
    return text[1:] if text.startswith("0") else text[:3]


class AlignmentGrid(LinesView):
    COMPONENT_CLASSES = LinesView.COMPONENT_CLASSES | {f"grid--level-{i}" for i in range(1, LEVELS + 1)}

    def build(self, view: View | None) -> list[Text]:
        self.set_titles("Alignment so far: target rows × source columns")
        if view is None:
            return []
        trace = view.trace
        label = self.style_of("label")
        widths = [max(3, min(MAX_COLUMN, cell_len(visible(t.surface)))) for t in trace.source]
        label_width = min(MAX_LABEL, max([5, *(cell_len(visible(s.chosen_token)) for s in trace.steps)])) + 3
        header = Text.assemble(fit("", label_width))
        for token, width in zip(trace.source, widths):
            header.append_text(fit(token.surface, width, label))
            header.append(" ")
        lines = [header]
        rows = view.position if view.shows("softmax") or not view.step else view.position - 1
        levels = [self.style_of(f"level-{i}") for i in range(1, LEVELS + 1)]
        # Rows not decoded yet are blank lines, so the panel's size stays that of the whole
        # trace: a step then repaints the one new row instead of the whole resized panel.
        lines += [Text(" " * header.cell_len) for _ in trace.steps]
        for step in trace.steps[:rows]:
            current = step.index == view.position - 1
            word = step.chosen_token if (not current or view.shows("pick")) else "?"
            marker = "▶ " if current else "  "
            row = Text.assemble((marker, self.style_of("current")), fit(word + forced_mark(trace, step), label_width - 3), " ")
            for weight, width in zip(step.weights, widths):
                level = min(LEVELS, int(weight * LEVELS + 0.5))
                row.append(cell_number(weight).rjust(width), levels[level - 1] if level else "")
                row.append(" ")
            if current:
                row.stylize(self.style_of("changed") if view.just_done("softmax") else self.style_of("current"), 0, label_width)
            lines[step.index + 1] = row
        return lines

    def component_style(self, name: str):
        if name.startswith("level-"):
            return self.get_component_rich_style(f"grid--{name}", partial=True)
        return super().component_style(name)

    def show(self, view: View | None) -> None:
        super().show(view)
        if view is not None and view.position:
            self.scroll_line_into_view(min(view.position, len(self._lines) - 1))
