"""Nothing is cut where there is room: the key lines, the Output line, the Source panel, the
example picker, the worked score's terms, the toasts, and the layout a projector gets."""

from __future__ import annotations

import re

import pytest
from rich.cells import cell_len

from attnstep.tui.app import ATTENTION_WIDTH, KEYS, PANELS
from attnstep.tui.keybar import MAX_LINES, KeyBar
from attnstep.tui.panels.worked import lines, worked_score
from attnstep.tui.screens.alignment import CompareScreen
from attnstep.tui.screens.dialogs import SentenceDialog
from tests.tui_helpers import SENTENCE, app_on, async_test, settle

EEA = "L'accord sur la zone économique européenne a été signé en août 1992."
SIZES = [(80, 24), (120, 32), (120, 40), (160, 48), (200, 60)]


def key_lines(app) -> list[str]:
    return app.query_one(KeyBar).render().plain.split("\n")


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@async_test
async def test_the_key_lines_wrap_and_say_what_they_leave_out(stepper, size):
    app = app_on(stepper)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        shown = key_lines(app)
        assert 1 <= len(shown) <= MAX_LINES and all(cell_len(line) <= size[0] for line in shown)
        assert app.query_one(KeyBar).size.height == len(shown)  # every line on screen
        text = " ".join(shown)
        offered = [label for _, action, label, _, _ in KEYS if label and app.check_action(action, ()) is not False]
        left_out = [label for label in offered if f" {label} " not in f"{text} "]
        if left_out:
            assert f"+{len(left_out)} more: ?" in text  # ? lists them
        else:
            assert "more: ?" not in text
        if size[0] >= 120:
            assert not left_out and "b beam" in text  # b is listed, with --beam or without


@async_test
async def test_a_click_on_the_second_key_line_presses_its_key(stepper):
    app = app_on(stepper)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        bar = app.query_one(KeyBar)
        _, start, _, key = next(entry for entry in bar._keys if entry[0] == 1)
        pressed: list[str] = []
        app.simulate_key = pressed.append  # type: ignore[method-assign]
        await pilot.click(KeyBar, offset=(start, 1))
        assert pressed == [key]


@async_test
async def test_the_output_line_shortens_its_notes_before_it_cuts_a_word(stepper):
    trace = stepper.translate(SENTENCE)
    reference = " ".join(s.chosen_token for s in trace.steps[:-1])  # the model's own words, as a given translation
    app = app_on(stepper, reference=reference)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        output = app.query_one("#output")
        whole = output.plain
        words = whole[: whole.index("   given")]
        # room for the words and the short note, not the long one
        await pilot.resize_terminal(cell_len(words) + 2 + len("   given; ≠: not the model's choice"), 40)
        await pilot.pause()
        assert output.plain.startswith(words) and "…" not in output.plain


@pytest.mark.parametrize("size", [(160, 48), (200, 60), (120, 40)], ids=["160x48", "200x60", "120x40"])
@async_test
async def test_the_source_panel_has_a_title_and_its_numbers_fit(stepper, size):
    app = app_on(stepper)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        source = app.panels["source"]
        assert source.display and "encoder states h_i" in str(source.border_title)
        room = source.scrollable_content_region.width
        numbers = [line for line in source.plain_lines if re.fullmatch(r"( +-?\d\.\d\d)+", line)]
        assert numbers and all(cell_len(line) <= room for line in numbers)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@async_test
async def test_a_trace_without_vectors_says_so_whole_in_the_source_and_decoder_panels(stepper, size):
    from attnstep.tui import replay_app

    app = replay_app(stepper.translate(SENTENCE).without_vectors(), "a dump with --no-vectors")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("right")
        await settle(pilot)
        for name in ("source", "decoder"):
            panel = app.panels[name]
            panel.display = True  # the tabbed layout shows one panel at a time
            await pilot.pause()
            shown = panel.plain_lines
            room = panel.scrollable_content_region.width
            assert all(cell_len(line) <= room for line in shown), name
            assert "(dumped with --no-vectors)." in " ".join(line.strip() for line in shown), name


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@async_test
async def test_the_example_picker_shows_the_lecture_sentence_whole(stepper, size):
    app = app_on(stepper, sentence=None, examples=("Je suis étudiant.", EEA))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, SentenceDialog)
        examples = app.screen.query_one("#examples")
        rows = ["".join(segment.text for segment in examples.render_line(y)) for y in range(examples.size.height)]
        assert any(EEA in row for row in rows)


@async_test
async def test_a_toast_leaves_the_lines_under_the_panels_clear(stepper):
    app = app_on(stepper)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("right", "b")  # a greedy trace: b says so in a toast
        await pilot.pause(0.2)
        toasts = list(app.screen.query("Toast"))
        assert toasts
        panels_bottom = app.query_one("#panels").region.bottom
        assert all(toast.region.bottom <= panels_bottom for toast in toasts)


@pytest.mark.parametrize("width", [80, 120, 160])
def test_the_worked_score_sums_the_terms_it_lists(stepper, width):
    trace = stepper.translate(SENTENCE)
    work = worked_score(trace, 1, 0)
    text = [line.plain for line in lines(work, width - 8)]
    listed = next(line for line in text if "largest terms" in line)
    js = [int(j) for j in re.findall(r"j=(\d+)", listed)]
    count = int(re.search(r"the (\d+) largest give", "\n".join(text)).group(1))
    assert count == len(js)
    partial = sum(work.vectors.terms[j] for j in js)
    assert f"largest give {partial:.2f}".replace("-0.00", "0.00") in "\n".join(text).replace("-0.00", "0.00")


@pytest.mark.parametrize("size", [(120, 32), (120, 40)], ids=["120x32", "120x40"])
@async_test
async def test_a_projector_at_120_columns_shows_every_panel(stepper, size):
    app = app_on(stepper)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("right")
        assert not app.narrow and app.main_screen.medium
        regions = {pid: app.panels[pid].region for pid, _ in PANELS}
        assert all(region.width > 0 and region.height > 2 for region in regions.values())
        assert all(a == b or not regions[a].overlaps(regions[b]) for a in regions for b in regions)
        assert regions["attention"].width >= ATTENTION_WIDTH
        assert not app.query_one("#tabs").display


@async_test
async def test_at_80_columns_the_panels_are_still_tabs(stepper):
    app = app_on(stepper)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.narrow and not app.main_screen.medium


def test_before_and_after_show_the_whole_output_where_it_fits(stepper):
    before = stepper.translate(SENTENCE)
    after = stepper.force(before, 4, "<eos>")
    screen = CompareScreen(before, after)
    assert screen.diverge == 4
    whole = screen.output(before, 200).plain
    assert not whole.startswith("Output: …") and whole == screen.output_from(before, 0).plain  # all of it
    assert screen.output(before, 10).plain.startswith("Output: …")  # no room: from a few words before step 5
