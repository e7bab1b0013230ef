"""Pilot tests of editing a step's attention in the app (``i``, issue 23): the dialog reaches the engine,
the screen shows the step's after beside its before and the ``~`` mark, u and c, replay, no attention."""

from __future__ import annotations

import pytest

from attnstep.report.glyphs import num
from attnstep.trace.reader import parse
from attnstep.trace.records import Edit
from attnstep.trace.writer import dumps
from attnstep.tui import replay_app
from attnstep.tui.keybar import KeyBar
from attnstep.tui.screens.alignment import CompareScreen
from attnstep.tui.screens.dialogs import EDITS, EditDialog
from tests.marian_helpers import marian_folder_fixture  # noqa: F401  (a fixture)
from tests.test_tui_snapshots import after
from tests.tui_helpers import SENTENCE, app_on, async_test, settle

WIDE = (140, 40)
T = 1  # the step edited (0-based): the app is on step 2


def notices(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def open_editor(pilot, operation: str, value: str | None = None) -> EditDialog:
    """i, then ↓ to ``operation`` (the value box keeps the focus), its value typed over the suggested one."""
    await pilot.press("i")
    dialog = pilot.app.screen
    assert isinstance(dialog, EditDialog)
    await pilot.press(*["down"] * [op for op, _, _ in EDITS].index(operation))
    assert dialog.operation == operation
    if value is not None:
        dialog.query_one("#value").value = value
    return dialog


def own_column(app) -> list[str]:
    """The Attention panel's column of the model's own weights, beside the edited ones (row: word, e, a', own)."""
    return [row.split()[3] for row in app.panels["attention"].plain_lines[1 : 1 + len(app.cursor.trace.source)]]


def edits_for(trace) -> dict[str, tuple[str | None, Edit]]:
    """Each operation as the dialog gets it (its typed value, None: the suggested one) and the Edit it means."""
    n = len(trace.source)
    typed = [0.5, 0.5] + [0.0] * (n - 2)
    return {
        "zero": ("2", Edit("zero", tokens=(1,))),
        "one": (trace.source[3].surface, Edit("one", tokens=(3,))),
        "uniform": (None, Edit("uniform")),
        "temperature": ("0.25", Edit("temperature", temperature=0.25)),
        "reverse": (None, Edit("reverse")),
        "permute": ("7", Edit("permute", seed=7)),
        "weights": (",".join(f"{w:g}" for w in typed), Edit("weights", weights=tuple(typed))),
    }


@pytest.mark.slow
@async_test
async def test_each_operation_from_the_dialog_reaches_the_engine_and_shows_before_and_after(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        original = app.given
        for operation, (value, edit) in edits_for(original).items():
            await pilot.press("r", "right", "right")
            await open_editor(pilot, operation, value)
            await pilot.press("enter")
            await settle(pilot)
            expected = stepper.edit(original, T, edit)
            assert app.given == expected, operation
            step = app.cursor.current
            assert app.cursor.position == T + 1 and step.edit is not None
            # after beside before: the weights used and the model's own, the two distributions' choices
            assert own_column(app) == [num(w) for w in original.steps[T].weights], operation
            rows = app.panels["attention"].plain_lines[1 : 1 + len(original.source)]
            assert [row.split()[2] for row in rows] == [num(w) for w in step.weights], operation
            candidates = app.panels["candidates"].plain_lines
            before = candidates.index("before, the model's own a:")
            assert candidates[before + 1].startswith("▷ " + original.steps[T].chosen_token)  # greedy: its top word
            assert any(line.startswith("▶ " + step.chosen_token) for line in candidates[:before])
            assert step.chosen_token + "~" in app.query_one("#output").plain
            assert "~" in app.panels["grid"].plain_lines[T + 1]  # the grid's row label carries the mark
            narration = app.query_one("#narration").plain
            assert "weights set by you" in narration, operation
            await pilot.press("u")  # undo: the model's own decoding again, exactly
            await settle(pilot)
            assert app.given == original, operation
            assert "~" not in app.query_one("#output").plain


@async_test
async def test_a_zeroed_word_is_narrated_and_worked_out(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        best = max(range(len(app.given.source)), key=lambda i: app.cursor.current.weights[i])
        word = app.given.source[best].surface
        dialog = await open_editor(pilot, "zero")  # the suggested word: the most attended one
        assert dialog.query_one("#value").value == word
        assert f"as dump --edit: {T + 1}:zero={word}" in str(dialog.query_one("#spec").render())
        await pilot.press("enter")
        await settle(pilot)
        assert app.cursor.current.weights[best] == 0.0
        assert f"weights set by you: {word} 0 → the rest renormalised" in app.query_one("#narration").plain
        assert any(f"weights set by you: {word} 0" in n for n in notices(app))
        await pilot.press("w")  # the worked score of the most attended word now: the softmax's a, then the a' used
        step = app.cursor.current
        shown = max(range(len(step.weights)), key=lambda i: step.weights[i])
        work = str(app.screen.query_one("#work").render()).replace("\n", " ")
        own = step.edit.before.weights[shown]
        assert (
            f"a' = {num(step.weights[shown])} for “{app.given.source[shown].surface}”, where the model's own a is {num(own)}"
            in work
        )


@async_test
async def test_bad_typed_weights_are_refused_in_the_dialog(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right")
        trace = app.given
        n = len(trace.source)
        bad = {
            ",".join(["0.5"] * n): "must sum to 1",
            ",".join(["-0.5", "1.5"] + ["0"] * (n - 2)): "non-negative",
            "0.5,0.5": f"2 weights for {n} source tokens",
            "a,b": "is not a number",
        }
        dialog = await open_editor(pilot, "weights")
        for value, message in bad.items():
            dialog.query_one("#value").value = value
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is dialog
            problem = str(dialog.query_one("#problem").render())
            assert message in problem and "\n" not in problem, value
        await pilot.press("escape")
        await settle(pilot)
        assert app.given is trace


@async_test
async def test_c_shows_the_two_decodings_and_the_step_where_they_part(stepper):
    trace = stepper.translate(SENTENCE)
    # an edit at step 2 that changes the word chosen there: all the weight on one of the words
    token = next(
        i
        for i in range(len(trace.source))
        if stepper.edit(trace, T, Edit("one", tokens=(i,))).steps[T].chosen_id != trace.steps[T].chosen_id
    )
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        await open_editor(pilot, "one", str(token + 1))
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        assert app.screen.before == trace and app.screen.after == app.given
        assert app.screen.diverge == T
        keys = str(app.screen.query_one(".keys").render())
        assert f"≠ step {T + 1}, where they part" in keys


@async_test
async def test_a_replay_without_a_model_offers_no_editing(stepper):
    app = replay_app(stepper.translate(SENTENCE), "saved.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "i")
        assert not isinstance(app.screen, EditDialog)
        # as forcing a word: a replay has no model to decode an edited step with, so the key is not offered
        labels = [entry.plain for entry, _ in app.query_one(KeyBar).entries()]
        assert labels and not [label for label in labels if "edit" in label or "force" in label]


@async_test
async def test_replay_of_an_edited_dump_shows_the_edit(stepper):
    trace = stepper.translate(SENTENCE)
    edited = parse(dumps(stepper.edit(trace, T, Edit("uniform"))))  # as `dump --edit 2:uniform` writes it
    app = replay_app(edited, "edited.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "right")
        assert own_column(app) == [num(w) for w in trace.steps[T].weights]
        assert edited.steps[T].chosen_token + "~" in app.query_one("#output").plain
        assert "weights set by you: uniform" in app.query_one("#narration").plain
        assert "before, the model's own a:" in app.panels["candidates"].plain_lines


@async_test
async def test_a_model_without_attention_has_nothing_to_edit(no_attention_checkpoint):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper

    app = app_on(Stepper(load_checkpoint(no_attention_checkpoint)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "i")
        assert not isinstance(app.screen, EditDialog)
        assert any("no attention: there are no weights to edit" in n for n in notices(app))


@pytest.mark.slow  # builds a tiny Marian with transformers (~5 s)
@async_test
async def test_a_transformers_head_in_view_or_its_whole_layer(marian_folder):
    from attnstep.engine.marian_checkpoint import load_marian
    from attnstep.engine.stepper import Stepper

    stepper = Stepper(load_marian(marian_folder))
    app = app_on(stepper, sentence="Un chien noir court dans la rue.")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        original = app.given
        view = original.view
        assert view is not None and view.head is None  # a layer's mean of heads: an edit of them all
        await pilot.press("right", "right")
        dialog = await open_editor(pilot, "uniform")
        assert f"edits every head of layer {view.layer + 1}" in str(dialog.query_one("#scope").render())
        await pilot.press("escape", "a")  # head 1 of the layer in view
        layer, head = view.layer, 0
        dialog = await open_editor(pilot, "uniform")
        assert f"edits head {head + 1} of layer {layer + 1}" in str(dialog.query_one("#scope").render())
        await pilot.press("enter")
        await settle(pilot)
        assert app.given == stepper.edit(original, T, Edit("uniform", layer=layer, head=head))
        n = len(original.source)
        assert [row.split()[2] for row in app.panels["attention"].plain_lines[1 : 1 + n]] == [num(1 / n)] * n
        assert own_column(app) == [num(w) for w in original.steps[T].layers[layer].cross[head].weights]
        assert f"weights set by you: layer {layer + 1}, head {head + 1}: uniform" in app.query_one("#narration").plain
        await pilot.press("r", "right", *["s"] * 4)  # step 2's softmax, of the head edited
        assert app.view.partial_stage.key == "softmax"
        assert "replace them" in app.query_one("#narration").plain
        await pilot.press("a")  # the next head, not edited: its weights are the model's
        assert "are of another head" in app.query_one("#narration").plain
        await pilot.press("u")
        await settle(pilot)
        assert app.given == original
        dialog = await open_editor(pilot, "reverse")
        await pilot.press("tab")  # every head of the layer
        assert f"edits every head of layer {layer + 1}" in str(dialog.query_one("#scope").render())
        await pilot.press("enter")
        await settle(pilot)
        assert app.given == stepper.edit(original, T, Edit("reverse", layer=layer))


@pytest.mark.slow
@async_test
async def test_a_follower_sees_the_teachers_edited_decoding(stepper):
    import json

    from attnstep.serve.remote import TeacherShows
    from attnstep.serve.session import ServedApp
    from attnstep.serve.wire import SharedView, trace_from_wire
    from attnstep.trace.writer import dumps_wire
    from attnstep.tui import make_app
    from tests.test_serve_parts import SilentLink

    trace = stepper.translate(SENTENCE)
    # the teacher's edited decoding as the class channel hands it to a student: the wire form
    edited = trace_from_wire(json.loads(dumps_wire(stepper.edit(trace, T, Edit("zero", tokens=(0,))))))
    app = make_app(ServedApp, source_factory=lambda: stepper, origin="tiny", open_on_sentence_box=False)
    app.join_class(SilentLink(), teacher=False, follow=True, user="ann")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        app.teacher_shows(TeacherShows("teach", edited, T + 1, 0, SharedView()))
        await pilot.pause()
        assert app.given == edited and app.following
        assert own_column(app) == [num(w) for w in trace.steps[T].weights]
        assert edited.steps[T].chosen_token + "~" in app.query_one("#output").plain
        await pilot.press("i")  # an edit of the student's own leaves follow mode
        assert isinstance(app.screen, EditDialog) and not app.following


@async_test
async def test_a_subword_models_editor_zeroes_the_most_attended_pieces_word(subword_checkpoint):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper

    stepper = Stepper(load_checkpoint(subword_checkpoint))
    app = app_on(stepper, sentence="les étudiants regardent la voiture rouge")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        trace, weights = app.given, app.cursor.current.weights
        best = max(range(len(weights)), key=lambda i: weights[i])
        word = next(w for w in trace.source_words if w.start <= best < w.end)
        dialog = await open_editor(pilot, "zero")
        assert dialog.query_one("#value").value == word.text
        await pilot.press("enter")
        await settle(pilot)
        assert app.given == stepper.edit(trace, T, Edit("zero", tokens=tuple(range(word.start, word.end))))
        assert all(app.cursor.current.weights[i] == 0.0 for i in range(word.start, word.end))


@async_test
async def test_an_edited_step_goes_stage_by_stage(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        await open_editor(pilot, "uniform")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("r", "right")
        said = {}
        for _ in range(app.given.stage_count):  # every sub-step of step 2, the edited one
            await pilot.press("s")
            said[app.view.current_stage.key] = app.query_one("#narration").plain
        own = app.given.steps[T].edit.before.weights
        assert own_column(app) == [num(w) for w in own]  # the pick: the own weights beside the uniform ones
        assert "softmax gives the model's own weights" in said["softmax"] and "uniform replace them" in said["softmax"]
        assert "weights set by you" not in said["score"]  # the scores are the model's: the edit comes after them


@async_test
async def test_a_hostile_word_edited_stays_text(stepper):
    import json

    from attnstep.trace.writer import to_json_dict
    from tests.test_tui_untrusted import EVIL, RAW

    data = to_json_dict(stepper.edit(stepper.translate(SENTENCE), T, Edit("zero", tokens=(2,))))
    for i, token in enumerate(data["source"]):  # the words the edit names, the panels and the narration show
        token["surface"] = token["token"] = EVIL[i % len(EVIL)]
    app = replay_app(parse(json.dumps(data), origin="hostile.json"), "hostile.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "right")
        screen = app.export_screenshot()
        on_screen = "\n".join(
            [line for panel in app.panels.values() for line in panel.plain_lines] + [b.plain for b in app.bars]
        )
    for raw in RAW:
        assert raw not in screen and raw not in on_screen
    assert "weights set by you: ␛]0;pwned␇ 0 → the rest renormalised" in on_screen


@async_test
async def test_a_beam_search_and_a_given_translation_are_not_edited(tiny_checkpoint):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper

    for app in (
        app_on(Stepper(load_checkpoint(tiny_checkpoint), beam=3)),
        app_on(Stepper(load_checkpoint(tiny_checkpoint)), reference="a red car runs in the street ."),
    ):
        async with app.run_test(size=WIDE) as pilot:
            await settle(pilot)
            await pilot.press("right", "i")
            assert not isinstance(app.screen, EditDialog)
            said = notices(app)
            assert len(said) == 1 and ("without --beam" in said[0] or "all forced" in said[0])


@pytest.mark.slow
class TestScreens:
    """The editor and an edited step as pictures: for the lead to look at as PNG and pin (no SVG is committed)."""

    def test_the_editor_on_a_small_terminal(self, snap_compare, stepper):
        # → → i: the editor of step 2, zero its most attended word suggested
        assert snap_compare(app_on(stepper), terminal_size=(80, 24), run_before=after("right", "right", "i"))

    def test_an_edited_step_every_panel(self, snap_compare, stepper):
        # → → i ↓ ↓ Enter: step 2's weights made uniform, its after beside its before in every panel
        keys = ("right", "right", "i", "down", "down", "enter")
        assert snap_compare(app_on(stepper), terminal_size=WIDE, run_before=after(*keys))

    def test_an_edited_steps_next_word_tab(self, snap_compare, stepper):
        # the same edit at 80x24, then Tab Tab: the Next-word tab, the model's own choice under the new one
        keys = ("right", "right", "i", "down", "down", "enter", "tab", "tab")
        assert snap_compare(app_on(stepper), terminal_size=(80, 24), run_before=after(*keys))
