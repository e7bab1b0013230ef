"""The command line on bad input (issue 22): one line and a non-zero exit, nothing of the user's lost."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from safetensors import SafetensorError

from attnstep.cli import app
from tests.cli_helpers import invoke, runner

# Python hands a command-line argument that is not UTF-8 over as a str with each bad byte as a
# lone surrogate (U+DC80 + the byte): printf 'caf\xe9 noir' arrives as this.
NOT_UTF8 = "caf\udce9 noir"


@pytest.mark.parametrize(
    "args",
    [
        ["dump", NOT_UTF8],
        ["dump", "un chien", "--target", NOT_UTF8],
        ["translate", NOT_UTF8],
    ],
)
@pytest.mark.parametrize("model", ["tiny_checkpoint", "subword_checkpoint"])
def test_a_sentence_that_is_not_utf8_is_one_line(args, model, request):
    result = invoke(*args, "--checkpoint", request.getfixturevalue(model))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "not valid UTF-8 (byte 0xE9 at position 3)" in result.stderr


SENTENCES = "un chien noir .\nune voiture\n"


def test_dump_reads_a_pipe_once(tiny_checkpoint, tmp_path):
    """A pipe can be read only once: its sentences were read to check them, then found empty."""
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text(SENTENCES)
    command = f"cat {source} | {sys.executable} -m attnstep dump -i /dev/stdin -o {out} --checkpoint {tiny_checkpoint}"
    piped = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120, check=False)
    assert piped.returncode == 0, piped.stderr
    assert [json.loads(line)["source"][1]["surface"] for line in out.read_text().splitlines()] == ["chien", "voiture"]
    assert "2 traces" in piped.stderr


def test_dash_reads_stdin(tiny_checkpoint):
    result = runner.invoke(
        app, ["dump", "-i", "-", "--format", "pharaoh", "--checkpoint", str(tiny_checkpoint)], input=SENTENCES
    )
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


@pytest.mark.parametrize("through", ["itself", "a link", "a hard link"])
def test_dump_refuses_to_write_over_its_input(tiny_checkpoint, tmp_path, through):
    source = tmp_path / "test.fr"
    source.write_text(SENTENCES)
    out = {"itself": source, "a link": tmp_path / "link.fr", "a hard link": tmp_path / "hard.fr"}[through]
    if through == "a link":
        out.symlink_to(source)
    elif through == "a hard link":
        out.hardlink_to(source)
    result = invoke("dump", "-i", source, "--format", "pharaoh", "-o", out, "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 1
    assert result.stderr == f"attnstep: error: {out} is the input {source}: give another --output\n"
    assert source.read_text() == SENTENCES


# --- a full disk while a checkpoint or a run's state is saved --------------------------------------

ENOSPC_MESSAGE = (
    'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
)


@pytest.fixture
def full_disk(monkeypatch):
    """safetensors' writes fail as they do on a full disk; → the names of the files they tried."""
    import safetensors.torch

    tried = []

    def serialize_file(tensors, filename, metadata=None):
        tried.append(os.path.basename(filename))
        raise SafetensorError(ENOSPC_MESSAGE)

    monkeypatch.setattr(safetensors.torch, "serialize_file", serialize_file)
    return tried


def files_in(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_convert_on_a_full_disk_is_one_line_and_keeps_the_checkpoint(tiny_checkpoint, tmp_path, full_disk):
    copy = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, copy)
    before = files_in(tmp_path)
    for args in (["convert", copy], ["convert", copy, "--out", tmp_path / "half"]):
        result = invoke(*args)
        assert result.exit_code == 1
        target = args[-1]
        assert result.stderr == f"attnstep: error: cannot write checkpoint {target}: No space left on device\n"
        assert files_in(tmp_path) == before
    assert full_disk == ["model.safetensors", "model.safetensors"]


TRAIN = ["--emb-dim", 8, "--enc-hidden", 8, "--dec-hidden", 16, "--batch-size", 4]


@pytest.fixture
def corpus(tmp_path):
    fr = ["un chien noir court .", "une femme marche dans la rue .", "deux hommes dans le parc ."]
    en = ["a black dog runs .", "a woman walks in the street .", "two men in the park ."]
    for split in ("train", "val"):
        (tmp_path / f"{split}.fr").write_text("\n".join(fr * 3) + "\n")
        (tmp_path / f"{split}.en").write_text("\n".join(en * 3) + "\n")
    return tmp_path


def test_train_on_a_full_disk_is_one_line(corpus, tmp_path, full_disk):
    out, work = tmp_path / "model", tmp_path / "work"
    result = invoke("train", "--data", corpus, "--out", out, "--work", work, "--epochs", 1, *TRAIN)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"attnstep: error: cannot write checkpoint {out}: No space left on device"
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]


def test_saving_a_runs_state_on_a_full_disk_is_one_line_and_keeps_the_last(corpus, tmp_path, monkeypatch):
    out, work = tmp_path / "model", tmp_path / "work"
    common = ["train", "--data", corpus, "--out", out, "--work", work, *TRAIN]
    assert invoke(*common, "--epochs", 1).exit_code == 0
    state = {name: (work / name).read_bytes() for name in ("state.json", "state.safetensors")}
    import safetensors.torch

    real = safetensors.torch.serialize_file

    def full_for_the_state(tensors, filename, metadata=None):
        if "state" in os.path.basename(filename):
            raise SafetensorError(ENOSPC_MESSAGE)
        real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "serialize_file", full_for_the_state)
    result = invoke(*common, "--epochs", 2)
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[-1]
        == f"attnstep: error: cannot save the run's state in {work}: No space left on device"
    )
    assert {name: (work / name).read_bytes() for name in state} == state
    assert not [p.name for p in work.iterdir() if p.name.endswith(".tmp")]


# --- a checkpoint whose JSON is hostile --------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "file, text, message",
    [
        ("config.json", '{"format_version": 1, "model": ' + DEEP + "}", "cannot read {}: JSON nested too deeply"),
        ("src_vocab.json", '{"tokens": ' + DEEP + "}", "cannot read vocabulary {}: JSON nested too deeply"),
        ("config.json", '{"format_version": 1, "model": "notadict"}', "{}: 'model' must be an object of settings"),
    ],
    ids=["deep config", "deep vocabulary", "model not an object"],
)
def test_a_hostile_checkpoint_file_is_one_line(tiny_checkpoint, tmp_path, file, text, message):
    copy = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, copy)
    (copy / file).write_text(text)
    result = invoke("dump", "un chien", "--checkpoint", copy)
    assert result.exit_code == 1
    assert result.stderr == f"attnstep: error: {message.format(copy / file)}\n"


def test_an_out_folder_with_a_deep_config_is_refused_in_one_line(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text(DEEP)
    result = invoke("convert", tiny_checkpoint, "--out", out)
    assert result.exit_code == 1 and "is a folder with other files in it" in result.stderr


def test_serve_with_a_deep_config_is_one_line(tiny_checkpoint, tmp_path):
    copy = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, copy)
    (copy / "config.json").write_text('{"format_version": 1, "model": ' + DEEP + "}")
    result = invoke("serve", "--checkpoint", copy, "--allow-anonymous", "--host-key", tmp_path / "key", "--port", 0)
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[-1] == f"attnstep: error: cannot read {copy / 'config.json'}: JSON nested too deeply"
    )


# --- a standard test set as it is: a stray control character, a blank line, a line not UTF-8 ---------


def test_dump_translates_a_test_set_with_a_control_character_and_a_blank_line(tiny_checkpoint, tmp_path):
    """newstest2014's French has a U+0096 on line 730; test sets have blank lines."""
    source, out = tmp_path / "test.fr", tmp_path / "out.jsonl"
    source.write_text("un chien\n\nune \x96 voiture\n")
    result = invoke("dump", "-i", source, "-o", out, "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "attnstep: 1 control character replaced by U+FFFD for the model, on line 3"
    )
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[1]) is None  # a blank line: no trace, the lines stay aligned
    third = json.loads(lines[2])
    assert [t["surface"] for t in third["source"]] == ["une", "<U+0096>", "voiture"]
    assert third["source"][1]["token"] == "<unk>"
    pharaoh = invoke("dump", "-i", source, "--format", "pharaoh", "--checkpoint", tiny_checkpoint)
    assert pharaoh.exit_code == 0 and pharaoh.stdout.split("\n")[1] == ""


@pytest.mark.parametrize("model", ["tiny_checkpoint", "subword_checkpoint"])
def test_dump_names_the_line_that_is_not_utf8(model, tmp_path, request):
    source = tmp_path / "test.fr"
    source.write_bytes(b"un chien\nune voiture\ncaf\xe9 noir\n")
    result = invoke("dump", "-i", source, "--checkpoint", request.getfixturevalue(model))
    assert result.exit_code == 1
    assert result.stderr == f"attnstep: error: {source} line 3 is not UTF-8 (byte 0xE9 at byte 4)\n"


def test_eval_names_the_line_that_is_not_utf8_and_leaves_a_blank_line_blank(tiny_checkpoint, tmp_path):
    (tmp_path / "t.fr").write_bytes(b"un chien\n\nune \xc2\x96 voiture\n")
    (tmp_path / "t.en").write_text("a dog\n\na car\n")
    output = tmp_path / "hyp.txt"
    result = invoke("eval", tiny_checkpoint, "--corpus", tmp_path / "t.{lang}", "--output", output)
    assert result.exit_code == 0, result.stderr
    assert "attnstep: 1 control character replaced by U+FFFD for the model, on line 3\n" in result.stderr
    assert output.read_text().split("\n")[1] == ""  # a blank line's translation is empty
    (tmp_path / "t.en").write_bytes(b"a dog\n\na c\xe9r\n")
    result = invoke("eval", tiny_checkpoint, "--corpus", tmp_path / "t.{lang}")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"attnstep: error: cannot read {tmp_path / 't.en'}: line 3 is not UTF-8 (byte 0xE9 at byte 4)\n"
    )
