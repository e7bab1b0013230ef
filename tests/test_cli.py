"""The command line as a user meets it: output, exit codes, one-line errors, atomic files."""

import fcntl
import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pyte
import pytest

from attnstep import __version__
from attnstep.trace.reader import schema
from tests.cli_helpers import TINY_MODEL, invoke, write_parallel


def attnstep(*args, **kwargs) -> subprocess.CompletedProcess:
    """The real console entry point in a child process: signal handling, exit codes and stdout at exit included."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "attnstep", *map(str, args)], timeout=120, **kwargs, check=False)


def test_dump_one_sentence_is_schema_valid_json(tiny_checkpoint):
    result = invoke("dump", "Une voiture rouge.", "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    jsonschema.validate(data, schema())
    assert [t["surface"] for t in data["source"]] == ["Une", "voiture", "rouge", "."]
    assert data["checkpoint"]["attention"] == "general"


@pytest.mark.slow
def test_dump_is_byte_identical_across_runs(tiny_checkpoint):
    """Separate processes, with different hash seeds, write the same bytes."""
    runs = [
        attnstep("dump", "un chien noir", "--checkpoint", tiny_checkpoint, env={**os.environ, "PYTHONHASHSEED": seed})
        for seed in ("1", "2")
    ]
    assert runs[0].returncode == 0 and runs[0].stdout == runs[1].stdout
    assert runs[0].stdout == invoke("dump", "un chien noir", "--checkpoint", tiny_checkpoint).stdout_bytes


def test_dump_options_drop_vectors_and_round(tiny_checkpoint):
    data = json.loads(
        invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, "--no-vectors", "--precision", "2").stdout
    )
    assert data["vectors"] is False and "encoder_states" not in data and "hidden" not in data["steps"][0]
    assert all(round(w, 2) == w for s in data["steps"] for w in s["weights"])
    jsonschema.validate(data, schema())


def test_dump_file_writes_json_lines_in_order(tiny_checkpoint, tmp_path):
    sentences = ["un chien noir .", "une voiture", "le homme court dans la rue .", "deux femmes ."]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(sentences) + "\n")
    out = tmp_path / "out.jsonl"
    assert (
        invoke("dump", "--input", source, "--output", out, "--checkpoint", tiny_checkpoint, "--batch-size", 3).exit_code
        == 0
    )
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
    source.write_text("un chien\n" + "un " * 101 + "\nune voiture\n")
    out = tmp_path / "out.jsonl"
    out.write_text("precious")
    result = invoke("dump", "--input", source, "--output", out, "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 1
    assert result.stderr.strip() == "attnstep: error: line 2: the sentence has 101 tokens; the maximum is 100"
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["dump", "un\x1b[2Jchien"], "control character U+001B"),
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


def test_checkpoint_names_are_looked_up_where_attnstep_checkpoints_says(tiny_checkpoint, tmp_path, monkeypatch):
    """After a `pip install .` the shipped models stay in the clone: the variable points there."""
    shutil.copytree(tiny_checkpoint, tmp_path / "models" / "mine")
    monkeypatch.setenv("ATTNSTEP_CHECKPOINTS", str(tmp_path / "models"))
    assert invoke("dump", "un chien", "--checkpoint", "mine").exit_code == 0
    missing = invoke("dump", "un chien", "--checkpoint", "fr-en")
    assert missing.stderr == f"attnstep: error: checkpoint fr-en does not exist (names under {tmp_path}/models: mine)\n"
    monkeypatch.setenv("ATTNSTEP_CHECKPOINTS", str(tmp_path / "empty"))
    none = invoke("dump", "un chien", "--checkpoint", "fr-en")
    assert none.exit_code == 1 and none.stderr.count("\n") == 1
    assert (
        f"no checkpoints under {tmp_path}/empty: set ATTNSTEP_CHECKPOINTS to the folder that holds them" in none.stderr
    )


def test_schema_command_prints_the_schema():
    assert json.loads(invoke("schema").stdout) == schema()


@pytest.fixture
def tiny_corpus(tmp_path):
    """A few real-looking pairs in the Multi30k file layout."""
    fr = ["un chien noir court .", "une femme marche dans la rue .", "deux hommes dans le parc .", "un homme court ."]
    en = ["a black dog runs .", "a woman walks in the street .", "two men in the park .", "a man runs ."]
    for split in ("train", "val", "test_2016_flickr"):
        write_parallel(tmp_path, split, list(zip(fr, en)) * (5 if split == "train" else 1))
    return tmp_path


@dataclass(frozen=True)
class Training:
    args: list  # attnstep train … of a tiny model on the tiny corpus, batches of 4
    out: Path  # its --out
    work: Path  # its --work


@pytest.fixture
def training(tiny_corpus, tmp_path) -> Training:
    out, work = tmp_path / "model", tmp_path / "work"
    return Training(["train", "--data", tiny_corpus, "--out", out, "--work", work, *TINY_MODEL], out, work)


def test_train_resume_and_eval(training, tiny_corpus):
    out, work = training.out, training.work
    common = [*training.args, "--patience", 5]
    assert invoke(*common, "--epochs", 1).exit_code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["provenance"]["epoch"] == 1 and "val_bleu" in config["metrics"]
    # Storing the weights in float16 is not a different experiment: the run resumes.
    resumed = invoke(*common, "--epochs", 2, "--dtype", "float16")
    assert resumed.exit_code == 0 and "resuming after epoch 1" in resumed.stdout
    state = json.loads((work / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    changed = invoke(*[a if a != 4 else 2 for a in common], "--epochs", 3)
    assert changed.exit_code == 1 and "other settings" in changed.stderr
    # A run started by an attnstep that lacked an option (here --init) resumes: its default is assumed.
    settings = json.loads((work / "settings.json").read_text())
    del settings["init"]
    (work / "settings.json").write_text(json.dumps(settings))
    older = invoke(*common, "--epochs", 3)
    assert older.exit_code == 0 and "resuming after epoch 2" in older.stdout
    result = invoke("eval", out, "--data", tiny_corpus, "--split", "test_2016_flickr")
    assert result.exit_code == 0
    assert "BLEU = " in result.stdout and "nrefs:1|case:lc" in result.stdout and "chrF = " in result.stdout


def test_a_run_stopped_inside_an_epoch_resumes_there_and_trains_as_an_uninterrupted_one(training, monkeypatch):
    """20 pairs in batches of 4: 5 batches an epoch. One run is killed at its 8th batch, having saved its
    state after every batch; resumed, it must end with the very weights of a run never stopped, dropout
    included."""
    import torch
    from safetensors.torch import load_file

    from attnstep.cli import app
    from attnstep.commands import train
    from tests.cli_helpers import runner

    whole = [*training.args, "--epochs", 2, "--patience", 5]
    assert invoke(*[a if a != training.work else training.work.with_name("whole") for a in whole]).exit_code == 0
    train_step, calls = train._train_step, []

    def killed_at_the_eighth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt  # what a stopped session does to a run, short of SIGKILL
        return train_step(*args, **kwargs)

    monkeypatch.setattr(train, "_train_step", killed_at_the_eighth)
    stopped = runner.invoke(app, [str(a) for a in [*whole, "--save-every", 1e-9]])
    assert isinstance(stopped.exception, KeyboardInterrupt) or stopped.exit_code != 0
    monkeypatch.setattr(train, "_train_step", train_step)
    resumed = invoke(*whole)
    assert resumed.exit_code == 0 and "resuming inside epoch 2, after batch 2 " in resumed.stdout
    uninterrupted, after_stop = (
        load_file(training.work.with_name("whole") / "state.safetensors"),
        load_file(training.work / "state.safetensors"),
    )
    weights = [name for name in uninterrupted if name.startswith("model.")]
    assert weights and all(torch.equal(uninterrupted[name], after_stop[name]) for name in weights)
    losses = [
        [epoch["train_loss"] for epoch in json.loads((folder / "state.json").read_text())["history"]]
        for folder in (training.work.with_name("whole"), training.work)
    ]
    assert losses[0] == losses[1]


def test_averaging_the_last_epochs_makes_a_checkpoint_of_their_mean_weights(training, tmp_path):
    import torch
    from safetensors.torch import load_file

    from attnstep.engine.checkpoint import load_checkpoint

    assert invoke(*training.args, "--epochs", 3, "--patience", 5, "--keep-epochs", 2).exit_code == 0
    kept = sorted(path.name for path in (training.work / "epochs").iterdir())
    assert kept == ["epoch-2.safetensors", "epoch-3.safetensors"]  # the first one dropped as the third came
    averaged = tmp_path / "averaged"
    result = invoke("average", "--work", training.work, "--last", 2, "--out", averaged)
    assert result.exit_code == 0, result.stderr
    assert "average of epochs 2, 3: val BLEU" in result.stdout and "the best single epoch" in result.stdout
    epochs = [load_file(training.work / "epochs" / name) for name in kept]
    weights = load_checkpoint(averaged).model.state_dict()
    assert all(torch.allclose(weights[name], (epochs[0][name] + epochs[1][name]) / 2) for name in epochs[0])
    config = json.loads((averaged / "config.json").read_text())
    assert config["provenance"]["averaged_epochs"] == [2, 3] and "val_bleu" in config["metrics"]
    too_many = invoke("average", "--work", training.work, "--last", 3, "--out", tmp_path / "x")
    assert too_many.exit_code == 1 and "--last must be from 2 to the 2 epochs" in too_many.stderr
    nothing = invoke("average", "--work", tmp_path / "nowhere", "--out", tmp_path / "y")
    assert nothing.exit_code == 1 and "holds no training run" in nothing.stderr


def test_the_train_log_is_not_wrapped_in_a_pipe(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    out = tmp_path / "a-checkpoint-folder-whose-path-makes-the-last-line-longer-than-80-columns"
    args = ["--data", tiny_corpus, "--out", out, "--work", tmp_path / "w", "--epochs", 1, "--emb-dim", 8]
    result = invoke("train", *args, "--enc-hidden", 8, "--dec-hidden", 16)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].startswith("done: ") and result.stdout.endswith(f"checkpoint in {out}\n")


def test_train_stores_float16_weights_when_asked(training, tiny_corpus, tmp_path):
    out = training.out
    result = invoke(*training.args, "--epochs", 1, "--dtype", "float16")
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "config.json").read_text())["storage_dtype"] == "float16"
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", "pt") as weights:
        assert {weights.get_slice(name).get_dtype() for name in weights.keys()} == {"F16"}  # noqa: SIM118 (safe_open has keys(), no iteration)
    refused = invoke("train", "--data", tiny_corpus, "--out", tmp_path / "x", "--dtype", "int8")
    assert refused.exit_code == 2 and "--dtype must be float16, bfloat16 or float32, not 'int8'" in refused.stderr


def test_the_dtype_choices_are_the_engines_storage_types():
    from attnstep.commands.train_settings import STORAGE_TYPES as choices
    from attnstep.engine.checkpoint import STORAGE_TYPES

    assert choices == tuple(STORAGE_TYPES)


def test_convert_to_float16_keeps_the_translation(tiny_checkpoint, tmp_path):
    half = tmp_path / "half"
    assert invoke("convert", tiny_checkpoint, "--out", half).exit_code == 0
    assert (half / "model.safetensors").stat().st_size < (tiny_checkpoint / "model.safetensors").stat().st_size
    assert json.loads((half / "config.json").read_text())["storage_dtype"] == "float16"
    full = json.loads(invoke("dump", "un chien noir", "--checkpoint", tiny_checkpoint).stdout)
    halved = json.loads(invoke("dump", "un chien noir", "--checkpoint", half).stdout)
    assert halved["source"] == full["source"]
    assert halved["output_tokens"] == full["output_tokens"] and halved["translation"] == full["translation"]
    # Rounding the weights to float16 moves the attention weights only a little.
    assert (
        max(abs(a - b) for s, t in zip(full["steps"], halved["steps"]) for a, b in zip(s["weights"], t["weights"]))
        < 1e-2
    )
    assert halved["checkpoint"]["sha256"] != full["checkpoint"]["sha256"]
    assert invoke("convert", tiny_checkpoint, "--dtype", "int8", "--out", half).exit_code == 2


def test_escape_sequences_in_file_names_are_shown_not_sent(tiny_checkpoint):
    result = invoke("dump", "--input", "/tmp/\x1b[31mevil\x1b]0;title\x07", "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "␛[31mevil" in result.stderr


# --- output files: nothing a user owns is destroyed, every failure is one line (issue 8) -----------


def test_output_to_a_fifo_is_written_in_place(tiny_checkpoint, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, "-o", fifo)
    reader.join(60)
    assert result.exit_code == 0
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert json.loads(received[0])["source"][0]["surface"] == "un"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device file needs root")
def test_output_to_a_device_keeps_the_device(tiny_checkpoint, tmp_path):
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    assert invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, "-o", null).exit_code == 0
    assert stat.S_ISCHR(null.lstat().st_mode)


needs_dev_full = pytest.mark.skipif(
    not (os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)),
    reason="needs the /dev/full device",
)


@needs_dev_full
def test_a_full_device_is_one_line_and_stays_a_device(tiny_checkpoint):
    result = invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, "-o", "/dev/full")
    assert result.exit_code == 1
    assert result.stderr == "attnstep: error: cannot write /dev/full: No space left on device\n"
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


@pytest.mark.slow
@needs_dev_full
@pytest.mark.parametrize(
    "args", [["dump", "un chien", "--checkpoint"], ["dump", "un chien", "-o", "-", "--checkpoint"], ["schema"]]
)
def test_stdout_on_a_full_disk_is_one_line(tiny_checkpoint, args):
    if args[-1] == "--checkpoint":
        args = [*args, tiny_checkpoint]
    with open("/dev/full", "wb") as full:
        result = attnstep(*args, stdout=full)
    assert result.returncode == 1
    assert result.stderr.decode() == "attnstep: error: cannot write standard output: No space left on device\n"


def test_dash_is_stdout(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, "-o", "-")
    assert result.exit_code == 0 and json.loads(result.stdout)["translation"] is not None
    assert list(tmp_path.iterdir()) == []


def test_a_link_is_followed_and_kept_and_the_mode_too(tiny_checkpoint, tmp_path):
    target, link = tmp_path / "trace.json", tmp_path / "link.json"
    target.write_text("old")
    target.chmod(0o600)
    link.symlink_to(target)
    assert invoke("dump", "un chien", "--checkpoint", tiny_checkpoint, "-o", link).exit_code == 0
    assert link.is_symlink() and json.loads(target.read_text())["source"][0]["surface"] == "un"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "where, message",
    [
        ("missing/out.json", "cannot write {tmp}/missing/out.json: No such file or directory"),
        (".", "cannot write {tmp}: Is a directory"),
    ],
)
def test_unwritable_outputs_are_one_line(tiny_checkpoint, tmp_path, where, message):
    out = tmp_path / where
    for args in (["un chien"], ["--input", tmp_path / "in.txt"]):
        (tmp_path / "in.txt").write_text("un chien\n")
        result = invoke("dump", *args, "--checkpoint", tiny_checkpoint, "-o", out)
        assert result.exit_code == 1
        assert result.stderr == "attnstep: error: " + message.format(tmp=tmp_path) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_dump_leaves_no_temporary_file(tiny_checkpoint, tmp_path, signum):
    source = tmp_path / "in.txt"
    source.write_text("un chien noir court dans la rue .\n" * 3000)
    out = tmp_path / "out.jsonl"
    out.write_text("precious")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "attnstep",
            "dump",
            "-i",
            str(source),
            "-o",
            str(out),
            "--checkpoint",
            str(tiny_checkpoint),
        ],
        stderr=subprocess.PIPE,
    )
    # Wait until the temporary file exists, i.e. writing has begun, then stop the process.
    while process.poll() is None and not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        time.sleep(0.01)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    assert (
        stderr.decode()
        == "attnstep: "
        + {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}[signum]
        + "\n"
    )
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


@pytest.mark.slow
def test_dump_input_memory_does_not_grow_with_the_file(tiny_checkpoint, tmp_path, monkeypatch):
    """Python's peak allocation for 96 lines is that for 16: finished lines wait in a file, not in memory."""
    from attnstep.commands import dump
    from attnstep.engine.stepper import load_stepper

    monkeypatch.setattr(dump, "SPOOL_BYTES", 1)  # every line goes to the file, as full-vector lines do
    stepper = load_stepper(tiny_checkpoint, top_k=5, vectors=True)

    def peak(lines: int) -> int:
        source = tmp_path / f"{lines}.txt"
        source.write_text("un chien noir court dans la rue .\nune femme .\n" * (lines // 2))
        tracemalloc.start()
        for _ in dump.trace_lines(stepper, dump.stream_sentences(source), 4, None):
            pass
        _, high = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return high

    peak(16)  # first use: lazy imports and caches are not the file's
    short, long = peak(16), peak(96)
    assert long < short * 1.5, (short, long)  # lines held in memory would make it ×4


def test_dump_input_reports_what_it_wrote(tiny_checkpoint, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("un chien\nune voiture\n")
    result = invoke("dump", "-i", source, "-o", tmp_path / "out.jsonl", "--checkpoint", tiny_checkpoint)
    size = (tmp_path / "out.jsonl").stat().st_size
    assert re.fullmatch(
        rf"attnstep: 2 traces, {size / 1e3:.1f} KB, written to {tmp_path}/out.jsonl in \d+\.\d s\n", result.stderr
    )


# --- checkpoints written over something else ---------------------------------------------------------


def test_convert_refuses_to_replace_a_file_or_a_foreign_folder(tiny_checkpoint, tmp_path):
    file, folder = tmp_path / "notes.txt", tmp_path / "photos"
    file.write_text("mine")
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "a.jpg").write_text("jpeg")
    for out, message in ((file, "exists and is not a folder"), (folder, "not an attnstep checkpoint")):
        result = invoke("convert", tiny_checkpoint, "--out", out)
        assert result.exit_code == 1 and message in result.stderr and result.stderr.count("\n") == 1
    assert file.read_text() == "mine" and (folder / "2024" / "a.jpg").read_text() == "jpeg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "photos"]


def test_replacing_a_checkpoint_keeps_everything_else_in_it(tiny_checkpoint, tmp_path):
    ckpt = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, ckpt)
    (ckpt / "README.md").write_text("card")
    (ckpt / "notes").mkdir()
    (ckpt / "notes" / "run.log").write_text("log")
    (ckpt / "script.sh").write_text("#!/bin/sh\n")
    (ckpt / "script.sh").chmod(0o755)
    (tmp_path / ".ck.old").mkdir()  # a folder of the user's with the name a replaced checkpoint once took
    (tmp_path / ".ck.old" / "keep").write_text("keep")
    assert invoke("convert", ckpt, "--dtype", "float16").exit_code == 0
    assert (ckpt / "README.md").read_text() == "card" and (ckpt / "notes" / "run.log").read_text() == "log"
    assert stat.S_IMODE((ckpt / "script.sh").stat().st_mode) == 0o755
    assert (tmp_path / ".ck.old" / "keep").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ck.old", "ck"]


def test_train_refuses_an_out_file_before_training(tiny_corpus, tmp_path):
    out = tmp_path / "model"
    out.write_text("mine")
    result = invoke("train", "--data", tiny_corpus, "--out", out, "--work", tmp_path / "work")
    assert result.exit_code == 1 and "exists and is not a folder" in result.stderr
    assert out.read_text() == "mine" and not (tmp_path / "work").exists()


def test_a_rejected_train_does_not_block_the_corrected_one(training):
    common = [*training.args, "--epochs", 1]
    # A name that is not a choice is a usage error (status 2); a value the model refuses, a failed run (1).
    for bad, status in ((["--attention", "bogus"], 2), (["--lr", "-1"], 1)):
        rejected = invoke(*common, *bad)
        assert rejected.exit_code == status and rejected.stderr.count("\n") == 1
    assert not training.work.exists()
    assert invoke(*common).exit_code == 0


def test_a_run_that_never_trained_leaves_its_work_folder_to_the_next(training):
    """The tiny corpus cannot make 300 pieces: SentencePiece's refusal in attnstep's terms, then a retry."""
    common = [*training.args, "--epochs", 1]
    failed = invoke(*common, "--tokenizer", "subword", "--vocab-size", 300)
    assert failed.exit_code == 1 and failed.stderr.count("\n") == 1
    assert "fewer than the 300 asked for (--vocab-size)" in failed.stderr and "character_coverage" not in failed.stderr
    retried = invoke(*common)  # other settings: words
    assert retried.exit_code == 0, retried.stderr
    assert not (training.work / "source.spm").exists()
    # Once a run has trained an epoch, other settings are refused, saying which.
    changed = invoke(*[a if a != 4 else 2 for a in common])
    assert changed.exit_code == 1 and "(--batch-size 4 → 2)" in changed.stderr


# --- the command line itself ----------------------------------------------------------------------------


def test_help_shows_formulas_as_written():
    assert "[h_t; C_t]" in invoke("dump", "--help").stdout


COMMANDS = ["train", "translate", "replay", "eval", "dump", "compare", "plot", "schema", "convert", "serve"]
COMMANDS += ["serve add-user", "data", "data get"]


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("group", ["", "serve", "data"])
def test_command_lists_give_whole_summaries(group, columns, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(columns))
    listing = invoke(*group.split(), "--help").stdout.split("Commands:\n")[1]
    summaries = [line.split(maxsplit=1)[1] for line in listing.splitlines() if line.strip()]
    assert summaries and all(summary.endswith(".") and not summary.endswith("...") for summary in summaries)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_says_what_to_type(command, monkeypatch):
    """Every option's value has a name a newcomer can fill in (FILE, N), not a Python type or a parameter's name."""
    monkeypatch.setenv("COLUMNS", "80")
    help = invoke(*command.split(), "--help").stdout
    usage, options = help.splitlines()[0], help.split("Options:\n")[1]
    assert not re.search(r"[{}_]", usage), usage
    assert not re.search(r"<(str|path|int|float|list)\b", options), options
    assert "--no-allow-anonymous" not in options  # a switch off unless given, as --by-length is


@pytest.mark.parametrize(
    "args, message",
    [
        (["dump", "x", "--top-k", "0"], "--top-k must be at least 1, not 0"),
        (["dump", "x", "--top-k", "2.5"], "--top-k must be a whole number, not 2.5"),
        (["dump", "x", "--align-threshold", "2"], "--align-threshold must be at most 1, not 2"),
        (["dump", "x", "--alpha", "much"], "--alpha must be a number, not much"),
        (
            ["train", "--out", "o", "--attention", "luong"],
            "--attention must be dot, general, concat, additive or none, not 'luong'",
        ),
        (["train", "--out", "o", "--tokenizer", "bpe"], "--tokenizer must be words or subword, not 'bpe'"),
        (["serve", "--port", "70000"], "--port must be at most 65535, not 70000"),
    ],
)
def test_a_refused_value_is_said_in_plain_words(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"attnstep: error: {message} (see `") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [[], ["x", "--input", "f.txt"], ["x", "--target", "y", "--beam", "2"], ["x", "--words"]],
)
def test_options_that_do_not_go_together_are_a_usage_error(args):
    result = invoke("dump", *args)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1


def test_shell_completion_is_offered():
    assert "--install-completion" in invoke("--help").stdout
    command = os.path.join(os.path.dirname(sys.executable), "attnstep")  # completion is keyed to the program's name
    # Typer finds the shell among the program's ancestors: run it from bash, as a user would (the "; true"
    # keeps bash from replacing itself with the program), not from whatever started the tests.
    from_bash = ["bash", "-c", f"{shlex.quote(command)} --show-completion; true"]
    script = subprocess.run(from_bash, capture_output=True, check=True).stdout.decode()
    assert "_ATTNSTEP_COMPLETE=complete_bash" in script
    env = {
        **os.environ,
        "_ATTNSTEP_COMPLETE": "complete_bash",
        "COMP_WORDS": "attnstep train --tokenizer ",
        "COMP_CWORD": "3",
    }
    assert subprocess.run([command], env=env, capture_output=True, check=True).stdout.split() == [b"words", b"subword"]


@pytest.mark.slow
def test_version_and_short_help():
    assert attnstep("--version").stdout.decode() == f"attnstep {__version__}\n"
    short = invoke("dump", "-h")
    assert short.exit_code == 0 and "--no-vectors" in short.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["dump", "x", "--top-k", "0"], "--top-k must be at least 1, not 0"),
        (["replay"], "Missing argument 'TRACE.json'"),
        (["bogus"], "No such command 'bogus'"),
    ],
)
def test_usage_errors_are_one_line(args, message):
    result = attnstep(*args)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnstep: error: ") and message in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["translate", "replay"])
def test_the_app_without_a_terminal_says_so(command, tiny_checkpoint, tmp_path):
    trace = tmp_path / "t.json"
    trace.write_bytes(invoke("dump", "un chien", "--checkpoint", tiny_checkpoint).stdout_bytes)
    args = ["translate", "un chien", "--checkpoint", tiny_checkpoint] if command == "translate" else ["replay", trace]
    without_one = {  # replay's trace is already written: what it can still become is a picture
        "translate": "`attnstep dump SENTENCE` writes its trace as JSON without one",
        "replay": "`attnstep plot TRACE.json -o FILE.svg` draws its alignment without one",
    }[command]
    result = attnstep(*args, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert (
        result.stderr.decode()
        == f"attnstep: error: attnstep {command} needs a terminal (stdin and stderr): run it in one; {without_one}\n"
    )
    assert result.stdout == b""


@pytest.mark.slow
def test_eval_names_the_command_that_fetches_missing_data(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = attnstep("eval", tiny_checkpoint)
    assert result.returncode == 1
    assert result.stderr.decode() == (
        f"attnstep: error: no data at {tmp_path}/cache/attnstep/data/multi30k: run `attnstep data get multi30k`, "
        "or point --data at a folder with test_2016_flickr.fr.gz\n"
    )


def test_eval_lists_the_splits_a_folder_has(tiny_checkpoint, tiny_corpus):
    result = invoke("eval", tiny_checkpoint, "--data", tiny_corpus, "--split", "test_2017_flickr")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"attnstep: error: {tiny_corpus} has no test_2017_flickr.fr(.gz); splits there: test_2016_flickr, train, val\n"
    )


def test_eval_reports_how_long_it_took(tiny_checkpoint, tiny_corpus):
    result = invoke("eval", tiny_checkpoint, "--data", tiny_corpus)
    assert result.exit_code == 0
    assert re.fullmatch(
        r"attnstep: translated 4 sentences of test_2016_flickr \(greedy\) in \d+\.\d s\n", result.stderr
    )


def test_eval_refuses_an_output_it_cannot_write_before_translating(tiny_checkpoint, tiny_corpus, tmp_path, monkeypatch):
    def no_translating(*args, **kwargs):
        raise AssertionError("translated before the output was checked")

    monkeypatch.setattr("attnstep.commands.evaluate.translate_corpus", no_translating)
    result = invoke("eval", tiny_checkpoint, "--data", tiny_corpus, "-o", tmp_path / "no" / "such.txt")
    assert result.exit_code == 1
    assert result.stderr == f"attnstep: error: cannot write {tmp_path}/no/such.txt: No such file or directory\n"


def test_eval_with_translations_on_stdout_gives_the_scores_to_stderr(tiny_checkpoint, tiny_corpus):
    result = invoke("eval", tiny_checkpoint, "--data", tiny_corpus, "--beam", 2, "--by-length", "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 4 and "BLEU" not in result.stdout  # the 4 translations only
    assert result.stderr.count("BLEU = ") == 2 and "BLEU by source length" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_app_restores_the_terminal(tiny_checkpoint, tmp_path, signum):
    trace = tmp_path / "t.json"
    trace.write_bytes(invoke("dump", "un chien", "--checkpoint", tiny_checkpoint).stdout_bytes)
    screen = pyte.Screen(100, 30)
    stream = pyte.ByteStream(screen)
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
        os.execv(sys.executable, [sys.executable, "-m", "attnstep", "replay", str(trace)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    written, deadline, signalled = b"", time.monotonic() + 60, False
    while time.monotonic() < deadline:
        if not signalled and "Output:" in "\n".join(screen.display):  # the first frame is drawn
            os.kill(pid, signum)
            signalled = True
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the app closed the terminal
                break
            if not chunk:
                break
            written += chunk
            stream.feed(chunk)
    if not signalled:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 128 + signum
    tail = written.rsplit(b"\x1b[?1049l", 1)  # the app left the alternate screen: the terminal is restored
    assert len(tail) == 2 and b"Traceback" not in written
    assert tail[1].endswith(
        b"attnstep: " + {signal.SIGTERM: b"terminated", signal.SIGHUP: b"hung up"}[signum] + b"\r\n"
    )
