"""SentencePiece subword models (Kudo & Richardson 2018), trained with byte fallback.

Byte fallback means that a character the model has no piece for is spelled as its UTF-8
bytes (``<0xF0>`` …), each a piece of the vocabulary, so no input ever becomes ``<unk>``:
accents, names, emoji and CJK all reach the model as something it has an embedding for.

A model file is a serialized protocol buffer: loading it parses data and runs nothing. It is
still checked like the rest of a checkpoint — size, the four special pieces at ids 0–3 in
attnstep's order, all 256 byte pieces present — so a damaged or foreign file ends in one
:class:`AttnstepError` line instead of wrong translations.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path

from attnstep.data.files import read_limited
from attnstep.errors import AttnstepError, first_line
from attnstep.text.words import SPECIALS

MAX_MODEL_BYTES = 16 * 1024 * 1024  # an 8k-piece model is ~0.4 MB
WORD_START = "\u2581"  # "▁": SentencePiece's mark for a piece that begins a whitespace-separated word
BYTE_PIECE = re.compile(r"^<0x[0-9A-F]{2}>$")


def is_byte_piece(piece: str) -> bool:
    """A piece that stands for one UTF-8 byte of a character the model has no piece for."""
    return BYTE_PIECE.match(piece) is not None


class SubwordModel:
    """One side's SentencePiece model: text ↔ piece ids."""

    def __init__(self, processor, origin: str):
        self._processor = processor
        self.origin = origin
        self.pieces: list[str] = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]

    @classmethod
    def from_bytes(cls, data: bytes, origin: str) -> SubwordModel:
        import sentencepiece

        if len(data) > MAX_MODEL_BYTES:
            raise AttnstepError(f"{origin} is {len(data)} bytes; a subword model is at most {MAX_MODEL_BYTES}")
        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(data)
        except (RuntimeError, OSError, ValueError, TypeError) as exc:
            reason = first_line(exc)
            raise AttnstepError(f"{origin} is not a valid SentencePiece model ({reason})") from None
        model = cls(processor, origin)
        model._validate()
        return model

    @classmethod
    def load(cls, path: Path) -> SubwordModel:
        return cls.from_bytes(
            read_limited(path, MAX_MODEL_BYTES, "{path} is {size} bytes; a subword model is at most {limit}"), str(path)
        )

    def _validate(self) -> None:
        if tuple(self.pieces[: len(SPECIALS)]) != SPECIALS:
            raise AttnstepError(
                f"{self.origin}: the first pieces must be {', '.join(SPECIALS)}, not {', '.join(self.pieces[:4])}"
            )
        byte_pieces = sum(
            1 for i, piece in enumerate(self.pieces) if self._processor.is_byte(i) and is_byte_piece(piece)
        )
        if byte_pieces != 256:
            raise AttnstepError(
                f"{self.origin} has {byte_pieces} byte pieces, not 256: it was trained without byte fallback, "
                "so some input would become <unk>"
            )

    def __len__(self) -> int:
        return len(self.pieces)

    def encode(self, text: str) -> list[int]:
        return self._processor.encode(text)

    def decode(self, ids: Iterable[int]) -> str:
        return self._processor.decode(list(ids))

    def serialized(self) -> bytes:
        return self._processor.serialized_model_proto()


def train_subword(sentences: Iterable[str], vocab_size: int, *, seed: int, threads: int = 2) -> SubwordModel:
    """A unigram SentencePiece model with byte fallback, attnstep's special ids, and digits split."""
    import sentencepiece

    sentencepiece.set_random_generator_seed(seed)
    writer = io.BytesIO()
    try:
        _train(sentencepiece, sentences, writer, vocab_size, threads)
    except RuntimeError as exc:
        raise AttnstepError(
            f"cannot train the subword model: {_training_failure(first_line(exc), vocab_size)}"
        ) from None
    return SubwordModel.from_bytes(writer.getvalue(), "trained subword model")


def _training_failure(message: str, vocab_size: int) -> str:
    """SentencePiece's reason in attnstep's terms: its own advice names options attnstep does not have."""
    if most := re.search(r"Vocabulary size too high \(\d+\)\. Please set it to a value <= (\d+)", message):
        return (
            f"the text yields at most {most[1]} pieces, fewer than the {vocab_size} asked for (--vocab-size):"
            " train on more text, or ask for fewer"
        )
    if least := re.search(r"Vocabulary size is smaller than required_chars\. \d+ vs (\d+)", message):
        # Byte fallback adds 256 pieces and attnstep 4 specials to the text's own characters.
        return (
            f"{vocab_size} pieces cannot hold the text's characters, the 256 bytes and the 4 special tokens"
            f" ({least[1]} pieces): use --vocab-size {least[1]} or more"
        )
    return message


def _train(sentencepiece, sentences: Iterable[str], writer: io.BytesIO, vocab_size: int, threads: int) -> None:
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=writer,
        vocab_size=vocab_size,
        model_type="unigram",
        byte_fallback=True,
        character_coverage=0.9995,  # the rarest 0.05 % of characters are left to bytes
        split_digits=True,  # "1992" as 1 9 9 2: numbers are copied digit by digit, never unknown
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        pad_piece=SPECIALS[0],
        unk_piece=SPECIALS[1],
        bos_piece=SPECIALS[2],
        eos_piece=SPECIALS[3],
        num_threads=threads,
        minloglevel=2,
    )
