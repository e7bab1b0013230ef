"""Shared fixtures: tiny seeded models built in the test, never the shipped checkpoint or a training run."""

from __future__ import annotations

from pathlib import Path

import pytest

SOURCE_WORDS = "une un voiture rouge chien noir homme femme court dans la rue parc . , le les deux".split()
TARGET_WORDS = "a the red car black dog man woman runs in street park . , two".split()


def build_tiny_checkpoint(path: Path, *, attention: str = "general", seed: int = 0, eos_bias: float = 0.0) -> Path:
    """A deterministic, untrained model small enough to build in milliseconds.

    ``eos_bias`` raises the <eos> logit so that decoding ends early (tests of finished traces).
    """
    import torch

    from attnstep.checkpoint import save_checkpoint
    from attnstep.model import ModelConfig, Seq2Seq
    from attnstep.text import EOS_ID, SPECIALS, Vocab

    src_vocab = Vocab([*SPECIALS, *SOURCE_WORDS])
    tgt_vocab = Vocab([*SPECIALS, *TARGET_WORDS])
    torch.manual_seed(seed)
    config = ModelConfig(
        src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), emb_dim=8, enc_hidden=6, dec_hidden=12,
        attention=attention, attn_dim=7, dropout=0.1,
    )
    model = Seq2Seq(config)
    with torch.no_grad():
        model.decoder.out_bias[EOS_ID] = eos_bias
    meta = {"source_language": "fr", "target_language": "en", "provenance": {"data": "none: built by a test"}}
    save_checkpoint(path, model, src_vocab, tgt_vocab, meta)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-general")


@pytest.fixture(scope="session", params=["dot", "general", "concat", "additive"])
def any_attention_checkpoint(request, tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / f"tiny-{request.param}", attention=request.param)


@pytest.fixture(scope="session")
def stepper(tiny_checkpoint):
    from attnstep.checkpoint import load_checkpoint
    from attnstep.stepper import Stepper

    return Stepper(load_checkpoint(tiny_checkpoint))
