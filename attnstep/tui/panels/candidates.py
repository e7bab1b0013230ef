"""The next-word distribution: top-k candidates with probabilities, the chosen word marked."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message

from attnstep.report.glyphs import bar, prob
from attnstep.trace.records import EDIT_MARK, Step
from attnstep.tui.lines import LinesView, fit
from attnstep.tui.stages import View, piece_text

WORD_WIDTH = 11
BAR_WIDTH = 8
BEFORE_ROWS = 3  # an edited step's own candidates listed under the ones the edit made


class CandidatesPanel(LinesView[View]):
    """Top-k next words; when focused, ↑/↓ select one and Enter forces it at this step."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "select(-1)", "candidate above", show=False),
        Binding("down,j", "select(1)", "candidate below", show=False),
        Binding("enter", "force_selected", "force this word"),
    ]

    @dataclass
    class Chosen(Message):
        """The user picked a candidate to force at the current step."""

        token: str

    def __init__(self, *, id: str, classes: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self.selected = 0  # candidate row under the keyboard cursor

    def action_select(self, delta: int) -> None:
        step = self.view.step if self.view else None
        if step is not None:
            self.selected = max(0, min(len(step.candidates) - 1, self.selected + delta))
            self.redraw()

    def action_force_selected(self) -> None:
        view = self.view
        if view is not None and view.step is not None and view.shows("output"):
            self.post_message(self.Chosen(view.step.candidates[self.selected].token))

    def on_focus(self) -> None:
        self.redraw()

    def on_blur(self) -> None:
        self.redraw()

    def build(self, view: View | None) -> list[Text]:
        unit = "piece" if view is not None and view.trace.subword else "word"
        self.set_titles(f"Next {unit} p(y_t)" + (", log p" if view is not None and view.numbers else ""))
        dim, label = self.style_of("dim"), self.style_of("label")
        if view is None or view.step is None:
            return []
        step = view.step
        if not view.shows("output"):
            return [Text(f"appears at stage {view.stage_number('output')} (W_s)", style=dim)]
        picked = view.shows("pick")
        chosen_style = self.style_of("chosen")
        lines = []
        tokens = [c.token for c in step.candidates]
        rows = [(c.token, c.prob) for c in step.candidates]
        if picked and step.chosen_token not in tokens:  # a forced word outside the top-k
            rows.append((step.chosen_token, step.chosen_prob))
        self.selected = min(self.selected, len(step.candidates) - 1)
        for i, (token, p) in enumerate(rows):
            is_chosen = picked and token == step.chosen_token
            line = Text.assemble(
                ("▶ " if is_chosen else "  ", chosen_style if is_chosen else ""),
                fit(
                    piece_text(view.trace, token) + (view.trace.mark(step) if is_chosen else ""),
                    WORD_WIDTH,
                    chosen_style if is_chosen else "",
                ),
                f" {prob(p):>5} ",
                # With #, the log-probability the model scored it with, in place of the bar.
                (f"{math.log(p) if p > 0 else -math.inf:>{BAR_WIDTH}.2f}", self.style_of("label"))
                if view.numbers
                else (bar(p, BAR_WIDTH), self.style_of("bar")),
            )
            if view.just_done("pick" if is_chosen else "output"):
                line.stylize(self.style_of("changed"), 0, 2 + WORD_WIDTH)
            if self.has_focus and i == self.selected:
                line.stylize(self.style_of("cursor"))
            lines.append(line)
        if picked and view.trace.reference is not None:
            lines.append(Text("▶ the reference's token", style=label))
        elif picked and step.forced:
            lines.append(Text("* forced · u: undo", style=label))
        if picked and step.edit is not None:
            lines += self.before(view, step.edit.before)
        if self.has_focus:
            lines.append(Text("↑/↓ select · Enter: force it", style=dim))
        return lines

    def before(self, view: View, own: Step) -> list[Text]:
        """An edited step's "before": the model's own top candidates, from its own weights, its choice marked ▷."""
        label, dim = self.style_of("label"), self.style_of("dim")
        lines = [
            Text(f"{EDIT_MARK} attention edited · u: undo", style=label),
            Text("before, the model's own a:", style=dim),
        ]
        for c in own.candidates[:BEFORE_ROWS]:
            mine = c.id == own.chosen_id
            lines.append(
                Text.assemble(
                    ("▷ " if mine else "  ", dim),
                    fit(piece_text(view.trace, c.token), WORD_WIDTH, dim),
                    (f" {prob(c.prob):>5} ", dim),
                    (bar(c.prob, BAR_WIDTH), self.style_of("bar")),
                )
            )
        return lines
