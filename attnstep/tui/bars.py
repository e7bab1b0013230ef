"""One-line bars around the panels: status, output so far, key numbers, and the stage narration."""

from __future__ import annotations

from rich.text import Text

from attnstep.trace import EOS_TOKEN
from attnstep.tui.glyphs import num
from attnstep.tui.lines import LinesView
from attnstep.tui.safe import safe_text
from attnstep.tui.stages import STAGE_COUNT, View, forced_mark, narrate

SCORERS = {"dot": "Luong dot", "general": "Luong general", "concat": "Luong concat", "additive": "Bahdanau additive"}
SUMMARY_ITEMS = 3  # weights and candidates listed on the summary line


def step_counter(view: View) -> str:
    """"step 3 of 7 · stage 3/7 softmax": what the status line says about position."""
    total = len(view.trace.steps)
    if view.step is None:
        return f"step 0 of {total} · encoder"
    stage = view.current_stage
    return f"step {view.position} of {total} · stage {view.stage}/{STAGE_COUNT} {stage.name}"


class Bar(LinesView, can_focus=False):
    """Fixed-height lines around the panels (heights in app.tcss).

    A LinesView rather than a Static: a step then resends only the changed end of the status
    line, not all of it plus its padding, and no layout pass runs (a layout makes every
    scrolling panel repaint its scrollbars).
    """

    SCROLLS = False

    def build(self, view: View | None) -> list[Text]:
        return [self.line(view)]

    def line(self, view: View | None) -> Text:
        raise NotImplementedError

    @property
    def plain(self) -> str:
        return "\n".join(self.plain_lines)


class StatusLine(Bar):
    def __init__(self, *, origin: str, id: str) -> None:
        super().__init__(id=id)
        self.origin = origin  # "replay of FILE" or the checkpoint name, shown before a trace exists
        self.state = ""  # "loading the model…", "translating…" or ""
        self.mode = ""  # served to a class: "following NAME", "on your own" or "teaching as NAME"

    def line(self, view: View | None) -> Text:
        line = Text.assemble(("attnstep", "bold"), " · ", safe_text(self.origin))
        if view is not None:
            info = view.trace.checkpoint
            line.append(" · ")
            line.append_text(safe_text(SCORERS.get(info.attention, info.attention)))
            line.append("   ")
            line.append(step_counter(view), "bold")
        if self.mode:  # after the counter, so that a narrow terminal cuts the mode, not the step
            line.append("   ")
            line.append_text(safe_text(self.mode, "reverse"))
        if self.state:
            line.append(f"   {self.state}", "italic")
        return line


class OutputLine(Bar):
    def line(self, view: View | None) -> Text:
        line = Text("Output: ", style="bold")
        if view is None or view.position == 0:
            line.append("(nothing yet)", "dim")
            return line
        for step in view.trace.steps[: view.position]:
            current = step.index == view.position - 1
            if current and not view.shows("pick"):
                line.append("▶?", "bold")
                break
            word = "⟨eos⟩" if step.chosen_token == EOS_TOKEN else step.chosen_token
            line.append_text(safe_text(("▶" if current else "") + word + forced_mark(view.trace, step), "bold reverse" if current else ""))
            line.append(" ")
        if view.trace.reference is not None:
            line.append("  (given translation; ≠: the model would choose another word)", "dim")
        elif any(s.forced for s in view.trace.steps[: view.position]):
            line.append("  (* forced by you)", "dim")
        return line


class SummaryLine(Bar):
    """The current step's key numbers in one line, for narrow terminals where panels are tabs."""

    def line(self, view: View | None) -> Text:
        step = view.step if view else None
        line = Text()
        if step is None:
            return line
        if view.shows("softmax"):
            order = sorted(range(len(step.weights)), key=lambda i: -step.weights[i])[:SUMMARY_ITEMS]
            line.append("attends: ", "bold")
            for i in order:
                line.append_text(safe_text(view.trace.source[i].surface))
                line.append(f" {num(step.weights[i])}  ")
        if view.shows("output"):
            line.append("│ next: ", "bold")
            for c in step.candidates[:SUMMARY_ITEMS]:
                chosen = view.shows("pick") and c.token == step.chosen_token
                line.append_text(safe_text(("▶" if chosen else "") + c.token, "bold" if chosen else ""))
                line.append(f" {num(c.prob)}  ")
        return line


class Narration(Bar):
    def build(self, view: View | None) -> list[Text]:
        text = Text("Press n to type a sentence, ? for all keys." if view is None else narrate(view))
        return list(text.wrap(self.app.console, max(1, self.size.width)))
