"""One-line bars around the panels: status, output so far, key numbers, and the stage narration."""

from __future__ import annotations

from rich.text import Text

from attnstep.report.glyphs import num, prob
from attnstep.trace.records import EDIT_MARK, Trace
from attnstep.tui.edited import narrate_edited
from attnstep.tui.lines import LinesView, ViewT
from attnstep.tui.safe import safe_text
from attnstep.tui.stages import (
    View,
    attention_in_words,
    narrate,
    output_pieces,
    piece_text,
    short_label,
    source_word,
)

SUMMARY_ITEMS = 3  # weights and candidates listed on the summary line


def step_counter(view: View) -> str:
    """ "step 3 of 7 · stage 3/7 softmax": what the status line says about position."""
    total = len(view.trace.steps)
    stage = view.current_stage
    if stage is None:
        return f"step 0 of {total} · encoder"
    return f"step {view.position} of {total} · stage {view.cursor.stage}/{view.trace.stage_count} {stage.name}"


class Bar(LinesView[ViewT], can_focus=False):
    """Fixed-height lines around the panels (heights in app.tcss).

    A LinesView rather than a Static: a step then resends only the changed end of the status
    line, not all of it plus its padding, and no layout pass runs (a layout makes every
    scrolling panel repaint its scrollbars).
    """

    SCROLLS = False

    def build(self, view: ViewT | None) -> list[Text]:
        return [self.line(view)]

    def line(self, view: ViewT | None) -> Text:
        raise NotImplementedError

    @property
    def plain(self) -> str:
        return "\n".join(self.plain_lines)


class StatusLine(Bar[View]):
    def __init__(self, *, origin: str, id: str) -> None:
        super().__init__(id=id)
        self.origin = origin  # "replay of FILE" or the checkpoint name, shown before a trace exists
        self.state = ""  # "loading the model…", "translating…" or ""
        self.mode = ""  # served to a class: "following NAME", "on your own" or "teaching as NAME"
        self.short_mode = ""  # the mode in fewer words, for where it does not fit ("": there are none)

    def line(self, view: View | None) -> Text:
        # Where the line is too long the names give way, the scorer's first, then the mode's
        # words, so that the step and the class's mode stay whole.
        scorer = view.trace.checkpoint.scorer_name if view is not None else ""
        # a toolkit model trained on pre-tokenized text reads what is typed as tokens separated by spaces
        spaced = view is not None and view.trace.checkpoint.tokenizer == "words"
        note = "the model reads tokens separated by spaces" if spaced else ""
        mode, short = self.mode, self.short_mode or self.mode
        for names in (
            (mode, self.origin, scorer, note),
            (mode, self.origin, note),
            (mode, self.origin),
            (mode,),
            (short,),
        ):
            line = self.assemble(view, *names)
            if line.cell_len <= self.scrollable_content_region.width:
                break
        return line

    def assemble(self, view: View | None, mode: str, *names: str) -> Text:
        line = Text.assemble(("attnstep", "bold"))
        for name in filter(None, names):
            line.append(" · ")
            line.append_text(safe_text(name))
        if view is not None:
            line.append("   ")
            line.append(step_counter(view), "bold")
        if mode:  # after the counter, so that a narrow terminal cuts the mode, not the step
            line.append("   ")
            line.append_text(safe_text(mode, "reverse"))
        if self.state:
            line.append(f"   {self.state}", "italic")
        return line


class OutputLine(Bar[View]):
    """The translation so far, detokenized, ending at the current word (▶); on a long
    translation the start gives way, so the current word is always on screen."""

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self._pieces: tuple[Trace, list[str]] | None = None

    def pieces(self, trace: Trace) -> list[str]:
        if self._pieces is None or self._pieces[0] is not trace:  # once per trace: O(steps²) for word models
            self._pieces = (trace, output_pieces(trace))
        return self._pieces[1]

    def line(self, view: View | None) -> Text:
        label = Text("Output: ", style="bold", end="")
        if view is None or view.position == 0:
            return Text.assemble(label, ("(nothing yet)", "dim"))
        steps, position = view.trace.steps, view.position
        words = Text(end="")
        for step, piece in zip(steps[:position], self.pieces(view.trace)):
            current = step.index == position - 1
            space, word = (" ", piece[1:]) if piece.startswith(" ") else ("", piece)
            if step.index:
                words.append(space)
            if current and not view.shows("pick"):
                words.append("▶?", "bold")
            else:
                marked = ("▶" if current else "") + word + view.trace.mark(step)
                words.append_text(safe_text(marked, "bold reverse" if current else ""))
        notes = self.notes(view, short=False)
        if label.cell_len + words.cell_len + notes.cell_len > self.size.width:  # the words before the notes
            notes = self.notes(view, short=True)
        room = max(1, self.size.width - label.cell_len - notes.cell_len)
        if words.cell_len > room:  # keep the end, where the current word is
            cut = len(words.plain) - room + 1
            while cut < len(words.plain) and words[cut:].cell_len > room - 1:
                cut += 1
            words = Text.assemble("…", words[cut:])
        return Text.assemble(label, words, notes)

    @staticmethod
    def notes(view: View, *, short: bool) -> Text:
        """What the marks on the words mean; ``short`` where the words need the room."""
        steps, position = view.trace.steps, view.position
        notes = Text(end="", style="dim")
        if view.trace.reference is not None:
            notes.append(
                "   given; ≠: not the model's choice"
                if short
                else "   given translation; ≠: the model would choose another word"
            )
        elif any(s.forced for s in steps[:position]):
            notes.append("   * forced")
        if any(s.edit is not None for s in steps[:position]):
            notes.append(f"   {EDIT_MARK} attention edited")
        ahead = next((s.index for s in steps[position:] if s.forced), None)
        if ahead is not None and view.trace.reference is None:
            notes.append(
                f"   ⋯ forced word at step {ahead + 1}"
                if short
                else f"   ⋯ a forced word lies ahead, at step {ahead + 1} (u undoes it)"
            )
        edited = next((s.index for s in steps[position:] if s.edit is not None), None)
        if edited is not None:
            notes.append(
                f"   ⋯ edit at step {edited + 1}" if short else f"   ⋯ an edited step lies ahead, step {edited + 1}"
            )
        return notes


class SummaryLine(Bar[View]):
    """The current step's key numbers in one line, for narrow terminals where panels are tabs."""

    def line(self, view: View | None) -> Text:
        # As many of the top weights and words as fit whole: a number cut in half misleads.
        for items in range(SUMMARY_ITEMS, 1, -1):
            line = self.summary(view, items)
            if line.cell_len <= self.size.width:
                break
        return line

    def summary(self, view: View | None, items: int) -> Text:
        line = Text()
        if view is None or view.step is None:
            return line
        if view.in_words and view.trace.checkpoint.attends:
            view = attention_in_words(view)
        step = view.step
        assert step is not None  # the same step, its weights gathered into words
        if view.shows("softmax"):
            order = sorted(range(len(step.weights)), key=lambda i: -step.weights[i])[:items]
            heads = view.trace.view  # a Transformer's: which head (or mean) attends
            line.append(f"attends ({short_label(heads)}): " if heads is not None else "attends: ", "bold")
            for i in order:
                line.append_text(safe_text(source_word(view.trace.source[i])))
                line.append(f" {num(step.weights[i])}  ")
        if view.shows("output"):
            line.append("│ next: ", "bold")
            for c in step.candidates[:items]:
                chosen = view.shows("pick") and c.token == step.chosen_token
                label = piece_text(view.trace, c.token)
                line.append_text(safe_text(("▶" if chosen else "") + label, "bold" if chosen else ""))
                line.append(f" {prob(c.prob)}  ")
        line.rstrip()
        return line


class Narration(Bar[View]):
    def build(self, view: View | None) -> list[Text]:
        text = Text(
            "Press n to type a sentence, ? for all keys." if view is None else narrate_edited(view) or narrate(view)
        )
        return list(text.wrap(self.app.console, max(1, self.size.width)))
