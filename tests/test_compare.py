"""`attnstep compare`: several models on one sentence, side by side."""

import pytest
from rich.cells import cell_len
from rich.console import Console

from attnstep.engine.checkpoint import load_checkpoint
from attnstep.engine.stepper import Stepper
from attnstep.report.compare import comparison
from attnstep.report.glyphs import SHADES, cell_number, shaded_number
from attnstep.trace.word_view import word_alignment
from tests.cli_helpers import invoke

SENTENCE = "une voiture rouge court"


def test_compare_shows_each_models_translation_steps_and_grid(tiny_checkpoint, no_attention_checkpoint, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = invoke("compare", SENTENCE, "--checkpoint", tiny_checkpoint, "--checkpoint", no_attention_checkpoint)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for path in (tiny_checkpoint, no_attention_checkpoint):
        trace = Stepper(load_checkpoint(path)).translate(SENTENCE)
        assert trace.translation in out
        # each step's top choice and its probability, one row per step
        for t, step in enumerate(trace.steps):
            top = step.candidates[0]
            assert any(
                line.split("│")[1].strip() == str(t + 1) and f"{top.token} {top.prob:.2f}" in line
                for line in out.splitlines()
                if line.count("│") > 2
            )
    assert "(Luong general)" in out and "(no attention)" in out and "no alignment to show" in out
    # The general model's grid holds its rows' weights as the app's grid writes them, each on its
    # level's glyph: a file has no colours.
    trace = Stepper(load_checkpoint(tiny_checkpoint)).translate(SENTENCE)
    rows = word_alignment(trace)
    header = next(i for i, line in enumerate(out.splitlines()) if line.startswith("│ ") and "une" in line.split())
    for (word, row), line in zip(rows, out.splitlines()[header + 1 : header + 1 + len(rows)]):
        label, *cells = line.split()[1 : 3 + len(row) - 1]
        assert [label, *(cell.lstrip(SHADES[1:]) for cell in cells)] == [word.text, *[cell_number(w) for w in row]]
        assert cells == [shaded_number(w, len(cell)).strip() for w, cell in zip(row, cells)]


def test_compare_fits_an_80_column_terminal(tiny_checkpoint, no_attention_checkpoint, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = invoke("compare", SENTENCE, "--checkpoint", tiny_checkpoint, "--checkpoint", no_attention_checkpoint)
    assert result.exit_code == 0
    assert max(cell_len(line) for line in result.stdout.splitlines()) <= 80


@pytest.mark.parametrize(("columns", "header"), [(200, "東京都庁舎ビル"), (30, "東京都…")])
def test_compare_cuts_long_words_by_terminal_cells_only_without_room(
    tiny_checkpoint, no_attention_checkpoint, monkeypatch, columns, header
):
    # Seven CJK characters are 14 cells: whole where the terminal has the room, else cut to 8 cells
    # (by cells: cut by characters, the header would take 15).
    monkeypatch.setenv("COLUMNS", str(columns))
    sentence = "une voiture 東京都庁舎ビル"
    result = invoke("compare", sentence, "--checkpoint", tiny_checkpoint, "--checkpoint", no_attention_checkpoint)
    assert result.exit_code == 0, result.stderr
    grid = result.stdout.split("Top choice")[1]
    assert header in grid and max(cell_len(line) for line in grid.splitlines()) <= columns


def test_compare_needs_two_checkpoints_that_exist(tiny_checkpoint, tmp_path):
    one = invoke("compare", SENTENCE, "--checkpoint", tiny_checkpoint)
    assert one.exit_code == 1 and len(one.stderr.strip().splitlines()) == 1 and "two or more" in one.stderr
    missing = invoke("compare", SENTENCE, "--checkpoint", tiny_checkpoint, "--checkpoint", tmp_path / "nope")
    assert missing.exit_code == 1 and len(missing.stderr.strip().splitlines()) == 1


def test_compare_prints_hostile_text_as_text(tiny_checkpoint, no_attention_checkpoint, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = invoke(
        "compare", "[bold red]un[/] chien", "--checkpoint", tiny_checkpoint, "--checkpoint", no_attention_checkpoint
    )
    assert result.exit_code == 0 and "[ bold red ] un [ / ]" in result.stdout and "\x1b" not in result.stdout
    escape = invoke(
        "compare", "un \x1b[2Jchien", "--checkpoint", tiny_checkpoint, "--checkpoint", no_attention_checkpoint
    )
    assert escape.exit_code == 1 and len(escape.stderr.strip().splitlines()) == 1


def compare_beside(first, second, origin: str, check) -> None:
    """The app over ``first`` with ``second`` as its other checkpoint: run to the end, press c,
    and ``check`` the comparison screen."""
    from attnstep.tui.screens.alignment import CompareScreen
    from tests.tui_helpers import app_on, async_test, settle

    @async_test
    async def run():
        app = app_on(first, other_factory=lambda: second, other_origin=origin)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("e", "c")
            await settle(pilot)
            assert isinstance(app.screen, CompareScreen)
            check(app.screen)

    run()


def test_c_in_the_app_sets_a_second_checkpoints_decoding_beside(stepper, no_attention_checkpoint):
    from attnstep.tui.stages import View
    from tests.tui_helpers import SENTENCE

    other = Stepper(load_checkpoint(no_attention_checkpoint))

    def check(screen):
        assert screen.before == stepper.translate(SENTENCE) and screen.after == other.translate(SENTENCE)
        headings = [str(w.render()) for w in screen.query(".side-text")]
        assert any("tiny-none (no attention)" in h for h in headings)
        grid = screen.query_one("#grid-after")
        assert "No alignment" in "\n".join(
            line.plain for line in grid.build(View(screen.after, len(screen.after.steps)))
        )

    compare_beside(stepper, other, "tiny-none", check)


def test_translate_takes_at_most_two_checkpoints(tiny_checkpoint):
    result = invoke(
        "translate",
        SENTENCE,
        "--checkpoint",
        tiny_checkpoint,
        "--checkpoint",
        tiny_checkpoint,
        "--checkpoint",
        tiny_checkpoint,
    )
    assert result.exit_code == 1 and "at most two" in result.stderr


def test_c_sets_a_second_checkpoint_beside_a_model_without_attention(stepper, no_attention_checkpoint):
    from tests.tui_helpers import SENTENCE

    without = Stepper(load_checkpoint(no_attention_checkpoint))

    def check(screen):
        assert screen.before == without.translate(SENTENCE) and screen.after == stepper.translate(SENTENCE)

    compare_beside(without, stepper, "tiny", check)


def test_compare_shows_a_subword_model_s_pieces_without_their_word_start_mark(subword_checkpoint, tiny_checkpoint):
    result = invoke("compare", "Le chat dort.", "--checkpoint", subword_checkpoint, "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 0, result.stderr
    trace = Stepper(load_checkpoint(subword_checkpoint)).translate("Le chat dort.")
    assert any(s.candidates[0].token.startswith("▁") for s in trace.steps)
    assert "▁" not in result.stdout


def test_compare_grids_keep_the_eos_row(tiny_checkpoint):
    stepper = Stepper(load_checkpoint(tiny_checkpoint))
    trace = stepper.force(stepper.translate(SENTENCE), 2, "<eos>")
    console = Console(width=120, record=True, color_system=None)
    console.print(comparison(["tiny"], [trace]))
    lines = [line.split() for line in console.export_text().splitlines()]
    assert any(line[:2] == ["│", "<eos>"] for line in lines)  # the grid's last row, after the output words
