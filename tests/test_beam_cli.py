"""--beam and --target on the command line (dump, eval) and in the SSH server's model service."""

import json
import re

import jsonschema
import orjson
import pytest

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.serve.service import ModelService
from attnstep.serve.wire import source_to_wire, trace_from_wire
from attnstep.trace.reader import schema
from tests.cli_helpers import invoke
from tests.tui_helpers import async_test


def test_dump_beam_writes_the_search_and_its_best_hypothesis(tiny_checkpoint):
    result = invoke("dump", "un chien noir court", "--checkpoint", tiny_checkpoint, "--beam", 3, "--alpha", 1.0)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    jsonschema.validate(data, schema())
    assert data["beam"]["width"] == 3 and data["beam"]["alpha"] == 1.0
    expected = Stepper(load_checkpoint(tiny_checkpoint), beam=3, alpha=1.0).translate("un chien noir court")
    assert [s["chosen"]["id"] for s in data["steps"]] == [s.chosen_id for s in expected.steps]


def test_dump_input_beam_decodes_in_batches_in_file_order(tiny_checkpoint, tmp_path):
    sentences = ["un chien noir .", "une voiture", "le homme court dans la rue .", "deux femmes ."]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(sentences) + "\n")
    out = tmp_path / "out.jsonl"
    args = (
        "dump",
        "--input",
        source,
        "--output",
        out,
        "--checkpoint",
        tiny_checkpoint,
        "--batch-size",
        3,
        "--beam",
        4,
        "--no-vectors",
    )
    assert invoke(*args).exit_code == 0
    stepper = Stepper(load_checkpoint(tiny_checkpoint), beam=4, vectors=False)
    lines = out.read_bytes().splitlines()
    assert len(lines) == len(sentences)
    for sentence, line in zip(sentences, lines):
        data = json.loads(line)
        jsonschema.validate(data, schema())
        alone = stepper.translate(sentence)
        assert data["output_tokens"] == alone.output_tokens and len(data["beam"]["steps"]) == len(alone.beam.steps)


def test_dump_target_forces_the_reference(tiny_checkpoint):
    result = invoke("dump", "un chien noir", "--checkpoint", tiny_checkpoint, "--target", "A black dog.")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    jsonschema.validate(data, schema())
    assert data["output_tokens"] == ["a", "black", "dog", "."] and all(s["forced"] for s in data["steps"])
    assert data["reference"]["text"] == "A black dog."
    assert data["reference"]["logprob"] == pytest.approx(sum(s["chosen"]["logprob"] for s in data["steps"]))


@pytest.mark.parametrize(
    "args, message, status",
    [  # options that do not go together are a usage error, status 2
        (["dump", "un chien", "--target", "a dog", "--beam", "2"], "--target goes with one SENTENCE and no --beam", 2),
        (["dump", "--input", "in.txt", "--target", "a dog"], "--target goes with one SENTENCE", 2),
        (["dump", "un chien", "--target", ""], "the reference: the sentence is empty", 1),
        (["translate", "--target", "a dog"], "--target needs the SENTENCE it translates", 1),
        (
            ["translate", "un chien", "--target", "a\x1b[2Jdog"],
            "the reference: the sentence contains control character U+001B",
            1,
        ),
    ],
)
def test_target_and_beam_mistakes_are_one_line(tiny_checkpoint, args, message, status):
    result = invoke(*args, "--checkpoint", tiny_checkpoint)
    assert result.exit_code == status and result.stderr.count("\n") == 1 and message in result.stderr


@pytest.fixture
def flickr_split(tmp_path):
    """A data folder whose test_2016_flickr split is four sentences."""
    fr = ["un chien noir court .", "une femme dans la rue .", "deux hommes dans le parc .", "un homme court ."]
    en = ["a black dog runs .", "a woman in the street .", "two men in the park .", "a man runs ."]
    (tmp_path / "test_2016_flickr.fr").write_text("\n".join(fr) + "\n")
    (tmp_path / "test_2016_flickr.en").write_text("\n".join(en) + "\n")
    return tmp_path


def bleu_lines(stdout: str) -> dict[str, str]:
    """{decoding: its BLEU line} from eval's output."""
    blocks = re.findall(r"\(\d+ sentences, ([^)]+)\)\nBLEU = (\S+)", stdout)
    return dict(blocks)


def test_eval_beam_reports_beside_greedy(tiny_checkpoint, flickr_split, tmp_path):
    result = invoke("eval", tiny_checkpoint, "--data", flickr_split, "--beam", 3, "--output", tmp_path / "hyp.txt")
    assert result.exit_code == 0
    assert list(bleu_lines(result.stdout)) == ["greedy", "beam 3, alpha 0.6"]
    stepper = Stepper(load_checkpoint(tiny_checkpoint), beam=3)
    written = (tmp_path / "hyp.txt").read_text().splitlines()
    assert written == [
        t.translation
        for t in stepper.translate_batch(
            ["un chien noir court .", "une femme dans la rue .", "deux hommes dans le parc .", "un homme court ."]
        )
    ]


def test_eval_beam_of_one_scores_as_greedy(tiny_checkpoint, flickr_split, tmp_path):
    greedy, beam = tmp_path / "greedy.txt", tmp_path / "beam.txt"
    assert invoke("eval", tiny_checkpoint, "--data", flickr_split, "--output", greedy).exit_code == 0
    result = invoke("eval", tiny_checkpoint, "--data", flickr_split, "--beam", 1, "--output", beam)
    scores = bleu_lines(result.stdout)
    assert scores["greedy"] == scores["beam 1, alpha 0.6"]
    assert beam.read_text() == greedy.read_text()


@async_test
async def test_the_served_model_searches_with_the_beam_it_was_given(tiny_checkpoint):
    service = ModelService.load(tiny_checkpoint, 5, beam=3)
    try:
        trace = trace_from_wire(orjson.loads(await service.answer({"op": "translate", "sentence": "un chien noir"})))
        assert trace.beam.width == 3
        request = {"op": "decode", "source": source_to_wire(trace.source), "prefix": [], "word": "dog"}
        forced = trace_from_wire(orjson.loads(await service.answer(request)))
        assert forced.steps[0].chosen_token == "dog" and forced.beam.start == 1
    finally:
        service.close()
