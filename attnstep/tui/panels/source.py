"""Source words with their encoder states h_i; the selected word's numbers below."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from attnstep.report.glyphs import STATE_CELLS, mean_bins, norm, num
from attnstep.trace.records import Trace
from attnstep.tui.lines import LinesView, fit
from attnstep.tui.stages import View, sentence_in_words, source_word, unknown_legend

WORD_WIDTH = 12
NUMBER_WIDTH = 7  # " -0.12" and a space


class SourcePanel(LinesView[View]):
    """One row per source word: its strip h_i and norm ‖h_i‖; ↑/↓ select a word to list its numbers."""

    FROZEN_ROWS = 1  # the column headings
    TITLE = "Source: encoder states h_i"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "select(-1)", "word above", show=False),
        Binding("down,j", "select(1)", "word below", show=False),
    ]

    def __init__(self, *, id: str, classes: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self.selected = 0  # index of the source word whose numbers are listed
        self.pointed = False  # the selected word is highlighted without the focus: a class's teacher points at it
        self._in_words: tuple[Trace, Trace] | None = None  # (a trace, its source in the user's words)

    def action_select(self, delta: int) -> None:
        if self.view is None:
            return
        self.selected = max(0, min(len(self.sentence(self.view).source) - 1, self.selected + delta))
        self.redraw()
        self.scroll_into_view(self.selected + 1)

    def show(self, view: View | None) -> None:
        # The encoder states belong to the sentence, not the step: nothing to redraw on a move.
        if (
            view is None
            or self.view is None
            or view.trace is not self.view.trace
            or view.in_words != self.view.in_words
        ):
            super().show(view)
        self.view = view

    def point(self, word: int | None) -> None:
        """Select ``word`` and highlight it as the focus does (None: no highlight)."""
        pointed, selected = word is not None, self.selected if word is None else word
        if (pointed, selected) != (self.pointed, self.selected):
            self.pointed, self.selected = pointed, selected
            self.redraw()

    def on_focus(self) -> None:
        self.redraw()

    def on_blur(self) -> None:
        self.redraw()

    def build(self, view: View | None) -> list[Text]:
        # A Transformer's encoder outputs are m_i (its keys and values are made of them), an RNN's states h_i.
        h = "m" if view is not None and view.trace.architecture is not None else "h"
        self.set_titles(self.TITLE if h == "h" else "Source: encoder outputs m_i")
        if view is None:
            return [Text("No sentence yet: press n to type one.", style=self.style_of("dim"))]
        trace = self.sentence(view)
        states = trace.encoder_states
        unit = "piece" if trace.subword and not view.in_words else "word"
        label = self.style_of("label")
        width = STATE_CELLS  # binned as a·h_i and C_t are, so the three can be compared cell by cell
        lines = [
            Text.assemble(
                fit(" #", 3, label),
                fit(unit, WORD_WIDTH + 1, label),
                fit(f"{h}_i", width + 2, label),
                (f"‖{h}_i‖", label),
            )
        ]
        if states is None:
            lines += [
                Text.assemble(fit(f"{i + 1:>2} ", 3, label), fit(source_word(t), WORD_WIDTH))
                for i, t in enumerate(trace.source)
            ]
            note = Text("Encoder states are not in this trace (dumped with --no-vectors).", style=self.style_of("dim"))
            return lines + list(note.wrap(self.app.console, max(20, self.size.width - 1)))
        scale = view.state_scale
        self.selected = min(self.selected, len(trace.source) - 1)
        for i, (token, state) in enumerate(zip(trace.source, states)):
            row = Text.assemble(
                fit(f"{i + 1:>2} ", 3, label),
                fit(source_word(token), WORD_WIDTH + 1),
                self.vector(mean_bins(state), width, scale),
                f"  {num(norm(state))}",
            )
            if (self.has_focus or self.pointed) and i == self.selected:
                row.stylize(self.style_of("cursor"))
            lines.append(row)
        legend = unknown_legend(trace)
        if legend:
            lines.append(Text(legend, style=label))
        if view.in_words:
            lines.append(Text(f"v: a word's {h} is the mean of its pieces' {h}_i", style=label))
        token, state = trace.source[self.selected], states[self.selected]
        lines.append(
            Text.assemble(
                (f"{h}_{self.selected + 1} ", label),
                fit(source_word(token), WORD_WIDTH),
                (f" {len(state)} numbers (↑/↓: other {unit})", label),
            )
        )
        per_line = max(1, (self.size.width - 1) // NUMBER_WIDTH)  # the last column is the scrollbar's
        for start in range(0, len(state), per_line):
            lines.append(Text("".join(f"{num(x):>{NUMBER_WIDTH}}" for x in state[start : start + per_line])))
        return lines

    def sentence(self, view: View) -> Trace:
        """The trace's source as listed: its tokens, or in the word view its words (made once per trace)."""
        if not view.in_words:
            return view.trace
        if self._in_words is None or self._in_words[0] is not view.trace:
            self._in_words = (view.trace, sentence_in_words(view.trace))
        return self._in_words[1]
