"""Trace JSON: round trip, schema, strictness, and refusal of untrusted files that don't add up."""

import json
import os
import pickle
import struct
import subprocess
import sys

import jsonschema
import pytest

from attnstep.errors import AttnstepError
from attnstep.trace import reader, writer
from attnstep.trace.cursor import StepCursor, TraceCursor
from attnstep.trace.records import STAGE_COUNT, Floats


@pytest.fixture(scope="module")
def trace(stepper):
    return stepper.translate("Un chien noir court dans la rue.")


def test_json_round_trip_is_exact(trace):
    assert reader.parse(writer.dumps(trace)) == trace
    lean = trace.without_vectors()
    assert reader.parse(writer.dumps(lean)) == lean


def test_floats_are_an_immutable_exact_float32_sequence():
    values = [0.1, -2.5, 3.0, 1e-3]
    floats = Floats.of(values)
    as_float32 = [struct.unpack("f", struct.pack("f", x))[0] for x in values]
    assert len(floats) == 4 and list(floats) == floats.tolist() == as_float32
    assert floats[1] == -2.5 and floats[-1] == as_float32[-1] and floats[1:3] == (-2.5, 3.0)
    assert floats == Floats.of(as_float32) and hash(floats) == hash(Floats.of(as_float32))
    assert floats != Floats.of(values[:3]) and floats != tuple(as_float32)
    assert pickle.loads(pickle.dumps(floats)) == floats
    with pytest.raises(AttributeError):
        floats._data = b""
    with pytest.raises(ValueError):
        Floats(b"abc")
    span = Floats(floats.tobytes(), 1, 3)  # a vector that is part of a step's numbers
    assert span == Floats.of([-2.5, 3.0]) and len(span) == 2 and list(span) == [-2.5, 3.0] and span[-1] == 3.0
    assert hash(span) == hash(Floats.of([-2.5, 3.0])) and pickle.loads(pickle.dumps(span)) == span
    with pytest.raises(ValueError):
        Floats(floats.tobytes(), 3, 5)


def test_a_traces_vectors_are_floats_and_the_json_has_their_values(trace):
    data = json.loads(writer.dumps(trace))
    step = trace.steps[0]
    assert all(
        isinstance(v, Floats) for v in (step.hidden, step.context, step.concat, step.attentional, *trace.encoder_states)
    )
    assert data["steps"][0]["hidden"] == step.hidden.tolist()
    assert data["encoder_states"][1] == list(trace.encoder_states[1])


def test_packed_vectors_round_trip_for_our_own_processes_only(trace):
    packed = writer.dumps_wire(trace)
    assert len(packed) < len(writer.dumps(trace))
    assert reader.from_wire_dict(json.loads(packed), origin="the service") == trace
    with pytest.raises(AttnstepError, match="does not match the trace schema"):
        reader.parse(packed, origin="t.json")  # a file must be the documented form
    data = json.loads(packed)
    data["steps"][0]["hidden"] = "not base64!"
    with pytest.raises(AttnstepError, match="a packed vector is not base64 of float32 numbers"):
        reader.from_wire_dict(data, origin="the service")


def test_dump_follows_the_schema_and_stable_names(trace):
    data = json.loads(writer.dumps(trace))
    jsonschema.validate(data, reader.schema())
    for key in ("format_version", "source", "encoder_states", "steps", "translation", "alignment"):
        assert key in data
    assert set(data["steps"][0]) >= {
        "scores",
        "weights",
        "context",
        "hidden",
        "concat",
        "attentional",
        "candidates",
        "chosen",
    }
    assert data["alignment"] == [s["weights"] for s in data["steps"]]
    assert data["translation"] == trace.translation


def test_precision_rounds_every_float(trace):
    data = json.loads(writer.dumps(trace, precision=3))
    numbers = [x for s in data["steps"] for x in s["weights"] + s["hidden"]] + data["encoder_states"][0]
    assert all(round(x, 3) == x for x in numbers)
    jsonschema.validate(data, reader.schema())


@pytest.mark.slow
def test_dumps_is_deterministic_across_processes(trace, tmp_path):
    """Another interpreter, with another hash seed (so other set and dict orders), writes the same bytes."""
    path = tmp_path / "trace.json"
    path.write_bytes(writer.dumps(trace, indent=True))
    script = "import sys; from attnstep.trace import reader, writer; sys.stdout.buffer.write(writer.dumps(reader.load(sys.argv[1]), indent=True))"
    for seed in ("1", "2"):
        child = subprocess.run(
            [sys.executable, "-c", script, str(path)],
            capture_output=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=False,
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout == path.read_bytes()


def _mutated(trace, edit):
    data = json.loads(writer.dumps(trace))
    edit(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    "text_or_edit, message",
    [
        ("{", "not valid JSON"),
        ('{"format_version": NaN}', "NaN is not valid JSON"),
        ('{"x": Infinity}', "Infinity is not valid JSON"),
        ('{"x": 1e999}', "number out of range: 1e999"),
        ('{"x": -4e38}', "number out of range: -4e38"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a":' * 40 + "1" + "}" * 40, "nested too deeply"),
        ('{"format_version": 2}', "does not match the trace schema"),
        (lambda d: d["steps"][0]["weights"].pop(), "weights for"),
        (lambda d: d["steps"].reverse(), "out of order"),
        (lambda d: d["encoder_states"].pop(), "encoder states for"),
        (lambda d: d["steps"][1]["weights"].__setitem__(0, 0.9), "sum to"),
        (lambda d: d["alignment"].pop(), "alignment does not equal"),
        (lambda d: d["steps"][1]["input"].__setitem__("token", "zzz"), "input is not the word chosen"),
        (lambda d: d.update(output_tokens=["made", "up"]), "output_tokens"),
        (lambda d: d["steps"][0].pop("hidden"), "vectors"),
        (lambda d: d["checkpoint"].update(attention="magic"), "schema"),
    ],
)
def test_untrusted_traces_are_refused_in_one_line(trace, text_or_edit, message):
    text = text_or_edit if isinstance(text_or_edit, str) else _mutated(trace, text_or_edit)
    with pytest.raises(AttnstepError, match=message) as info:
        reader.parse(text, origin="t.json")
    assert "\n" not in str(info.value)


def test_a_score_beyond_float_range_is_refused(trace):
    """1e999 parses to infinity, which the app's arithmetic turns into NaN: refused while parsing."""
    data = json.loads(writer.dumps(trace))
    data["steps"][0]["scores"][0] = 12345.5
    text = json.dumps(data).replace("12345.5", "1e999")
    with pytest.raises(AttnstepError, match="has a number out of range: 1e999"):
        reader.parse(text, origin="t.json")


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "MAX_TRACE_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_text(" " * 200)
    with pytest.raises(AttnstepError, match="limit"):
        reader.load(path)


def test_cursor_moves_and_clamps(trace):
    cursor = TraceCursor(trace)
    assert cursor.position == 0 and cursor.current is None
    assert cursor.step() and cursor.current is trace.steps[0]
    assert cursor.back() and cursor.position == 0
    assert not cursor.back()
    cursor.end()
    assert cursor.position == cursor.total == len(trace.steps)
    assert not cursor.step()
    cursor.goto(2)
    assert cursor.visible == trace.steps[:2]
    assert cursor.restart() and cursor.position == 0


def test_step_cursor_walks_the_sub_steps(trace):
    cursor = StepCursor(trace)
    assert (cursor.position, cursor.stage, cursor.partial) == (0, STAGE_COUNT, False)
    assert not cursor.sub_step(-1)  # nothing before the encoder
    assert cursor.sub_step(1) and (cursor.position, cursor.stage, cursor.partial) == (1, 1, True)
    for stage in range(2, STAGE_COUNT + 1):
        assert cursor.sub_step(1) and (cursor.position, cursor.stage) == (1, stage)
    assert not cursor.partial
    assert cursor.sub_step(1) and (cursor.position, cursor.stage) == (2, 1)  # into the next step
    assert cursor.sub_step(-1) and (cursor.position, cursor.stage) == (
        1,
        STAGE_COUNT,
    )  # back: the step before, whole
    assert cursor.sub_step(-1) and (cursor.position, cursor.stage) == (1, STAGE_COUNT - 1)
    assert cursor.step() and (cursor.position, cursor.stage) == (1, STAGE_COUNT)  # → completes a partial step…
    assert cursor.step() and (cursor.position, cursor.stage) == (2, STAGE_COUNT)  # …then takes whole ones
    cursor.goto(2, 3)
    assert cursor.back() and (cursor.position, cursor.stage) == (1, STAGE_COUNT)


def test_step_cursor_clamps_and_resets_the_stage(trace):
    cursor = StepCursor(trace, 1, 4)
    assert (cursor.position, cursor.stage) == (1, 4)
    assert cursor.goto(99) and (cursor.position, cursor.stage) == (cursor.total, STAGE_COUNT)
    assert not cursor.sub_step(1)  # nothing after the last step
    assert not cursor.step()
    assert cursor.goto(1, 0) and cursor.stage == 1
    assert cursor.goto(1, 99) and cursor.stage == STAGE_COUNT
    assert cursor.restart() and (cursor.position, cursor.stage) == (0, STAGE_COUNT)
    assert not cursor.goto(0, 3) and cursor.stage == STAGE_COUNT  # the encoder alone has no stages
    cursor.goto(cursor.total, 2)
    assert cursor.end() and cursor.stage == STAGE_COUNT  # end shows the last step whole


def test_every_scorer_round_trips_with_its_keys(any_attention_checkpoint):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper

    trace = Stepper(load_checkpoint(any_attention_checkpoint)).translate("un chien noir court .")
    data = json.loads(writer.dumps(trace))
    jsonschema.validate(data, reader.schema())
    assert reader.parse(writer.dumps(trace)) == trace
    assert ("keys" in data) == (trace.checkpoint.attention != "dot")
    assert ("query" in data["steps"][0]) == ("v_a" in data) == (trace.checkpoint.attention in ("concat", "additive"))
    lean = json.loads(writer.dumps(trace.without_vectors()))
    assert not {"keys", "v_a"} & set(lean) and "query" not in lean["steps"][0]
    data["keys"] = data.get("keys", [[0.0]] * len(data["source"]))[:-1]  # one key short
    with pytest.raises(AttnstepError, match="keys"):
        reader.parse(json.dumps(data))
