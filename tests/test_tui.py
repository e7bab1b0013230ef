"""Pilot tests of the stepping app on a tiny seeded model: every move, and that shown numbers are the trace's."""

from __future__ import annotations

import colorsys

import pytest
from rich.cells import cell_len
from rich.color import ColorSystem
from textual import events
from textual.widgets import Input, Label

from attnstep.commands.translate import translate_app
from attnstep.data.model_card import DEFAULT_EXAMPLES
from attnstep.report.glyphs import cell_number, norm, num, prob, strip
from attnstep.text.words import detokenize
from attnstep.trace.reader import load
from attnstep.trace.writer import dumps
from attnstep.tui import replay_app
from attnstep.tui.app import PANELS
from attnstep.tui.keybar import KeyBar
from attnstep.tui.screens.dialogs import AskDialog, ForceDialog, HelpDialog, SentenceDialog
from tests.conftest import build_tiny_checkpoint
from tests.tui_helpers import SENTENCE, app_on, async_test, settle

WIDE = (140, 40)


def attention_rows(app) -> list[str]:
    return app.panels["attention"].plain_lines[1:]


def grid_rows(app) -> list[str]:
    """The alignment grid's decoded rows (rows of later steps are blank until reached)."""
    return [line for line in app.panels["grid"].plain_lines[1:] if line.strip()]


def assert_step_on_screen(app) -> None:
    """Every number the panels show for the current step equals the trace's."""
    step, trace = app.cursor.current, app.cursor.trace
    for i, (row, token) in enumerate(zip(attention_rows(app), trace.source)):
        cells = row.split()
        assert cells[0] == token.surface
        assert cells[1] == num(step.scores[i])
        assert cells[2] == num(step.weights[i])
        # a·h_i: its norm is a_i·‖h_i‖, recomputed here from the recorded numbers ("·" when a_i is 0.00)
        size = "·" if cells[2] == "0.00" else num(norm([step.weights[i] * x for x in trace.encoder_states[i]]))
        assert f" {size:>5}  " in row
    decoder = app.panels["decoder"].plain_lines
    assert f"‖h_t‖ {num(norm(step.hidden))}" in decoder[1]
    # C_t is Σ a_i h_i of the recorded weights and states
    context = [sum(a * h[j] for a, h in zip(step.weights, trace.encoder_states)) for j in range(len(step.context))]
    assert f"‖C_t‖ {num(norm(context))}" in decoder[2]
    assert f"‖h̃_t‖ {num(norm(step.attentional))}" in decoder[5]  # below W_c, the layer that makes it
    candidates = app.panels["candidates"].plain_lines
    for line, candidate in zip(candidates, step.candidates):
        assert line[2:].startswith(candidate.token)
        assert f" {prob(candidate.prob):>5} " in line
    assert candidates[[c.token for c in step.candidates].index(step.chosen_token)].startswith("▶")
    grid = grid_rows(app)
    assert len(grid) == app.cursor.position
    for line, shown in zip(grid, app.cursor.visible):
        assert line.split()[-len(trace.source) :] == [cell_number(w) for w in shown.weights]
    status = app.status.plain
    assert f"step {app.cursor.position} of {len(trace.steps)}" in status


@async_test
async def test_step_and_back_show_the_trace(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert app.cursor.position == 0
        assert "step 0 of" in app.status.plain
        await pilot.press("right", "right", "right")  # three steps
        assert app.cursor.position == 3
        assert_step_on_screen(app)
        await pilot.press("left")  # one back
        assert app.cursor.position == 2
        assert_step_on_screen(app)
        output = app.query_one("#output").plain
        assert output.split()[1:] == [app.cursor.visible[0].chosen_token, "▶" + app.cursor.current.chosen_token]


@async_test
async def test_sub_steps_reveal_one_stage_at_a_time(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("s")  # stage 1: the RNN
        step = app.cursor.current
        assert (app.cursor.position, app.cursor.stage) == (1, 1)
        assert "stage 1/9 RNN" in app.status.plain
        assert "The RNN reads the embedding of “<bos>”" in app.query_one("#narration").plain
        assert attention_rows(app)[0].split()[1] == "·"  # not scored yet
        assert app.panels["decoder"].has_class("-stage")
        await pilot.press("s")  # stage 2: scores
        assert attention_rows(app)[0].split()[1:3] == [num(step.scores[0]), "·"]
        assert app.panels["attention"].has_class("-stage")
        await pilot.press("s")  # stage 3: softmax; the grid gains the row
        assert attention_rows(app)[0].split()[2] == num(step.weights[0])
        assert len(grid_rows(app)) == 1
        await pilot.press("s", "s")  # stages 4 and 5: weighted states, C_t
        assert "Σ a_i·h_i" in app.query_one("#narration").plain
        await pilot.press("s", "s", "s")  # stages 6 to 8: [h_t; C_t], h̃_t, the distribution; nothing picked yet
        assert not any(line.startswith("▶") for line in app.panels["candidates"].plain_lines)
        assert app.query_one("#output").plain.endswith("▶?")
        await pilot.press("s")  # stage 9: the word
        assert_step_on_screen(app)
        await pilot.press("s")  # next step, stage 1
        assert (app.cursor.position, app.cursor.stage) == (2, 1)
        await pilot.press("S")  # back across the step boundary: step 1 complete
        assert (app.cursor.position, app.cursor.stage) == (1, 9)
        await pilot.press("s", "s", "right")  # → completes a partly shown step
        assert (app.cursor.position, app.cursor.stage) == (2, 9)


@async_test
async def test_additive_scores_before_the_rnn(tmp_path):
    checkpoint = build_tiny_checkpoint(tmp_path / "tiny-additive", attention="additive")
    app = translate_app(checkpoint, SENTENCE)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        narration = app.query_one("#narration").plain
        assert "stage 1/9 score" in app.status.plain
        assert "s_{t-1}" in narration
        assert app.panels["decoder"].plain_lines[1].split() == ["s_t", "·"]  # the RNN runs later
        await pilot.press("s", "s", "s", "s")  # score, softmax, weight, sum → stage 5 is the RNN
        assert "stage 5/9 RNN → s_t" in app.status.plain


@async_test
async def test_jump_run_to_end_and_restart(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("g", "3", "enter")  # go to step 3
        assert app.cursor.position == 3
        assert_step_on_screen(app)
        await pilot.press("e")  # run to the end
        assert app.cursor.position == app.cursor.total
        assert_step_on_screen(app)
        assert len(grid_rows(app)) == app.cursor.total
        await pilot.press("r")  # restart
        assert app.cursor.position == 0
        assert grid_rows(app) == []


@pytest.mark.slow
@async_test
async def test_force_from_the_top_k_and_return(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        before = app.cursor.trace
        alternative = before.steps[1].candidates[1].token
        await pilot.press("f")  # force dialog: the top-k list has focus
        assert isinstance(app.screen, ForceDialog)
        await pilot.press("down", "enter")  # second candidate
        await settle(pilot)
        step = app.cursor.trace.steps[1]
        assert (step.chosen_token, step.forced, app.cursor.position) == (alternative, True, 2)
        assert app.cursor.trace.steps[0] == before.steps[0]
        assert_step_on_screen(app)
        assert "*" in app.query_one("#output").plain
        await pilot.press("u")  # back to the model's own word
        await settle(pilot)
        assert app.cursor.trace.steps[1].chosen_token == before.steps[1].chosen_token
        assert not app.cursor.trace.steps[1].forced


@pytest.mark.slow
@async_test
async def test_force_a_typed_word_and_refuse_unknown_ones(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "f", "tab")  # to the typing box
        await pilot.press(*"dog", "enter")
        await settle(pilot)
        assert app.cursor.trace.steps[0].chosen_token == "dog"
        assert app.cursor.trace.steps[1].input_token == "dog"
        trace = app.cursor.trace
        await pilot.press("f", "tab", *"zebra", "enter")
        await settle(pilot)
        assert app.cursor.trace is trace
        assert any("not a word the model can output" in str(n.message) for n in app._notifications)


@async_test
async def test_force_by_enter_in_the_next_word_panel(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right")
        app.panels["candidates"].focus()
        third = app.cursor.current.candidates[2].token
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        assert app.cursor.trace.steps[0].chosen_token == third


@async_test
async def test_new_sentence_and_refusal_in_place(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        assert isinstance(app.screen, SentenceDialog)
        app.screen.query_one("#sentence").value = "x\x1by"
        await pilot.press("enter")  # ESC inside a sentence: refused, explained in place
        assert "control character" in str(app.screen.query_one("#problem").render())
        app.screen.query_one("#sentence").value = "un chien noir"
        await pilot.press("enter")
        await settle(pilot)
        assert [t.surface for t in app.cursor.trace.source] == ["un", "chien", "noir"]
        assert app.cursor.position == 0


@async_test
async def test_esc_then_a_key_within_the_escape_delay_closes_the_box_and_presses_the_key(stepper):
    """A quick Esc n reaches the app as one alt+n: it typed an "n" into the box Esc was closing."""
    app = app_on(stepper, sentence=None)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        first = app.screen
        assert isinstance(first, SentenceDialog)
        await pilot.press("alt+n")  # Esc, then n: a new box, empty
        await settle(pilot)
        assert isinstance(app.screen, SentenceDialog) and app.screen is not first
        assert app.screen.query_one("#sentence", Input).value == ""
        await pilot.press("alt+q")  # Esc, then q: the app quits
        await settle(pilot)
    assert app.return_code == 0  # the q reached the app


@async_test
async def test_opens_on_the_examples_without_a_sentence(stepper):
    app = app_on(stepper, sentence=None)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, SentenceDialog)
        options = app.screen.query_one("#examples")
        assert (
            str(options.get_option_at_index(0).prompt)
            == DEFAULT_EXAMPLES[0]
            == "Une voiture rouge est garée devant la maison."
        )
        await pilot.press("down", "enter")  # into the list, first example
        await settle(pilot)
        assert app.cursor.trace.source[1].surface == "voiture"


@pytest.mark.parametrize("language, prompt", [("German", "Type a German"), ("English", "Type an English")])
@async_test
async def test_the_sentence_box_names_the_models_source_language(stepper, language, prompt):
    """A German or English model's box asks for its language, and never offers the French examples."""
    app = app_on(stepper, sentence=None, examples=(), source_language=language)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, SentenceDialog)
        assert str(app.screen.query_one(Label).render()) == f"{prompt} sentence and press Enter:"
        assert app.screen.query_one("#examples").option_count == 0


@async_test
async def test_replay_steps_but_cannot_force(stepper):
    app = replay_app(stepper.translate(SENTENCE), "saved.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "right")
        assert_step_on_screen(app)
        assert "replay of saved.json" in app.status.plain
        footer = {
            binding.action
            for (_, binding, enabled, _) in app.screen.active_bindings.values()
            if enabled and binding.show
        }
        assert {"step", "export"} <= footer and not footer & {
            "force",
            "new_sentence",
            "unforce",
        }  # no model: not offered
        await pilot.press("f")
        await pilot.press("n")
        assert not isinstance(app.screen, (ForceDialog, SentenceDialog))
        await pilot.press("question_mark")
        assert "force a different word" not in str(app.screen.query_one("Static").render())


@async_test
async def test_export_writes_what_dump_writes(stepper, tmp_path):
    app = app_on(stepper)
    target = tmp_path / "out.json"
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("x")
        app.screen.query_one("#answer").value = str(target)
        await pilot.press("enter")
        assert target.read_bytes() == dumps(app.cursor.trace, indent=True) + b"\n"
        assert load(target) == app.cursor.trace


@async_test
async def test_help_lists_every_key(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpDialog)
        text = str(app.screen.query_one("Static").render())
        for phrase in (
            "next sub-step",
            "go to step N",
            "run to the end",
            "restart",
            "force",
            "model's own choice",
            "export",
            "new sentence",
        ):
            assert phrase in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpDialog)


@async_test
async def test_bad_checkpoint_exits_with_one_line(tmp_path):
    app = translate_app(tmp_path / "missing", SENTENCE)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
    assert app.return_code == 1
    assert app.error_message.startswith(f"checkpoint {tmp_path / 'missing'} does not exist")


@pytest.mark.slow
@async_test
async def test_small_terminal_shows_one_panel_and_the_key_numbers(stepper):
    app = app_on(stepper)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        shown = [pid for pid, panel in app.panels.items() if panel.display]
        assert shown == ["attention"]
        step = app.cursor.current
        summary = app.query_one("#summary").plain
        best = max(range(len(step.weights)), key=lambda i: step.weights[i])
        assert f"{app.cursor.trace.source[best].surface} {num(step.weights[best])}" in summary
        assert f"▶{step.chosen_token} {num(step.chosen_prob)}" in summary
        await pilot.press("tab")
        assert [pid for pid, panel in app.panels.items() if panel.display] == ["decoder"]
        await pilot.press("s")  # a sub-step shows the panel it changed
        assert [pid for pid, panel in app.panels.items() if panel.display] == ["decoder"]  # RNN stage
        await pilot.press("s")
        assert [pid for pid, panel in app.panels.items() if panel.display] == ["attention"]
        await pilot.resize_terminal(160, 48)  # live resize: all panels at once
        await pilot.pause()
        assert all(panel.display for panel in app.panels.values())


@pytest.mark.parametrize("sentence", [" ".join(["une voiture rouge"] * 21), "une 猫 voiture 🐱 rouge"])
@async_test
async def test_long_and_wide_character_input_keeps_columns(stepper, sentence):
    app = app_on(stepper, sentence=sentence)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right")
        attention = app.panels["attention"]
        step = app.cursor.current
        ends = set()
        for row, score in zip(attention.plain_lines[1:], step.scores):
            shown = num(score)
            ends.add(cell_len(row[: row.index(" " + shown) + 1 + len(shown)]))
        assert len(ends) == 1  # the score column ends at the same cell whatever the words' widths
        if len(app.cursor.trace.source) > 60:
            assert attention.virtual_size.height > attention.size.height  # it scrolls


def burst(app, *keys: str) -> None:
    """Keys as a held key or a fast typist sends them: all queued before the app handles the first
    (pilot.press waits for the app to go idle after each key)."""
    for key in keys:
        app.post_message(events.Key(key, None))


@async_test
async def test_the_key_bar_lists_the_screens_keys_and_a_click_presses_one(stepper):
    app = app_on(stepper)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        bar = app.query_one(KeyBar)
        text = bar.render().plain
        assert (
            text.startswith(" tab panel ? help → step ← back s stage") and " S " not in text
        )  # keys not shown stay out
        _, start, _, _ = next(entry for entry in bar._keys if entry[3] == "question_mark")
        await pilot.click(KeyBar, offset=(start, 0))
        assert isinstance(app.screen, HelpDialog)


@pytest.mark.slow
@async_test
async def test_hidden_tabs_build_their_lines_when_shown(stepper):
    """Narrow, only the panel on screen is rebuilt at each key; another catches up when its tab
    is shown, or when the terminal grows wide enough to show every panel."""
    app = app_on(stepper)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        decoder, grid = app.panels["decoder"], app.panels["grid"]

        def built_at(panel) -> int | None:
            return panel.view.step.index if panel.view is not None and panel.view.step is not None else None

        await pilot.press("right", "right", "right")
        t = app.cursor.current.index
        assert built_at(decoder) != t and built_at(grid) != t  # hidden: not rebuilt
        await pilot.press("tab")
        assert decoder.display and built_at(decoder) == t
        assert any(f"the word chosen at step {t}" in row for row in on_screen(decoder))
        assert built_at(grid) != t
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert all(built_at(panel) == t for pid, panel in app.panels.items() if pid != "source")


@pytest.mark.parametrize(
    "size, keys",
    [((160, 48), ["tab", "tab"]), ((80, 24), ["tab", "shift+tab"] * 8), ((80, 24), ["s"] * 30)],
    ids=["wide-tab", "small-tab", "small-held-s"],
)
@pytest.mark.slow
@async_test
async def test_bursts_of_keys_leave_the_app_answering(stepper, size, keys):
    app = app_on(stepper)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("right")
        burst(app, *keys)
        await pilot.pause()
        for dialog, key in ((AskDialog, "g"), (HelpDialog, "question_mark")):
            await pilot.press(key)  # a dialog opens over the panels…
            assert isinstance(app.screen, dialog)
            await pilot.press("escape")  # …and closes again
            assert not isinstance(app.screen, dialog)
        before = app.status.plain
        await pilot.press("right")  # → still moves: completes the sub-stepped step, or takes the next
        assert app.status.plain != before
        assert app.tabs.active == f"tab-{PANELS[app.panel_index][0]}"  # tab bar and panel agree


LONG = " ".join(["une voiture rouge court dans la rue"] * 6)  # 42 words


def on_screen(panel) -> list[str]:
    """What a panel shows now, scrolled as it is: one string per row inside its border."""
    return [panel.render_line(y).text for y in range(panel.scrollable_content_region.height)]


def best_column_shown(app) -> bool:
    grid, step = app.panels["grid"], app.cursor.current
    best = max(range(len(step.weights)), key=lambda i: step.weights[i])
    start, end = (x - grid.scroll_offset.x for x in grid.columns[best])  # where its cells are drawn
    return grid.frozen_columns <= start and end <= grid.scrollable_content_region.width


@async_test
async def test_grid_keeps_its_labels_and_the_current_cell_in_view(stepper):
    app = app_on(stepper, sentence=LONG)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        grid = app.panels["grid"]
        panels = app.query_one("#panels")
        assert grid.outer_size.height >= panels.size.height // 2 - 1  # the grid takes the height it has
        header = on_screen(grid)[0]
        await pilot.press("e")  # the last of many more steps than the grid has rows
        await pilot.pause()
        trace, step = app.cursor.trace, app.cursor.current
        assert grid.scroll_offset.y > 0
        shown = on_screen(grid)
        assert (
            shown[0].split()[0] == grid.plain_lines[0][grid.frozen_columns + grid.scroll_offset.x :].split()[0]
        )  # header still on top
        current = next(line for line in shown if line.startswith("▶"))
        assert current.split()[1] == step.chosen_token  # the current row is in view, with its label
        assert best_column_shown(app)  # and so is the word it attends to most
        x = grid.scroll_offset.x
        await pilot.press("shift+right")  # a page sideways: the labels stay
        await pilot.pause()
        page = grid.scrollable_content_region.width - grid.frozen_columns
        assert 0 < grid.scroll_offset.x - x <= page or grid.scroll_offset.x == grid.max_scroll_x
        assert next(line for line in on_screen(grid) if line.startswith("▶")).split()[1] == step.chosen_token
        await pilot.press("r")  # back to the encoder: back to the top-left corner
        await pilot.pause()
        assert grid.scroll_offset == (0, 0)
        assert on_screen(grid)[0] == header
        await pilot.press("e", "g", *"3", "enter")  # back to an early step: its row comes into view
        await pilot.pause()
        assert next(line for line in on_screen(grid) if line.startswith("▶")).split()[1] == trace.steps[2].chosen_token
        assert best_column_shown(app)


@pytest.mark.parametrize("size", [(120, 32), (140, 40), (160, 48)])
@async_test
async def test_the_layout_leaves_the_grid_room_for_the_sentence(stepper, size):
    sentence = "une voiture rouge court dans la rue , le chien noir court ."  # 12 words
    app = app_on(stepper, sentence=sentence)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("right")
        if app.narrow:
            app.show_panel([pid for pid, _ in PANELS].index("grid"))
            await pilot.pause()
        grid = app.panels["grid"]
        room = grid.scrollable_content_region.width
        x = grid.scroll_offset.x
        shown = [start for start, end in grid.columns if grid.frozen_columns <= start - x and end - x <= room]
        assert len(shown) >= min(len(app.cursor.trace.source), 8)


@async_test
async def test_output_line_keeps_the_current_word_in_view(stepper):
    app = app_on(stepper, sentence=LONG)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        output = app.query_one("#output")
        for keys in (["e", "left"], ["g", *"30", "enter"]):  # near the end of a long translation, and in the middle
            await pilot.press(*keys)
            step = app.cursor.current
            shown = output.plain
            assert cell_len(shown) <= output.size.width
            assert f"▶{step.chosen_token}" in shown
            # detokenized: the words shown are the end of the translation up to this step
            words = shown.removeprefix("Output: ").removeprefix("…").replace("▶", "")
            assert detokenize([s.chosen_token for s in app.cursor.visible]).endswith(words)


@pytest.mark.slow
@async_test
async def test_force_dialog_takes_typed_letters_and_ignores_the_models_own_word(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "f")
        await pilot.press(*"dog", "enter")  # typed while the list has the focus
        await settle(pilot)
        assert app.cursor.trace.steps[0].chosen_token == "dog"
        await pilot.press("right")
        trace = app.cursor.trace
        await pilot.press("f", "enter")  # Enter on the list's first entry: the model's own word
        await settle(pilot)
        assert app.cursor.trace is trace and not app.cursor.current.forced
        assert any("the model's own choice" in str(n.message) for n in app._notifications)


@pytest.mark.slow
@async_test
async def test_a_forced_word_ahead_is_shown_and_undone_from_before_it(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "right", "right", "f", "down", "enter")  # force step 3
        await settle(pilot)
        assert app.cursor.trace.steps[2].forced
        await pilot.press("left", "left")  # back to step 1, before the forced word
        assert "a forced word lies ahead, at step 3 (u undoes it)" in app.query_one("#output").plain
        await pilot.press("u")
        await settle(pilot)
        assert not any(s.forced for s in app.cursor.trace.steps)
        assert app.cursor.position == 1  # undoing did not move the cursor
        assert "forced" not in app.query_one("#output").plain


def test_a_negative_component_hangs_from_the_top():
    # drawn in reverse video, the complement of the height fills the cell from the top
    assert strip([0.5, -0.5, -1.0, 1.0, 0.01], 5, 1.0) == [
        ("▄", False),
        ("▄", True),
        (" ", True),
        ("█", False),
        (" ", False),
    ]
    assert strip([-0.25], 1, 1.0) == [("▆", True)]  # top quarter filled


@async_test
async def test_sign_colours_are_blue_and_orange_and_apart_in_16_colours(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right")
        panel = app.panels["attention"]
        pos, neg, bar = (panel.style_of(name) for name in ("pos", "neg", "bar"))
        assert neg.reverse and not pos.reverse  # the glyph difference that survives NO_COLOR
        hues = [colorsys.rgb_to_hsv(*(c / 255 for c in style.color.get_truecolor()))[0] * 360 for style in (pos, neg)]
        assert 190 <= hues[0] <= 240 and 25 <= hues[1] <= 45  # blue and orange, not red and green
        standard = {style.color.downgrade(ColorSystem.STANDARD).number for style in (pos, neg, bar)}
        assert len(standard) == 3  # three different colours in a 16-colour terminal
        # a·h_i strips carry the sign too: some attended state has components of both signs
        styles = {span.style for line in panel._texts[1:] for span in line.spans}
        assert pos in styles and neg in styles


@async_test
async def test_unknown_source_words_are_marked(stepper):
    app = app_on(stepper, sentence="une voiture zorglub court")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert [t.token for t in app.cursor.trace.source][2] == "<unk>"
        assert "1 of them unknown to the model, marked ?" in app.query_one("#narration").plain
        await pilot.press("right")
        rows = attention_rows(app)
        assert [row.split()[0] for row in rows[:4]] == ["une", "voiture", "zorglub?", "court"]
        assert rows[4] == "?: not in the model's vocabulary, read as <unk>"
        assert app.panels["grid"].plain_lines[0].split() == ["une", "voiture", "zorglub?", "court"]
        assert "zorglub?" in app.panels["source"].plain_lines[3]


def test_probabilities_never_read_zero_unless_they_are():
    assert (prob(0.934), prob(0.005), prob(3.2e-4), prob(0.0)) == ("0.93", "0.01", "3e-04", "0.00")


def footer_actions(app) -> set[str]:
    return {
        binding.action for (_, binding, enabled, _) in app.screen.active_bindings.values() if enabled and binding.show
    }


@pytest.mark.slow
@async_test
async def test_footer_narration_and_goto_say_what_is_so(stepper):
    app = app_on(stepper)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert {"export", "end", "restart"} <= footer_actions(app) and "unforce" not in footer_actions(app)
        await pilot.press("s")  # step 1's RNN: what is fed back is zero at the first step
        assert "h̃_0 = 0" in app.query_one("#narration").plain
        await pilot.press("right", "f", "down", "enter")
        await settle(pilot)
        assert "unforce" in footer_actions(app)  # u is offered once a word is forced
        await pilot.press("g", *"99", "enter")
        assert app.cursor.position == app.cursor.total
        assert any(
            f"There is no step 99: the steps are 0 to {app.cursor.total}" in str(n.message) for n in app._notifications
        )
        assert "‖a·h‖" in app.panels["attention"].plain_lines[0]


@async_test
async def test_subword_pieces_known_only_as_bytes_are_marked_and_the_output_reads_as_text(subword_checkpoint):
    app = translate_app(subword_checkpoint, "Un chien 猫 noir.")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        source = app.cursor.trace.source
        assert any(t.token.startswith("<0x") for t in source)
        await pilot.press("e")
        words = [row.split()[0] for row in attention_rows(app)[: len(source)]]
        assert all(word.endswith("?") == t.token.startswith("<0x") for word, t in zip(words, source))
        assert "read byte by byte" in attention_rows(app)[len(source)]
        output = app.query_one("#output").plain
        assert "▁" not in output and "▶" in output
