"""The app's x: export the trace as JSON, the alignment as SVG or PNG, or Pharaoh links; over SSH, the SVG as text."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import pytest
from textual.widgets import Input, Label, OptionList, TextArea

from attnstep.report.plot import MATPLOTLIB_MISSING, alignment_svg
from attnstep.trace.alignment import NOTHING_TO_ALIGN, pharaoh_line
from attnstep.trace.writer import dumps
from attnstep.tui import make_app, replay_app
from attnstep.tui.screens.dialogs import EXPORTS, ExportDialog, TextDialog
from tests.tui_helpers import app_on, async_test, settle

SMALL = (80, 24)


def problem(app) -> str:
    return str(app.screen.query_one("#problem", Label).render())


async def export(pilot, downs: int, path) -> None:
    """x, ↓ ``downs`` times to pick the format, the file name, Enter."""
    await pilot.press("x", *["down"] * downs)
    pilot.app.screen.query_one("#answer", Input).value = str(path)
    await pilot.press("enter")
    await pilot.pause()


@async_test
async def test_the_dialog_fits_80_by_24_and_the_name_follows_the_format(stepper):
    app = app_on(stepper)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("x")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        box = dialog.query_one(".dialog").region
        assert box.right <= 80 and box.bottom <= 24
        formats = dialog.query_one("#formats", OptionList)
        assert formats.option_count == len(EXPORTS) and formats.region.height >= len(EXPORTS)
        answer = dialog.query_one("#answer", Input)
        assert answer.has_focus and answer.value == "attnstep-trace.json"
        suffixes = []
        for _ in EXPORTS:
            await pilot.press("down")
            suffixes.append(answer.value)
        assert suffixes == ["attnstep-trace.svg", "attnstep-trace.png", "attnstep-trace.align", "attnstep-trace.json"]
        await pilot.press("up")
        assert answer.value == "attnstep-trace.align"
        await pilot.press("escape")
        assert not isinstance(app.screen, ExportDialog)


@pytest.mark.slow
@async_test
async def test_each_format_is_written_where_it_says(stepper, tmp_path):
    app = app_on(stepper)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        trace = app.cursor.trace
        await export(pilot, 0, tmp_path / "t.json")
        assert (tmp_path / "t.json").read_bytes() == dumps(trace, indent=True) + b"\n"
        await export(pilot, 1, tmp_path / "t.svg")
        assert (tmp_path / "t.svg").read_text() == alignment_svg(trace, words=False)
        ET.parse(tmp_path / "t.svg")
        await export(pilot, 3, tmp_path / "t.align")
        assert (tmp_path / "t.align").read_text() == pharaoh_line(trace) + "\n"
        assert not isinstance(app.screen, ExportDialog)
        assert any(f"Written to {tmp_path}/t.align" in str(n.message) for n in app._notifications)
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@async_test
async def test_the_picture_follows_the_numbers_key(stepper, tmp_path):
    app = app_on(stepper)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("number_sign")
        await export(pilot, 1, tmp_path / "t.svg")
        assert (tmp_path / "t.svg").read_text() == alignment_svg(app.cursor.trace, words=False, numbers=True)


@async_test
async def test_problems_are_one_line_in_the_dialog(stepper, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the plot extra were not installed
    app = app_on(stepper)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await export(pilot, 2, tmp_path / "t.png")
        assert isinstance(app.screen, ExportDialog) and problem(app) == MATPLOTLIB_MISSING
        assert not (tmp_path / "t.png").exists()
        app.screen.query_one("#answer", Input).value = str(tmp_path / "missing" / "t.png")
        await pilot.press("up")  # SVG: the suffix follows
        await pilot.press("enter")
        assert problem(app).startswith(f"cannot write {tmp_path}/missing/t.svg")
        app.screen.query_one("#answer", Input).value = str(tmp_path / "t.png")
        await pilot.press("enter")
        assert problem(app) == "SVG goes to a file name ending in .svg"
        await pilot.press("escape")


@async_test
async def test_a_model_without_attention_exports_its_trace_but_no_alignment(no_attention_checkpoint, tmp_path):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper

    trace = Stepper(load_checkpoint(no_attention_checkpoint)).translate("un chien noir")
    app = replay_app(trace, "none.json")
    async with app.run_test(size=SMALL) as pilot:
        await export(pilot, 1, tmp_path / "t.svg")
        assert problem(app) == NOTHING_TO_ALIGN and not (tmp_path / "t.svg").exists()
        await pilot.press("up")
        app.screen.query_one("#answer", Input).value = str(tmp_path / "t.json")
        await pilot.press("enter")
        assert (tmp_path / "t.json").read_bytes() == dumps(trace, indent=True) + b"\n"


class Link:
    """The class channel of a session with no class: nothing to follow."""

    def following(self, on: bool) -> None:
        pass

    def updates(self):
        return iter(())

    def close(self) -> None:
        pass


@async_test
async def test_over_ssh_the_svg_is_shown_not_written(stepper, tmp_path, monkeypatch):
    from attnstep.serve.session import ServedApp

    monkeypatch.chdir(tmp_path)
    trace = stepper.translate("un chien noir")
    app = make_app(ServedApp, trace=trace)
    app.join_class(Link(), teacher=False, follow=False, user="ann")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("x")
        assert isinstance(app.screen, TextDialog)
        assert app.screen.query_one("#text", TextArea).text == alignment_svg(trace, words=False)
        box = app.screen.query_one(".dialog").region
        assert box.right <= 80 and box.bottom <= 24
        await pilot.press("escape")
        assert not isinstance(app.screen, TextDialog)
    assert list(tmp_path.iterdir()) == []
