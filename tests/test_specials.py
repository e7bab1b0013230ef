"""A checkpoint whose special tokens have other ids than attnstep's (JoeyNMT's and OpenNMT-py's
<unk>=0 <pad>=1 <s>=2 </s>=3; Marian's) is decoded with its own: the stepper, the beam search and
the batch padding read the model's Specials, not text/words.py's ids."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from attnstep.engine.checkpoint import Checkpoint, load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.model import Seq2Seq
from attnstep.model.family import Specials
from attnstep.text.words import BOS_ID, EOS_ID, PAD_ID
from attnstep.trace.records import SourceToken

SENTENCES = ["une voiture rouge .", "un chien noir court dans la rue .", "la femme"]


def moved(old: int) -> int:
    """The new id of attnstep's id ``old``: the four specials rotate (<pad> 0 → 1, <bos> 2 → 3, <eos> 3 → 0)."""
    return (old + 1) % 4 if old < 4 else old


class Tokens:
    """A vocabulary in another order than text/words.Vocab allows: what the stepper reads of one."""

    def __init__(self, tokens: list[str]):
        self.tokens = tokens

    def __len__(self) -> int:
        return len(self.tokens)


def renumbered(checkpoint: Checkpoint) -> Checkpoint:
    """The same model with its specials' rows moved (embeddings, output layer and bias), and Specials to say so."""
    model = Seq2Seq(checkpoint.config, Specials(moved(BOS_ID), moved(EOS_ID), moved(PAD_ID)))
    state = {}
    for name, tensor in checkpoint.model.state_dict().items():
        if name in ("encoder.embedding.weight", "decoder.embedding.weight", "decoder.out_bias", "decoder.W_s.weight"):
            order = torch.tensor(sorted(range(tensor.size(0)), key=moved))  # new id → old id
            tensor = tensor[order]
        state[name] = tensor
    model.load_state_dict(state)

    def vocab(tokens: list[str]) -> Tokens:
        return Tokens([tokens[old] for old in sorted(range(len(tokens)), key=moved)])

    return replace(
        checkpoint,
        model=model,
        src_vocab=vocab(checkpoint.src_vocab.tokens),
        tgt_vocab=vocab(checkpoint.tgt_vocab.tokens),
    )


@pytest.mark.parametrize("beam", [None, 3])
def test_own_special_ids_decode_as_attnstep_ids_do(tiny_checkpoint, beam):
    ours = Stepper(load_checkpoint(tiny_checkpoint), beam=beam)
    theirs = Stepper(renumbered(load_checkpoint(tiny_checkpoint)), beam=beam)
    sources = [ours.source_tokens(s) for s in SENTENCES]
    expected = ours.decode_batch(sources)
    got = theirs.decode_batch([tuple(SourceToken(t.surface, t.token, moved(t.id)) for t in s) for s in sources])
    for e, g in zip(expected, got):
        assert [s.chosen_token for s in g.steps] == [s.chosen_token for s in e.steps]
        assert [s.chosen_id for s in g.steps] == [moved(s.chosen_id) for s in e.steps]
        assert [s.input_token for s in g.steps] == [s.input_token for s in e.steps]
        assert g.finished == e.finished and g.translation == e.translation
        for gs, es in zip(g.steps, e.steps):
            assert gs.weights == pytest.approx(es.weights, abs=1e-6)
            assert gs.chosen_logprob == pytest.approx(es.chosen_logprob, abs=1e-6)
