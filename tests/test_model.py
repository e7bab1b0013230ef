"""The model's contract: shapes, masking, and that training and decoding share one step function."""

import pytest
import torch

from attnstep.engine.batch import pad
from attnstep.engine.checkpoint import load_checkpoint
from attnstep.text.words import BOS_ID


@pytest.fixture
def model(any_attention_checkpoint):
    return load_checkpoint(any_attention_checkpoint).model


def test_step_returns_every_intermediate_with_its_shape(model):
    config = model.config
    src, lengths = pad([[4, 5, 6, 7], [8, 9]])
    memory, state = model.encode(src, lengths)
    output, new_state = model.step(torch.full((2,), BOS_ID), state, memory)
    assert memory.states.shape == (2, 4, config.memory_dim)
    assert output.scores.shape == output.weights.shape == (2, 4)
    assert output.hidden.shape == (2, config.dec_hidden)
    assert output.context.shape == (2, config.memory_dim)
    assert output.concat.shape == (2, config.dec_hidden + config.memory_dim)
    assert output.attentional.shape == (2, config.out_dim)
    assert output.logits.shape == (2, config.tgt_vocab_size)
    assert torch.equal(new_state.hidden, output.hidden)
    # Padding gets no attention, and the weights are a distribution over the real tokens.
    assert output.weights[1, 2:].abs().max() == 0
    torch.testing.assert_close(output.weights.sum(-1), torch.ones(2))
    torch.testing.assert_close(output.concat, torch.cat([output.hidden, output.context], -1))


def test_padding_does_not_change_a_sentence(model):
    alone, alone_len = pad([[8, 9]])
    padded, padded_len = pad([[4, 5, 6, 7, 4, 5], [8, 9]])
    memory_a, state_a = model.encode(alone, alone_len)
    memory_b, state_b = model.encode(padded, padded_len)
    out_a, _ = model.step(torch.tensor([BOS_ID]), state_a, memory_a)
    out_b, _ = model.step(torch.tensor([BOS_ID, BOS_ID]), state_b, memory_b)
    torch.testing.assert_close(out_a.logits[0], out_b.logits[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_a.weights[0], out_b.weights[1, :2], atol=1e-6, rtol=1e-5)


def test_teacher_forcing_unrolls_the_same_step(model):
    src, lengths = pad([[4, 5, 6]])
    tgt_in = torch.tensor([[BOS_ID, 5, 6, 7]])
    logits = model(src, lengths, tgt_in)
    memory, state = model.encode(src, lengths)
    for t in range(tgt_in.size(1)):
        output, state = model.step(tgt_in[:, t], state, memory)
        torch.testing.assert_close(logits[:, t], output.logits)


def test_greedy_picks_the_argmax_of_each_step(model):
    src, lengths = pad([[4, 5, 6, 7]])
    tokens = model.greedy(src, lengths)[0]
    memory, state = model.encode(src, lengths)
    prev = torch.tensor([BOS_ID])
    for token in tokens:
        output, state = model.step(prev, state, memory)
        assert int(output.logits.argmax()) == token
        prev = torch.tensor([token])
