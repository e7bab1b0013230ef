"""The probe experiment (issue 23): each greedy step's attention manipulated, that step only."""

from __future__ import annotations

import math

import pytest

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.edit import MANIPULATIONS, manipulation, probe_random
from attnstep.engine.stepper import Stepper
from attnstep.trace import reader, writer

SENTENCES = [
    "une voiture rouge dans la rue .",
    "un chien noir court dans le parc .",
    "deux femme",
    "un homme court , la femme court dans la rue .",
    "le chien",
]


def _jsd(p: dict[int, float], q: dict[int, float]) -> float:
    total = 0.0
    for i in p.keys() | q.keys():
        a, b = p.get(i, 0.0), q.get(i, 0.0)
        m = (a + b) / 2
        total += (a * math.log2(a / m) if a else 0.0) + (b * math.log2(b / m) if b else 0.0)
    return total / 2


@pytest.fixture(scope="module")
def stepper(tiny_checkpoint) -> Stepper:
    checkpoint = load_checkpoint(tiny_checkpoint)
    return Stepper(checkpoint, top_k=len(checkpoint.tgt_vocab))  # every candidate: the whole distribution


def test_probe_counts_equal_a_recount_from_dumped_traces(stepper):
    sources = [stepper.source_tokens(s) for s in SENTENCES]
    probed = stepper.probe(sources, seed=3)
    traces = [reader.parse(writer.dumps(trace)) for trace in stepper.decode_batch(sources)]  # dumped, read back
    assert [(p.sentence, p.step) for p in sorted(probed, key=lambda p: (p.sentence, p.step))] == [
        (i, s.index) for i, trace in enumerate(traces) for s in trace.steps
    ]
    by_step = {(p.sentence, p.step): p for p in probed}
    flips = dict.fromkeys(MANIPULATIONS, 0)
    for i, trace in enumerate(traces):
        for step in trace.steps:
            p = by_step[i, step.index]
            assert p.chosen_id == step.chosen_id
            own = {c.id: c.prob for c in step.candidates}
            for k, name in enumerate(MANIPULATIONS):
                edit = manipulation(name, step.weights, probe_random(3, i, step.index, name))
                after = stepper.edit(trace, step.index, edit).steps[step.index]
                flips[name] += after.chosen_id != step.chosen_id
                assert p.changed[k] == (after.chosen_id != step.chosen_id)
                assert p.divergence[k] == pytest.approx(_jsd(own, {c.id: c.prob for c in after.candidates}), abs=1e-5)
    counted = {name: sum(p.changed[k] for p in probed) for k, name in enumerate(MANIPULATIONS)}
    assert counted == flips
    assert sum(flips.values()) > 0  # the recount compares something
    # in two batches, the second told where it starts: the same draws, the same results
    halves = stepper.probe(sources[:2], seed=3) + stepper.probe(sources[2:], seed=3, first=2)
    for a, b in zip(
        sorted(halves, key=lambda p: (p.sentence, p.step)), sorted(probed, key=lambda p: (p.sentence, p.step))
    ):
        assert (a.sentence, a.step, a.chosen_id, a.changed) == (b.sentence, b.step, b.chosen_id, b.changed)
        assert a.divergence == pytest.approx(b.divergence, abs=1e-5)  # padding moves the float32 sums a little
    assert len(halves) == len(probed)


def test_zero_max_zeroes_the_largest_weight(stepper):
    trace = stepper.translate(SENTENCES[0])
    step = trace.steps[0]
    assert manipulation("zero-max", step.weights, probe_random(0, 0, 0, "zero-max")).tokens == (
        step.weights.index(max(step.weights)),
    )
