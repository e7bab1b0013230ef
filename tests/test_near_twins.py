"""The honest held-out split: no held-out sentence has a near-twin (a variant) in training (issue 25)."""

from __future__ import annotations

import gzip

from attnstep.commands.train import load_data
from attnstep.commands.train_settings import TrainSettings
from attnstep.data.corpus import NearTwins, near_twin_keys


def twins(a: str, b: str) -> bool:
    return not near_twin_keys(a).isdisjoint(near_twin_keys(b))


def test_case_punctuation_and_one_word_make_near_twins():
    assert twins("Tom is tired.", "tom is tired!")
    assert twins("Tom is tired.", "Tom was tired.")  # a word changed
    assert twins("Tom is tired.", "Tom is very tired.")  # a word added
    assert twins("Je suis très fatigué.", "Je suis fatigué !")  # a word removed
    assert twins("Tom can't help it.", "Tom can't help himself.")


def test_two_words_apart_or_short_sentences_are_not_twins():
    assert not twins("Tom is tired.", "Mary was tired.")  # two words changed
    assert not twins("Tom is tired.", "Tom is very very tired.")  # two added
    assert not twins("Tom ran.", "Tom left.")  # one word of two is a different sentence
    assert not twins("Go.", "Run.")  # nor does leaving out a one-word sentence's word match every other


def test_a_pair_is_a_twin_on_either_side_but_only_on_its_own_side():
    held = NearTwins.of([("Je suis très fatigué.", "I am very tired.")])
    assert held.twin_of(("Je suis fatigué.", "Something else entirely."))
    assert held.twin_of(("Autre chose.", "I am so very tired."))
    assert not held.twin_of(("I am very tired.", "Je suis très fatigué."))  # sides swapped: not a pair of ours


def test_training_keeps_no_near_twin_of_a_held_out_sentence(tmp_path):
    rows = [
        ("I am very tired.", "Je suis très fatigué."),
        ("A red car is parked.", "Une voiture rouge est garée."),
        ("Two dogs run in the park.", "Deux chiens courent dans le parc."),
        ("The woman reads a book.", "La femme lit un livre."),
    ]
    variants = [
        ("I am tired.", "Je suis fatigué."),
        ("A blue car is parked.", "Une voiture bleue est garée."),
        ("Two cats run in the park.", "Deux chats courent dans le parc."),
        ("The man reads a book.", "L'homme lit un livre."),
    ]
    corpus = tmp_path / "pairs.tsv.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as handle:
        handle.write("".join(f"{en}\t{fr}\n" for en, fr in rows))
    # Each variant is a different sentence on both sides, so the exact-sentence split would train on it.
    (tmp_path / "more.fr").write_text("".join(fr + "\n" for _, fr in variants), encoding="utf-8")
    (tmp_path / "more.en").write_text("".join(en + "\n" for en, _ in variants), encoding="utf-8")
    settings = TrainSettings(
        corpora=[str(corpus), str(tmp_path / "more.{lang}")], tsv_columns="en,fr", holdout=1, seed=1
    )
    data = load_data(settings)
    held = NearTwins.of(data.val + data.test)
    assert data.val and data.test
    assert not any(held.twin_of(pair) for pair in data.train)
    kept_variants = [pair for pair in data.train if pair in [(fr, en) for en, fr in variants]]
    assert len(kept_variants) == len(variants) - 2  # the two held-out pairs' variants are left out


def test_an_older_models_held_out_set_keeps_only_pairs_without_a_near_twin_in_training(tmp_path):
    from attnstep.commands.evaluate import _heldout_set

    rows = [(f"Sentence number {n} is here.", f"Phrase numéro {n} est là.") for n in range(40)]
    corpus = tmp_path / "pairs.tsv.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as handle:
        handle.write("".join(f"{en}\t{fr}\n" for en, fr in rows))
    recipe = {"corpus": str(corpus), "tsv_columns": "en,fr", "size": 3, "seed": 1}
    # Every pair differs from the others by one word: each held-out pair has near-twins in training.
    label, pairs = _heldout_set({"heldout": recipe}, ["fr", "en"], "test", None)
    assert pairs == [] and "the 0 of 3 pairs with no near-twin in training" in label
    # A model trained with the rule kept them out of training: its held-out set is whole.
    label, pairs = _heldout_set({"heldout": {**recipe, "near_twins": "…"}}, ["fr", "en"], "test", None)
    assert len(pairs) == 3 and label.endswith("held-out test")
