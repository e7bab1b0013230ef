"""``attnstep compare``: one sentence through several models, side by side, as Rich renderables.

Pure presentation over traces (no torch): each model's translation, a table of what every
model chose at each step and how sure it was, and each model's alignment grid in the user's
words, laid out in as many columns as the terminal holds. A grid's weights are shaded by level
(glyphs.weight_level) in the greys of ``attnstep plot``, light to dark, where the terminal shows
them, and by glyphs where it does not (16 colours, NO_COLOR, a file); its words take the room
the terminal has.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len, chop_cells
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from attnstep.report import plot
from attnstep.report.glyphs import (
    LEVEL_STARTS,
    RAMP_COLOR_SYSTEMS,
    SHADES,
    cell_number,
    fit_columns,
    level_ranges,
    num,
    shaded_number,
    weight_level,
)
from attnstep.report.visible import visible
from attnstep.text.codec import surface
from attnstep.trace.records import Trace
from attnstep.trace.word_view import word_alignment

MAX_LABEL = 12  # cells of a grid's word labels; longer words are cut with "…"
PANEL_FRAME = 4  # a Panel's borders and padding
# Each level's cells: the plot's grey at the middle of the level, its numbers dark or white as the plot writes them.
LEVEL_STYLES = tuple(
    f"{'#222222' if level < 3 else '#ffffff'} on {plot.shade((level + 0.5) / (len(LEVEL_STARTS) + 1))}"
    for level in range(len(LEVEL_STARTS) + 1)
)


def _cut(word: str, width: int = MAX_LABEL) -> str:
    """``word`` in at most ``width`` terminal cells (a CJK character takes two), "…" where cut."""
    word = visible(word)
    return word if cell_len(word) <= width else chop_cells(word, width - 1)[0] + "…"


def label(trace: Trace, token: str) -> str:
    """An output token as a reader sees it: a subword model's piece without SentencePiece's "▁"."""
    return surface(token) if trace.subword else token


def model_label(name: str, trace: Trace) -> str:
    """The model's name and its attention; a Transformer's says which layer and head its grid shows."""
    attention = ", ".join(filter(None, [trace.checkpoint.scorer_name, trace.view_label]))
    return f"{visible(name)} ({visible(attention)})"


def translations(names: Sequence[str], traces: Sequence[Trace]) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 1))
    for name, trace in zip(names, traces):
        end = "" if trace.finished else "  (stopped at the length limit)"
        table.add_row(Text(model_label(name, trace), style="bold"), Text(visible(trace.translation) + end))
    return table


def steps_table(names: Sequence[str], traces: Sequence[Trace]) -> Table:
    """One row per step: each model's top choice there and its probability; choices that differ are bold."""
    table = Table(title="Top choice at each step (p)", title_justify="left", padding=(0, 1))
    table.add_column("t", justify="right")
    for name in names:
        table.add_column(visible(name))
    for t in range(max(len(trace.steps) for trace in traces)):
        tops = [trace.steps[t].candidates[0] if t < len(trace.steps) else None for trace in traces]
        differ = len({top.token for top in tops if top is not None}) > 1 or None in tops
        cells = [
            Text("")
            if top is None
            else Text(f"{_cut(label(trace, top.token))} {num(top.prob)}", style="bold" if differ else "")
            for trace, top in zip(traces, tops)
        ]
        table.add_row(str(t + 1), *cells)
    return table


def shows_ramp(console: Console) -> bool:
    """Whether ``console`` shows the levels' greys apart: 16 colours make them one or two."""
    return console.color_system in RAMP_COLOR_SYSTEMS and not console.no_color


def legend(console: Console) -> Text:
    """What each level means, each drawn as the grids draw it."""
    out = Text("a:")
    for level, meaning in enumerate(level_ranges()):
        sample = ("  ", LEVEL_STYLES[level]) if shows_ramp(console) else (SHADES[level] * 2 if level else "· ", "")
        out.append(" ")
        out.append(*sample)
        out.append(f" {meaning}")
    return out


class Legend:
    """The levels' legend, drawn for the console it is printed on."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield legend(console)


class AlignmentGrid:
    """A model's alignment in words (a row per output word, a column per source word, each weight a
    number on its level's shade), made for the console and the width it is printed in."""

    def __init__(self, name: str, trace: Trace) -> None:
        self.name, self.trace = name, trace

    def panel(self, console: Console, width: int) -> Panel:
        rows = word_alignment(self.trace, eos=True)
        labels = [_cut(word.text) for word, _ in rows]
        label_width = max(map(cell_len, labels), default=0)
        words = [visible(word.text) for word in self.trace.source_words]
        ramp = shows_ramp(console)
        widths = fit_columns([cell_len(word) for word in words], width - PANEL_FRAME - label_width, glyphs=not ramp)
        # A space between columns, as in the app: the room is the width less the frame and the labels.
        table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
        table.add_column("")
        for word, cells in zip(words, widths):
            table.add_column(_cut(word, cells), justify="right", no_wrap=True, width=cells)
        for text, (_, row) in zip(labels, rows):
            best = max(range(len(row)), key=row.__getitem__)
            table.add_row(
                text,
                *(
                    Text(
                        cell_number(weight).rjust(cells) if ramp else shaded_number(weight, cells),
                        (LEVEL_STYLES[weight_level(weight)] if ramp else "") + (" bold" if i == best else ""),
                    )
                    for i, (weight, cells) in enumerate(zip(row, widths))
                ),
            )
        return Panel(table, title=model_label(self.name, self.trace), expand=False)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.panel(console, options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.panel(console, options.max_width))


def grid(name: str, trace: Trace) -> RenderableType:
    """The alignment in words, or what stands for it in a model without attention."""
    if not trace.checkpoint.attends:
        return Panel(
            Text("no attention: every word comes from the same context c,\nso there is no alignment to show"),
            title=model_label(name, trace),
            expand=False,
        )
    return AlignmentGrid(name, trace)


def comparison(names: Sequence[str], traces: Sequence[Trace]) -> Group:
    source = " ".join(visible(w.text) for w in traces[0].source_words)
    return Group(
        Text.assemble(("Source: ", "bold"), source),
        Text(""),
        translations(names, traces),
        Text(""),
        steps_table(names, traces),
        Text(""),
        Columns([grid(name, trace) for name, trace in zip(names, traces)]),
        Text("Grids: rows = output words, columns = source words, the largest weight of a row in bold.", style="dim"),
        Legend(),
    )
