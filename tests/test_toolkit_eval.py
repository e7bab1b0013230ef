"""attnstep eval of the models load_any loads besides attnstep's own: the toolkits' fixtures and a Marian folder.

Each is decoded by the engine and scored with its own case rules; its BLEU must be sacreBLEU's on
translations made independently: the toolkit's own (expected.json) and transformers' generate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sacrebleu

from tests.cli_helpers import invoke
from tests.marian_helpers import SENTENCES, marian_folder_fixture, their_tokenizer_fixture, theirs_fixture
from tests.test_toolkits import JOEYNMT, OPENNMT, _checkpoint_argument, expected

__all__ = ["marian_folder_fixture", "their_tokenizer_fixture", "theirs_fixture"]  # fixtures, used by name

pytestmark = pytest.mark.slow  # the command line in-process, a second or more a model

CASED = {"joeynmt_gru_bahdanau": True, "joeynmt_lstm_luong": False, "opennmt_brnn_lstm": True, "opennmt_gru_mlp": True}


def references_of(translations: list[str]) -> list[str]:
    """References that share some n-grams with the translations, not all: a BLEU strictly between 0 and 100."""
    return [t.rsplit(" ", 1)[0] + " here" if i % 2 else t.upper() for i, t in enumerate(translations)]


def write_corpus(path: Path, sources: list[str], references: list[str]) -> Path:
    path.write_text("".join(f"{s}\t{r}\n" for s, r in zip(sources, references)), encoding="utf-8")
    return path


def eval_json(*arguments) -> dict:
    result = invoke("eval", *arguments, "--json", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def bleu(scores: list[dict]) -> float:
    return next(s["score"] for s in scores if s["metric"] == "BLEU")  # the first: the model's own case


@pytest.mark.parametrize("name", JOEYNMT + OPENNMT)
def test_eval_scores_the_toolkits_own_translations(name, tmp_path):
    sentences = expected(name)
    translations = [s["translation"] for s in sentences]
    references = references_of(translations)
    corpus = write_corpus(tmp_path / "set.tsv", [s["source"] for s in sentences], references)
    report = eval_json(
        _checkpoint_argument(name), "--corpus", corpus, "--tsv-columns", "fr,en", "--languages", "fr,en", "--beam", "1"
    )
    greedy, beam = report["outputs"]
    want = sacrebleu.metrics.BLEU(lowercase=not CASED[name]).corpus_score(translations, [references]).score
    assert 0 < want < 100
    assert greedy["decoding"] == "greedy" and bleu(greedy["scores"]) == pytest.approx(want, abs=1e-9)
    assert bleu(beam["scores"]) == pytest.approx(want, abs=1e-9)  # a beam of one is greedy
    assert ("case:mixed" if CASED[name] else "case:lc") in greedy["scores"][0]["signature"]


def test_a_joeynmt_model_names_its_languages(tmp_path):
    sentences = expected("joeynmt_lstm_luong")
    (tmp_path / "test_2016_flickr.fr").write_text("".join(s["source"] + "\n" for s in sentences), encoding="utf-8")
    (tmp_path / "test_2016_flickr.en").write_text("".join(s["translation"] + "\n" for s in sentences))
    report = eval_json(_checkpoint_argument("joeynmt_lstm_luong"), "--data", tmp_path)
    assert bleu(report["outputs"][0]["scores"]) == pytest.approx(100.0)


def test_eval_says_which_option_names_the_languages_an_opennmt_model_does_not(tmp_path):
    sentences = expected("opennmt_gru_mlp")
    corpus = write_corpus(tmp_path / "set.tsv", [s["source"] for s in sentences], [s["translation"] for s in sentences])
    checkpoint = _checkpoint_argument("opennmt_gru_mlp")
    result = invoke("eval", checkpoint, "--corpus", corpus, "--tsv-columns", "fr,en")
    assert result.exit_code == 1
    assert result.stderr == (
        f"attnstep: error: {checkpoint} does not say which languages it translates: give them with --languages SRC,TGT\n"
    )


def test_hyp_files_are_scored_with_a_toolkit_models_case(tmp_path):
    sentences = expected("joeynmt_lstm_luong")
    corpus = write_corpus(tmp_path / "set.tsv", [s["source"] for s in sentences], [s["translation"] for s in sentences])
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("".join(s["translation"].upper() + "\n" for s in sentences), encoding="utf-8")
    report = eval_json(
        _checkpoint_argument("joeynmt_lstm_luong"), "--corpus", corpus, "--tsv-columns", "fr,en", "--hyp", hyp
    )
    assert bleu(report["outputs"][0]["scores"]) == pytest.approx(100.0)  # lower-cased model: scored without case


def test_eval_scores_a_marian_folder_as_generate_translates(marian_folder, theirs, their_tokenizer, tmp_path):
    import torch

    batch = their_tokenizer(SENTENCES, return_tensors="pt", padding=True)
    with torch.no_grad():
        greedy = theirs.generate(**batch, num_beams=1, do_sample=False)
        searched = theirs.generate(**batch, num_beams=3, do_sample=False)
    texts = [their_tokenizer.batch_decode(out, skip_special_tokens=True) for out in (greedy, searched)]
    references = references_of(texts[0])
    corpus = write_corpus(tmp_path / "set.tsv", SENTENCES, references)
    report = eval_json(
        marian_folder, "--corpus", corpus, "--tsv-columns", "fr,en", "--languages", "fr,en", "--beam", "3"
    )
    for output, made in zip(report["outputs"], texts):
        want = sacrebleu.metrics.BLEU().corpus_score(made, [references]).score
        assert bleu(output["scores"]) == pytest.approx(want, abs=1e-9), output["decoding"]
    assert [o["decoding"] for o in report["outputs"]] == ["greedy", "beam 3, length penalty 1"]
