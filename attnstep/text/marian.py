"""Marian's tokenization, as ``transformers.MarianTokenizer`` does it, without transformers.

A sentence is cut into pieces by ``source.spm``; each piece is looked up in ``vocab.json`` (which
numbers the pieces of both sides, not in the SentencePiece models' order), a piece not there
becomes ``<unk>``, and ``</s>`` is appended. A leading language code such as ``>>fr<<`` (multilingual
opus-mt models) is one token, not cut. Output ids go back to pieces through the same vocabulary and
are joined by ``target.spm``. The files are data — JSON and SentencePiece protocol buffers — and are
checked before use, so a mismatched or damaged set ends in one :class:`AttnstepError` line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from attnstep.data.files import read_limited
from attnstep.errors import AttnstepError, first_line

SOURCE_SPM, TARGET_SPM, VOCAB_FILE = "source.spm", "target.spm", "vocab.json"
UNK, EOS, PAD = "<unk>", "</s>", "<pad>"
MAX_SPM_BYTES = 64 * 1024 * 1024  # opus-mt models are ~0.8 MB
MAX_VOCAB_BYTES = 64 * 1024 * 1024  # a 60k vocabulary is ~1.5 MB
# The share of a SentencePiece model's pieces that vocab.json must know: it is built from both
# models' pieces, so a lower share means files of different models.
MIN_KNOWN_SHARE = 0.9


def _load_spm(path: Path):
    import sentencepiece

    data = read_limited(path, MAX_SPM_BYTES, "{path} is {size} bytes; a SentencePiece model is at most {limit}")
    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(data)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        raise AttnstepError(f"{path} is not a valid SentencePiece model ({first_line(exc)})") from None
    return processor


def _load_vocab(path: Path) -> dict[str, int]:
    data = read_limited(path, MAX_VOCAB_BYTES, "{path} is {size} bytes; a vocabulary is at most {limit}")
    try:
        vocab = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AttnstepError(f"cannot read {path}: {first_line(exc)}") from None
    if not isinstance(vocab, dict) or not all(type(i) is int for i in vocab.values()):
        raise AttnstepError(f"{path} must map each piece to an integer id")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise AttnstepError(f"{path}: the ids must be 0 to {len(vocab) - 1}, each once")
    missing = [token for token in (UNK, EOS, PAD) if token not in vocab]
    if missing:
        raise AttnstepError(f"{path} lacks {', '.join(missing)}")
    return vocab


class MarianTokenizer:
    """Source text → ids for the encoder; target ids → pieces and text."""

    def __init__(self, source, target, vocab: dict[str, int], origin: str):
        self._source, self._target, self.vocab, self.origin = source, target, vocab, origin
        self.tokens = [""] * len(vocab)  # id → piece, both sides' (the vocabulary a trace names tokens by)
        for piece, index in vocab.items():
            self.tokens[index] = piece
        self.unk_id, self.eos_id, self.pad_id = vocab[UNK], vocab[EOS], vocab[PAD]
        self.special_ids = frozenset((self.unk_id, self.eos_id, self.pad_id))  # skipped when decoding

    @classmethod
    def load(cls, folder: Path) -> MarianTokenizer:
        missing = [name for name in (SOURCE_SPM, TARGET_SPM, VOCAB_FILE) if not (folder / name).is_file()]
        if missing:
            raise AttnstepError(f"{folder} is missing {', '.join(missing)}, which a Marian model's tokenizer needs")
        if (folder / "target_vocab.json").exists():
            raise AttnstepError(f"{folder} has separate target vocabularies (target_vocab.json), not supported yet")
        source, target = _load_spm(folder / SOURCE_SPM), _load_spm(folder / TARGET_SPM)
        vocab = _load_vocab(folder / VOCAB_FILE)
        for name, processor in ((SOURCE_SPM, source), (TARGET_SPM, target)):
            pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
            share = sum(piece in vocab for piece in pieces) / max(len(pieces), 1)
            if share < MIN_KNOWN_SHARE:
                raise AttnstepError(
                    f"{folder}: {VOCAB_FILE} knows {share:.0%} of the pieces of {name}; the files are of different models"
                )
        return cls(source, target, vocab, str(folder))

    def __len__(self) -> int:
        return len(self.vocab)

    def source_pieces(self, text: str) -> list[str]:
        """The pieces the encoder reads, </s> left out; a leading >>xx<< code is kept whole."""
        code = []
        end = text.find("<<") if text.startswith(">>") else -1
        if end != -1:
            code, text = [text[: end + 2]], text[end + 2 :]
        return code + self._source.encode(text, out_type=str)

    def ids(self, pieces: Iterable[str]) -> list[int]:
        """Pieces → vocab.json ids; a piece it lacks is <unk>."""
        return [self.vocab.get(piece, self.unk_id) for piece in pieces]

    def encode(self, text: str) -> list[int]:
        """The encoder's ids, </s> at the end, as MarianTokenizer(text).input_ids."""
        return [*self.ids(self.source_pieces(text)), self.eos_id]

    def target_pieces(self, text: str) -> list[str]:
        """A translation cut as the decoder writes it, by target.spm (MarianTokenizer(text_target=…), no </s>)."""
        return self._target.encode(text, out_type=str)

    def piece(self, index: int) -> str:
        return self.tokens[index]

    def source_text(self, pieces: list[str]) -> str:
        """Source pieces joined back into the text they cut (a word's, for the word view)."""
        return self._source.decode_pieces(pieces).replace("\u2581", " ").strip()

    def decode(self, ids: Iterable[int]) -> str:
        """Target ids → text, special tokens left out (decode(…, skip_special_tokens=True))."""
        pieces = [self.tokens[i] for i in ids if i not in self.special_ids]
        return self._target.decode_pieces(pieces).replace("\u2581", " ").strip()
