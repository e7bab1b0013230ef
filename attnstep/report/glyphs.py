"""Numbers and vectors as text cells: fixed-width numbers, eighth-block bars and vector strips.

Every quantity is drawn so that it reads without colour: a weight is a number *and* a bar
whose length is the weight; a vector is a strip whose glyph height is the magnitude of its
components, standing on the bottom of the cell when positive and hanging from the top when
negative (colour, where the terminal has it, repeats the sign: blue and orange).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EIGHTHS = " ▏▎▍▌▋▊▉█"  # horizontal bar ends, 1/8 cell each
HEIGHTS = "▁▂▃▄▅▆▇█"  # vector strip glyphs, small → large magnitude
SHADES = " ·░▒▓█"  # alignment-grid density, weight 0 → 1


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


def shade(weight: float) -> str:
    """Density glyph for an alignment weight: blank for none, █ for (nearly) all."""
    if weight < 0.005:
        return SHADES[0]
    return SHADES[min(len(SHADES) - 1, 1 + int(weight * (len(SHADES) - 1)))]


def cell_number(weight: float) -> str:
    """A weight in three cells: ".81", "1.0", or "·" when it rounds to 0.00."""
    text = num(weight)
    if text == "0.00":
        return "·"
    return text[1:] if text.startswith("0") else text[:3]
