"""Training data in several formats, the held-out split, and a subword training run end to end."""

from __future__ import annotations

import gzip
import json

import pytest

from attnstep.commands.train import TrainSettings, load_data
from attnstep.data.corpus import NEAR_TWIN_RULE, CorpusSpec, hold_out, read_corpus
from attnstep.data.multi30k import read_parallel
from attnstep.errors import AttnstepError
from tests.cli_helpers import TINY_MODEL, invoke, write_parallel
from tests.conftest import SUBWORD_ENGLISH, SUBWORD_FRENCH


@pytest.fixture
def corpora(tmp_path):
    """A Tatoeba-like TSV (English first, gzipped, with shared sides) and line-aligned files."""
    rows = [(en, fr) for en, fr in zip(SUBWORD_ENGLISH, SUBWORD_FRENCH)]
    rows += [("I'm a student.", "Je suis étudiant."), ("I'm a student.", "Je suis étudiante."), ("Hi.", "Salut !")]
    tsv = tmp_path / "pairs.tsv.gz"
    with gzip.open(tsv, "wt", encoding="utf-8") as handle:
        handle.write("".join(f"{en}\t{fr}\n" for en, fr in rows))
    write_parallel(tmp_path, "extra", [("Un chien noir.", "A black dog."), ("Une maison rouge.", "A red house.")])
    return tmp_path, rows


def test_a_tsv_corpus_is_read_in_the_column_order_given(corpora):
    folder, rows = corpora
    pairs = read_corpus(CorpusSpec.parse(str(folder / "pairs.tsv.gz")), "fr", "en", ("en", "fr"))
    assert pairs == [(fr, en) for en, fr in rows]
    with pytest.raises(AttnstepError, match="must name fr and en"):
        read_corpus(CorpusSpec.parse(str(folder / "pairs.tsv.gz")), "fr", "en", ("en", "de"))


def test_line_aligned_files_and_upsampling(corpora):
    folder, _ = corpora
    spec = CorpusSpec.parse(str(folder / "extra.{lang}") + "*3")
    assert spec.times == 3
    assert read_corpus(spec, "fr", "en") == [("Un chien noir.", "A black dog."), ("Une maison rouge.", "A red house.")]
    with pytest.raises(AttnstepError, match=r"\{lang\}"):
        CorpusSpec.parse(str(folder / "extra.fr"))


def test_misaligned_files_are_refused(corpora):
    folder, _ = corpora
    (folder / "extra.en").write_text("A black dog.\n", encoding="utf-8")
    with pytest.raises(AttnstepError, match="must align"):
        read_corpus(CorpusSpec.parse(str(folder / "extra.{lang}")), "fr", "en")


def test_a_line_separator_inside_a_sentence_does_not_shift_the_pairs(tmp_path):
    write_parallel(tmp_path, "x", [("un\u2028deux", "one two"), ("trois", "three")])
    assert read_corpus(CorpusSpec.parse(str(tmp_path / "x.{lang}")), "fr", "en")[1] == ("trois", "three")


@pytest.mark.parametrize("zipped", [False, True])
def test_a_multi30k_split_is_split_at_newlines_only(tmp_path, zipped):
    # str.splitlines would also end a line at U+2028 and \x1c, and shift every later pair.
    french = "un\u2028deux\x1ctrois\nquatre\n".encode()
    if zipped:
        (tmp_path / "val.fr.gz").write_bytes(gzip.compress(french))
    else:
        (tmp_path / "val.fr").write_bytes(french)
    (tmp_path / "val.en").write_text("one two three\nfour\n", encoding="utf-8")
    assert read_parallel(tmp_path, "val", "fr", "en") == (
        ["un\u2028deux\x1ctrois", "quatre"],
        ["one two three", "four"],
    )


def test_held_out_pairs_share_no_sentence_with_training():
    # Sentences shared between pairs form groups; e.g. pairs 0-2 share English sides.
    pairs = [
        ("Je suis étudiant.", "I'm a student."),
        ("Je suis étudiante.", "I'm a student."),
        ("Je suis étudiante.", "I am a student."),
    ] + [(f"phrase {i}", f"sentence {i}") for i in range(40)]
    for seed in range(20):
        held = hold_out(pairs, 5, 5, seed)
        assert len(held.val) >= 5 and len(held.test) >= 5
        train_sides = {side for pair in held.train for side in pair}
        assert not train_sides & {side for pair in held.val + held.test for side in pair}
        assert sorted(held.train + held.val + held.test) == sorted(pairs)


def test_load_data_upsamples_and_keeps_held_out_sentences_out_of_every_corpus(corpora):
    folder, _ = corpora
    # The second corpus repeats a held-out-able sentence; it must not reach training.
    write_parallel(folder, "extra", [("Un chien noir.", "A black dog."), ("Je suis étudiant.", "I'm a student.")])
    settings = TrainSettings(
        corpora=[str(folder / "pairs.tsv.gz"), str(folder / "extra.{lang}") + "*2"],
        tsv_columns="en,fr",
        holdout=2,
        seed=3,
    )
    data = load_data(settings)
    held = {side for pair in data.val + data.test for side in pair}
    assert not held & {side for pair in data.train for side in pair}
    assert data.train.count(("Un chien noir.", "A black dog.")) == (0 if "Un chien noir." in held else 2)
    assert "×2" in data.description


def test_subword_training_run_resumes_and_evaluates_on_its_held_out_pairs(corpora, tmp_path):
    folder, _ = corpora
    out, work = tmp_path / "model", tmp_path / "work"
    common = [
        "train",
        "--corpus",
        folder / "pairs.tsv.gz",
        "--tsv-columns",
        "en,fr",
        "--corpus",
        f"{folder}/extra.{{lang}}*2",
        "--holdout",
        1,
        "--tokenizer",
        "subword",
        "--vocab-size",
        312,
        "--out",
        out,
        "--work",
        work,
        *TINY_MODEL,
    ]
    first = invoke(*common, "--epochs", 1)
    assert first.exit_code == 0, first.output
    config = json.loads((out / "config.json").read_text())
    assert config["format_version"] == 2 and config["tokenizer"]["name"] == "sentencepiece"
    assert config["heldout"] == {
        "corpus": str(folder / "pairs.tsv.gz"),
        "tsv_columns": "en,fr",
        "size": 1,
        "seed": 1,
        "near_twins": NEAR_TWIN_RULE,
    }
    assert (out / "source.spm").read_bytes() == (work / "source.spm").read_bytes()
    resumed = invoke(*common, "--epochs", 2)
    assert resumed.exit_code == 0 and "resuming after epoch 1" in resumed.stdout
    assert "training the source subword model" not in resumed.stdout  # the pieces are kept, not retrained
    result = invoke("eval", out, "--heldout", "test")
    assert result.exit_code == 0, result.output
    assert "held-out test (1 sentences" in result.stdout or "held-out test (" in result.stdout
    assert "case:mixed" in result.stdout and "<unk> in 0 of" in result.stdout
    dumped = json.loads(invoke("dump", "Je suis étudiant. 😀", "--checkpoint", out, "--no-vectors").stdout)
    assert all(t["token"] != "<unk>" for t in dumped["source"])


def test_a_time_budget_ends_training_inside_an_epoch_and_keeps_the_checkpoint(corpora, tmp_path):
    folder, _ = corpora
    out = tmp_path / "model"
    result = invoke(
        "train",
        "--corpus",
        folder / "pairs.tsv.gz",
        "--tsv-columns",
        "en,fr",
        "--holdout",
        1,
        "--out",
        out,
        "--work",
        tmp_path / "work",
        "--emb-dim",
        8,
        "--enc-hidden",
        8,
        "--dec-hidden",
        16,
        "--batch-size",
        1,
        "--max-minutes",
        0.00001,
    )
    assert result.exit_code == 0, result.output
    assert "time budget of 1e-05 min reached inside epoch 1" in result.stdout
    assert (out / "config.json").is_file()


def test_train_without_data_or_holdout_says_what_to_give(corpora, tmp_path):
    folder, _ = corpora
    assert "give --data DIR or at least one --corpus" in invoke("train", "--out", tmp_path / "m").stderr
    result = invoke("train", "--out", tmp_path / "m", "--corpus", folder / "pairs.tsv.gz")
    assert result.exit_code == 1 and "--holdout" in result.stderr


def test_a_run_starts_from_a_checkpoint_of_its_own_split_and_refuses_another(corpora, tmp_path):
    import torch
    from safetensors.torch import load_file

    folder, _ = corpora
    corpus = ["--corpus", folder / "pairs.tsv.gz", "--tsv-columns", "en,fr", "--tokenizer", "subword"]
    common = [*corpus, "--vocab-size", 312, *TINY_MODEL]
    first = invoke("train", *common, "--holdout", 1, "--out", tmp_path / "a", "--work", tmp_path / "wa", "--epochs", 1)
    assert first.exit_code == 0, first.output
    card = json.loads((tmp_path / "a" / "config.json").read_text())

    # A learning rate too small to move the weights: the run's weights after its epoch are the checkpoint's.
    second = invoke(
        "train", *common, "--holdout", 1, "--init", tmp_path / "a", "--lr", 1e-12,
        "--out", tmp_path / "b", "--work", tmp_path / "wb", "--epochs", 2,
    )  # fmt: skip
    assert second.exit_code == 0, second.output
    assert f"starting from {tmp_path / 'a'}: val BLEU {card['metrics']['val_bleu']:.2f}" in second.stdout
    assert "training the source subword model" not in second.stdout  # the checkpoint's pieces
    state = json.loads((tmp_path / "wb" / "state.json").read_text())
    assert state["history"][0] == {
        "epoch": 0,
        "val_bleu": card["metrics"]["val_bleu"],
        "init": state["history"][0]["init"],
    }
    started = load_file(tmp_path / "a" / "model.safetensors")
    after = load_file(tmp_path / "wb" / "state.safetensors")
    for name, tensor in started.items():
        torch.testing.assert_close(after[f"model.{name}"], tensor.float(), atol=1e-6, rtol=0)
    if (tmp_path / "b" / "config.json").exists():
        init = json.loads((tmp_path / "b" / "config.json").read_text())["provenance"]["init"]
        assert init["epochs"] == 1 and init["digest"] == state["history"][0]["init"]
    else:
        assert "no epoch beat" in second.stdout
    # Averaging the run's epochs reads the checkpoint's pieces too: the weights are still the checkpoint's.
    averaged = invoke("average", "--work", tmp_path / "wb", "--last", 2, "--out", tmp_path / "avg")
    assert averaged.exit_code == 0, averaged.output
    assert "training the source subword model" not in averaged.stdout
    assert f"val BLEU {card['metrics']['val_bleu']:.2f}" in averaged.stdout

    refusals = {
        "held-out split": ["--holdout", 2],
        "another shape": ["--holdout", 1, "--dec-hidden", 24],
        "translates fr→en, not en→fr": ["--holdout", 1, "--src", "en", "--tgt", "fr"],
    }
    for reason, options in refusals.items():
        refused = invoke(
            "train", *common, *options, "--init", tmp_path / "a", "--out", tmp_path / "c", "--work", tmp_path / "wc"
        )
        assert refused.exit_code == 1 and reason in refused.stderr, (reason, refused.output)
        assert not (tmp_path / "wc").exists()  # refused before anything was written
