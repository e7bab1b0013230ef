"""How the alignment grids draw a weight: a level (glyphs.weight_level) per legend bin, each drawn
stronger than the one below it, in every colour mode, read from the cells as they are rendered."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
import textual.constants
from rich.color import ColorSystem
from rich.console import Console
from rich.segment import Segment
from rich.style import Style

from attnstep.report.compare import grid
from attnstep.report.glyphs import CUT_CELLS, SHADES, cell_number, fit_columns, level_ranges, weight_level
from attnstep.trace.records import Trace
from attnstep.trace.word_view import word_alignment
from attnstep.tui import replay_app
from attnstep.tui.panels.grid import AlignmentGrid
from attnstep.tui.screens.alignment import AlignmentMap
from tests.tui_helpers import SENTENCE, async_test

WIDE = (160, 48)
# Both sides of every bin's edges, and its middle.
WEIGHTS = (0.0, 0.1, 0.19, 0.2, 0.3, 0.39, 0.4, 0.5, 0.59, 0.6, 0.7, 0.79, 0.8, 0.9, 1.0)
# The colour systems a terminal has (Textual and Rich read them from TERM and COLORTERM), NO_COLOR.
MODES = [("truecolor", False), ("256", False), ("standard", False), ("truecolor", True)]
DOWNGRADE = {"truecolor": ColorSystem.TRUECOLOR, "256": ColorSystem.EIGHT_BIT}
MIN_STEP = 10  # CIE L* between the colours of neighbouring levels: apart at a glance


def shaded_trace(stepper) -> Trace:
    """The tiny model's decoding, its rows' weights replaced by WEIGHTS in order, a source word at a time."""
    trace = stepper.translate(SENTENCE)
    n = len(trace.source)
    rows = [WEIGHTS[i : i + n] for i in range(0, len(WEIGHTS), n)]
    rows[-1] += (0.0,) * (n - len(rows[-1]))
    assert len(trace.steps) >= len(rows)
    return replace(trace, steps=tuple(replace(s, weights=w) for s, w in zip(trace.steps, rows)))


def lightness(style: Style, system: str) -> float:
    """CIE L* of a style's background as a terminal of ``system`` shows it."""
    assert style.bgcolor is not None
    r, g, b = (c / 255 for c in style.bgcolor.downgrade(DOWNGRADE[system]).get_truecolor())
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    y = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 116 * y ** (1 / 3) - 16 if y > 0.008856 else 903.3 * y


def strength(cells: list[tuple[str, Style]], system: str, ramp: bool, page: float = 0.0) -> float:
    """How strongly a cell is drawn: how far its background is from the page's (ramp; none: the page's
    own), else its densest shade (none, or the dots of level 0: 0)."""
    if ramp:
        return max(abs(lightness(style, system) - page) if style.bgcolor else 0.0 for _, style in cells)
    return max((SHADES.index(char) for char, _ in cells if char in SHADES[1:]), default=0)


def assert_graded(strengths: list[float], ramp: bool) -> None:
    """Strengths, one per weight of WEIGHTS: the same level never weaker, each level stronger than the one below."""
    by_level: dict[int, list[float]] = {}
    for weight, s in zip(WEIGHTS, strengths):
        by_level.setdefault(weight_level(weight), []).append(s)
    assert sorted(by_level) == list(range(len(level_ranges())))
    for weight, s, t in zip(WEIGHTS, strengths, strengths[1:]):
        assert t >= s, f"a weight above {weight} is drawn weaker: {strengths}"
    for level in range(1, len(by_level)):
        gap = min(by_level[level]) - max(by_level[level - 1])
        assert gap >= (MIN_STEP if ramp else 1), f"levels {level - 1} and {level} look alike: {by_level}"


def cells_of(line: list[Segment]) -> list[tuple[str, Style]]:
    return [(char, segment.style or Style()) for segment in line for char in segment.text]


def panel_cells(panel: AlignmentGrid) -> list[list[tuple[str, Style]]]:
    """Each weight's cells, as the panel renders them, in the order of WEIGHTS."""
    out = []
    for step in panel.view.trace.steps[: -(-len(WEIGHTS) // len(panel.columns))]:
        line = cells_of(list(panel.render_line(step.index + 1)))
        out += [line[start:end] for start, end in panel.columns]
    return out[: len(WEIGHTS)]


@pytest.mark.parametrize(("system", "no_color"), MODES)
@async_test
async def test_grid_and_map_draw_each_level_stronger_than_the_last(stepper, monkeypatch, system, no_color):
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", system)
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    ramp = system in DOWNGRADE and not no_color
    app = replay_app(shaded_trace(stepper), "shaded.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("e")
        panel = app.query_one(AlignmentGrid)
        assert panel.shows_ramp == ramp
        page = lightness(panel.rich_style, system) if ramp else 0.0
        numbers = panel_cells(panel)
        # Every cell still says its weight, whatever draws its level.
        assert ["".join(char for char, _ in cells).lstrip(" " + SHADES[1:]) for cells in numbers] == [
            cell_number(w) for w in WEIGHTS
        ]
        assert_graded([strength(cells, system, ramp, page) for cells in numbers], ramp)
        await pilot.press("m")
        shades = panel_cells(app.screen.query_one(AlignmentMap))
        assert_graded([strength(cells, system, ramp, page) for cells in shades], ramp)
        # The legend draws each level as the map does, beside what it means.
        legend = panel.legend()
        for level, meaning in enumerate(level_ranges()):
            start = legend.plain.index(f" {meaning}") - 2
            sample = cells_of(list(legend[start : start + 2].render(app.console)))
            of_level = [s for w, s in zip(WEIGHTS, shades) if weight_level(w) == level and w >= 0.005]
            assert strength(sample, system, ramp, page) == strength(of_level[0], system, ramp, page)


@pytest.mark.parametrize(("system", "no_color"), MODES)
def test_compare_draws_each_level_darker_than_the_last(stepper, system, no_color):
    ramp = system in DOWNGRADE and not no_color
    trace = shaded_trace(stepper)
    console = Console(file=io.StringIO(), width=200, color_system=system, no_color=no_color, force_terminal=True)
    lines = console.render_lines(grid("tiny", trace), console.options, pad=False)
    widths = fit_columns([len(word.text) for word in trace.source_words], 200, glyphs=not ramp)
    weights = []
    for line, (_, row) in zip(lines[2:], word_alignment(trace)):  # under the border and the header
        cells = cells_of(line)
        end = len(cells) - 2  # the columns, from the right: before " │"
        for width, weight in reversed(list(zip(widths, row))):
            weights.append((weight, cells[end - width : end]))
            end -= width + 1
    shown = [next(cells for weight, cells in weights if weight == w) for w in WEIGHTS]
    # The plot's greys, white to dark: the darker the stronger, whatever the terminal's background.
    assert_graded([strength(cells, system, ramp, 100.0) for cells in shown], ramp)


def test_columns_take_the_room_they_have_and_are_cut_only_without_it():
    words = [2, 10, 10, 3, 14]
    assert fit_columns(words, 80) == [3, 10, 10, 3, 14]  # all whole: 40 + 5 spaces
    assert fit_columns(words, 43) == [3, 10, 10, 3, 12]  # the longest cut first
    assert fit_columns(words, 38) == [3, 9, 9, 3, 9]  # then the next longest, to one width
    assert fit_columns(words, 10) == [3, CUT_CELLS, CUT_CELLS, 3, CUT_CELLS]  # no room: cut, and the grid scrolls
    assert fit_columns(words, None) == fit_columns(words, 0)
    assert fit_columns(words, 80, glyphs=True) == [4, 10, 10, 4, 14]  # a cell for the shade before each number


@async_test
async def test_the_grid_shows_a_long_word_whole_where_it_has_the_room(stepper):
    long = "extraordinairement"
    app = replay_app(stepper.translate(f"une voiture {long} rouge ."), "long.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("e")
        assert long in app.query_one(AlignmentGrid).plain_lines[0]
        await pilot.press("m")
        assert long in app.screen.query_one(AlignmentMap).plain_lines[0]
