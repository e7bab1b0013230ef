"""What ``attnstep train`` can be told, and each setting's default: the command line's options take
their defaults from here (and the model's from :class:`~attnstep.model.ModelConfig`). Loads without
torch, so that the command line starts without it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from attnstep.model import ATTENTION_TYPES, ModelConfig

TOKENIZERS = ("words", "subword")  # lower-cased words (checkpoint format 1) | SentencePiece pieces (format 2)
# The names of attnstep.engine.checkpoint.STORAGE_TYPES, which maps them to torch types.
STORAGE_TYPES = ("float16", "bfloat16", "float32")

# The options' choices: Typer lists an Enum's values in --help and refuses any other value. Made from
# the tuples, which mypy cannot read members from.
Tokenizer = Enum("Tokenizer", {name: name for name in TOKENIZERS}, type=str)  # type: ignore[misc]
Attention = Enum("Attention", {name: name for name in ATTENTION_TYPES}, type=str)  # type: ignore[misc]
StorageType = Enum("StorageType", {name: name for name in STORAGE_TYPES}, type=str)  # type: ignore[misc]

__all__ = ["Attention", "ModelConfig", "StorageType", "Tokenizer", "TrainSettings"]


@dataclass
class TrainSettings:
    data: str = ""  # a folder with {train,val}.{lang}[.gz] (Multi30k); or give corpora
    # corpus specs (attnstep.data.corpus); the first one gives the held-out sets
    corpora: list = field(default_factory=list)
    tsv_columns: str = "src,tgt"  # language of each column of a .tsv corpus
    holdout: int = 0  # validation pairs held out of the first corpus (as many again for test)
    tokenizer: str = "words"  # one of TOKENIZERS
    vocab_size: int = 8000  # pieces per side, with --tokenizer subword
    max_minutes: float = 0.0  # stop training after this much time (0: no limit)
    save_minutes: float = 10.0  # save the run's state this often inside an epoch too (0: after each epoch only)
    keep_epochs: int = 5  # the last epochs whose weights stay in the work folder, for `attnstep average`
    src: str = "fr"
    tgt: str = "en"
    epochs: int = 20  # upper bound; early stopping usually ends sooner
    batch_size: int = 64
    lr: float = 1e-3
    lr_decay: float = 0.5  # multiply the learning rate by this when val BLEU does not improve
    patience: int = 3  # stop after this many epochs without a new best val BLEU
    label_smoothing: float = 0.1  # of the training loss (Szegedy et al. 2016)
    clip: float = 1.0  # gradient norm
    min_freq: int = 2  # words seen fewer times in training become <unk> (word tokenizer)
    max_len: int = 50  # training pairs longer than this (tokens or pieces) are skipped
    seed: int = 1
    model: dict = field(default_factory=dict)  # ModelConfig overrides, e.g. {"attention": "dot"}
    init: str = ""  # a checkpoint to start from: its weights, vocabularies and pieces instead of new ones
    dtype: str = "float32"  # storage type of the saved weights, one of STORAGE_TYPES
