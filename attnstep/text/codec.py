"""Text ↔ token ids for a checkpoint: attnstep's word tokenizer (format 1) or SentencePiece pieces (format 2).

Training, evaluation and the engine all go through a codec, so that a checkpoint's way of
cutting text is decided in one place, by its ``config.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from attnstep.text.subword import WORD_START, SubwordModel, is_byte_piece
from attnstep.text.words import MAX_SOURCE_TOKENS, Vocab, detokenize, tokenize, tokenize_lenient

MAX_SOURCE_PIECES = 200  # pieces are shorter than words: about 1.5 a word for everyday French


class SourcePiece(Protocol):
    """What grouping tokens into words reads of each (a trace's SourceToken has it)."""

    @property
    def surface(self) -> str: ...  # as a reader sees it

    @property
    def token(self) -> str: ...  # the vocabulary form

    @property
    def id(self) -> int: ...  # the source vocabulary id


class WordCodec:
    """Format 1: lower-cased words and punctuation marks, unknown words become <unk>."""

    kind = "attnstep-words"
    unit = "word"  # what one token is called in messages
    max_source_tokens = MAX_SOURCE_TOKENS

    def __init__(self, src_vocab: Vocab, tgt_vocab: Vocab):
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab

    def corpus_source(self, text: str) -> list[int]:
        return self.src_vocab.ids(tokenize_lenient(text))

    def corpus_target(self, text: str) -> list[int]:
        return self.tgt_vocab.ids(tokenize_lenient(text))

    def source_pieces(self, sentence: str) -> list[tuple[str, str, int, int]]:
        """(surface, vocabulary form, id, word index) per token of a user's sentence; refuses bad input."""
        vocab = self.src_vocab
        return [
            (t.surface, vocab.tokens[vocab.id(t.normalized)], vocab.id(t.normalized), i)
            for i, t in enumerate(tokenize(sentence))
        ]

    def source_words(self, tokens: Sequence[SourcePiece]) -> list[tuple[str, int, int]]:
        """(text, first token, end token) per source word: here every token is a word, as the user typed it."""
        return [(t.surface, i, i + 1) for i, t in enumerate(tokens)]

    def target_words(self, tokens: list[str]) -> list[tuple[str, int, int]]:
        """(text, first token, end token) per output word: here every token is a word."""
        return [(token, i, i + 1) for i, token in enumerate(tokens)]

    def detokenize(self, tokens: list[str]) -> str:
        return detokenize(tokens)

    def reference_ids(self, text: str) -> list[int]:
        """A given translation as target ids, cut as the model's outputs are; unknown words become <unk>."""
        return self.tgt_vocab.ids(t.normalized for t in tokenize(text))

    @property
    def target_tokens(self) -> list[str]:
        """The target side's tokens by id."""
        return self.tgt_vocab.tokens

    def target_ids(self, word: str) -> list[int]:
        """A typed word as the one token that writes it; [] when the vocabulary has none."""
        cleaned = word.strip().lower()
        return [self.tgt_vocab.id(cleaned)] if cleaned in self.tgt_vocab else []


class SubwordCodec:
    """Format 2: SentencePiece pieces with byte fallback, case kept, nothing ever unknown."""

    kind = "sentencepiece"
    unit = "piece"
    max_source_tokens = MAX_SOURCE_PIECES

    def __init__(self, src_model: SubwordModel, tgt_model: SubwordModel):
        self.src_model, self.tgt_model = src_model, tgt_model
        self._tgt_index = {piece: i for i, piece in enumerate(tgt_model.pieces)}

    def corpus_source(self, text: str) -> list[int]:
        return self.src_model.encode(text)

    def corpus_target(self, text: str) -> list[int]:
        return self.tgt_model.encode(text)

    def source_pieces(self, sentence: str) -> list[tuple[str, str, int, int]]:
        ids = _encode_sentence(self.src_model, sentence)
        pieces = [self.src_model.pieces[i] for i in ids]
        words = split_words(pieces)
        word_of = [w for w, (_, start, end) in enumerate(words) for _ in range(start, end)]
        return [(surface(p), p, i, w) for p, i, w in zip(pieces, ids, word_of)]

    def source_words(self, tokens: Sequence[SourcePiece]) -> list[tuple[str, int, int]]:
        ids = [t.id for t in tokens]
        return [(self.src_model.decode(ids[s:e]), s, e) for _, s, e in split_words([t.token for t in tokens])]

    def target_words(self, tokens: list[str]) -> list[tuple[str, int, int]]:
        ids = [self._tgt_index[t] for t in tokens]
        return [(self.tgt_model.decode(ids[s:e]), s, e) for _, s, e in split_words(tokens)]

    def detokenize(self, tokens: list[str]) -> str:
        return self.tgt_model.decode(self._tgt_index[t] for t in tokens)

    def reference_ids(self, text: str) -> list[int]:
        """A given translation as target pieces, as the model's outputs are cut."""
        return _encode_sentence(self.tgt_model, text)

    @property
    def target_tokens(self) -> list[str]:
        return self.tgt_model.pieces

    def target_ids(self, word: str) -> list[int]:
        """A typed word as the pieces that write it: one piece if there is one ("student" is looked up
        as the word-initial "▁student" first, then as typed, which may continue a word), else the
        pieces SentencePiece cuts it into ("pupil" → "▁pu", "pil"), to be written in turn."""
        word = word.strip()
        if not word:
            return []
        for piece in (WORD_START + word, word):
            if piece in self._tgt_index:
                return [self._tgt_index[piece]]
        return self.tgt_model.encode(word)


def _encode_sentence(model: SubwordModel, sentence: str) -> list[int]:
    """A user's sentence as piece ids, refusing what the word tokenizer refuses (and too many pieces)."""
    from attnstep.errors import AttnstepError
    from attnstep.text.words import check_sentence

    check_sentence(sentence)
    ids = model.encode(sentence)
    if not ids:
        raise AttnstepError("the sentence is empty: type some words to translate")
    if len(ids) > MAX_SOURCE_PIECES:
        raise AttnstepError(f"the sentence has {len(ids)} subword pieces; the maximum is {MAX_SOURCE_PIECES}")
    return ids


def split_words(pieces: list[str]) -> list[tuple[str, int, int]]:
    """Group pieces into whitespace-separated words: a piece starting with "▁" begins a new word.

    Returns (the pieces joined, start, end) with ``end`` exclusive. A lone "▁" (SentencePiece's
    way of starting a word whose first character has its own piece) belongs to the word it starts.
    """
    words: list[list] = []
    for i, piece in enumerate(pieces):
        if piece.startswith(WORD_START) or not words:
            words.append(["", i, i])
        words[-1][0] += piece
        words[-1][2] = i + 1
    return [(text.replace(WORD_START, " ").strip(), start, end) for text, start, end in words]


def surface(piece: str) -> str:
    """A piece as a reader sees it: without the word-start mark; bytes stay as <0xNN>."""
    return piece if is_byte_piece(piece) else piece.replace(WORD_START, "") or WORD_START


Codec = WordCodec | SubwordCodec
