"""dump for corpus work (issue 22): pipes answered a line at a time, plain text, n-best lists, length limits."""

import json
import select
import subprocess
import sys
from dataclasses import asdict

import pytest

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.errors import AttnstepError
from attnstep.text.words import EOS_ID
from attnstep.trace.reader import InconsistentTrace, parse
from attnstep.trace.writer import trace_file_bytes
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


def n_best_trace(checkpoint, *args: str) -> dict:
    result = invoke(
        "dump", "une voiture rouge .", "--beam", "4", "--n-best", "3", *args, "--checkpoint", str(checkpoint)
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# none finished by the length limit; two finished, then one the limit stopped
@pytest.mark.parametrize(("eos_bias", "limit"), [(0.0, ()), (1.0, ("--max-length", "2"))])
def test_n_best_lists_the_beams_best_results_first(tmp_path, eos_bias, limit):
    data = n_best_trace(build_tiny_checkpoint(tmp_path / "tiny", eos_bias=eos_bias), "--no-vectors", *limit)
    listed = data["beam"]["n_best"]
    steps = data["beam"]["steps"]
    assert len(listed) == 3
    assert listed[0]["translation"] == data["translation"]
    assert (listed[0]["step"], listed[0]["index"]) == (len(data["steps"]) - 1, data["beam"]["best"])
    hypotheses = [steps[r["step"]][r["index"]] for r in listed]
    assert [(h["score"], h["normalized"]) for h in hypotheses] == [(r["score"], r["normalized"]) for r in listed]
    finished = [h["status"] == "finished" for h in hypotheses]
    assert finished == sorted(finished, reverse=True)  # the finished ones first
    for part in (True, False):
        ranked = [r["normalized"] for r, f in zip(listed, finished) if f == part]
        assert ranked == sorted(ranked, reverse=True)
    trace = parse(json.dumps(data))
    assert trace.beam is not None and [asdict(r) for r in trace.beam.n_best] == listed
    assert json.loads(trace_file_bytes(trace))["beam"]["n_best"] == listed


def test_without_n_best_a_trace_has_no_list(tiny_checkpoint):
    result = invoke("dump", "une voiture", "--beam", "3", "--checkpoint", str(tiny_checkpoint))
    assert result.exit_code == 0, result.stderr
    assert "n_best" not in json.loads(result.stdout)["beam"]


def test_the_reader_refuses_an_n_best_list_that_does_not_start_with_the_best(tiny_checkpoint):
    data = n_best_trace(tiny_checkpoint, "--no-vectors")
    data["beam"]["n_best"].reverse()
    with pytest.raises(InconsistentTrace, match="does not start with the beam's best"):
        parse(json.dumps(data))
    data["beam"]["n_best"][0]["index"] = 99
    with pytest.raises(InconsistentTrace, match="is not a result of the search"):
        parse(json.dumps(data))


def test_n_best_text_is_n_numbered_lines_per_input_line(tmp_path):
    checkpoint = build_tiny_checkpoint(tmp_path / "tiny", eos_bias=3.0)
    source = tmp_path / "in.fr"
    source.write_text(SENTENCES)
    common = ("dump", "-i", str(source), "--beam", "4", "--checkpoint", str(checkpoint))
    traces = invoke(*common, "--n-best", "2")
    text = invoke(*common, "--n-best", "2", "--format", "text", "--scores")
    assert traces.exit_code == text.exit_code == 0, text.stderr
    expected = [json.loads(line) for line in traces.stdout.splitlines()]
    assert expected[1] is None
    lines = [line.split("\t") for line in text.stdout.splitlines()]
    assert [line[0] for line in lines] == ["1", "1", "2", "3", "3"]
    assert lines[2] == ["2", ""]  # a blank line: one empty translation
    for got, trace in zip((lines[0:2], lines[3:5]), expected[::2]):
        assert [line[1] for line in got] == [r["translation"] for r in trace["beam"]["n_best"]]
        assert [float(line[2]) for line in got] == pytest.approx(
            [r["score"] for r in trace["beam"]["n_best"]], abs=1e-4
        )
        assert got[0][1] == trace["translation"]
        assert float(got[0][2]) == pytest.approx(sum(s["chosen"]["logprob"] for s in trace["steps"]), abs=1e-4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--n-best", "2"), "--n-best goes with --beam K"),
        (("--beam", "2", "--n-best", "3"), "--n-best must be at most --beam, 2, not 3"),
        (("--beam", "2", "--n-best", "2", "--format", "pharaoh"), "--n-best goes with --format json or text"),
        (("--beam", "2", "--n-best", "0"), "--n-best must be at least 1, not 0"),
    ],
)
def test_n_best_mistakes_are_usage_errors(tiny_checkpoint, args, message):
    result = invoke("dump", "un chien", *args, "--checkpoint", str(tiny_checkpoint))
    assert result.exit_code == 2
    assert message in result.stderr


def test_the_stepper_refuses_an_n_best_list_it_cannot_fill(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    with pytest.raises(AttnstepError, match="needs a beam search"):
        Stepper(checkpoint, n_best=2)
    with pytest.raises(AttnstepError, match="1 to the beam's width, 2, not 3"):
        Stepper(checkpoint, beam=2, n_best=3)
