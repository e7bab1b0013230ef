"""Text ↔ ids as a JoeyNMT or OpenNMT-py model was trained: the vocabularies and tokenizers its configuration names.

A side's text is cut by one of: a SentencePiece model (pieces; "▁" starts a word), subword-nmt BPE
codes (pieces; "@@" ends a piece that a word goes on after), or nothing (the model reads tokens
separated by spaces, as they were in its training data), after lower-casing where the configuration
says so. The pieces are then looked up in the toolkit's own vocabulary (``<unk>`` 0, ``<pad>`` 1,
``<s>`` 2, ``</s>`` 3). JoeyNMT appends ``</s>`` to every source; OpenNMT-py does not.

Nothing here runs code from a model folder: a SentencePiece model is a parsed protocol buffer, and
BPE codes are lines of text pairs read by the subword-nmt package.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from attnstep.data.files import read_limited
from attnstep.errors import AttnstepError, first_line
from attnstep.text.codec import SourcePiece, split_words, surface
from attnstep.text.subword import MAX_MODEL_BYTES, WORD_START
from attnstep.text.words import TokenIndex, check_sentence

TOOLKIT_TOKENS = ("<unk>", "<pad>", "<s>", "</s>")  # JoeyNMT's specials, by id
OPENNMT_TOKENS = ("<unk>", "<blank>", "<s>", "</s>")  # OpenNMT-py's: the same ids, its pad named <blank>
UNK_ID, EOS = 0, "</s>"
BPE_SEPARATOR = "@@"
MAX_VOCAB_BYTES = 16 * 1024 * 1024
MAX_SOURCE_PIECES = 200


class ToolkitVocab(TokenIndex):
    """A toolkit's vocabulary: tokens by id, an unknown token read as <unk> (0)."""

    unk_id = UNK_ID

    def __init__(self, tokens: Sequence[str], origin: str):
        first = tuple(tokens[:4])
        if first != TOOLKIT_TOKENS and first != OPENNMT_TOKENS:
            raise AttnstepError(f"{origin} must start with {' '.join(TOOLKIT_TOKENS)}, not {' '.join(first)!r}")
        super().__init__(tokens)

    @classmethod
    def load(cls, path: Path) -> ToolkitVocab:
        """JoeyNMT's vocabulary file: one token a line."""
        data = read_limited(path, MAX_VOCAB_BYTES, "{path} is {size} bytes; a vocabulary is at most {limit}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AttnstepError(f"{path} is not UTF-8 text ({first_line(exc)})") from None
        return cls(text.rstrip("\n").split("\n"), str(path))


class Splitter:
    """One side's way of cutting text: ``kind`` is "sentencepiece", "subword-nmt" or "none"."""

    def __init__(
        self,
        kind: str,
        lowercase: bool,
        *,
        model: bytes | None = None,
        codes: Path | None = None,
        vocabulary: Sequence[str] | None = None,
    ):
        """``vocabulary``: the pieces the model knows, where the toolkit restricts the splitting to them (JoeyNMT
        does, as subword-nmt's --vocabulary and SentencePiece's SetVocabulary do: other pieces are split further)."""
        self.kind, self.lowercase = kind, lowercase
        self._spm = self._bpe = None
        if kind == "sentencepiece" and model is not None:
            import sentencepiece

            self._spm = sentencepiece.SentencePieceProcessor()
            try:
                self._spm.LoadFromSerializedProto(model)
            except (RuntimeError, OSError, ValueError, TypeError) as exc:
                raise AttnstepError(f"not a valid SentencePiece model ({first_line(exc)})") from None
            if vocabulary is not None:
                self._spm.SetVocabulary(list(vocabulary))  # type: ignore[attr-defined]  # missing from its stubs
        elif kind == "subword-nmt" and codes is not None:
            from subword_nmt.apply_bpe import BPE

            text = read_limited(codes, MAX_MODEL_BYTES, "{path} is {size} bytes; BPE codes are at most {limit}")
            try:
                self._bpe = BPE(io.StringIO(text.decode("utf-8")), separator=BPE_SEPARATOR)
            except (UnicodeDecodeError, ValueError, IndexError) as exc:
                raise AttnstepError(f"{codes} is not subword-nmt BPE codes ({first_line(exc)})") from None
            if vocabulary is not None:
                self._bpe.vocab = set(vocabulary) - set(TOOLKIT_TOKENS)
        elif kind != "none":
            raise AttnstepError(f"unknown tokenizer {kind!r}")

    @classmethod
    def load(cls, kind: str, lowercase: bool, path: Path, vocabulary: Sequence[str] | None = None) -> Splitter:
        """A side's splitter from its file: a SentencePiece model or BPE codes."""
        if kind == "sentencepiece":
            data = read_limited(path, MAX_MODEL_BYTES, "{path} is {size} bytes; a subword model is at most {limit}")
            try:
                return cls(kind, lowercase, model=data, vocabulary=vocabulary)
            except AttnstepError as exc:
                raise AttnstepError(f"{path}: {exc}") from None
        return cls(kind, lowercase, codes=path, vocabulary=vocabulary)

    def pieces(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self._spm is not None:
            return list(self._spm.encode(text, out_type=str))
        if self._bpe is not None:
            return self._bpe.process_line(text).split()
        return text.split()

    def join(self, pieces: Sequence[str]) -> str:
        """Pieces back into text, as the toolkit's post-processing writes them."""
        if self._spm is not None:
            return self._spm.decode_pieces(list(pieces))  # as both toolkits detokenize
        text = " ".join(pieces)
        return text.replace(BPE_SEPARATOR + " ", "").removesuffix(BPE_SEPARATOR) if self._bpe is not None else text

    def words(self, pieces: Sequence[str]) -> list[tuple[int, int]]:
        """(start, end) of each word the pieces spell: "▁" starts one, "@@" goes on, else every piece is one."""
        if self.kind == "sentencepiece":
            return [(s, e) for _, s, e in split_words(list(pieces))]
        spans: list[tuple[int, int]] = []
        start = 0
        for i, piece in enumerate(pieces):
            if not (self.kind == "subword-nmt" and piece.endswith(BPE_SEPARATOR)):
                spans.append((start, i + 1))
                start = i + 1
        return spans + ([(start, len(pieces))] if start < len(pieces) else [])

    def surface(self, piece: str) -> str:
        """A piece as a reader sees it: without "▁" or "@@"."""
        if self.kind == "sentencepiece":
            return surface(piece)
        return piece.removesuffix(BPE_SEPARATOR) if self.kind == "subword-nmt" else piece

    @property
    def description(self) -> str:
        """What the status line says of it."""
        if self.kind == "none":
            return "pre-tokenized input: tokens separated by spaces" + (", lower-cased" if self.lowercase else "")
        return self.kind + (", lower-cased" if self.lowercase else "")


class ToolkitCodec:
    """A toolkit model's text ↔ ids, with the methods the engine and the commands call on a codec."""

    max_source_tokens = MAX_SOURCE_PIECES

    def __init__(
        self,
        src_vocab: ToolkitVocab,
        tgt_vocab: ToolkitVocab,
        source: Splitter,
        target: Splitter,
        *,
        source_eos: bool,
    ):
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.source, self.target = source, target
        self.source_eos = source_eos  # JoeyNMT reads </s> at the end of every source
        # what a trace names it: a subword side's kind, else "words" (tokens separated by spaces)
        self.kind = next((side.kind for side in (source, target) if side.kind != "none"), "words")
        self.unit = "word" if target.kind == "none" else "piece"
        self.description = source.description  # for the status line

    def corpus_source(self, text: str) -> list[int]:
        ids = self.src_vocab.ids(self.source.pieces(text))
        return [*ids, self.src_vocab.id(EOS)] if self.source_eos else ids

    def corpus_target(self, text: str) -> list[int]:
        return self.tgt_vocab.ids(self.target.pieces(text))

    def source_pieces(self, sentence: str) -> list[tuple[str, str, int, int]]:
        """(surface, vocabulary form, id, word index) per token the encoder reads; refuses bad input."""
        check_sentence(sentence)
        pieces = self.source.pieces(sentence)
        if not pieces:
            raise AttnstepError("the sentence is empty: type some words to translate")
        if len(pieces) > self.max_source_tokens:
            raise AttnstepError(f"the sentence has {len(pieces)} {self.unit}s; the maximum is {self.max_source_tokens}")
        # pre-tokenized text: a token's surface is as typed, before lower-casing
        surfaces = sentence.split() if self.source.kind == "none" else [self.source.surface(p) for p in pieces]
        rows = []
        for w, (start, end) in enumerate(self.source.words(pieces)):
            for piece, shown in zip(pieces[start:end], surfaces[start:end]):
                i = self.src_vocab.id(piece)
                rows.append((shown, self.src_vocab.tokens[i], i, w))
        if self.source_eos:
            rows.append((EOS, EOS, self.src_vocab.id(EOS), rows[-1][3] + 1))
        return rows

    def source_words(self, tokens: Sequence[SourcePiece]) -> list[tuple[str, int, int]]:
        # An unknown piece's text is its surface, as the user typed it; JoeyNMT's </s> is a word of its own.
        body = list(tokens[:-1]) if self.source_eos and tokens and tokens[-1].token == EOS else list(tokens)
        typed = self.source.kind == "none"  # then every token's surface is as typed
        pieces = [t.surface if typed or t.id == UNK_ID else t.token for t in body]
        words = [(self.source.join(pieces[s:e]), s, e) for s, e in self.source.words(pieces)]
        return words + ([(EOS, len(body), len(tokens))] if len(body) < len(tokens) else [])

    def target_words(self, tokens: list[str]) -> list[tuple[str, int, int]]:
        return [(self.target.join(tokens[s:e]), s, e) for s, e in self.target.words(tokens)]

    def detokenize(self, tokens: list[str]) -> str:
        return self.target.join(tokens)

    def reference_ids(self, text: str) -> list[int]:
        """A given translation as target ids, cut as the model's outputs are; unknown pieces <unk>."""
        check_sentence(text)
        return self.tgt_vocab.ids(self.target.pieces(text))

    @property
    def target_tokens(self) -> list[str]:
        return self.tgt_vocab.tokens

    def target_ids(self, word: str) -> list[int]:
        """A typed word as the target tokens that write it: one token if the vocabulary has it (for
        SentencePiece, the word-initial "▁word" first), else its pieces; [] where one is unknown."""
        word = word.strip()
        if not word:
            return []
        forms = (WORD_START + word, word) if self.target.kind == "sentencepiece" else (word,)
        for form in forms:
            if form in self.tgt_vocab:
                return [self.tgt_vocab.id(form)]
        pieces = self.target.pieces(word)
        return self.tgt_vocab.ids(pieces) if pieces and all(p in self.tgt_vocab for p in pieces) else []
