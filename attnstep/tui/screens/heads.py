"""The heads overview (``o``): every cross-attention head of every decoder layer at the current step.

bertviz's head view, stepped and in the terminal: a row per layer and head, then the layer's
mean of heads, a column per source token (or word, with v), each weight shaded as the grid
shades it. The row the app shows is marked ▶; ↑/↓ choose another (the panels follow), and
the app's moves (→ ← s e r g) step the overview, which stays open over them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from attnstep.trace.records import Architecture, HeadStep, Trace, Vector
from attnstep.trace.records import View as AttentionView
from attnstep.trace.word_view import word_weights
from attnstep.tui.lines import LinesView, fit
from attnstep.tui.panels.grid import column_widths, reach_last_column
from attnstep.tui.stages import View, mean_vector, short_label, source_word, word_tokens

LABEL_WIDTH = 11  # "▶ L12 mean "


def rows_of(architecture: Architecture) -> list[AttentionView]:
    """The overview's rows, top to bottom: each layer's heads, then its mean."""
    heads: list[int | None] = [*range(architecture.heads), None]
    return [AttentionView(layer, head) for layer in range(architecture.layers) for head in heads]


class HeadsGrid(LinesView[View]):
    FROZEN_ROWS = 1  # the source tokens

    def __init__(self, *, id: str, classes: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self.starts: list[int] = []  # where each column starts, right of the labels (set by build)

    @dataclass
    class Chosen(Message):
        """The user moved the overview's marker to another head (or mean): the app shows it."""

        view: AttentionView

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "choose(-1)", "head above", show=False),
        Binding("down,j", "choose(1)", "head below", show=False),
    ]

    def build(self, view: View | None) -> list[Text]:
        trace = view.trace if view is not None else None
        if view is None or trace is None or trace.architecture is None or trace.view is None:
            self.set_titles("Heads")
            return [Text("Only a Transformer's trace has heads to show.", style=self.style_of("dim"))]
        architecture, step = trace.architecture, view.step
        where = "before the first step" if step is None else f"at step {step.index + 1}"
        self.set_titles(f"Cross-attention heads {where}: ▶ {trace.view_label}", self.legend())
        label = self.style_of("label")
        self.frozen_columns = LABEL_WIDTH
        columns = replace(trace, source=word_tokens(trace)) if view.in_words else trace
        room = self.scrollable_content_region.width - LABEL_WIDTH
        tokens, widths = columns.source, column_widths(columns, room, glyphs=not self.shows_ramp)
        header = Text.assemble(fit("", LABEL_WIDTH))
        self.starts = []
        for token, width in zip(tokens, widths):
            self.starts.append(header.cell_len - LABEL_WIDTH)
            header.append_text(fit(source_word(token), width, label))
            header.append(" ")
        reach_last_column(header, self.starts, LABEL_WIDTH, room)
        lines = [header]
        shown = step is not None and view.shows("softmax")
        for row in rows_of(architecture):
            current = row == trace.view
            line = Text.assemble(("▶ " if current else "  ", label), fit(short_label(row), LABEL_WIDTH - 3, label), " ")
            if step is not None and shown:
                for weight, width in zip(self.weights(trace, step.layers[row.layer].cross, row.head, view), widths):
                    line.append_text(self.weight_cell(weight, width))
                    line.append(" ")
            else:
                for width in widths:
                    line.append_text(fit("·", width, self.style_of("dim"), right=True))
                    line.append(" ")
            if current:
                line.stylize(self.style_of("current"), 0, LABEL_WIDTH)
            lines.append(line)
        if step is None:
            lines.append(Text("→ takes a step: each head's weights appear here.", style=self.style_of("dim")))
        elif not shown:
            lines.append(Text(f"The weights appear at stage {view.stage_number('softmax')} (softmax).", style=label))
        return lines

    @staticmethod
    def weights(trace: Trace, heads: Sequence[HeadStep], head: int | None, view: View) -> Vector:
        """One row's weights: a head's, or the mean of the layer's heads; per word with v."""
        weights = heads[head].weights if head is not None else mean_vector([h.weights for h in heads])
        return word_weights(trace, weights) if view.in_words else weights

    def snap_x(self, x: int) -> int:
        """Scroll to the start of a column, as the grid does, so no token in the header is cut in two."""
        return max((start for start in self.starts if start <= x), default=0)

    def action_choose(self, delta: int) -> None:
        view = self.view
        trace = view.trace if view is not None else None
        if trace is None or trace.architecture is None or trace.view is None:
            return
        rows = rows_of(trace.architecture)
        chosen = rows[max(0, min(len(rows) - 1, rows.index(trace.view) + delta))]
        if chosen != trace.view:
            self.post_message(self.Chosen(chosen))

    def show(self, view: View | None) -> None:
        super().show(view)
        trace = view.trace if view is not None else None
        if trace is not None and trace.architecture is not None and trace.view is not None:
            self.scroll_into_view(rows_of(trace.architecture).index(trace.view) + 1)


class HeadsScreen(Screen):
    """Made once and kept, as the map is; ``current`` is what the main view shows now."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,o", "app.pop_screen", "back")]

    def __init__(self, current: Callable[[], View | None]) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        yield HeadsGrid(id="heads", classes="panel")
        yield Static(Text("↑/↓ choose a head (the panels follow)  → ← s: step  Esc back"), classes="keys")

    def on_screen_resume(self) -> None:
        self.show(self.current())
        self.query_one(HeadsGrid).focus()

    def show(self, view: View | None) -> None:
        self.query_one(HeadsGrid).show(view)
