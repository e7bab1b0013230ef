"""Numbers and vectors as text cells: fixed-width numbers, eighth-block bars and vector strips.

Every quantity is drawn so that it reads without colour: a weight is a number *and* a bar
whose length is the weight; a vector is a strip whose glyph height is the magnitude of its
components, standing on the bottom of the cell when positive and hanging from the top when
negative (colour, where the terminal has it, repeats the sign: blue and orange).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence

EIGHTHS = " ▏▎▍▌▋▊▉█"  # horizontal bar ends, 1/8 cell each
HEIGHTS = "▁▂▃▄▅▆▇█"  # vector strip glyphs, small → large magnitude
SHADES = "·░▒▓█"  # an alignment weight's level (weight_level) as a glyph, the weakest first
LEVEL_STARTS = (0.2, 0.4, 0.6, 0.8)  # the weights where levels 1 … 4 begin: the legend's bins
NUMBER_CELLS = 3  # the narrowest grid column: a number (".81"), and in glyphs a cell of its shade before it
RAMP_COLOR_SYSTEMS = {"truecolor", "256"}  # where the levels' colours stay apart: 16 colours make them one or two
CUT_CELLS = 8  # a column cut for want of room keeps this many cells ("économi…"); fewer and the grid scrolls


def num(value: float, digits: int = 2) -> str:
    """The one way a number from a trace is printed (tests format trace values the same way)."""
    return f"{value:.{digits}f}"


def prob(value: float) -> str:
    """A probability in at most five cells that never reads 0 unless it is: "0.93", or "3e-04"
    below 0.005, where two decimals would say 0.00."""
    return num(value) if value >= 0.005 or value == 0 else f"{value:.0e}"


def norm(vector: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def bar(fraction: float, width: int) -> str:
    """A left-aligned bar ``fraction`` (0..1) of ``width`` cells long, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width)


def bins(vector: Sequence[float], width: int) -> list[float]:
    """``vector`` reduced to ``width`` cells: each cell is the component of largest magnitude
    in its contiguous bin, so that no large component disappears (h_t, h̃_t)."""
    n = len(vector)
    width = min(width, n)
    return [max(vector[c * n // width : (c + 1) * n // width], key=abs) for c in range(width)] if width > 0 else []


STATE_CELLS = 16  # cells of every strip of h_i, a·h_i and C_t: the same bins in all three


def mean_bins(vector: Sequence[float], cells: int = STATE_CELLS) -> list[float]:
    """``vector`` as the means of ``cells`` contiguous bins. Means add up as the vectors do:
    the bins of C_t = Σ_i a_i h_i are Σ_i a_i (the bins of h_i), so the strips show the sum."""
    n = len(vector)
    cells = min(cells, n)
    return [
        math.fsum(vector[c * n // cells : (c + 1) * n // cells]) / ((c + 1) * n // cells - c * n // cells)
        for c in range(cells)
    ]


def strip(values: Sequence[float], width: int, scale: float) -> list[tuple[str, bool]]:
    """``values`` as at most ``width`` cells of (glyph, is_negative), glyph height |value| / ``scale``.

    ``scale`` is shared across strips that should be comparable, so a state scaled by a small
    weight visibly shrinks. A cell whose magnitude rounds to nothing is blank. A negative
    component hangs from the top of its cell instead of standing on the bottom, so the sign
    reads without colour: its glyph is the complement of its height, which the caller draws in
    reverse video (the filled part is then the top |value| / ``scale`` of the cell).
    """
    cells = []
    levels = len(HEIGHTS)
    for value in bins(values, width) if len(values) > width else values:
        level = abs(value) / scale if scale > 0 else 0.0
        index = min(levels, round(level * levels))
        if not index:
            cells.append((" ", False))
        elif value < 0:
            cells.append((HEIGHTS[levels - index - 1] if index < levels else " ", True))
        else:
            cells.append((HEIGHTS[index - 1], False))
    return cells


def max_abs(vectors: Sequence[Sequence[float]]) -> float:
    return max((abs(x) for v in vectors for x in v), default=0.0)


def weight_level(weight: float) -> int:
    """Which level an alignment weight falls in, 0 (under .2) to 4 (.8 and over): the one binning
    of every grid, map, compare table and legend, in colour or in glyphs."""
    return bisect.bisect_right(LEVEL_STARTS, weight)


def level_ranges() -> list[str]:
    """What each level stands for, as the legends write it: "<.2", ".2–.4", …, "≥.8"."""
    starts = [f"{start:.1f}".removeprefix("0") for start in LEVEL_STARTS]
    return [f"<{starts[0]}", *(f"{a}–{b}" for a, b in itertools.pairwise(starts)), f"≥{starts[-1]}"]


def shade(weight: float) -> str:
    """Density glyph for an alignment weight: blank for none, then its level's (SHADES)."""
    return " " if weight < 0.005 else SHADES[weight_level(weight)]


def shaded_number(weight: float, width: int) -> str:
    """A weight as ``width`` cells without colour: its number, right-aligned on its level's glyph
    ("▓▓▓▓.81"), blank under the first level so that the strong cells stand out."""
    level = weight_level(weight)
    return cell_number(weight).rjust(width, SHADES[level] if level else " ")


def fit_columns(words: Sequence[int], room: int | None, *, glyphs: bool = False) -> list[int]:
    """Cells of each column of an alignment grid, given the cells of its words: every word whole
    where ``room`` (the cells for all columns, each with a space after it) allows, else the longest
    ones cut to one width, the widest that fits, but no narrower than CUT_CELLS (the grid then
    scrolls). ``room`` None: cut at CUT_CELLS, the least a grid needs. With ``glyphs`` (no colours,
    shaded_number) every column has a cell for its shade before the number."""
    whole = [max(NUMBER_CELLS + glyphs, cells) for cells in words]
    cut = CUT_CELLS
    if room is not None:
        cut = max(whole, default=0)
        while cut > CUT_CELLS and sum(min(cells, cut) + 1 for cells in whole) > room:
            cut -= 1
    return [min(cells, cut) for cells in whole]


def cell_number(weight: float) -> str:
    """A weight in three cells: ".81", "1.0", or "·" when it rounds to 0.00."""
    text = num(weight)
    if text == "0.00":
        return "·"
    return text[1:] if text.startswith("0") else text[:3]
