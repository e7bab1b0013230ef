"""Pictures for slides: the alignment heatmap (``attnstep plot``, the app's x) and BLEU by source length.

A picture is laid out once, in pixels, as a few primitives (rectangles, polygons, lines and
labels), then written out either as SVG, by hand here (no dependency), or as PNG through
matplotlib (the optional ``plot`` extra) at twice the size, so the two files look alike.

The heatmap is drawn the way attention papers draw it (Bahdanau et al. 2014, fig. 3): source
words across the top, output words down the side, each weight a cell shaded from white (0)
to dark (1). Its caption names the attention drawn: an RNN's one, or a Transformer's trace's
view — one cross-attention head of one decoder layer, or the mean of a layer's heads
(:func:`attnstep.trace.alignment.attention_shown`). Every text that comes from a trace or a file is data: made visible
(:func:`attnstep.report.visible.visible`) and XML-escaped, and never read as matplotlib's mathtext.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from rich.cells import cell_len

from attnstep.data.files import output
from attnstep.errors import AttnstepError
from attnstep.report.by_length import Bucket, Series
from attnstep.report.visible import visible
from attnstep.trace.alignment import Alignment, alignment
from attnstep.trace.records import Trace

MATPLOTLIB_MISSING = 'PNG needs matplotlib (not installed): pip install -e ".[plot]"'
SUFFIXES = (".svg", ".png")
FONT_FAMILY = "DejaVu Sans, Helvetica, Arial, sans-serif"  # DejaVu Sans is matplotlib's own: PNG and SVG match
# PNG text is drawn glyph by glyph from the first of these that is installed and has it (matplotlib's
# fallback): DejaVu Sans has Latin, Greek and Cyrillic but no CJK, which the others have.
PNG_FONTS = (
    "DejaVu Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Source Han Sans",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "Hiragino Sans",
    "PingFang SC",
    "Microsoft YaHei",
    "Malgun Gothic",
    "Arial Unicode MS",
)
FONT = 13  # label size, px
SMALL = 10  # numbers in cells, px
PAD = 12
LINE = FONT + 7  # caption line height
CELL = 30  # one weight's square
PNG_SCALE = 2  # PNG pixels per SVG pixel: sharp on a projector
PT_PER_PX = 0.72  # matplotlib sizes text in points: 72 per inch, at 100 SVG pixels per inch


# --- the primitives a picture is made of -------------------------------------------------------


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    stroke: str = "none"
    title: str = ""  # a tooltip in SVG viewers


@dataclass(frozen=True)
class Polygon:
    points: tuple[tuple[float, float], ...]
    fill: str


@dataclass(frozen=True)
class Polyline:
    points: tuple[tuple[float, float], ...]
    stroke: str
    width: float = 1.0
    dashes: tuple[float, ...] = ()  # px on, px off, …


@dataclass(frozen=True)
class Label:
    x: float
    y: float  # the middle of the text's height
    text: str
    size: float = FONT
    anchor: str = "start"  # start, middle or end
    vertical: bool = False  # read from bottom to top, starting at (x, y)
    fill: str = "#000"
    bold: bool = False


@dataclass
class Picture:
    width: int
    height: int
    items: list = field(default_factory=list)


def text_width(text: str, size: float = FONT) -> float:
    """About how wide ``text`` is drawn: a terminal cell is about 0.6 em of a sans-serif font."""
    return cell_len(visible(text)) * 0.6 * size


# --- output --------------------------------------------------------------------------------------


def picture_suffix(path: Path) -> str:
    """ ".svg" or ".png", from the name; anything else is one line."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise AttnstepError(f"{path}: a picture is written as .svg or .png, not {suffix or 'a name without a suffix'}")
    return suffix


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise AttnstepError(MATPLOTLIB_MISSING) from None


def check_picture_path(path: Path) -> None:
    """Refuse, before any work, a name that is no picture, or PNG without matplotlib."""
    if picture_suffix(path) == ".png":
        require_matplotlib()


def write_picture(picture: Picture, path: Path) -> None:
    """The picture as SVG or PNG, by ``path``'s suffix, written atomically. A PNG whose text has
    characters no installed font has is written all the same, and one line on stderr says so."""
    png = picture_suffix(path) == ".png"
    data = to_png(picture) if png else to_svg(picture).encode("utf-8")
    with output(path) as handle:
        handle.write(data)
    if png and (missing := missing_glyphs(picture)):
        print(
            f"attnstep: note: no installed font has {visible(missing)}, drawn as boxes in {visible(str(path))}; "
            f"the PNG's fonts are tried in this order: {', '.join(PNG_FONTS)} (the SVG leaves fonts to its viewer)",
            file=sys.stderr,
        )


def png_fonts() -> dict[str, str]:
    """The installed fonts of PNG_FONTS, in its order: name → file."""
    from matplotlib import font_manager

    files = {font.name: font.fname for font in font_manager.fontManager.ttflist}
    return {name: files[name] for name in PNG_FONTS if name in files}


def missing_glyphs(picture: Picture) -> str:
    """The characters of the picture's labels that none of the installed PNG fonts has, in order."""
    from matplotlib.ft2font import FT2Font

    covered: set[int] = set()
    for file in png_fonts().values():
        covered |= set(FT2Font(file).get_charmap())
    text = "".join(visible(item.text) for item in picture.items if isinstance(item, Label))
    return "".join(dict.fromkeys(c for c in text if not c.isspace() and ord(c) not in covered))


_NON_CHARACTERS = re.compile("[\ufffe\uffff]")  # XML refuses these even escaped


def _xml(text: str) -> str:
    return escape(_NON_CHARACTERS.sub("\ufffd", visible(text)))


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _points(points) -> str:
    return " ".join(f"{_number(x)},{_number(y)}" for x, y in points)


def to_svg(picture: Picture) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{picture.width}" height="{picture.height}" '
            f'viewBox="0 0 {picture.width} {picture.height}" font-family={quoteattr(FONT_FAMILY)} style="background:#fff">'
        ),
    ]
    for item in picture.items:
        if isinstance(item, Rect):
            shape = (
                f'<rect x="{_number(item.x)}" y="{_number(item.y)}" width="{_number(item.width)}" '
                f'height="{_number(item.height)}" fill="{item.fill}" stroke="{item.stroke}" stroke-width="0.5"'
            )
            lines.append(f"{shape}><title>{_xml(item.title)}</title></rect>" if item.title else shape + "/>")
        elif isinstance(item, Polygon):
            lines.append(f'<polygon points="{_points(item.points)}" fill="{item.fill}"/>')
        elif isinstance(item, Polyline):
            dashes = f' stroke-dasharray="{" ".join(map(_number, item.dashes))}"' if item.dashes else ""
            lines.append(
                f'<polyline points="{_points(item.points)}" fill="none" stroke="{item.stroke}" '
                f'stroke-width="{_number(item.width)}"{dashes}/>'
            )
        else:
            where = (
                f'transform="translate({_number(item.x)},{_number(item.y)}) rotate(-90)"'
                if item.vertical
                else f'x="{_number(item.x)}" y="{_number(item.y)}"'
            )
            weight = ' font-weight="bold"' if item.bold else ""
            lines.append(
                f'<text {where} font-size="{_number(item.size)}" text-anchor="{item.anchor}" '
                f'dominant-baseline="central" fill="{item.fill}"{weight}>{_xml(item.text)}</text>'
            )
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def to_png(picture: Picture) -> bytes:
    """The same primitives drawn by matplotlib on a canvas of PNG_SCALE × the SVG's pixels."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    figure = Figure(figsize=(picture.width / 100, picture.height / 100), dpi=100 * PNG_SCALE, facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, picture.width)
    axes.set_ylim(picture.height, 0)  # y down, as in SVG
    axes.set_axis_off()
    # matplotlib's time goes per artist: every shape goes into one collection (a 40-word heatmap has
    # 1,600 cells), drawn above the lines (a chart's marks on its lines) and below the text.
    shapes = [item for item in picture.items if isinstance(item, (Rect, Polygon))]
    axes.add_collection(
        PolyCollection(
            [_corners(item) if isinstance(item, Rect) else item.points for item in shapes],
            facecolors=[item.fill for item in shapes],
            edgecolors=[item.stroke if isinstance(item, Rect) and item.stroke != "none" else "none" for item in shapes],
            linewidths=0.5 * PT_PER_PX,
            zorder=2.5,
        )
    )
    aligned = {"start": "left", "middle": "center", "end": "right"}
    families = list(png_fonts())
    for item in picture.items:
        if isinstance(item, Polyline):
            (line,) = axes.plot(*zip(*item.points), color=item.stroke, linewidth=item.width * PT_PER_PX)
            if item.dashes:
                line.set_dashes([d / item.width for d in item.dashes])  # matplotlib scales dashes by the line's width
        elif isinstance(item, Label):
            axes.text(
                item.x,
                item.y,
                visible(item.text),
                fontsize=item.size * PT_PER_PX,
                color=item.fill,
                ha=aligned[item.anchor],
                va="center_baseline",
                rotation=90 if item.vertical else 0,
                rotation_mode="anchor",
                fontweight="bold" if item.bold else "normal",
                fontfamily=families,
                parse_math=False,
            )
    buffer = io.BytesIO()
    with _font_messages_kept():
        figure.savefig(buffer, format="png", dpi=100 * PNG_SCALE)
    return buffer.getvalue()


@contextlib.contextmanager
def _font_messages_kept():
    """matplotlib's warnings of a missing glyph (a box: write_picture's note says so) and of a
    font's nearest weight (WenQuanYi Zen Hei has 500 for normal) kept off stderr."""
    font_log = logging.getLogger("matplotlib.font_manager")
    level = font_log.level
    font_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
            yield
    finally:
        font_log.setLevel(level)


def _corners(rect: Rect) -> tuple[tuple[float, float], ...]:
    x, y, w, h = rect.x, rect.y, rect.width, rect.height
    return ((x, y), (x + w, y), (x + w, y + h), (x, y + h))


# --- the alignment heatmap -----------------------------------------------------------------------


def shade(weight: float) -> str:
    """White for 0 to near-black for 1."""
    level = round(255 - 230 * max(0.0, min(1.0, weight)))
    return f"#{level:02x}{level:02x}{level:02x}"


def captions(trace: Trace, grid: Alignment) -> list[str]:
    """What the picture says under the grid: the model, which of its attentions the grid is (a
    Transformer's layer and head, or mean of heads), how the decoding ended, what the marks mean."""
    info = trace.checkpoint
    lines = [
        f"{info.name} · {grid.attention} · {info.source_language}→{info.target_language}",
        f"finished with {trace.end_token}"
        if grid.finished
        else f"stopped at the length limit, without {trace.end_token}",
    ]
    if "*" in grid.marks:
        lines.append("* forced: a word chosen by the user, not by the model")
    if "≠" in grid.marks:
        lines.append("≠ a given translation's token where the model's own choice differs")
    return lines


def heatmap(grid: Alignment, notes: Sequence[str], *, numbers: bool = False) -> Picture:
    """Source labels on top (vertical), target labels on the left, a cell per weight, ``notes`` below."""
    if not grid.rows:
        raise AttnstepError("the trace has no steps: there is no alignment to draw")
    targets = [f"{word} {mark}" if mark else word for word, mark in zip(grid.target, grid.marks)]
    left = math.ceil(PAD + max(text_width(t) for t in targets) + 8)
    top = math.ceil(PAD + max(text_width(s) for s in grid.source) + 8)
    bottom = top + CELL * len(grid.rows)
    width = math.ceil(max(left + CELL * len(grid.source) + PAD, 2 * PAD + max(text_width(n) for n in notes)))
    picture = Picture(width, bottom + PAD + LINE * len(notes) + PAD // 2)
    items = picture.items
    for i, word in enumerate(grid.source):
        items.append(Label(left + CELL * i + CELL / 2, top - 8, word, vertical=True))
    for j, (word, row) in enumerate(zip(targets, grid.rows)):
        y = top + CELL * j
        items.append(Label(left - 8, y + CELL / 2, word, anchor="end"))
        for i, weight in enumerate(row):
            items.append(
                Rect(
                    left + CELL * i,
                    y,
                    CELL,
                    CELL,
                    shade(weight),
                    "#c8c8c8",
                    f"{grid.target[j]} / {grid.source[i]}: {weight:.3f}",
                )
            )
            if numbers:
                ink = "#fff" if weight >= 0.5 else "#222"
                items.append(
                    Label(left + CELL * i + CELL / 2, y + CELL / 2, f"{weight:.2f}", SMALL, "middle", fill=ink)
                )
    for k, note in enumerate(notes):
        items.append(Label(PAD, bottom + PAD + LINE * k + LINE / 2, note, fill="#333"))
    return picture


def alignment_picture(trace: Trace, *, words: bool = True, numbers: bool = False) -> Picture:
    """The trace's alignment heatmap: in the user's words (``words``) or the model's tokens."""
    grid = alignment(trace, words=words)
    return heatmap(grid, captions(trace, grid), numbers=numbers)


def alignment_svg(trace: Trace, *, words: bool = True, numbers: bool = False) -> str:
    return to_svg(alignment_picture(trace, words=words, numbers=numbers))


def write_alignment(trace: Trace, path: Path, *, words: bool = True, numbers: bool = False) -> None:
    """``path`` (.svg or .png) with the trace's heatmap, written atomically."""
    write_picture(alignment_picture(trace, words=words, numbers=numbers), path)


# --- BLEU by source length -----------------------------------------------------------------------

# Okabe & Ito's colours, which colour-blind readers tell apart; dashes and marks tell them apart in grey.
SERIES_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
SERIES_DASHES = ((), (7, 4), (2, 3), (9, 3, 2, 3))
MARK_RADIUS = 4.5
PLOT_HEIGHT = 240
BUCKET_WIDTH = 90


def _mark(shape: int, x: float, y: float) -> tuple[tuple[float, float], ...]:
    """A series's point mark: a circle, square, triangle or diamond."""
    r = MARK_RADIUS
    corners = {
        0: [(math.cos(a * math.pi / 8) * r, math.sin(a * math.pi / 8) * r) for a in range(16)],
        1: [(-r, -r), (r, -r), (r, r), (-r, r)],
        2: [(0, -r * 1.2), (r * 1.1, r * 0.8), (-r * 1.1, r * 0.8)],
        3: [(0, -r * 1.3), (r * 1.3, 0), (0, r * 1.3), (-r * 1.3, 0)],
    }[shape % 4]
    return tuple((x + dx, y + dy) for dx, dy in corners)


def bleu_chart(buckets: list[Bucket], series: list[Series], title: str, quantity: str = "BLEU") -> Picture:
    """BLEU (up; or what ``quantity`` names, a 0-100 scale) against the source-length buckets (across), a line
    per checkpoint, the legend below."""
    top_value = 10 * math.ceil(max([10.0, *(v for s in series for v in s.bleu if v is not None)]) / 10)
    left, top = PAD + 40, PAD + 2 * LINE + 8  # the title's line, then the axis's name
    plot_width = BUCKET_WIDTH * len(buckets)
    bottom = top + PLOT_HEIGHT
    legend_top = bottom + 2 * LINE + PAD
    width = math.ceil(
        max(
            left + plot_width + PAD,
            2 * PAD + text_width(title, FONT + 2),
            *(left + 40 + text_width(s.name) + PAD for s in series),
        )
    )
    picture = Picture(width, legend_top + LINE * len(series) + PAD)
    items = picture.items
    items.append(Label(PAD, PAD + LINE / 2, title, FONT + 2, bold=True))

    def y(value: float) -> float:
        return bottom - value / top_value * PLOT_HEIGHT

    def x(b: int) -> float:
        return left + BUCKET_WIDTH * (b + 0.5)

    for tick in range(0, int(top_value) + 1, 10):
        items.append(Polyline(((left, y(tick)), (left + plot_width, y(tick))), "#000" if tick == 0 else "#e0e0e0"))
        items.append(Label(left - 6, y(tick), str(tick), SMALL + 1, "end"))
    items.append(Polyline(((left, top), (left, bottom)), "#000"))
    items.append(Label(left, top - LINE / 2 - 2, quantity, SMALL + 1, "middle", bold=True))
    for b, bucket in enumerate(buckets):
        items.append(Label(x(b), bottom + LINE / 2 + 2, bucket.label, SMALL + 1, "middle"))
        items.append(Label(x(b), bottom + LINE * 1.5, f"n = {len(bucket.members)}", SMALL, "middle", fill="#555"))
    items.append(Label(left + plot_width, bottom + LINE * 2.5 - 2, "source words", SMALL + 1, "end", bold=True))
    for k, s in enumerate(series):
        colour, dashes = SERIES_COLOURS[k % len(SERIES_COLOURS)], SERIES_DASHES[k % len(SERIES_DASHES)]
        points = tuple((x(b), y(v)) for b, v in enumerate(s.bleu) if v is not None)
        if len(points) > 1:
            items.append(Polyline(points, colour, 2, dashes))
        items.extend(Polygon(_mark(k, px, py), colour) for px, py in points)
        key_y = legend_top + LINE * k + LINE / 2
        items.append(Polyline(((left, key_y), (left + 30, key_y)), colour, 2, dashes))
        items.append(Polygon(_mark(k, left + 15, key_y), colour))
        items.append(Label(left + 40, key_y, s.name))
    return picture
