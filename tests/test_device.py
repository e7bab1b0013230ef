"""--threads and --device: torch's CPU threads and where the model runs, for every command that runs one."""

from __future__ import annotations

import pytest
import torch

from attnstep.engine.device import use_device
from attnstep.errors import AttnstepError
from tests.cli_helpers import invoke

NO_GPU = "--device cuda: torch sees no CUDA GPU here (use --device cpu or auto)"


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def threads_kept():
    """Each test's --threads is undone after it, for the tests that follow."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_auto_is_the_cpu_without_a_gpu(no_gpu):
    assert use_device("auto") == torch.device("cpu")


def test_cuda_without_a_gpu_is_refused(no_gpu):
    with pytest.raises(AttnstepError, match=r"^--device cuda: torch sees no CUDA GPU here"):
        use_device("cuda")


def test_threads_are_given_to_torch(threads_kept):
    use_device("cpu", 1)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    "command",
    [
        ["dump", "Je suis étudiant."],
        ["translate", "Je suis étudiant."],
        ["eval", "--corpus", "{lang}.txt"],
        ["train", "--out", "out", "--corpus", "{lang}.txt"],
        ["serve", "--allow-anonymous", "--host-key", "key"],
    ],
)
def test_cuda_without_a_gpu_is_one_line(command, no_gpu, tmp_path, tiny_checkpoint, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for lang in ("src", "tgt", "fr", "en"):
        (tmp_path / f"{lang}.txt").write_text("je suis étudiant .\n")
    checkpoint = [] if command[0] == "train" else ["--checkpoint", tiny_checkpoint]
    result = invoke(*command, *checkpoint, "--device", "cuda")
    assert result.exit_code == 1
    assert result.stderr == f"attnstep: error: {NO_GPU}\n"


def test_dump_runs_on_the_threads_given(threads_kept, tiny_checkpoint):
    result = invoke("dump", "je suis étudiant .", "--checkpoint", tiny_checkpoint, "--threads", "1", "--device", "auto")
    assert result.exit_code == 0, result.stderr
    assert torch.get_num_threads() == 1
