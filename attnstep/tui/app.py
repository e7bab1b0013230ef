"""The stepping app: panels for every quantity of an attention step, moved by the keyboard.

The app holds a :class:`~attnstep.trace.TraceCursor` and a sub-step stage; every key is one
verb on them (step, back, stage, go to, end, restart) or a request for a new trace from
the :class:`~attnstep.tui.source.TraceSource` (new sentence, force, unforce), made in a
thread worker. After each move every panel is handed the same :class:`View` and repaints
only what changed.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Callable

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs
from textual.worker import Worker, WorkerState, get_current_worker

from attnstep.errors import AttnstepError
from attnstep.trace import Trace, TraceCursor
from attnstep.tui.attention_panel import AttentionPanel
from attnstep.tui.bars import Narration, OutputLine, StatusLine, SummaryLine
from attnstep.tui.candidates_panel import CandidatesPanel
from attnstep.tui.decoder_panel import DecoderPanel
from attnstep.tui.dialogs import AskDialog, ForceDialog, HelpDialog, SentenceDialog
from attnstep.tui.glyphs import max_abs
from attnstep.tui.grid import AlignmentGrid
from attnstep.tui.lines import LinesView
from attnstep.tui.messages import SourceReady, TraceReady
from attnstep.tui.safe import visible
from attnstep.tui.source import DEFAULT_EXAMPLES, SourceFactory, TraceSource
from attnstep.tui.source_panel import SourcePanel
from attnstep.tui.stages import STAGE_COUNT, View, quote

# Below either size the panels become tabs, one shown at a time.
WIDE_COLUMNS, WIDE_ROWS = 120, 32
PANELS = (  # (id, tab label), in tab order
    ("attention", "Attention"),
    ("decoder", "Decoder"),
    ("candidates", "Next word"),
    ("grid", "Grid"),
    ("source", "Source"),
)
EXPORT_NAME = "attnstep-trace.json"

# (keys, action, footer label or "" to leave it out of the footer, key as ? shows it, what it does)
KEYS = [
    ("right,l", "step", "step", "→ / l", "next time step (completes a step shown in sub-steps)"),
    ("left,h", "back", "back", "← / h", "previous time step"),
    ("s", "stage(1)", "stage", "s", "next sub-step: the 7 stages of one step, one at a time"),
    ("S", "stage(-1)", "", "S", "previous sub-step"),
    ("g", "goto", "go to", "g", "go to step N"),
    ("e,end", "end", "", "e / End", "run to the end"),
    ("r,home", "restart", "", "r / Home", "restart: back to the encoder only"),
    ("f", "force", "force", "f", "force a different word at this step (top-k or typed)"),
    ("u", "unforce", "", "u", "return to the model's own choice (undo the last forced word)"),
    ("n", "new_sentence", "new", "n", "new sentence"),
    ("x", "export", "", "x", "export this trace as JSON (as `attnstep dump` writes it)"),
    ("b", "beam", "", "b", "the beam search at this step: its hypotheses and their attention (--beam K)"),
    ("question_mark", "help", "help", "?", "all keys"),
    ("q", "quit", "quit", "q", "quit"),
]
PANEL_KEYS = [
    ("Tab", "next panel (on small terminals the panels are tabs)"),
    ("↑ / ↓", "in Source: select a word and list its h_i; in Next word: select, Enter forces it"),
    ("Shift+← →", "scroll a panel sideways (the grid of a long sentence)"),
]


class MainScreen(Screen):
    """The app's only full screen; Tab cycles panels here instead of moving focus blindly."""

    BINDINGS = [
        Binding("tab", "app.panel(1)", "panel"),
        Binding("shift+tab", "app.panel(-1)", "previous panel", show=False),
    ]

    @property
    def narrow(self) -> bool:
        return self.size.width < WIDE_COLUMNS or self.size.height < WIDE_ROWS

    def on_resize(self) -> None:
        self.set_class(self.narrow, "-narrow")


class AttnstepApp(App[None]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: a subclass elsewhere (the served app) finds it too
    TITLE = "attnstep"
    ENABLE_COMMAND_PALETTE = False  # every command has a key; the footer needs the room
    BINDINGS = [Binding(keys, action, label or action, show=bool(label)) for keys, action, label, _, _ in KEYS]
    HELP = [(key, text) for _, _, _, key, text in KEYS] + PANEL_KEYS  # what ? lists

    def __init__(
        self,
        *,
        source_factory: SourceFactory | None = None,
        trace: Trace | None = None,
        sentence: str | None = None,
        examples: tuple[str, ...] = DEFAULT_EXAMPLES,
        origin: str = "",
        reference: str | None = None,
        open_on_sentence_box: bool = True,
    ) -> None:
        super().__init__()
        self.source_factory = source_factory  # None: replay, no model anywhere
        self.source: TraceSource | None = None
        self.cursor: TraceCursor | None = None
        self.state_scale = 1.0
        if trace is not None:
            self.set_trace(trace, 0)
        self.stage = STAGE_COUNT  # sub-step of the current step; STAGE_COUNT: the whole step
        self.pending_sentence = sentence  # translated as soon as the source is ready
        self.reference = reference  # translate --target: the opening sentence's given translation, scored
        self.examples = examples
        self.origin = origin
        self.open_on_sentence_box = open_on_sentence_box  # with nothing to show yet: False for a student who follows a teacher
        self.error_message: str | None = None  # why the app exited with return code 1
        self.panel_index = 0

    # --- layout -----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        self.status = StatusLine(origin=self.origin, id="status")
        yield self.status
        tabs = Tabs(*[Tab(label, id=f"tab-{pid}") for pid, label in PANELS], id="tabs")
        tabs.can_focus = False  # ← → belong to stepping, not to the tab bar
        yield tabs
        with Container(id="panels"):
            self.panels: dict[str, LinesView] = {
                "source": SourcePanel(id="source", classes="panel"),
                "attention": AttentionPanel(id="attention", classes="panel"),
                "decoder": DecoderPanel(id="decoder", classes="panel"),
                "grid": AlignmentGrid(id="grid", classes="panel"),
                "candidates": CandidatesPanel(id="candidates", classes="panel"),
            }
            yield from self.panels.values()
        self.bars = [self.status, OutputLine(id="output"), SummaryLine(id="summary"), Narration(id="narration")]
        yield from self.bars[1:]
        yield Footer()

    def on_mount(self) -> None:
        self.show_panel(0)
        self.show_view()
        if self.source_factory is not None:
            self.set_busy("loading the model…")
            # Start importing torch only after the first frame is on screen.
            self.call_after_refresh(self.load_source)
        if self.cursor is None and self.pending_sentence is None and self.open_on_sentence_box:
            self.action_new_sentence()

    @property
    def narrow(self) -> bool:
        return self.screen_stack[0].narrow

    def action_panel(self, delta: int) -> None:
        self.show_panel((self.panel_index + delta) % len(PANELS))

    def show_panel(self, index: int) -> None:
        """Make panel ``index`` the current one: the visible tab when narrow, focused either way."""
        self.panel_index = index
        pid = PANELS[index][0]
        for other, panel in self.panels.items():
            panel.set_class(other == pid, "-shown")
        self.query_one(Tabs).active = f"tab-{pid}"
        self.panels[pid].focus()

    @on(Tabs.TabActivated)
    def tab_clicked(self, event: Tabs.TabActivated) -> None:
        index = next(i for i, (pid, _) in enumerate(PANELS) if f"tab-{pid}" == event.tab.id)
        if index != self.panel_index:
            self.show_panel(index)

    # --- what is shown ----------------------------------------------------------------------

    def set_trace(self, trace: Trace, position: int) -> None:
        self.cursor = TraceCursor(trace, position)
        self.stage = STAGE_COUNT
        # Once per trace, not per step: a 40-word sentence has 20,000 encoder-state numbers.
        self.state_scale = max_abs(trace.encoder_states) if trace.encoder_states else 1.0

    @property
    def view(self) -> View | None:
        if self.cursor is None:
            return None
        stage = self.stage if self.cursor.position else STAGE_COUNT
        return View(self.cursor.trace, self.cursor.position, stage, self.state_scale)

    def show_view(self) -> None:
        view = self.view
        for widget in (*self.panels.values(), *self.bars):
            widget.show(view)
        stage = view.current_stage if view is not None and view.partial else None
        for pid, panel in self.panels.items():
            panel.set_class(stage is not None and stage.panel == pid, "-stage")
        if stage is not None and self.narrow:  # one panel at a time: show the one this stage changed
            self.show_panel(next(i for i, (pid, _) in enumerate(PANELS) if pid == stage.panel))

    def set_busy(self, state: str) -> None:
        self.status.state = state
        self.query_one("#panels").loading = bool(state)
        self.status.show(self.view)

    # --- moving: verbs on the cursor ----------------------------------------------------------

    def action_step(self) -> None:
        if self.cursor is None:
            return
        if self.cursor.position and self.stage < STAGE_COUNT:
            self.stage = STAGE_COUNT
        elif not self.cursor.step():
            return
        self.show_view()

    def action_back(self) -> None:
        if self.cursor is not None and self.cursor.back():
            self.stage = STAGE_COUNT
            self.show_view()

    def action_stage(self, delta: int) -> None:
        cursor = self.cursor
        if cursor is None:
            return
        if delta > 0:
            if cursor.position and self.stage < STAGE_COUNT:
                self.stage += 1
            elif cursor.step():
                self.stage = 1
            else:
                return
        else:
            if not cursor.position:
                return
            if self.stage > 1:
                self.stage -= 1
            else:
                cursor.back()
                self.stage = STAGE_COUNT
        self.show_view()

    def go(self, position: int) -> None:
        if self.cursor is not None:
            self.cursor.goto(position)
            self.stage = STAGE_COUNT
            self.show_view()

    def action_end(self) -> None:
        if self.cursor is not None:
            self.go(self.cursor.total)

    def action_restart(self) -> None:
        self.go(0)

    def action_goto(self) -> None:
        if self.cursor is None:
            return

        def answered(answer: str | None) -> None:
            if answer is not None:
                self.go(int(answer))

        self.push_screen(AskDialog(f"Go to step (0–{self.cursor.total}):", integer=True), answered)

    # --- new traces from the source ---------------------------------------------------------

    @work(thread=True, group="load", exit_on_error=False, description="import torch and load the checkpoint")
    def load_source(self) -> None:
        source = self.source_factory()
        if not get_current_worker().is_cancelled:
            self.post_message(SourceReady(source))

    @work(thread=True, group="decode", exclusive=True, exit_on_error=False, description="decode")
    def decode(self, compute: Callable[[], Trace], position: int, note: str) -> None:
        trace = compute()
        if not get_current_worker().is_cancelled:
            self.post_message(TraceReady(trace, position, note))

    def on_source_ready(self, message: SourceReady) -> None:
        self.source = message.source
        # Importing torch leaves several hundred thousand long-lived objects; left to the
        # collector, each full collection walks them all and stalls a keypress by ~100 ms.
        gc.freeze()
        self.set_busy("")
        if self.pending_sentence is not None:
            self.translate(self.pending_sentence)

    def on_trace_ready(self, message: TraceReady) -> None:
        self.set_trace(message.trace, message.position)
        self.set_busy("")
        self.show_view()
        if message.note:
            self.notify(message.note, markup=False)

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """Every worker failure ends here: a model that cannot load ends the app, others are notices."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        message = str(error) if isinstance(error, AttnstepError) else f"{type(error).__name__}: {error}"
        if event.worker.group == "load":
            self.error_message = message.splitlines()[0] if message else "the model could not be loaded"
            self.exit(return_code=1)
            return
        self.set_busy("")
        self.notify(visible(message), severity="error", markup=False)

    def translate(self, sentence: str) -> None:
        self.pending_sentence = sentence
        if self.source is None:
            return  # on_source_ready translates it
        self.pending_sentence = None
        self.set_busy("translating…")
        source, reference, self.reference = self.source, self.reference, None
        if reference is None:
            self.decode(lambda: source.translate(sentence), 0, "")
        else:
            self.decode(lambda: source.score_reference(sentence, reference), 0, "")

    def unavailable(self, what: str) -> bool:
        """Say why ``what`` needs a model that is not there; True when it is not."""
        if self.source is not None:
            return False
        if self.source_factory is None:
            self.notify(f"{what} needs the model: this is a replay of a saved trace. Open the sentence with `attnstep translate` to do it.", severity="warning", markup=False)
        else:
            self.notify(f"The model is still loading; {what.lower()} in a moment.", markup=False)
        return True

    def action_new_sentence(self) -> None:
        if self.source_factory is None:
            self.unavailable("A new sentence")
            return
        self.push_screen(SentenceDialog(self.examples), lambda sentence: sentence and self.translate(sentence))

    def action_force(self) -> None:
        step = self.cursor.current if self.cursor else None
        if self.unavailable("Forcing a word"):
            return
        if step is None:
            self.notify("Take a step first (→): forcing replaces the word chosen at the current step.", markup=False)
            return
        self.push_screen(ForceDialog(step), lambda word: word and self.force(word))

    @on(CandidatesPanel.Chosen)
    def candidate_chosen(self, message: CandidatesPanel.Chosen) -> None:
        if not self.unavailable("Forcing a word"):
            self.force(message.token)

    def force(self, word: str) -> None:
        trace, t, source = self.cursor.trace, self.cursor.position - 1, self.source
        self.set_busy("decoding…")
        note = f"Forced {quote(word)} at step {t + 1}; decoding continued from there. u returns to the model's choice."
        self.decode(lambda: source.force(trace, t, word), t + 1, note)

    def action_unforce(self) -> None:
        if self.cursor is None or self.unavailable("Returning to the model's choice"):
            return
        forced = [s.index for s in self.cursor.visible if s.forced]
        if not forced:
            self.notify("No word up to this step was forced.", markup=False)
            return
        trace, t, source = self.cursor.trace, forced[-1], self.source
        self.set_busy("decoding…")
        self.decode(lambda: source.unforce(trace, t), t + 1, f"Step {t + 1} is the model's own choice again.")

    # --- export and help ----------------------------------------------------------------------

    def action_export(self) -> None:
        if self.cursor is None:
            return
        trace = self.cursor.trace
        self.push_screen(AskDialog("Export this trace as JSON to:", EXPORT_NAME), lambda path: path and self.export(trace, Path(path)))

    def export(self, trace: Trace, path: Path) -> None:
        from attnstep.files import atomic_writer
        from attnstep.trace import dumps

        try:
            with atomic_writer(path, "wb") as handle:
                handle.write(dumps(trace, indent=True) + b"\n")  # byte for byte what `attnstep dump` writes
        except OSError as exc:
            self.notify(visible(f"Cannot write {path}: {exc.strerror or exc}"), severity="error", markup=False)
            return
        self.notify(visible(f"Trace written to {path}"), markup=False)

    def action_beam(self) -> None:
        if self.cursor is None or self.cursor.trace.beam is None:
            self.notify("This decoding is greedy: translate with --beam K to step through a beam search.", markup=False)
            return
        from attnstep.tui.beam_view import BeamScreen

        self.push_screen(BeamScreen(self.cursor.trace, self.cursor.position - 1))

    def action_help(self) -> None:
        self.push_screen(HelpDialog(self.HELP))
