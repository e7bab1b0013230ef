"""The command line on bad input (issue 22): one line and a non-zero exit, nothing of the user's lost."""

import json
import subprocess
import sys

import pytest

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
