"""`attnstep eval --by-length`: BLEU per source-length bucket for one or more checkpoints."""

from __future__ import annotations

import io
import re
import sys
import xml.etree.ElementTree as ET

import pytest
import sacrebleu
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from attnstep.report.by_length import EDGES, Series, chart, length_buckets, show, source_length
from attnstep.report.plot import MATPLOTLIB_MISSING
from tests.cli_helpers import invoke
from tests.conftest import build_tiny_checkpoint

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.slow
@given(st.lists(st.integers(0, 200), max_size=300))
def test_every_sentence_is_in_exactly_one_bucket(lengths):
    buckets = length_buckets(lengths)
    members = [i for bucket in buckets for i in bucket.members]
    assert sorted(members) == list(range(len(lengths)))  # all of them, none twice
    for bucket in buckets:
        assert all(bucket.holds(lengths[i]) for i in bucket.members)
        assert list(bucket.members) == sorted(bucket.members)


@pytest.mark.slow
@given(
    st.lists(st.integers(1, 60), min_size=1, max_size=6, unique=True).map(sorted),
    st.lists(st.integers(0, 100), max_size=50),
)
def test_any_edges_make_a_partition(edges, lengths):
    buckets = length_buckets(lengths, edges)
    assert len(buckets) == len(edges) + 1
    assert sorted(i for b in buckets for i in b.members) == list(range(len(lengths)))
    assert [b.high for b in buckets] == [*edges, None]


def test_the_buckets():
    assert [b.label for b in length_buckets([])] == ["≤10", "11–15", "16–20", "21–25", "26–30", "31+"]
    assert EDGES == (10, 15, 20, 25, 30)
    buckets = length_buckets([0, 10, 11, 15, 16, 30, 31, 99])
    assert [b.members for b in buckets] == [(0, 1), (2, 3), (4,), (), (5,), (6, 7)]
    assert source_length("  Une voiture  rouge. ") == 3


def test_bucket_bleu_is_sacrebleus_on_the_buckets_sentences():
    from attnstep.commands.evaluate import bleu_by_bucket

    references = ["a black dog runs .", "a man runs .", " ".join(["a woman walks in the street ."] * 3), "two men ."]
    hypotheses = ["a black dog runs .", "a man walks .", " ".join(["a woman walks in a street ."] * 3), "two men ."]
    buckets = length_buckets([len(r.split()) for r in references])
    scores = bleu_by_bucket(hypotheses, references, buckets, lowercase=True)
    for bucket, value in zip(buckets, scores):
        if not bucket.members:
            assert value is None
        else:
            expected = sacrebleu.corpus_bleu(
                [hypotheses[i] for i in bucket.members], [[references[i] for i in bucket.members]], lowercase=True
            )
            assert value == pytest.approx(expected.score)


SERIES = [
    Series("fr-en", (41.2, 38.0, 33.5, None, 20.1, 12.0)),
    Series("multi30k-fr-en", (45.1, 40.2, 30.0, 25.0, None, None)),
]


@pytest.mark.parametrize("width", [80, 100])
def test_the_chart_fits_the_terminal_without_colour(monkeypatch, width):
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=width, color_system="truecolor")
    show(console, length_buckets(range(40)), SERIES, "BLEU by source length")
    text = out.getvalue()
    assert not re.search(r"\x1b\[[0-9;]*3[0-9](;|m)", text)  # no foreground colour
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert all(cell_len(line) <= width for line in plain.splitlines())
    # Each series has its own mark, in the legend too: they read apart without colour.
    assert "● fr-en" in plain and "× multi30k-fr-en" in plain


def test_chart_marks_sit_at_their_values():
    lines = [
        line.plain for line in chart(length_buckets(range(40)), [Series("a", (100.0, 50.0, 0.0, None, None, None))], 80)
    ]
    rows = lines[1:12]  # the plot's 11 rows: 100 at the top, 50 in the middle, 0 at the bottom
    assert rows[0].startswith("100┤●") and rows[5].strip().startswith("50┤") and "●" in rows[5] and "●" in rows[10]
    assert rows[10].index("●") > rows[5].index("●") > rows[0].index("●")


@pytest.fixture
def length_corpus(tmp_path):
    """Captions of several lengths, in the Multi30k file layout."""
    fr = [
        "un chien noir court .",
        "une femme marche dans la rue .",
        "un homme court dans la rue avec un chien noir et une femme marche dans le parc .",
        " ".join(["un chien noir court dans la rue ."] * 4),
    ]
    en = [
        "a black dog runs .",
        "a woman walks in the street .",
        "a man runs in the street with a black dog and a woman walks in the park .",
        " ".join(["a black dog runs in the street ."] * 4),
    ]
    (tmp_path / "test_2016_flickr.fr").write_text("\n".join(fr) + "\n")
    (tmp_path / "test_2016_flickr.en").write_text("\n".join(en) + "\n")
    return tmp_path


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-other", seed=1)


@pytest.mark.slow
def test_eval_by_length_of_two_checkpoints(tiny_checkpoint, other_checkpoint, length_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    chart_file = tmp_path / "chart.svg"
    result = invoke(
        "eval", tiny_checkpoint, "--checkpoint", other_checkpoint, "--data", length_corpus, "--plot", chart_file
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    # Each checkpoint translated once, and scored as before.
    assert re.findall(r"translated 4 sentences of test_2016_flickr with (\S+) \(greedy\)", result.stderr) == [
        "tiny-general",
        "tiny-other",
    ]
    assert out.count("BLEU = ") == 2
    assert "BLEU by source length on test_2016_flickr (greedy, case-insensitive)" in out
    header = next(line for line in out.splitlines() if "source words" in line and "tiny-general" in line)
    assert header.index("tiny-general") < header.index("tiny-other")
    counts = {m[0]: int(m[1]) for m in re.findall(r"│ (\S+)\s+│\s+(\d+) │", out)}
    assert counts == {"≤10": 2, "11–15": 0, "16–20": 1, "21–25": 0, "26–30": 0, "31+": 1}
    assert all(
        cell_len(line) <= 80
        for line in out.splitlines()
        if not line.startswith(("BLEU =", "chrF =", "TER =", "chart written"))
    )
    assert out.endswith(f"chart written to {chart_file}\n")
    texts = [t.text for t in ET.parse(chart_file).getroot().iter(f"{SVG}text")]
    assert {"tiny-general", "tiny-other", "≤10", "31+", "n = 2"} <= set(texts)


def test_eval_keeps_its_positional_checkpoint(tiny_checkpoint, length_corpus):
    result = invoke("eval", tiny_checkpoint, "--data", length_corpus, "--by-length")
    assert result.exit_code == 0
    assert "tiny-general on test_2016_flickr (4 sentences, greedy)" in result.stdout and "16–20" in result.stdout
    assert "with tiny-general" not in result.stderr  # one checkpoint: the summary line as before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--output", "out.txt"], "--output and --heldout go with one checkpoint"),
        (["--plot", "chart.pdf"], "chart.pdf: a picture is written as .svg or .png, not .pdf"),
    ],
)
def test_eval_refusals_are_one_line_before_translating(tiny_checkpoint, other_checkpoint, length_corpus, args, message):
    result = invoke("eval", tiny_checkpoint, "--checkpoint", other_checkpoint, "--data", length_corpus, *args)
    assert (
        result.exit_code == 1
        and result.stderr.startswith(f"attnstep: error: {message}")
        and result.stderr.count("\n") == 1
    )


def test_png_chart_without_matplotlib_is_refused_before_translating(
    tiny_checkpoint, length_corpus, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = invoke("eval", tiny_checkpoint, "--data", length_corpus, "--plot", tmp_path / "chart.png")
    assert result.exit_code == 1 and result.stderr == f"attnstep: error: {MATPLOTLIB_MISSING}\n"


@pytest.mark.slow
def test_png_chart(tiny_checkpoint, length_corpus, tmp_path):
    pytest.importorskip("matplotlib")
    from attnstep.report.plot import PNG_SCALE, bleu_chart
    from tests.test_plot import png_size

    target = tmp_path / "chart.png"
    assert invoke("eval", tiny_checkpoint, "--data", length_corpus, "--plot", target).exit_code == 0
    width, height = png_size(target)
    picture = bleu_chart(
        length_buckets([5, 5, 16, 40]),
        [Series("tiny-general", (0.0, None, 0.0, None, None, 0.0))],
        "BLEU by source length on test_2016_flickr (greedy, case-insensitive)",
    )
    assert (width, height) == (picture.width * PNG_SCALE, picture.height * PNG_SCALE)


def test_several_splits_are_scored_as_one_set(tiny_checkpoint, length_corpus, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for language in ("fr", "en"):  # a second split: the first two captions again
        lines = (length_corpus / f"test_2016_flickr.{language}").read_text().splitlines()[:2]
        (length_corpus / f"val.{language}").write_text("\n".join(lines) + "\n")
    result = invoke(
        "eval", tiny_checkpoint, "--data", length_corpus, "--split", "test_2016_flickr", "--split", "val", "--by-length"
    )
    assert result.exit_code == 0, result.stderr
    assert "translated 6 sentences of test_2016_flickr+val" in result.stderr
    counts = {m[0]: int(m[1]) for m in re.findall(r"│ (\S+)\s+│\s+(\d+) │", result.stdout)}
    assert counts["≤10"] == 4 and sum(counts.values()) == 6
    missing = invoke("eval", tiny_checkpoint, "--data", length_corpus, "--split", "test_2016_flickr", "--split", "nope")
    assert missing.exit_code == 1 and "nope" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
