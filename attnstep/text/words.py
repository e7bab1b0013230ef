"""Tokenization, detokenization and vocabularies.

The tokenizer is deliberately simple so that a student can predict it:

1. The text is Unicode-normalised (NFC) and typographic apostrophes become ``'``.
2. It is split into words (letters/digits, with inner hyphens kept: ``t-shirt``),
   elisions ending in an apostrophe before a letter (``l'``, ``d'``, ``qu'``, ``don'``),
   and single punctuation marks.
3. Each token is lower-cased for the model; the trace keeps the user's surface form.

Detokenization reverses step 2 for display and for BLEU: no space before closing
punctuation, none after opening brackets, and an elision glues to the next word.

Inputs are refused (with a one-line :class:`AttnstepError`) when empty, longer than
:data:`MAX_SOURCE_TOKENS` tokens or :data:`MAX_SOURCE_CHARS` characters, or when they
contain control characters (C0/C1 controls other than tab/newline, bidi overrides):
such characters have no meaning in a sentence to translate and could rewrite a terminal.
A lone surrogate (a command-line byte that was not UTF-8) is refused as not UTF-8.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import regex

from attnstep.errors import AttnstepError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)

MAX_SOURCE_TOKENS = 100
MAX_SOURCE_CHARS = 1000

# A word character is a letter/digit or a combining mark (so "é" written as e + U+0301 stays one word).
_W = r"[\w\p{M}]"
_TOKEN_RE = regex.compile(rf"{_W}+'(?={_W})|{_W}+(?:-{_W}+)*|[^\w\p{{M}}\s]")
_NO_SPACE_BEFORE = set(".,!?;:)]}%")
_NO_SPACE_AFTER = set("([{")
# Format characters that reorder or hide text on a terminal (bidi embeddings, overrides, isolates, marks).
_BIDI_CONTROLS = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")


@dataclass(frozen=True)
class Token:
    surface: str  # as the user typed it
    normalized: str  # lower-cased form that is looked up in the vocabulary


def is_control(char: str) -> bool:
    """A character no sentence needs: a C0/C1 control other than tab and line ends, or a bidi control."""
    return char not in "\t\n\r" and (unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS)


# Unicode's stand-in for a character that cannot be shown: what the model sees for a control
# character in a corpus (the word model's <unk>, a subword model's bytes).
REPLACEMENT = "\ufffd"


def replace_controls(text: str) -> tuple[str, list[str]]:
    """``text`` with each control character as :data:`REPLACEMENT`, as a corpus line is read for the
    model rather than refused; and, if any was replaced, what each REPLACEMENT in the result was, in
    order (one the text already had stands for itself)."""
    was = [] if text.isprintable() else [char for char in text if char == REPLACEMENT or is_control(char)]
    if not any(map(is_control, was)):
        return text, []
    return "".join(REPLACEMENT if is_control(char) else char for char in text), was


class Replacements:
    """The lines of a corpus whose control characters were replaced for the model, said in one line on stderr."""

    SHOWN = 10  # lines named; the rest are counted

    def __init__(self) -> None:
        self.characters = 0
        self.lines: list[int] = []

    def add(self, number: int, count: int) -> None:
        self.characters += count
        self.lines.append(number)

    def __str__(self) -> str:
        shown = ", ".join(map(str, self.lines[: self.SHOWN]))
        more = len(self.lines) - self.SHOWN
        where = (
            f"line {shown}" if len(self.lines) == 1 else f"lines {shown}" + (f" and {more} more" if more > 0 else "")
        )
        plural = "" if self.characters == 1 else "s"
        return f"{self.characters} control character{plural} replaced by U+{ord(REPLACEMENT):04X} for the model, on {where}"


def _check_characters(text: str) -> None:
    for position, char in enumerate(text):
        if unicodedata.category(char) == "Cs":
            raise AttnstepError(f"the sentence is not valid UTF-8 ({_undecodable(char)} at position {position})")
        if is_control(char):
            raise AttnstepError(
                f"the sentence contains control character U+{ord(char):04X} at position {position}; "
                "remove it and try again"
            )


def _undecodable(surrogate: str) -> str:
    """What a lone surrogate stands for: Python decodes a command-line byte that is not UTF-8 as U+DC80 + the byte."""
    code = ord(surrogate)
    return f"byte 0x{code - 0xDC00:02X}" if 0xDC80 <= code <= 0xDCFF else f"lone surrogate U+{code:04X}"


def check_sentence(text: str) -> None:
    """Refuse a sentence that is too long or holds control characters (any tokenizer)."""
    if len(text) > MAX_SOURCE_CHARS:
        raise AttnstepError(f"the sentence has {len(text)} characters; the maximum is {MAX_SOURCE_CHARS}")
    _check_characters(text)


def tokenize(text: str, *, max_tokens: int = MAX_SOURCE_TOKENS) -> list[Token]:
    """Split a sentence into tokens, refusing input the model cannot sensibly take."""
    check_sentence(text)
    text = unicodedata.normalize("NFC", text).replace("\u2019", "'").replace("\u2018", "'")
    tokens = [Token(m.group(), m.group().lower()) for m in _TOKEN_RE.finditer(text)]
    if not tokens:
        raise AttnstepError("the sentence is empty: type some words to translate")
    if len(tokens) > max_tokens:
        raise AttnstepError(f"the sentence has {len(tokens)} tokens; the maximum is {max_tokens}")
    return tokens


def tokenize_lenient(text: str) -> list[str]:
    """Normalised tokens of corpus text (training data, references): never refuses."""
    text = unicodedata.normalize("NFC", text).replace("\u2019", "'").replace("\u2018", "'")
    return [m.group().lower() for m in _TOKEN_RE.finditer(text)]


def detokenize(tokens: Iterable[str]) -> str:
    """Join tokens into a sentence, undoing the tokenizer's splits around punctuation and elisions."""
    out: list[str] = []
    glue_next = False
    for token in tokens:
        if out and not glue_next and token[0] not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append(token)
        glue_next = token[-1] in _NO_SPACE_AFTER or (len(token) > 1 and token.endswith("'"))
    return "".join(out)


class TokenIndex:
    """Tokens by id and ids by token, a token not listed read as ``unk_id``; a token listed twice has its
    first id, as the toolkits look it up."""

    unk_id = UNK_ID

    def __init__(self, tokens: Sequence[str]):
        self.tokens: list[str] = list(tokens)
        self._index: dict[str, int] = {}
        for i, token in enumerate(self.tokens):
            self._index.setdefault(token, i)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def id(self, token: str) -> int:
        return self._index.get(token, self.unk_id)

    def ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.id(t) for t in tokens]


class Vocab(TokenIndex):
    """attnstep's fixed list of tokens; index 0..3 are <pad>, <unk>, <bos>, <eos>, and no token twice."""

    def __init__(self, tokens: Sequence[str]):
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise AttnstepError(f"a vocabulary must start with {', '.join(SPECIALS)}")
        if len(set(tokens)) != len(tokens):
            raise AttnstepError("the vocabulary lists a token twice")
        super().__init__(tokens)

    @classmethod
    def build(cls, sentences: Iterable[list[str]], *, min_freq: int = 2, max_size: int | None = None) -> Vocab:
        counts = Counter(token for sentence in sentences for token in sentence)
        # Most frequent first, ties alphabetical, so the same data always gives the same vocabulary.
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max_size - len(SPECIALS)]
        return cls([*SPECIALS, *ranked])

    def to_json(self) -> str:
        return json.dumps({"tokens": self.tokens}, ensure_ascii=False, indent=0)

    @classmethod
    def load(cls, path: Path) -> Vocab:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AttnstepError(f"cannot read vocabulary {path}: {exc}") from None
        except RecursionError:
            raise AttnstepError(f"cannot read vocabulary {path}: JSON nested too deeply") from None
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
            raise AttnstepError(f"vocabulary {path} must be an object with a list of non-empty strings under 'tokens'")
        return cls(tokens)
