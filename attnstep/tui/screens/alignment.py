"""Full-screen views of the alignment: the map (``m``) and before/after a forced word (``c``).

The map is the picture attention papers and lectures show (Bahdanau et al. 2014, fig. 3):
output words down the side, source words along the top, a shade per weight. Both sets of
labels stay put while the cells scroll, and ``#`` writes the weights as numbers instead; the
legend under each map says what each shade stands for.
The map follows the app's moves (s, e, r, g…), so the current step stays marked with ▶.

Before/after puts the model's own decoding beside the one with a forced word: both
outputs, both maps, the step where they part marked ≠, and each row's probability for
its own word, so the cost of the forced word — and how the model recovered — can be read.
The same screen sets a second checkpoint's decoding of the sentence beside this one's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from attnstep.report.glyphs import prob
from attnstep.report.visible import visible
from attnstep.trace.records import Step, Trace
from attnstep.tui.panels.grid import AlignmentGrid
from attnstep.tui.safe import safe_text
from attnstep.tui.stages import View, output_pieces, quote

CONTEXT_WORDS = 3  # output words shown before the diverging step


class AlignmentMap(AlignmentGrid):
    """The alignment grid as a heatmap: shades, or numbers when ``numbers`` is set."""

    TITLE = "Alignment a_ti: output words × source words"
    VIEW_TITLE = "Alignment a_ti, {}: output words × source words"
    ROW_ANCHOR = 0.85  # rows after the current one are empty: show the ones before it
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "page_sideways(-1)", "columns", show=False),
        Binding("right", "page_sideways(1)", "columns", show=False),
    ]

    def __init__(self, *, id: str, classes: str = "panel") -> None:
        super().__init__(id=id, classes=classes)
        self.numbers = False

    def cell(self, weight: float, width: int) -> Text:
        return super().cell(weight, width) if self.numbers else self.shade_cell(weight, width)


class AlignmentScreen(Screen):
    """A full screen of alignment maps; ``#`` switches all of them between shades and numbers."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("number_sign", "numbers", "numbers")]

    def action_numbers(self) -> None:
        for grid in self.query(AlignmentMap):
            grid.numbers = not grid.numbers
            grid.redraw()


class MapScreen(AlignmentScreen):
    """Made once and kept (App.install_screen): each opening then only redraws the map, which
    on a 40-word sentence is several times quicker than composing and styling a new screen.
    ``current`` is what the main view shows now, drawn on each opening."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,m", "app.pop_screen", "back")]

    def __init__(self, current: Callable[[], View | None]) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        yield AlignmentMap(id="map")
        yield Static(Text("# numbers  ←→↑↓ scroll  Esc back"), classes="keys")

    def on_screen_resume(self) -> None:
        self.show(self.current())
        self.query_one(AlignmentMap).focus()

    def show(self, view: View | None) -> None:
        self.query_one(AlignmentMap).show(view)


class CompareGrid(AlignmentMap):
    """One side of before/after: the diverging step marked ≠, each row with its word's probability."""

    MARK = "≠ "
    ROW_ANCHOR = 0.25  # the diverging row near the top: what follows it is the point

    def __init__(self, *, id: str, diverge: int) -> None:
        super().__init__(id=id)
        self.diverge = diverge

    def show(self, view: View | None) -> None:
        super().show(view)
        if view is not None and self.diverge < len(view.trace.steps) and view.trace.checkpoint.attends:
            weights = view.trace.steps[self.diverge].weights
            self.scroll_into_view(self.diverge + 1, self.columns[max(range(len(weights)), key=weights.__getitem__)])

    def marked(self, step: Step, view: View) -> bool:
        return step.index == self.diverge

    def row_label(self, step: Step, view: View) -> str:
        return f"{super().row_label(step, view)} {prob(step.chosen_prob)}"

    def label_width(self, trace: Trace) -> int:
        return super().label_width(trace) + len(" 3e-04")


def diverging_step(before: Trace, after: Trace) -> int:
    """The first step at which the two decodings chose different words (by token: two models may
    number their vocabularies differently)."""
    pairs = zip(before.steps, after.steps)
    return next(
        (s.index for s, t in pairs if s.chosen_token != t.chosen_token), min(len(before.steps), len(after.steps))
    )


class CompareScreen(AlignmentScreen):
    """Before/after (``c``): the model's own decoding beside the one with a forced word or edited attention, or
    (with ``labels``, the two checkpoints' names) two models' decodings of one sentence."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,c", "app.pop_screen", "back")]

    def __init__(self, before: Trace, after: Trace, labels: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.before, self.after = before, after
        self.labels = labels
        self.diverge = diverging_step(before, after)
        self.same = [s.chosen_token for s in before.steps] == [s.chosen_token for s in after.steps]

    def compose(self) -> ComposeResult:
        d = self.diverge
        with Horizontal(id="sides"):
            for side, trace in (("before", self.before), ("after", self.after)):
                with Vertical(classes="side"):
                    yield Static(self.heading(trace), classes="side-text")
                    yield Static(self.output(trace, self.side_width), classes="side-text", id=f"output-{side}")
                    yield CompareGrid(id=f"grid-{side}", diverge=d)
        part = "the same words at every step" if self.same else f"≠ step {d + 1}, where they part"
        yield Static(Text(f"{part} · each word with its probability · # numbers  Tab side  Esc back"), classes="keys")

    def heading(self, trace: Trace) -> Text:
        """Which side this is, and what it chose at the diverging step with which probability."""
        name = None if self.labels is None else self.labels[trace is self.after]
        if self.same:
            who = "" if name is None else f"{visible(name)} ({trace.checkpoint.scorer_name}): "
            return Text(f"{who}the same words as the other side, step by step", style="bold")
        if self.diverge >= len(trace.steps):
            return Text(f"{visible(name or '')} (this decoding ended before they part)", style="dim")
        step = trace.steps[self.diverge]
        if name is not None:
            side, how = f"{visible(name)} ({trace.checkpoint.scorer_name})", ""
        elif trace.reference is not None:
            side, how = "Given translation", " given"
        elif trace is self.after:  # the decoding the user changed: a word forced, or attention edited at or before here
            side, how = "After", " forced" if step.forced else (" with attention edited" if trace.edits else "")
        else:
            side, how = "Before", " the model's"
        return Text.assemble(
            (f"{side} · step {self.diverge + 1}: ", "bold"),
            safe_text(quote(step.chosen_token), "bold"),
            f"{how}, p = {prob(step.chosen_prob)}",
        )

    @property
    def side_width(self) -> int:
        return self.app.size.width // 2 - 2  # each side is half the screen, less its padding (app.tcss)

    def output(self, trace: Trace, width: int) -> Text:
        """One line of the translation, underlined from the diverging step on: all of it where it fits
        in ``width`` cells, else from a few words before that step."""
        whole = self.output_from(trace, 0)
        return whole if self.same or whole.cell_len <= width else self.output_from(trace, self.diverge - CONTEXT_WORDS)

    def output_from(self, trace: Trace, start: int) -> Text:
        start = max(0, start)
        line = Text.assemble(("Output: ", "bold"))
        line.append("…" if start else "")
        for step, piece in list(zip(trace.steps, output_pieces(trace)))[start:]:
            line.append_text(
                safe_text(
                    piece.lstrip() if step.index == start else piece, "underline" if step.index >= self.diverge else ""
                )
            )
        return line

    def on_resize(self) -> None:
        for side, trace in (("before", self.before), ("after", self.after)):
            self.query_one(f"#output-{side}", Static).update(self.output(trace, self.side_width))

    def on_mount(self) -> None:
        for side, trace in (("before", self.before), ("after", self.after)):
            grid = self.query_one(f"#grid-{side}", CompareGrid)
            grid.show(View(trace, len(trace.steps)))
        self.query_one("#grid-after", CompareGrid).focus()
