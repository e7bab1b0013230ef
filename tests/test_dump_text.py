"""dump for corpus work (issue 22): pipes answered a line at a time, plain text, n-best lists, length limits."""

import json
import select
import subprocess
import sys

import pytest

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.text.words import EOS_ID
from tests.cli_helpers import invoke
from tests.conftest import build_tiny_checkpoint

SENTENCES = "un chien noir .\n\nune voiture\n"


def answer(process: subprocess.Popen, sentence: str, timeout: float = 60) -> bytes:
    """Send one line, and read the one line that answers it before sending anything else."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(sentence.encode() + b"\n")
    process.stdin.flush()
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no answer to {sentence!r} within {timeout} s"
    return process.stdout.readline()


@pytest.mark.parametrize("form", ["json", "text"])
def test_a_pipe_is_answered_a_line_at_a_time(tiny_checkpoint, form):
    """Whoever writes the next line may wait for this one's answer (fairseq-interactive's way)."""
    command = [
        sys.executable,
        "-m",
        "attnstep",
        "dump",
        "-i",
        "-",
        "--format",
        form,
        "--checkpoint",
        str(tiny_checkpoint),
    ]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        first = answer(process, "un chien noir .")
        blank = answer(process, "")
        second = answer(process, "une voiture")
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(60) == 0
    if form == "json":
        assert json.loads(first)["source"][1]["surface"] == "chien"
        assert blank == b"null\n"
        assert json.loads(second)["source"][1]["surface"] == "voiture"
    else:
        assert first.endswith(b"\n") and b"\t" not in first and blank == b"\n" and second.strip()


def test_text_is_a_translation_per_input_line(tiny_checkpoint, tmp_path):
    source = tmp_path / "in.fr"
    source.write_text(SENTENCES)
    traces = invoke("dump", "-i", str(source), "--checkpoint", str(tiny_checkpoint))
    text = invoke("dump", "-i", str(source), "--format", "text", "--checkpoint", str(tiny_checkpoint))
    scored = invoke("dump", "-i", str(source), "--format", "text", "--scores", "--checkpoint", str(tiny_checkpoint))
    assert traces.exit_code == text.exit_code == scored.exit_code == 0, text.stderr
    expected = [json.loads(line) for line in traces.stdout.splitlines()]
    assert text.stdout.splitlines() == [trace["translation"] if trace else "" for trace in expected]
    assert "3 translations" in text.stderr
    lines = scored.stdout.splitlines()
    assert lines[1] == ""
    for line, trace in zip(lines[::2], expected[::2]):
        translation, logprob = line.split("\t")
        assert translation == trace["translation"]
        assert float(logprob) == pytest.approx(sum(step["chosen"]["logprob"] for step in trace["steps"]), abs=1e-4)


def test_scores_go_with_text(tiny_checkpoint):
    result = invoke("dump", "un chien", "--scores", "--checkpoint", str(tiny_checkpoint))
    assert result.exit_code == 2
    assert "--scores goes with --format text" in result.stderr


@pytest.mark.parametrize("beam", [None, 1, 3])
def test_no_eos_before_the_minimum_length(tmp_path, beam):
    """A model that would stop at once writes min_length tokens first; what it would have chosen stays its candidates' first."""
    engine = Stepper(load_checkpoint(build_tiny_checkpoint(tmp_path / "eos", eos_bias=50.0)), beam=beam, min_length=3)
    sentences = ["une voiture rouge .", "deux femmes"]
    batched = engine.translate_batch(sentences)
    for sentence, together in zip(sentences, batched):
        alone = engine.translate(sentence)
        assert [s.chosen_id for s in alone.steps] == [s.chosen_id for s in together.steps]
        assert alone.finished and len(alone.steps) == 4
        assert all(s.chosen_id != EOS_ID and not s.forced for s in alone.steps[:3])
        assert all(s.candidates[0].id == EOS_ID for s in alone.steps)  # the model's own choice, recorded
        assert alone.logprob == pytest.approx(sum(s.chosen_logprob for s in alone.steps))
        if beam is None:
            assert [s.chosen_id for s in engine.iter_steps(sentence)] == [s.chosen_id for s in alone.steps]


@pytest.mark.parametrize("beam", [None, 2])
def test_the_maximum_length_stops_decoding(tmp_path, beam):
    engine = Stepper(
        load_checkpoint(build_tiny_checkpoint(tmp_path / "never", eos_bias=-50.0)), beam=beam, max_length=5
    )
    trace = engine.translate("une voiture rouge .")
    assert not trace.finished and len(trace.steps) == 5


def test_the_default_length_limit_is_twice_the_source_and_ten(tmp_path):
    engine = Stepper(load_checkpoint(build_tiny_checkpoint(tmp_path / "never", eos_bias=-50.0)), min_length=30)
    assert len(engine.translate("une voiture").steps) == 31  # past 2 · 2 + 10, for the minimum's <eos>


def test_lengths_that_cannot_both_hold_are_refused(tiny_checkpoint):
    result = invoke("dump", "un chien", "--min-length", "5", "--max-length", "5", "--checkpoint", str(tiny_checkpoint))
    assert result.exit_code == 2
    assert "--max-length must be over --min-length, 5" in result.stderr


def test_dump_passes_the_lengths_on(tmp_path):
    checkpoint = build_tiny_checkpoint(tmp_path / "eos", eos_bias=50.0)
    result = invoke("dump", "un chien", "--min-length", "2", "--checkpoint", str(checkpoint))
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["steps"]) == 3
