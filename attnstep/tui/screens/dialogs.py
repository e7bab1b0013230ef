"""Modal dialogs: new sentence, force a word, edit a step's attention, go to a step, export, a text to read,
and the key help.

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
from attnstep.trace.edits import EditError, parse_edit
from attnstep.trace.records import Step, Trace
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
    """Type a sentence in the model's ``source_language`` ("" where unknown) or pick an example; refused
    sentences are explained in place."""

    def __init__(self, examples: tuple[str, ...], source_language: str = "") -> None:
        super().__init__()
        self.examples = examples
        self.source_language = source_language

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            # As wide as the longest example, so that none wraps past the list's last row (the screen caps it)
            longest = max((cell_len(visible(e)) for e in self.examples), default=0)
            box.styles.width = max(DIALOG_WIDTH, longest + EXAMPLE_FRAME)
            # The language comes from the checkpoint's config.json: text, never markup.
            language = self.source_language
            article = "an" if language[:1].lower() in tuple("aeiou") else "a"  # an English sentence
            prompt = f"Type {article} {language} sentence" if language else "Type a sentence"
            pick = ", or pick an example (↓):" if self.examples else ":"
            yield Label(safe_text(f"{prompt} and press Enter{pick}"))
            # Every box stops at a sentence's length: a longer value makes each key cost more (50 KB typed: 1.4 GB).
            yield Input(
                placeholder="type here" + (", or press ↓ to pick an example" if self.examples else ""),
                id="sentence",
                max_length=MAX_SOURCE_CHARS,
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


# What i can do to a step's attention: (operation, what the list says, what the value box wants, or "" for none).
EDITS = (
    ("zero", "zero a word: its weight 0, the rest renormalised", "the word (or its position, 1-based)"),
    ("one", "all the weight on one word", "the word (or its position, 1-based)"),
    ("uniform", "uniform: 1/n on every source token", ""),
    ("temperature", "temperature τ: softmax(e/τ), under 1 sharper, over 1 flatter", "τ, over 0"),
    ("reverse", "reverse the weights' order", ""),
    ("permute", "permute the weights (shuffled by a seed)", "the seed, a whole number"),
    ("weights", "type the weights: one per source token, ≥ 0, summing to 1", "the weights, separated by commas"),
)


class EditDialog(Dialog):
    """Edit the current step's attention: ↑/↓ choose the operation, the box its value (a word, τ, a
    seed, the typed weights), Enter applies it. A Transformer's edit is of the head in view, or of
    every head of its layer (Tab switches; a layer's mean in view edits the layer).

    The answer is a SPEC of ``attnstep dump --edit``'s grammar, checked here by the same parser
    (:func:`~attnstep.trace.edits.parse_edit`): what it refuses is said in place, in one line.
    """

    def __init__(self, trace: Trace, t: int) -> None:
        super().__init__()
        self.trace, self.t = trace, t
        view = trace.view  # a Transformer's head (or mean) in view; None for an RNN
        self.edit_layer = None if view is None else view.layer
        self.edit_head = None if view is None else view.head
        self.whole_layer = view is not None and view.head is None
        self.values = {op: self.suggested(op) for op, _, _ in EDITS}  # what each box holds, kept across ↑/↓
        self.shown_operation: str | None = None  # whose value the box holds

    def suggested(self, operation: str) -> str:
        """The box's first value: the most attended word, τ 0.5, seed 1, or the step's weights to edit."""
        weights = self.trace.steps[self.t].weights
        best = max(range(len(weights)), key=lambda i: weights[i])
        if operation in ("zero", "one"):
            # The word the most attended token is of (a subword model's: all its pieces), by its text where
            # that names it alone and is no position; else the token's position.
            words = self.trace.source_words
            word = next(w for w in words if w.start <= best < w.end)
            named = next(w for w in words if w.text == word.text) is word
            return word.text if named and word.text.isprintable() and not word.text.isdigit() else str(best + 1)
        if operation == "weights":
            rounded = [round(w, 3) for w in weights]
            rounded[best] = round(rounded[best] + 1 - sum(rounded), 3)  # so that the typed ones sum to 1
            return ",".join(f"{w:g}" for w in rounded)
        return {"temperature": "0.5", "permute": "1"}.get(operation, "")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Edit the attention of step {self.t + 1} (↑/↓ an operation):")
            yield OptionList(*[Option(label, id=op) for op, label, _ in EDITS], id="operations")
            yield Label("", id="wants")
            yield Input(id="value", max_length=MAX_SOURCE_CHARS, select_on_focus=False)
            yield Label("", id="scope")
            yield Label("", id="spec", classes="hint")
            yield Label("", id="problem")
            yield Label(
                "↑/↓: operation · Enter: apply"
                + (" · Tab: head/layer" if self.edit_layer is not None else "")
                + " · Esc: cancel",
                classes="hint",
            )

    def on_mount(self) -> None:
        self.query_one("#operations", OptionList).highlighted = 0
        self.query_one("#value", Input).focus()
        self.show_choice()

    @property
    def operation(self) -> str:
        return EDITS[self.query_one("#operations", OptionList).highlighted or 0][0]

    def spec(self) -> str:
        """The edit as ``dump --edit`` writes it: STEP[@L<layer>[H<head>]]:OPERATION[=VALUE]."""
        where = ""
        if self.edit_layer is not None:
            where = f"@L{self.edit_layer + 1}" + (
                "" if self.whole_layer or self.edit_head is None else f"H{self.edit_head + 1}"
            )
        value = self.query_one("#value", Input).value.strip()
        wants = next(w for op, _, w in EDITS if op == self.operation)
        return f"{self.t + 1}{where}:{self.operation}" + (f"={value}" if wants else "")

    def on_key(self, event) -> None:
        # The value box keeps the focus, so that Enter always applies; ↑/↓ there choose the operation.
        if event.key in ("up", "down") and self.focused is self.query_one("#value"):
            operations = self.query_one("#operations", OptionList)
            operations.highlighted = ((operations.highlighted or 0) + (1 if event.key == "down" else -1)) % len(EDITS)
            event.stop()
        elif event.key == "tab" and self.edit_layer is not None and self.edit_head is not None:
            self.whole_layer = not self.whole_layer
            self.show_choice()
            event.stop()
            event.prevent_default()

    @on(OptionList.OptionHighlighted)
    def operation_chosen(self, event: OptionList.OptionHighlighted) -> None:
        value = self.query_one("#value", Input)
        if self.shown_operation is not None:
            self.values[self.shown_operation] = value.value
        self.shown_operation = EDITS[event.option_index][0]
        value.value = self.values[self.shown_operation]
        self.show_choice()

    @on(OptionList.OptionSelected)
    def operation_picked(self) -> None:
        self.query_one("#value", Input).focus()

    @on(Input.Changed)
    def value_changed(self) -> None:
        self.show_choice()

    def show_choice(self) -> None:
        """The value the operation wants, the heads it edits, and the SPEC it makes, as the user chooses."""
        wants = next(w for op, _, w in EDITS if op == self.operation)
        self.query_one("#wants", Label).update(f"value: {wants}" if wants else "value: none needed (Enter applies)")
        if self.edit_layer is not None:
            scope = (
                f"edits every head of layer {self.edit_layer + 1}"
                if self.whole_layer or self.edit_head is None
                else f"edits head {self.edit_head + 1} of layer {self.edit_layer + 1}"
            )
            self.query_one("#scope", Label).update(scope)
        self.query_one("#spec", Label).update(Text.assemble("as dump --edit: ", safe_text(self.spec())))
        self.query_one("#problem", Label).update("")

    @on(Input.Submitted)
    def apply(self) -> None:
        self.submit()

    def submit(self) -> None:
        spec = self.spec()
        try:
            parse_edit(spec, self.trace)
        except EditError as exc:
            self.complain(str(exc).removeprefix(f"attention edit {spec!r}: "))
            return
        self.dismiss(spec)


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
