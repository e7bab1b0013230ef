"""Shared fixtures: tiny seeded models built in the test, never the shipped checkpoint or a training run."""

from __future__ import annotations

from pathlib import Path

import pytest
import textual.constants
from hypothesis import HealthCheck, settings

from attnstep.model.rnn.config import SCORERS

# Properties, not speed: the suite runs on busy machines, where Hypothesis's deadline and its
# too_slow health check would fail a correct test.
settings.register_profile("untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("untimed")

SOURCE_WORDS = [
    "une",
    "un",
    "voiture",
    "rouge",
    "chien",
    "noir",
    "homme",
    "femme",
    "court",
    "dans",
    "la",
    "rue",
    "parc",
    ".",
    ",",
    "le",
    "les",
    "deux",
]
TARGET_WORDS = [
    "a",
    "the",
    "red",
    "car",
    "black",
    "dog",
    "man",
    "woman",
    "runs",
    "in",
    "street",
    "park",
    ".",
    ",",
    "two",
]


def build_tiny_checkpoint(path: Path, *, attention: str = "general", seed: int = 0, eos_bias: float = 0.0) -> Path:
    """A deterministic, untrained model small enough to build in milliseconds.

    ``eos_bias`` raises the <eos> logit so that decoding ends early (tests of finished traces).
    """
    import torch

    from attnstep.engine.checkpoint import save_checkpoint
    from attnstep.model import ModelConfig, Seq2Seq
    from attnstep.text.words import EOS_ID, SPECIALS, Vocab

    src_vocab = Vocab([*SPECIALS, *SOURCE_WORDS])
    tgt_vocab = Vocab([*SPECIALS, *TARGET_WORDS])
    torch.manual_seed(seed)
    config = ModelConfig(
        src_vocab_size=len(src_vocab),
        tgt_vocab_size=len(tgt_vocab),
        emb_dim=8,
        enc_hidden=6,
        dec_hidden=12,
        attention=attention,
        attn_dim=7,
        dropout=0.1,
    )
    model = Seq2Seq(config)
    with torch.no_grad():
        model.decoder.out_bias[EOS_ID] = eos_bias
    meta = {"source_language": "fr", "target_language": "en", "provenance": {"data": "none: built by a test"}}
    save_checkpoint(path, model, src_vocab, tgt_vocab, meta)
    return path


# A few sentences of each language for a tiny SentencePiece model: enough characters for 340 pieces.
SUBWORD_FRENCH = """Une voiture rouge est garée devant la maison.
Un chien noir court dans la rue.
Je suis étudiant. Je suis étudiante.
L'accord sur la zone économique européenne a été signé en août 1992.
Deux enfants jouent dans le parc avec un ballon.
Une femme avec un chapeau bleu lit un livre près de la fenêtre.
Les hommes travaillent ensemble sur une route de montagne.
Elle mange une pomme verte pendant que son frère regarde la télévision.
Nous habitons à Paris depuis trois ans et nous aimons beaucoup cette ville.
Où est la gare ? Il fait très beau aujourd'hui !""".splitlines()
SUBWORD_ENGLISH = """A red car is parked in front of the house.
A black dog runs in the street.
I am a student. I'm a student.
The agreement on the European Economic Area was signed in August 1992.
Two children play in the park with a ball.
A woman with a blue hat reads a book near the window.
The men work together on a mountain road.
She eats a green apple while her brother watches television.
We have lived in Paris for three years and we really like this city.
Where is the station? The weather is very nice today!""".splitlines()


def build_tiny_subword_checkpoint(path: Path, *, seed: int = 0) -> Path:
    """A deterministic, untrained format-2 model: SentencePiece pieces with byte fallback on both sides."""
    import torch

    from attnstep.engine.checkpoint import save_checkpoint
    from attnstep.model import ModelConfig, Seq2Seq
    from attnstep.text.subword import train_subword
    from attnstep.text.words import Vocab

    src_model = train_subword(SUBWORD_FRENCH * 3, 340, seed=1, threads=1)
    tgt_model = train_subword(SUBWORD_ENGLISH * 3, 320, seed=1, threads=1)
    torch.manual_seed(seed)
    config = ModelConfig(
        src_vocab_size=len(src_model),
        tgt_vocab_size=len(tgt_model),
        emb_dim=8,
        enc_hidden=6,
        dec_hidden=12,
        attention="general",
        attn_dim=7,
        dropout=0.1,
    )
    meta = {"source_language": "fr", "target_language": "en", "provenance": {"data": "none: built by a test"}}
    save_checkpoint(
        path, Seq2Seq(config), Vocab(src_model.pieces), Vocab(tgt_model.pieces), meta, subword=(src_model, tgt_model)
    )
    return path


@pytest.fixture(autouse=True)
def truecolor_app(monkeypatch):
    """Every app in truecolor, as the snapshots are drawn, whatever terminal runs the tests: the
    grids draw weights by colour there and by glyphs in 16 colours (LinesView.shows_ramp)."""
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "truecolor")


@pytest.fixture(scope="session")
def subword_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_subword_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-subword")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-general")


@pytest.fixture(scope="session", params=SCORERS)
def any_attention_checkpoint(request, tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / f"tiny-{request.param}", attention=request.param)


@pytest.fixture(scope="session")
def no_attention_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-none", attention="none")


@pytest.fixture(scope="session")
def stepper(tiny_checkpoint):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper

    return Stepper(load_checkpoint(tiny_checkpoint))
