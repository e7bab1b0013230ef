"""`attnstep plot`: the alignment heatmap as SVG (by hand) and PNG (matplotlib), for slides."""

from __future__ import annotations

import struct
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest

from attnstep.errors import AttnstepError
from attnstep.report.plot import MATPLOTLIB_MISSING, PNG_SCALE, alignment_picture, alignment_svg, write_alignment
from attnstep.trace.alignment import NOTHING_TO_ALIGN
from attnstep.trace.word_view import word_alignment
from attnstep.trace.writer import dumps
from tests.cli_helpers import invoke

SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parent.parent


def svg_parts(text: str) -> tuple[ET.Element, list[str], list[ET.Element]]:
    root = ET.fromstring(text.encode("utf-8"))
    return root, [t.text for t in root.iter(f"{SVG}text")], list(root.iter(f"{SVG}rect"))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def trace(stepper):
    return stepper.translate("une voiture rouge court dans la rue .")


@pytest.fixture(scope="module")
def subword_trace(subword_checkpoint):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper

    return Stepper(load_checkpoint(subword_checkpoint)).translate("Une voiture rouge est garée devant la maison.")


def test_svg_has_every_word_and_one_cell_per_weight(trace):
    root, texts, cells = svg_parts(alignment_svg(trace))
    assert root.tag == f"{SVG}svg"
    for token in trace.source:
        assert token.surface in texts
    for step in trace.steps:
        assert step.chosen_token in texts
    assert len(cells) == len(trace.steps) * len(trace.source)  # the <eos> row too, when there is one
    # Row by row, source by source: each cell's shade and tooltip are its weight.
    weights = [w for step in trace.steps for w in step.weights]
    assert [float(c.find(f"{SVG}title").text.rsplit(": ", 1)[1]) for c in cells] == [
        pytest.approx(w, abs=5e-4) for w in weights
    ]


def test_darker_cells_for_larger_weights(trace):
    _, _, cells = svg_parts(alignment_svg(trace))
    weights = [w for step in trace.steps for w in step.weights]
    levels = [int(c.get("fill")[1:3], 16) for c in cells]
    pairs = sorted(zip(weights, levels))
    assert all(a[1] >= b[1] for a, b in pairwise(pairs))


def test_numbers_are_written_in_the_cells(trace):
    _, texts, _ = svg_parts(alignment_svg(trace, numbers=True))
    assert f"{trace.steps[0].weights[0]:.2f}" in texts
    _, plain, _ = svg_parts(alignment_svg(trace))
    assert len(texts) == len(plain) + len(trace.steps) * len(trace.source)


def test_caption_says_how_the_decoding_ended(stepper):
    unfinished = stepper.translate("un chien noir")  # the untrained model never chooses <eos>
    finished = stepper.score_reference("un chien noir", "a black dog")  # …unless it is given one
    assert not unfinished.finished and finished.finished
    assert "stopped at the length limit, without <eos>" in svg_parts(alignment_svg(unfinished))[1]
    assert "finished with <eos>" in svg_parts(alignment_svg(finished))[1]


def test_forced_steps_are_marked_with_a_legend(stepper):
    trace = stepper.force(stepper.translate("un chien noir"), 1, "park")
    _, texts, _ = svg_parts(alignment_svg(trace))
    assert "park *" in texts and any(t.startswith("* forced") for t in texts)
    _, plain, _ = svg_parts(alignment_svg(stepper.translate("un chien noir")))
    assert not any(t.startswith("* forced") for t in plain)


def test_subword_trace_in_words_or_pieces(subword_trace):
    _, _, cells = svg_parts(alignment_svg(subword_trace, words=False))
    assert len(cells) == len(subword_trace.steps) * len(subword_trace.source)
    _, word_texts, word_cells = svg_parts(alignment_svg(subword_trace))
    rows = len(word_alignment(subword_trace)) + subword_trace.finished
    assert len(word_cells) == rows * len(subword_trace.source_words)
    for word in subword_trace.source_words:
        assert word.text in word_texts
    assert "garée" in word_texts and "maison." in word_texts


def test_untrusted_words_are_escaped_and_made_visible(trace):
    words = ["<b>&amp;", "\x1b[31mred", '"quoted"', "$x^2$"]
    source = tuple(replace(t, surface=w) for t, w in zip(trace.source, words)) + trace.source[len(words) :]
    text = alignment_svg(replace(trace, source=source))
    _, texts, _ = svg_parts(text)  # still well-formed XML
    assert "<b>&amp;" in texts and "␛[31mred" in texts and '"quoted"' in texts and "$x^2$" in texts
    assert "\x1b" not in text


def test_png_has_the_pictures_size(trace, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "grid.png"
    write_alignment(trace, target)
    picture = alignment_picture(trace)
    assert png_size(target) == (picture.width * PNG_SCALE, picture.height * PNG_SCALE)


def test_png_text_no_font_has_is_one_note_not_matplotlibs_warnings(trace, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from attnstep.report import plot

    monkeypatch.setattr(plot, "PNG_FONTS", ("DejaVu Sans",))  # as on a system without a CJK font
    cat = replace(trace, source=(replace(trace.source[0], surface="猫"), *trace.source[1:]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_alignment(cat, tmp_path / "grid.png")
    assert caught == []
    assert capsys.readouterr().err == (
        f"attnstep: note: no installed font has 猫, drawn as boxes in {tmp_path}/grid.png; "
        "the PNG's fonts are tried in this order: DejaVu Sans (the SVG leaves fonts to its viewer)\n"
    )


def test_png_fonts_are_the_installed_ones_of_the_fallback_list(monkeypatch):
    pytest.importorskip("matplotlib")
    from attnstep.report import plot

    monkeypatch.setattr(plot, "PNG_FONTS", ("No Such Font", "DejaVu Sans"))
    assert list(plot.png_fonts()) == ["DejaVu Sans"]  # matplotlib's own, always there


def test_png_without_matplotlib_is_one_line(trace, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(AttnstepError, match="pip install -e"):
        write_alignment(trace, tmp_path / "grid.png")
    trace_file = tmp_path / "t.json"
    trace_file.write_bytes(dumps(trace))
    result = invoke("plot", trace_file, "-o", tmp_path / "grid.png")
    assert result.exit_code == 1 and result.stderr == f"attnstep: error: {MATPLOTLIB_MISSING}\n"
    assert not (tmp_path / "grid.png").exists()


@pytest.fixture
def trace_file(trace, tmp_path) -> Path:
    path = tmp_path / "trace.json"
    path.write_bytes(dumps(trace, indent=True))
    return path


def test_plot_command_writes_the_svg(trace, trace_file, tmp_path):
    result = invoke("plot", trace_file, "-o", tmp_path / "grid.svg", "--numbers")
    assert result.exit_code == 0 and result.stdout == f"alignment written to {tmp_path}/grid.svg\n"
    assert (tmp_path / "grid.svg").read_text() == alignment_svg(trace, numbers=True)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize(
    "name, make, message",
    [
        ("grid.pdf", None, "grid.pdf: a picture is written as .svg or .png, not .pdf"),
        ("grid", None, "grid: a picture is written as .svg or .png, not a name without a suffix"),
        ("grid.svg", lambda p: p.unlink(), "cannot read"),
        ("grid.svg", lambda p: p.write_text("{not json"), "is not valid JSON"),
        ("grid.svg", lambda p: p.write_text('{"format_version": 2}'), "does not match the trace schema"),
        ("missing/grid.svg", None, "cannot write"),
    ],
)
def test_bad_input_is_one_line(trace_file, tmp_path, name, make, message):
    if make is not None:
        make(trace_file)
    result = invoke("plot", trace_file, "-o", tmp_path / name)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr and result.stdout == ""


@pytest.mark.slow
def test_plot_never_imports_torch(trace_file, tmp_path):
    script = (
        "import sys\nfrom attnstep.cli import app\n"
        f"try:\n    app(['plot', {str(trace_file)!r}, '-o', {str(tmp_path / 'g.svg')!r}])\nexcept SystemExit as e:\n    assert not e.code\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False"


def test_a_model_without_attention_has_nothing_to_draw(no_attention_checkpoint, tmp_path):
    trace_file = tmp_path / "none.json"
    trace_file.write_text(invoke("dump", "un chien noir", "--checkpoint", no_attention_checkpoint).stdout)
    result = invoke("plot", trace_file, "-o", tmp_path / "grid.svg")
    assert result.exit_code == 1 and result.stderr == f"attnstep: error: {NOTHING_TO_ALIGN}\n"
    assert not (tmp_path / "grid.svg").exists()
