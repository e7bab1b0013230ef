"""`attnstep dump --format pharaoh`: each sentence's alignment as i-j links, as fast_align writes them."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attnstep.trace.alignment import NOTHING_TO_ALIGN, pharaoh_line, pharaoh_links
from attnstep.trace.reader import load
from attnstep.trace.records import EOS_TOKEN
from attnstep.trace.word_view import word_alignment
from tests.cli_helpers import invoke

LINK = re.compile(r"(\d+)-(\d+)")


def links(line: str) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in LINK.findall(line)}


def argmax(row) -> int:
    return max(range(len(row)), key=row.__getitem__)


rows = st.integers(1, 6).flatmap(
    lambda n: st.lists(st.lists(st.floats(0, 1), min_size=n, max_size=n).map(tuple), max_size=8).map(tuple)
)


@given(rows, st.floats(0, 1))
def test_links_are_each_rows_argmax_and_threshold_links_a_superset(matrix, threshold):
    plain = pharaoh_links(matrix)
    assert plain == [(argmax(row), j) for j, row in enumerate(matrix)]
    more = pharaoh_links(matrix, threshold)
    assert set(plain) <= set(more)
    assert set(more) - set(plain) == {
        (i, j) for j, row in enumerate(matrix) for i, w in enumerate(row) if w >= threshold
    } - set(plain)
    assert more == sorted(more, key=lambda link: (link[1], link[0]))  # target order, then source order


def test_eos_step_is_left_out(stepper):
    trace = stepper.score_reference("un chien noir court .", "a black dog runs .")  # every token, then <eos>, forced
    assert trace.finished and trace.steps[-1].chosen_token == EOS_TOKEN
    found = links(pharaoh_line(trace))
    assert {j for _, j in found} == set(range(len(trace.output_tokens))) == set(range(5))
    assert found == {(argmax(s.weights), j) for j, s in enumerate(trace.steps[:-1])}


def test_dump_one_sentence(tiny_checkpoint, stepper):
    sentence = "une voiture rouge court dans la rue ."
    result = invoke("dump", sentence, "--checkpoint", tiny_checkpoint, "--format", "pharaoh")
    assert result.exit_code == 0
    trace = stepper.translate(sentence)
    assert result.stdout == pharaoh_line(trace) + "\n"
    assert links(result.stdout) == {
        (argmax(s.weights), j) for j, s in enumerate(trace.steps) if s.chosen_token != EOS_TOKEN
    }
    wider = invoke("dump", sentence, "--checkpoint", tiny_checkpoint, "--format", "pharaoh", "--align-threshold", "0.1")
    assert links(result.stdout) < links(wider.stdout)


def test_dump_a_file_is_one_line_per_sentence_in_order(tiny_checkpoint, stepper, tmp_path):
    sentences = ["un chien noir .", "une voiture", "le homme court dans la rue .", "deux femmes ."]
    source, out = tmp_path / "in.txt", tmp_path / "out.align"
    source.write_text("\n".join(sentences) + "\n")
    result = invoke(
        "dump", "-i", source, "-o", out, "--checkpoint", tiny_checkpoint, "--format", "pharaoh", "--batch-size", 3
    )
    assert result.exit_code == 0 and "4 alignments" in result.stderr
    assert out.read_text().splitlines() == [pharaoh_line(stepper.translate(s)) for s in sentences]


def test_words_of_a_subword_model(subword_checkpoint, tmp_path):
    sentence = "Une voiture rouge est garée devant la maison."
    pieces = invoke("dump", sentence, "--checkpoint", subword_checkpoint, "--format", "pharaoh")
    words = invoke("dump", sentence, "--checkpoint", subword_checkpoint, "--format", "pharaoh", "--words")
    trace_file = tmp_path / "t.json"
    trace_file.write_text(invoke("dump", sentence, "--checkpoint", subword_checkpoint).stdout)
    trace = load(trace_file)
    assert links(pieces.stdout) == {
        (argmax(s.weights), j) for j, s in enumerate(trace.steps) if s.chosen_token != EOS_TOKEN
    }
    assert links(words.stdout) == {(argmax(row), j) for j, (_, row) in enumerate(word_alignment(trace))}
    assert max(i for i, _ in links(words.stdout)) < len(trace.source_words)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--words"], "--words and --align-threshold go with --format pharaoh"),
        (["--align-threshold", "0.2"], "--words and --align-threshold go with --format pharaoh"),
    ],
)
def test_pharaoh_options_without_pharaoh_are_one_line(tiny_checkpoint, args, message):
    result = invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, *args)
    assert result.exit_code == 2 and result.stderr == f"attnstep: error: {message}\n"


def test_a_bad_format_is_a_usage_error(tiny_checkpoint):
    result = invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, "--format", "xml")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "xml" in result.stderr


def test_a_model_without_attention_has_no_links(no_attention_checkpoint, tmp_path):
    result = invoke(
        "dump", "un chien", "--checkpoint", no_attention_checkpoint, "--format", "pharaoh", "-o", tmp_path / "a"
    )
    assert result.exit_code == 1 and result.stderr == f"attnstep: error: {NOTHING_TO_ALIGN}\n"
    assert list(tmp_path.iterdir()) == []


def test_json_stays_the_default(tiny_checkpoint):
    data = json.loads(invoke("dump", "un chien", "--checkpoint", tiny_checkpoint).stdout)
    assert data["format_version"] == 3
