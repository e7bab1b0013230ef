"""Untrusted text through the app: markup, ESC/OSC, C1 and bidi controls are shown, never obeyed."""

from __future__ import annotations

import json

import pytest
from rich.text import Text

from attnstep.text.words import detokenize
from attnstep.trace.reader import parse
from attnstep.trace.writer import to_json_dict
from attnstep.tui import replay_app
from attnstep.tui.safe import safe_text, visible
from tests.tui_helpers import SENTENCE, async_test

# What a hostile sentence, vocabulary or trace file could hold.
EVIL = [
    "[link=http://x]hi[/link]",
    "[bold]b",
    "\x1b]0;pwned\x07",  # OSC: set the window title
    "\x1b[31mred",  # CSI: colour
    "\u009b2J",  # C1 CSI: clear the screen
    "\u202eevil",  # right-to-left override
    "\x1b]8;;http://x\x1b\\l",  # OSC 8 hyperlink
    "a\u200fb",  # right-to-left mark
]
RAW = ["\x1b", "\x07", "\x9b", "\u202e", "\u200f"]


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("\x1b[31m", "␛[31m"),
        ("\x1b]0;t\x07", "␛]0;t␇"),
        ("\u009b2J", "<U+009B>2J"),
        ("\u202eabc", "<U+202E>abc"),
        ("a\u2028b", "a<U+2028>b"),
        ("x\x7f", "x␡"),
        ("[link=http://x]hi[/link]", "[link=http://x]hi[/link]"),
        ("voiture 猫 🐱 garée", "voiture 猫 🐱 garée"),
    ],
)
def test_visible_replaces_only_what_a_terminal_would_act_on(raw, shown):
    assert visible(raw) == shown


def test_safe_text_applies_no_markup():
    text = safe_text("[bold]x[/bold]")
    assert isinstance(text, Text) and text.plain == "[bold]x[/bold]" and not text.spans


def hostile_trace(stepper):
    """A schema-valid, consistent trace whose every string is hostile."""
    data = to_json_dict(stepper.translate(SENTENCE))
    data["checkpoint"]["name"] = "\x1b]0;ckpt\x07[b]name"
    data["checkpoint"]["formula"] = "\u202e[red]formula"
    for i, token in enumerate(data["source"]):
        token["surface"] = token["token"] = EVIL[i % len(EVIL)]
    for i, step in enumerate(data["steps"]):
        for j, candidate in enumerate(step["candidates"]):
            candidate["token"] = EVIL[(i + j) % len(EVIL)] + str(j)
    first = data["steps"][0]["chosen"]["token"]
    renamed = EVIL[0] if first != "<eos>" else first
    data["steps"][0]["chosen"]["token"] = renamed
    if len(data["steps"]) > 1:
        data["steps"][1]["input"]["token"] = renamed
    data["output_tokens"] = [s["chosen"]["token"] for s in data["steps"] if s["chosen"]["token"] != "<eos>"]
    data["translation"] = detokenize(data["output_tokens"])
    return parse(json.dumps(data), origin="hostile.json")


@async_test
async def test_hostile_trace_is_shown_literally(stepper):
    trace = hostile_trace(stepper)
    app = replay_app(trace, "\x1b[2Jhostile.json")
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("right", "right", "s")
        screen = app.export_screenshot()
        lines = [line for panel in app.panels.values() for line in panel.plain_lines]
        lines += [bar.plain for bar in app.bars]
        on_screen = "\n".join(lines)
        output = app.query_one("#output").plain
    for raw in RAW:
        assert raw not in screen and raw not in on_screen
    for shown in ("[bold]b", "␛]0;pwned␇", "␛[31mred", "<U+009B>2J", "<U+202E>evil", "␛[2Jhostile.json"):
        assert shown in on_screen
    assert "[link=http://x]hi[/link]" in output
