"""``attnstep compare``: one sentence through several models, side by side, as Rich renderables.

Pure presentation over traces (no torch): each model's translation, a table of what every
model chose at each step and how sure it was, and each model's alignment grid in the user's
words, laid out in as many columns as the terminal holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len, chop_cells
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from attnstep.report.glyphs import cell_number, num
from attnstep.report.visible import visible
from attnstep.trace.records import Trace
from attnstep.trace.word_view import word_alignment

MAX_LABEL = 12  # cells of a grid's word labels; longer words are cut with "…"
SHADE_STYLES = ("", "on grey23", "on grey35", "on grey50", "on grey66")  # weight 0 → 1; the number says it too


def _cut(word: str, width: int = MAX_LABEL) -> str:
    """``word`` in at most ``width`` terminal cells (a CJK character takes two), "…" where cut."""
    word = visible(word)
    return word if cell_len(word) <= width else chop_cells(word, width - 1)[0] + "…"


def model_label(name: str, trace: Trace) -> str:
    return f"{visible(name)} ({visible(trace.checkpoint.scorer_name)})"


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
            Text("") if top is None else Text(f"{_cut(top.token)} {num(top.prob)}", style="bold" if differ else "")
            for top in tops
        ]
        table.add_row(str(t + 1), *cells)
    return table


def grid(name: str, trace: Trace) -> RenderableType:
    """The alignment in words: a row per output word, a column per source word, each weight a number on a shade."""
    title = model_label(name, trace)
    if not trace.checkpoint.attends:
        return Panel(
            Text("no attention: every word comes from the same context c,\nso there is no alignment to show"),
            title=title,
            expand=False,
        )
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("")
    for word in trace.source_words:
        table.add_column(_cut(word.text, 8), justify="right", no_wrap=True)
    for word, row in word_alignment(trace):
        best = max(range(len(row)), key=row.__getitem__)
        cells = [
            Text(
                cell_number(weight), style=SHADE_STYLES[min(4, int(weight * 4 + 0.5))] + (" bold" if i == best else "")
            )
            for i, weight in enumerate(row)
        ]
        table.add_row(_cut(word.text), *cells)
    return Panel(table, title=title, expand=False)


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
    )
