"""Text ↔ token ids for a checkpoint: attnstep's word tokenizer (format 1), SentencePiece pieces (format 2),
or a Hugging Face Marian folder's pieces and vocab.json (:class:`MarianCodec`).

Training, evaluation and the engine all go through a codec, so that a checkpoint's way of
cutting text is decided in one place, by its ``config.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from attnstep.text.marian import MarianTokenizer
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
        ids = _encode_sentence(self.src_model.encode, sentence)
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
        return _encode_sentence(self.tgt_model.encode, text)

    @property
    def target_tokens(self) -> list[str]:
        return self.tgt_model.pieces

    def target_ids(self, word: str) -> list[int]:
        return _word_ids(word, self._tgt_index, self.tgt_model.encode)


class MarianCodec:
    """A Marian folder's tokenization (:class:`~attnstep.text.marian.MarianTokenizer`): source.spm's pieces
    looked up in vocab.json (a piece it lacks is <unk>), </s> appended; outputs joined by target.spm.

    The source tokens are the pieces the encoder reads, </s> included (its own word); they group into
    words as a SentencePiece model's do, an <unk> starting one (its piece's "▁" is not in the token).
    """

    kind = "marian"
    unit = "piece"

    def __init__(self, tokenizer: MarianTokenizer, max_source_tokens: int = MAX_SOURCE_PIECES):
        self.tokenizer = tokenizer
        self.max_source_tokens = max_source_tokens  # </s> left out: the model's positions allow one more

    def corpus_source(self, text: str) -> list[int]:
        """A corpus line's ids, unrefused: its pieces (as many as fit with </s>), then </s>."""
        pieces = self.tokenizer.source_pieces(text)[: self.max_source_tokens - 1]
        return [*self.tokenizer.ids(pieces), self.tokenizer.eos_id]

    def source_pieces(self, sentence: str) -> list[tuple[str, str, int, int]]:
        pieces = _encode_sentence(self.tokenizer.source_pieces, sentence, self.max_source_tokens)
        tokenizer = self.tokenizer
        ids = [*tokenizer.ids(pieces), tokenizer.eos_id]
        surfaces = [*(surface(p) for p in pieces), tokenizer.piece(tokenizer.eos_id)]
        words = self._words([tokenizer.piece(i) for i in ids])
        word_of = [w for w, (_, start, end) in enumerate(words) for _ in range(start, end)]
        return [(s, tokenizer.piece(i), i, w) for s, i, w in zip(surfaces, ids, word_of)]

    def source_words(self, tokens: Sequence[SourcePiece]) -> list[tuple[str, int, int]]:
        # An unknown piece's text is its surface, as the user typed it.
        pieces = [WORD_START + t.surface if t.id == self.tokenizer.unk_id else t.token for t in tokens]
        eos = self.tokenizer.piece(self.tokenizer.eos_id)
        return [
            (eos if pieces[s:e] == [eos] else self.tokenizer.source_text(pieces[s:e]), s, e)
            for _, s, e in self._words([t.token for t in tokens])
        ]

    def _words(self, tokens: list[str]) -> list[tuple[str, int, int]]:
        """split_words over vocabulary tokens, the final </s> a word of its own, an <unk> starting one (unless
        it follows a lone "▁", which starts it: SentencePiece cuts "▁" off a word it has no piece for)."""
        tokenizer = self.tokenizer
        unk, eos = tokenizer.piece(tokenizer.unk_id), tokenizer.piece(tokenizer.eos_id)
        body = tokens[:-1] if tokens and tokens[-1] == eos else tokens
        starts = [t == unk and (i == 0 or body[i - 1] != WORD_START) for i, t in enumerate(body)]
        words = split_words([WORD_START + t if start else t for t, start in zip(body, starts)])
        return words + ([(eos, len(body), len(tokens))] if len(body) < len(tokens) else [])

    def target_words(self, tokens: list[str]) -> list[tuple[str, int, int]]:
        return [(self.detokenize(tokens[s:e]), s, e) for _, s, e in split_words(tokens)]

    def detokenize(self, tokens: list[str]) -> str:
        return self.tokenizer.decode(self.tokenizer.ids(tokens))

    def reference_ids(self, text: str) -> list[int]:
        """A given translation as target pieces, as the model's outputs are cut (unknown ones <unk>)."""
        return self.tokenizer.ids(_encode_sentence(self.tokenizer.target_pieces, text, MAX_SOURCE_PIECES))

    @property
    def target_tokens(self) -> list[str]:
        return self.tokenizer.tokens

    def target_ids(self, word: str) -> list[int]:
        return _word_ids(word, self.tokenizer.vocab, self._known_pieces)

    def _known_pieces(self, word: str) -> list[int]:
        """target.spm's pieces of ``word``; [] where one is not in vocab.json (the model cannot write it)."""
        vocab = self.tokenizer.vocab
        pieces = self.tokenizer.target_pieces(word)
        return [vocab[p] for p in pieces] if all(p in vocab for p in pieces) else []


def _word_ids(word: str, index: Mapping[str, int], cut: Callable[[str], list[int]]) -> list[int]:
    """A typed word as the pieces that write it: one piece if there is one ("student" is looked up
    as the word-initial "▁student" first, then as typed, which may continue a word), else the
    pieces ``cut`` cuts it into ("pupil" → "▁pu", "pil"), to be written in turn."""
    word = word.strip()
    if not word:
        return []
    for piece in (WORD_START + word, word):
        if piece in index:
            return [index[piece]]
    return cut(word)


Item = TypeVar("Item")


def _encode_sentence(encode: Callable[[str], list[Item]], sentence: str, most: int = MAX_SOURCE_PIECES) -> list[Item]:
    """A user's sentence as pieces (or their ids), refusing what the word tokenizer refuses (and over ``most``)."""
    from attnstep.errors import AttnstepError
    from attnstep.text.words import check_sentence

    check_sentence(sentence)
    pieces = encode(sentence)
    if not pieces:
        raise AttnstepError("the sentence is empty: type some words to translate")
    if len(pieces) > most:
        raise AttnstepError(f"the sentence has {len(pieces)} subword pieces; the maximum is {most}")
    return pieces


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
