"""attnstep eval as sacreBLEU scores: --hyp files, TER, paired bootstrap resampling, --json."""

import json

import pytest

from tests.cli_helpers import invoke
from tests.conftest import build_tiny_checkpoint

FR = ["un chien noir court .", "une femme marche dans la rue .", "deux hommes dans le parc .", "un homme court ."]
EN = ["a black dog runs .", "a woman walks in the street .", "two men in the park .", "a man runs ."]


@pytest.fixture
def test_set(tmp_path):
    (tmp_path / "test_2016_flickr.fr").write_text("\n".join(FR) + "\n")
    (tmp_path / "test_2016_flickr.en").write_text("\n".join(EN) + "\n")
    return tmp_path


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("attnstep.commands.evaluate.load_any", refuse)


def test_hyp_is_scored_without_a_model_with_bleu_chrf_and_ter(tiny_checkpoint, test_set, tmp_path, no_model):
    hyp = write_lines(tmp_path / "hyp.txt", EN)
    result = invoke("eval", tiny_checkpoint, "--data", test_set, "--hyp", hyp)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{hyp} on test_2016_flickr (4 sentences, from {hyp})"
    assert lines[1].startswith("BLEU = 100.00  nrefs:1|case:lc|")
    assert lines[2].startswith("chrF = 100.00  nrefs:1|case:lc|")
    assert lines[3].startswith("TER = 0.00  nrefs:1|case:lc|")
    assert len(lines) == 4  # no <unk> count: a file's tokens are not the model's


def test_a_hyp_file_of_another_length_is_refused(tiny_checkpoint, test_set, tmp_path, no_model):
    hyp = write_lines(tmp_path / "hyp.txt", EN[:3])
    result = invoke("eval", tiny_checkpoint, "--data", test_set, "--hyp", hyp)
    assert result.exit_code == 1
    assert result.stderr == (
        f"attnstep: error: {hyp} has 3 lines; test_2016_flickr has 4 references, one a line for each\n"
    )


def test_eval_prints_ter_beside_bleu_and_chrf(tiny_checkpoint, test_set):
    result = invoke("eval", tiny_checkpoint, "--data", test_set)
    assert result.exit_code == 0, result.stderr
    assert [line.split(" = ")[0] for line in result.stdout.splitlines()[1:4]] == ["BLEU", "chrF", "TER"]


def test_paired_bootstrap_between_hyp_files_as_sacrebleu_does_it(tiny_checkpoint, test_set, tmp_path, no_model):
    import sacrebleu
    from sacrebleu.significance import PairedTest

    baseline = write_lines(
        tmp_path / "a.txt", ["a dog runs .", "a woman in the street .", "men in a park .", "a man ."]
    )
    better = write_lines(tmp_path / "b.txt", [*EN[:3], "a man walks ."])
    result = invoke(
        "eval", tiny_checkpoint, "--data", test_set, "--hyp", baseline, "--hyp", better, "--paired-bs", "--json"
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [o["name"] for o in report["outputs"]] == [str(baseline), str(better)]
    assert [s["metric"] for s in report["outputs"][0]["scores"]] == ["BLEU", "chrF", "TER"]
    test = report["paired_bs"]
    assert test["baseline"] == str(baseline) and test["resamples"] == 1000
    bleu = test["metrics"]["BLEU"]
    assert "bs:1000" in bleu["signature"] and "seed:12345" in bleu["signature"]
    assert bleu["systems"][0]["p_value"] is None and 0 <= bleu["systems"][1]["p_value"] <= 1
    # sacreBLEU's own test on the same files gives the same numbers
    metrics = {"BLEU": sacrebleu.metrics.BLEU(lowercase=True)}
    _, expected = PairedTest(
        [("a", baseline.read_text().splitlines()), ("b", better.read_text().splitlines())],
        metrics,
        [EN],
        test_type="bs",
        n_samples=1000,
    )()
    assert [(s["score"], s["mean"], s["ci"], s["p_value"]) for s in bleu["systems"]] == [
        (r.score, pytest.approx(r.mean), pytest.approx(r.ci), r.p_value) for r in expected["BLEU"]
    ]
    assert set(test["metrics"]) == {"BLEU", "chrF2", "TER"}


def test_paired_bootstrap_between_checkpoints_in_text(tiny_checkpoint, test_set, tmp_path):
    other = build_tiny_checkpoint(tmp_path / "tiny-other", seed=1)
    result = invoke("eval", tiny_checkpoint, "--checkpoint", other, "--data", test_set, "--paired-bs")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "paired bootstrap resampling against tiny-general (1000 resamples;" in text
    assert text.count("  tiny-general  ") == 3 and text.count("  tiny-other  ") == 3  # BLEU, chrF2, TER
    assert text.count("p = ") == 3


def test_paired_bootstrap_needs_two_systems(tiny_checkpoint, test_set, tmp_path):
    hyp = write_lines(tmp_path / "hyp.txt", EN)
    result = invoke("eval", tiny_checkpoint, "--data", test_set, "--hyp", hyp, "--paired-bs")
    assert result.exit_code == 1
    assert result.stderr == (
        "attnstep: error: --paired-bs compares two or more checkpoints (or --hyp files); the first is the baseline\n"
    )


def test_json_is_one_object_on_stdout(tiny_checkpoint, test_set):
    result = invoke("eval", tiny_checkpoint, "--data", test_set, "--beam", 2, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["set"] == "test_2016_flickr" and report["sentences"] == 4 and report["paired_bs"] is None
    assert [o["decoding"] for o in report["outputs"]] == ["greedy", "beam 2, alpha 0.6"]
    assert all(isinstance(o["with_unknown"], int) for o in report["outputs"])
