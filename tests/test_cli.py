"""The command line as a user meets it: output, exit codes, one-line errors, atomic files."""

import json
import os
import signal
import subprocess
import sys
import time

import jsonschema
import pytest
from typer.testing import CliRunner

from attnstep.cli import app
from attnstep.trace import schema

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    # Errors are one line on stderr and a clean exit, never a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def test_dump_one_sentence_is_schema_valid_json(tiny_checkpoint):
    result = invoke("dump", "Une voiture rouge.", "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    jsonschema.validate(data, schema())
    assert [t["surface"] for t in data["source"]] == ["Une", "voiture", "rouge", "."]
    assert data["checkpoint"]["attention"] == "general"


def test_dump_is_byte_identical_across_runs(tiny_checkpoint):
    first = invoke("dump", "un chien noir", "--checkpoint", tiny_checkpoint).stdout_bytes
    assert first == invoke("dump", "un chien noir", "--checkpoint", tiny_checkpoint).stdout_bytes


def test_dump_options_drop_vectors_and_round(tiny_checkpoint):
    data = json.loads(invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, "--no-vectors", "--precision", "2").stdout)
    assert data["vectors"] is False and "encoder_states" not in data and "hidden" not in data["steps"][0]
    assert all(round(w, 2) == w for s in data["steps"] for w in s["weights"])
    jsonschema.validate(data, schema())


def test_dump_file_writes_json_lines_in_order(tiny_checkpoint, tmp_path):
    sentences = ["un chien noir .", "une voiture", "le homme court dans la rue .", "deux femmes ."]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(sentences) + "\n")
    out = tmp_path / "out.jsonl"
    assert invoke("dump", "--input", source, "--output", out, "--checkpoint", tiny_checkpoint, "--batch-size", 3).exit_code == 0
    lines = out.read_bytes().splitlines()
    assert len(lines) == 4
    for sentence, line in zip(sentences, lines):
        data = json.loads(line)
        jsonschema.validate(data, schema())
        assert " ".join(t["surface"] for t in data["source"]) == sentence
    second = tmp_path / "again.jsonl"
    invoke("dump", "--input", source, "--output", second, "--checkpoint", tiny_checkpoint, "--batch-size", 3)
    assert second.read_bytes() == out.read_bytes()


def test_bad_line_leaves_existing_output_untouched(tiny_checkpoint, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("un chien\n\nune voiture\n")
    out = tmp_path / "out.jsonl"
    out.write_text("precious")
    result = invoke("dump", "--input", source, "--output", out, "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 1
    assert result.stderr.strip() == "attnstep: error: line 2: the sentence is empty: type some words to translate"
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def test_interrupted_dump_leaves_no_half_file(tiny_checkpoint, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("un chien noir court dans la rue .\n" * 3000)
    out = tmp_path / "out.jsonl"
    out.write_text("precious")
    process = subprocess.Popen(
        [sys.executable, "-m", "attnstep", "dump", "-i", str(source), "-o", str(out), "--checkpoint", str(tiny_checkpoint)],
        stderr=subprocess.PIPE,
    )
    # Wait until the temporary file exists, i.e. writing has begun, then interrupt.
    while process.poll() is None and not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.decode().strip() == "attnstep: interrupted"
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["dump", "un\x1b[2Jchien"], "control character U+001B"),
        (["dump"], "give either a SENTENCE or --input FILE"),
        (["dump", "x", "--checkpoint", "/nonexistent"], "checkpoint /nonexistent does not exist"),
        (["dump", "--input", "/nonexistent.txt"], "cannot read /nonexistent.txt"),
    ],
)
def test_errors_are_one_line(tiny_checkpoint, args, message):
    if "--checkpoint" not in args:
        args = [*args, "--checkpoint", tiny_checkpoint]
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_schema_command_prints_the_schema():
    assert json.loads(invoke("schema").stdout) == schema()


@pytest.fixture
def tiny_corpus(tmp_path):
    """A few real-looking pairs in the Multi30k file layout."""
    fr = ["un chien noir court .", "une femme marche dans la rue .", "deux hommes dans le parc .", "un homme court ."]
    en = ["a black dog runs .", "a woman walks in the street .", "two men in the park .", "a man runs ."]
    for split in ("train", "val", "test_2016_flickr"):
        (tmp_path / f"{split}.fr").write_text("\n".join(fr * (5 if split == "train" else 1)) + "\n")
        (tmp_path / f"{split}.en").write_text("\n".join(en * (5 if split == "train" else 1)) + "\n")
    return tmp_path


def test_train_resume_and_eval(tiny_corpus, tmp_path):
    out, work = tmp_path / "model", tmp_path / "work"
    common = ["train", "--data", tiny_corpus, "--out", out, "--work", work, "--emb-dim", 8, "--enc-hidden", 8,
              "--dec-hidden", 16, "--batch-size", 4, "--patience", 5]
    assert invoke(*common, "--epochs", 1).exit_code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["provenance"]["epoch"] == 1 and "val_bleu" in config["metrics"]
    resumed = invoke(*common, "--epochs", 2)
    assert resumed.exit_code == 0 and "resuming after epoch 1" in resumed.stdout
    state = json.loads((work / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    changed = invoke(*[a if a != 4 else 2 for a in common], "--epochs", 3)
    assert changed.exit_code == 1 and "other settings" in changed.stderr
    result = invoke("eval", out, "--data", tiny_corpus, "--split", "test_2016_flickr")
    assert result.exit_code == 0
    assert "BLEU = " in result.stdout and "nrefs:1|case:lc" in result.stdout and "chrF = " in result.stdout


def test_convert_to_float16_keeps_the_translation(tiny_checkpoint, tmp_path):
    half = tmp_path / "half"
    assert invoke("convert", tiny_checkpoint, "--out", half).exit_code == 0
    assert (half / "model.safetensors").stat().st_size < (tiny_checkpoint / "model.safetensors").stat().st_size
    assert json.loads((half / "config.json").read_text())["storage_dtype"] == "float16"
    full = json.loads(invoke("dump", "un chien noir", "--checkpoint", tiny_checkpoint).stdout)
    halved = json.loads(invoke("dump", "un chien noir", "--checkpoint", half).stdout)
    assert halved["source"] == full["source"]
    assert halved["checkpoint"]["sha256"] != full["checkpoint"]["sha256"]
    assert invoke("convert", tiny_checkpoint, "--dtype", "int8", "--out", half).exit_code == 1


def test_escape_sequences_in_file_names_are_shown_not_sent(tiny_checkpoint):
    result = invoke("dump", "--input", "/tmp/\x1b[31mevil\x1b]0;title\x07", "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "␛[31mevil" in result.stderr
