"""Modal dialogs: new sentence, force a word, go to a step, export, a text to read, and the key help.

Each returns its answer with ``dismiss`` (None when cancelled with Esc); the app decides
what to do with it.
"""

from __future__ import annotations

import contextlib
import string
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from attnstep.errors import AttnstepError
from attnstep.report.glyphs import prob
from attnstep.text.codec import surface
from attnstep.text.words import MAX_SOURCE_CHARS
from attnstep.trace.records import Step
from attnstep.tui.safe import safe_text, visible

DIALOG_WIDTH = 76  # .dialog in app.tcss
EXAMPLE_FRAME = 12  # the dialog's border and padding, the list's, and its scrollbar


def on_answer(then: Callable[[str], None]) -> Callable[[str | None], None]:
    """A dialog's callback that does ``then`` with the answer, and nothing when there is none (Esc)."""

    def answered(answer: str | None) -> None:
        if answer:
            then(answer)

    return answered


# A terminal sends Esc as the first byte of other keys too, so Esc and a key pressed within Textual's
# escape delay (0.1 s) arrive as one "alt+key": a quick "Esc n" then typed an "n" into the box that
# Esc was closing. Here such a key is what the user meant: Esc, then the key, for the app.
ESCAPED_KEYS = string.ascii_lowercase + string.digits


class Dialog(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "cancel"),
        *(Binding(f"alt+{key}", f"cancel_then('{key}')", show=False, priority=True) for key in ESCAPED_KEYS),
    ]

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_cancel_then(self, key: str) -> None:
        self.dismiss(None)
        self.app.simulate_key(key)

    def complain(self, message: str) -> None:
        self.query_one("#problem", Label).update(safe_text(message))

    def dismiss_answer(self, value: str, complaint: str) -> None:
        """Return the typed answer, or say in place what is missing when it is blank."""
        if value.strip():
            self.dismiss(value.strip())
        else:
            self.complain(complaint)


class SentenceDialog(Dialog):
    """Type a sentence or pick an example; refused sentences are explained in place."""

    def __init__(self, examples: tuple[str, ...]) -> None:
        super().__init__()
        self.examples = examples

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            # As wide as the longest example, so that none wraps past the list's last row (the screen caps it)
            longest = max((cell_len(visible(e)) for e in self.examples), default=0)
            box.styles.width = max(DIALOG_WIDTH, longest + EXAMPLE_FRAME)
            yield Label("Type a French sentence and press Enter, or pick an example (↓):")
            # Every box stops at a sentence's length: a longer value makes each key cost more (50 KB typed: 1.4 GB).
            yield Input(
                placeholder="type here, or press ↓ to pick an example", id="sentence", max_length=MAX_SOURCE_CHARS
            )
            yield Label("", id="problem")
            yield OptionList(*[Option(safe_text(e), id=str(i)) for i, e in enumerate(self.examples)], id="examples")
            yield Label("Esc: cancel", classes="hint")

    @on(Input.Submitted)
    def typed(self, event: Input.Submitted) -> None:
        self.submit(event.value)

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.submit(self.examples[event.option_index])

    def on_key(self, event) -> None:
        if event.key == "down" and self.focused is self.query_one("#sentence"):
            self.query_one("#examples").focus()
            event.stop()

    def submit(self, sentence: str) -> None:
        from attnstep.text.words import tokenize  # torch-free: refuse bad input before asking the model

        try:
            tokenize(sentence)
        except AttnstepError as exc:
            self.complain(str(exc))
            return
        self.dismiss(sentence)


class ForceDialog(Dialog):
    """Pick one of the step's top-k tokens or type any word the model can write; a subword model
    writes a typed word that is not one piece as its pieces, each forced in turn."""

    def __init__(self, step: Step, *, pieces: bool = False) -> None:
        super().__init__()
        self.step = step
        self.pieces = pieces  # the model writes subword pieces: the list is of pieces, shown without "▁"

    def label(self, token: str) -> str:
        return surface(token) if self.pieces else token

    def compose(self) -> ComposeResult:
        step = self.step
        with Vertical(classes="dialog"):
            model_choice = self.label(
                step.candidates[0].token
            )  # the greedy choice, whether or not this step was forced
            yield Label(
                Text.assemble(
                    f"Force a {'piece' if self.pieces else 'word'} at step {step.index + 1} (the model's choice: ",
                    safe_text(model_choice),
                    "):",
                )
            )
            yield OptionList(
                *[
                    Option(Text.assemble(safe_text(self.label(c.token)), f"  {prob(c.prob)}"), id=str(i))
                    for i, c in enumerate(step.candidates)
                ],
                id="candidates",
            )
            yield Input(
                placeholder="…or type a word and press Enter" + (" (its pieces forced in turn)" if self.pieces else ""),
                id="word",
                select_on_focus=False,
                max_length=MAX_SOURCE_CHARS,
            )
            yield Label("", id="problem")
            yield Label("Esc: cancel", classes="hint")

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.step.candidates[event.option_index].token)

    @on(Input.Submitted)
    def typed(self, event: Input.Submitted) -> None:
        self.dismiss_answer(event.value, "type a word, or pick one from the list")

    def on_key(self, event) -> None:
        # The list has the focus (↓ Enter picks), but a letter typed there starts the word.
        word = self.query_one("#word", Input)
        if event.is_printable and event.character and self.focused is not word:
            word.focus()
            word.insert_text_at_cursor(event.character)
            event.stop()


class AskDialog(Dialog):
    """One question, one line of input (go to step N)."""

    def __init__(self, question: str, value: str = "", *, integer: bool = False) -> None:
        super().__init__()
        self.question, self.value, self.integer = question, value, integer

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(safe_text(self.question))
            yield Input(
                self.value, type="integer" if self.integer else "text", id="answer", max_length=MAX_SOURCE_CHARS
            )
            yield Label("", id="problem")
            yield Label("Enter: OK · Esc: cancel", classes="hint")

    @on(Input.Submitted)
    def answered(self, event: Input.Submitted) -> None:
        self.dismiss_answer(event.value, "type an answer, or Esc to cancel")


# What x can write: (kind, what the list says, the file name's suffix).
EXPORTS = (
    ("json", "JSON: the whole trace, as `attnstep dump` writes it", ".json"),
    ("svg", "SVG: the alignment picture, as `attnstep plot` draws it", ".svg"),
    ("png", "PNG: the same picture (needs matplotlib)", ".png"),
    ("pharaoh", "Pharaoh: i-j links, as fast_align writes them", ".align"),
)


class ExportDialog(Dialog):
    """Pick a format (↑/↓, the file name's suffix follows) and a file name; Enter writes it.

    ``write(kind, path)`` does the writing; a failure (a folder that is not there, PNG without
    matplotlib) is its one line, shown in place so that another name or format can be tried.
    """

    def __init__(self, name: str, write: Callable[[str, Path], None]) -> None:
        super().__init__()
        self.suggested, self.writer = name, write

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Export this trace as (↑/↓):")
            yield OptionList(*[Option(label, id=kind) for kind, label, _ in EXPORTS], id="formats")
            yield Label("to the file:")
            yield Input(self.suggested, id="answer", max_length=MAX_SOURCE_CHARS)
            yield Label("", id="problem")
            yield Label("↑/↓: format · Enter: write · Esc: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#formats", OptionList).highlighted = 0
        self.query_one("#answer", Input).focus()

    @property
    def kind(self) -> str:
        return EXPORTS[self.query_one("#formats", OptionList).highlighted or 0][0]

    def on_key(self, event) -> None:
        # The name box keeps the focus, so that Enter always writes; ↑/↓ there choose the format.
        if event.key in ("up", "down") and self.focused is self.query_one("#answer"):
            formats = self.query_one("#formats", OptionList)
            formats.highlighted = ((formats.highlighted or 0) + (1 if event.key == "down" else -1)) % len(EXPORTS)
            event.stop()

    @on(OptionList.OptionHighlighted)
    def format_chosen(self, event: OptionList.OptionHighlighted) -> None:
        answer = self.query_one("#answer", Input)
        suffix = EXPORTS[event.option_index][2]
        with contextlib.suppress(ValueError):  # no file name to give a suffix to ("/", "."): left as typed
            answer.value = str(Path(answer.value.strip() or self.suggested).with_suffix(suffix))
        self.query_one("#problem", Label).update("")

    @on(OptionList.OptionSelected)
    def format_picked(self) -> None:
        self.query_one("#answer", Input).focus()

    @on(Input.Submitted)
    def answered(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if not name:
            self.complain("type a file name, or Esc to cancel")
            return
        try:
            self.writer(self.kind, Path(name))
        except AttnstepError as exc:
            self.complain(str(exc))
            return
        self.dismiss(name)


class TextDialog(Dialog):
    """A long text to read (and select and copy), with a line above saying what it is."""

    def __init__(self, heading: str, text: str) -> None:
        super().__init__()
        self.heading, self.text = heading, text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog text"):
            yield Static(self.heading, markup=False)  # a Static wraps (a Label is one line, cut)
            # The text is made by the app from visible() words; a TextArea scrolls it with the keys
            # and copies a selection to the terminal's clipboard (OSC 52), which reaches an SSH client.
            yield TextArea(self.text, read_only=True, soft_wrap=False, id="text")
            yield Label("↑/↓ PgUp/PgDn: scroll · F7: select all · Ctrl+C: copy · Esc: close", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#text", TextArea).focus()


class HelpDialog(Dialog):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "cancel", "close")]

    def __init__(self, keys: list[tuple[str, str]], *, transformer: bool = False) -> None:
        super().__init__()
        self.keys = keys
        self.transformer = transformer  # the trace is a Transformer's: its sub-steps are said too

    def compose(self) -> ComposeResult:
        width = max(len(k) for k, _ in self.keys) + 2
        text = Text()
        text.append("Keys (Esc or ? closes this, ↑/↓ scroll)\n\n", "bold")
        for key, description in self.keys:
            text.append(key.ljust(width), "bold")
            text.append(description + "\n")
        text.append(
            "\nSub-steps follow the textbook: RNN → score → softmax → weight → sum → [h_t; C_t] → FF → pick. "
            "Bahdanau (additive) models score s_{t-1} first and run the RNN after C_t."
        )
        if self.transformer:
            text.append(
                " A Transformer's (Marian, post-norm), for the layer a and d choose: embedding + position → "
                "self-attention → q·k/√d → softmax → Σ a·v → W_o, residual, norm → FFN, residual, norm → W_s → pick."
            )
        with VerticalScroll(classes="dialog help"):
            yield Static(text)
