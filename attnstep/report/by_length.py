"""``attnstep eval --by-length``: BLEU per source-length bucket, as a table and as a line chart.

Attention was introduced because a fixed-size encoding loses long sentences (Bahdanau et al.
2014, fig. 2: BLEU against sentence length); this is that figure for any checkpoints. A
sentence's length is its source words as written (split at spaces), the same for every
checkpoint whatever its tokenizer, so word and subword models share their buckets.

The buckets suit both Multi30k captions (about 13 words on average, few past 25) and news
(about 25): ≤10, 11–15, 16–20, 21–25, 26–30, 31+.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from attnstep.report.visible import visible

if TYPE_CHECKING:
    from rich.table import Table

EDGES = (10, 15, 20, 25, 30)  # the longest sentence of each bucket but the last, which has no end


@dataclass(frozen=True)
class Bucket:
    label: str
    low: int  # fewest source words of a sentence in it
    high: int | None  # most; None for the last bucket
    members: tuple[int, ...]  # indices of its sentences, in order

    def holds(self, length: int) -> bool:
        return self.low <= length and (self.high is None or length <= self.high)


def source_length(sentence: str) -> int:
    return len(sentence.split())


def length_buckets(lengths: Sequence[int], edges: Sequence[int] = EDGES) -> list[Bucket]:
    """Every sentence (by its length) in exactly one bucket; the first also takes empty sentences."""
    bounds = [(0, edges[0]), *((low + 1, high) for low, high in pairwise(edges)), (edges[-1] + 1, None)]
    labels = [f"≤{edges[0]}", *(f"{low}–{high}" for low, high in bounds[1:-1]), f"{edges[-1] + 1}+"]
    buckets = [Bucket(label, low, high, ()) for label, (low, high) in zip(labels, bounds)]
    return [replace(b, members=tuple(i for i, length in enumerate(lengths) if b.holds(length))) for b in buckets]


BUCKETS_HELP = ", ".join(bucket.label for bucket in length_buckets(())) + " source words"


@dataclass(frozen=True)
class Series:
    """One checkpoint's BLEU in each bucket (None where the bucket is empty)."""

    name: str
    bleu: tuple[float | None, ...]


def table(buckets: list[Bucket], series: list[Series]) -> Table:
    """A row per bucket with its sentence count, a column per checkpoint."""
    from rich.table import Table  # here, not at the top: the command line imports this module for its help

    grid = Table()
    grid.add_column("source words")
    grid.add_column("n", justify="right")
    for s in series:
        grid.add_column(Text(visible(s.name)), justify="right")
    for b, bucket in enumerate(buckets):
        grid.add_row(bucket.label, str(len(bucket.members)), *(_bleu_text(s.bleu[b]) for s in series))
    return grid


def _bleu_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


# A mark per series, told apart by shape (NO_COLOR, or a colour-blind reader) and by colour where there is any.
MARKS = "●×■▲◆+"
COLOURS = ("blue", "dark_orange", "green", "magenta", "cyan", "red")
CHART_ROWS = 11  # 0, half and the top of the scale fall on rows
Y_LABEL = 4  # "100┤"


def chart(buckets: list[Bucket], series: list[Series], width: int, quantity: str = "BLEU") -> list[Text]:
    """BLEU (up; or what ``quantity`` names, 0 to 100 or more) against source length (across) in ``width``
    cells: a line of dots between each series's marks."""
    top = max([10.0, *(v for s in series for v in s.bleu if v is not None)])
    top = 10 * -(-top // 10)  # up to a multiple of 10
    columns = max(len(buckets) * 6, width - Y_LABEL - 1)
    cells = [[(" ", "")] * columns for _ in range(CHART_ROWS)]
    x = [round(b * (columns - 1) / max(1, len(buckets) - 1)) for b in range(len(buckets))]

    def y(value: float) -> int:
        return CHART_ROWS - 1 - round(value / top * (CHART_ROWS - 1))

    for k, s in enumerate(series):
        mark, colour = MARKS[k % len(MARKS)], COLOURS[k % len(COLOURS)]
        points = [(x[b], y(v)) for b, v in enumerate(s.bleu) if v is not None]
        for (x0, y0), (x1, y1) in pairwise(points):
            for column in range(x0 + 1, x1):
                row = round(y0 + (y1 - y0) * (column - x0) / (x1 - x0))
                if cells[row][column][0] == " ":
                    cells[row][column] = ("·", colour)
        for column, row in points:
            cells[row][column] = (mark, f"bold {colour}")
    lines = [Text(f"{quantity} ↑, source words →", style="bold")]
    for r, row_cells in enumerate(cells):
        value = top * (CHART_ROWS - 1 - r) / (CHART_ROWS - 1)
        label = (
            f"{value:>{Y_LABEL - 1}.0f}┤" if r in (0, CHART_ROWS // 2, CHART_ROWS - 1) else " " * (Y_LABEL - 1) + "│"
        )
        line = Text(label)
        for char, style in row_cells:
            line.append(char, style)
        line.rstrip()
        lines.append(line)
    lines.append(Text(" " * (Y_LABEL - 1) + "└" + "─" * columns))
    axis = [" "] * columns
    for position, bucket in zip(x, buckets):  # each label under its mark, the outer ones kept inside
        start = max(0, min(position - len(bucket.label) // 2, columns - len(bucket.label)))
        axis[start : start + len(bucket.label)] = bucket.label
    lines.append(Text(" " * Y_LABEL + "".join(axis).rstrip()))
    legend = Text(" " * Y_LABEL)
    for k, s in enumerate(series):
        entry = Text.assemble((f"{MARKS[k % len(MARKS)]} ", f"bold {COLOURS[k % len(COLOURS)]}"), visible(s.name))
        if legend.cell_len > Y_LABEL:  # after another entry: on the same line where it fits
            if legend.cell_len + 3 + entry.cell_len > width:
                lines.append(legend)
                legend = Text(" " * Y_LABEL)
            else:
                legend.append("   ")
        legend.append_text(entry)
    lines.append(legend)
    return lines


def show(console: Console, buckets: list[Bucket], series: list[Series], title: str, quantity: str = "BLEU") -> None:
    """The title, the table, then the chart (of ``quantity``), at the console's width (at most 100 cells)."""
    console.print(Text(visible(title), style="bold"), soft_wrap=True)
    console.print(table(buckets, series))
    for line in chart(buckets, series, min(console.width, 100), quantity):
        console.print(line, soft_wrap=True)
