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


def test_probe_command_side_by_side(tiny_checkpoint, no_attention_checkpoint, stepper, tmp_path):
    import json

    from tests.cli_helpers import invoke

    sentences = tmp_path / "sentences.fr"
    sentences.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    common = ["probe", "--input", sentences, "--checkpoint", tiny_checkpoint, "--checkpoint", no_attention_checkpoint]
    result = invoke(*common, "--json", "--seed", 3, "--batch-size", 2)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ours, none = data["checkpoints"]
    assert none == {"name": "tiny-none", "attention": "none", "probed": False}
    probed = stepper.probe([stepper.source_tokens(s) for s in SENTENCES], seed=3)
    assert ours["all"]["steps"] == len(probed) == sum(b["steps"] for b in ours["buckets"])
    for k, name in enumerate(MANIPULATIONS):
        assert ours["all"][name]["changed"] == sum(p.changed[k] for p in probed)
    kinds = ours["kinds"]
    vocab = stepper.codec.target_tokens
    assert kinds["function"]["steps"] == sum(vocab[p.chosen_id] in ("a", "the", "in") for p in probed)
    shown = invoke(*common, "--plot", tmp_path / "probe.svg")
    assert shown.exit_code == 0 and "tiny-none: no attention, nothing to edit" in shown.stdout
    assert "changed % ↑, source words →" in shown.stdout and (tmp_path / "probe.svg").read_text().startswith("<")
    refused = invoke(*common, "--json", "--plot", tmp_path / "x.svg")
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1
