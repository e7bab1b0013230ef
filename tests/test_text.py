import pytest
from hypothesis import given
from hypothesis import strategies as st

from attnstep.errors import AttnstepError
from attnstep.text.words import MAX_SOURCE_TOKENS, SPECIALS, UNK_ID, Vocab, detokenize, tokenize, tokenize_lenient


def test_tokenize_keeps_surface_and_lowercases():
    tokens = tokenize("L'homme porte un T-shirt rouge.")
    assert [t.surface for t in tokens] == ["L'", "homme", "porte", "un", "T-shirt", "rouge", "."]
    assert [t.normalized for t in tokens] == ["l'", "homme", "porte", "un", "t-shirt", "rouge", "."]


def test_typographic_apostrophe_is_normalised():
    assert tokenize_lenient("l’eau") == ["l'", "eau"]


def test_detokenize_undoes_splits():
    assert (
        detokenize(["a", "man", "'", "s", "hat", "(", "red", ")", ",", "i", "don'", "t", "know", "."])
        == "a man ' s hat (red), i don't know."
    )
    assert detokenize(tokenize_lenient("A man's hat, (red).")) == "a man's hat, (red)."


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=80))
def test_retokenizing_detokenized_text_is_stable(text):
    tokens = tokenize_lenient(text)
    assert tokenize_lenient(detokenize(tokens)) == tokens


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("   . ", None),
        ("a\x1b[31mred", r"U\+001B"),
        ("abc\u009bdef", r"U\+009B"),
        ("evil\u202eetxet", r"U\+202E"),
        (" ".join(["mot"] * (MAX_SOURCE_TOKENS + 1)), "maximum"),
        ("x" * 1001, "characters"),
    ],
)
def test_bad_input_is_refused_with_a_reason(text, message):
    if message is None:  # punctuation alone is a sentence the model can take
        assert [t.surface for t in tokenize(text)] == ["."]
        return
    with pytest.raises(AttnstepError, match=message):
        tokenize(text)


def test_tab_is_whitespace():
    assert [t.surface for t in tokenize("un\tchien")] == ["un", "chien"]


def test_vocab_unknown_and_order():
    vocab = Vocab.build([["b", "a", "a", "c"], ["a", "b"]], min_freq=2)
    assert vocab.tokens == [*SPECIALS, "a", "b"]
    assert vocab.id("c") == UNK_ID


@pytest.mark.parametrize("tokens", [["x", "<pad>"], [*SPECIALS, "a", "a"]])
def test_vocab_refuses_bad_lists(tokens):
    with pytest.raises(AttnstepError):
        Vocab(tokens)
