"""The stepping app: panels for every quantity of an attention step, moved by the keyboard.

The app holds a :class:`~attnstep.trace.cursor.StepCursor`; every key is one verb on it (step,
back, sub-step, go to, end, restart) or a request for a new trace from
the :class:`~attnstep.tui.trace_source.TraceSource` (new sentence, force, unforce, edit, unedit), made in a
thread worker. After each move every panel is handed the same :class:`View` and repaints
only what changed.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypedDict

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Tab, Tabs
from textual.worker import Worker, WorkerState, get_current_worker

from attnstep.data.model_card import DEFAULT_EXAMPLES
from attnstep.errors import AttnstepError, first_line
from attnstep.report.glyphs import max_abs, mean_bins
from attnstep.text.codec import surface
from attnstep.trace.cursor import StepCursor
from attnstep.trace.edits import parse_edit
from attnstep.trace.forcing import forced_word_start
from attnstep.trace.records import NO_ATTENTION_STAGE_COUNT, STAGE_COUNT, Trace
from attnstep.trace.records import View as AttentionView
from attnstep.tui.bars import Narration, OutputLine, StatusLine, SummaryLine
from attnstep.tui.edited import edit_note
from attnstep.tui.keybar import KeyBar
from attnstep.tui.lines import LineStyles, LinesView
from attnstep.tui.messages import OtherReady, SourceReady, TraceReady
from attnstep.tui.panels.attention import AttentionPanel
from attnstep.tui.panels.candidates import CandidatesPanel
from attnstep.tui.panels.decoder import DecoderPanel
from attnstep.tui.panels.grid import AlignmentGrid, grid_width
from attnstep.tui.panels.source import SourcePanel
from attnstep.tui.panels.worked import WorkedScoreDialog
from attnstep.tui.safe import visible
from attnstep.tui.screens.alignment import CompareScreen, MapScreen
from attnstep.tui.screens.dialogs import (
    AskDialog,
    EditDialog,
    ExportDialog,
    ForceDialog,
    HelpDialog,
    SentenceDialog,
    on_answer,
)
from attnstep.tui.screens.heads import HeadsGrid, HeadsScreen
from attnstep.tui.stages import View, quote
from attnstep.tui.trace_source import ScoringSource, SourceFactory, TraceSource

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

# Every panel is on screen where there are at least WIDE_ROWS rows and room for the grid to
# show the whole sentence or MIN_GRID_COLUMNS of its words (MEDIUM_GRID_COLUMNS in the medium
# layout, rather than hiding four panels behind tabs on a projector). The wide layout sets the grid
# between the Source/Decoder column (LEFT_WIDTH: a Decoder row, label + 16-cell strip + note,
# and borders) and the Next-word column; the medium one (a projector's 120 columns) gives the
# grid the right side, over two rows, beside Decoder and Next word stacked in LEFT_WIDTH, with
# Source (SOURCE_WIDTH) beside Attention above them. Elsewhere the panels are tabs, one at a time.
WIDE_ROWS = 32
LEFT_WIDTH = 58
CANDIDATES_WIDTH = 30
SOURCE_WIDTH = 49  # a Source row: number, word, 16-cell strip, norm, and borders (app.tcss)
ATTENTION_WIDTH = 68  # an Attention row with its narrower weight bars, and borders
MIN_GRID_COLUMNS = 8
MEDIUM_GRID_COLUMNS = 6
PANEL_FRAME = 3  # a panel's two borders and its scrollbar
NO_TRACE_GRID = 60  # the grid's width to plan for before there is a sentence
PANELS = (  # (id, tab label), in tab order
    ("attention", "Attention"),
    ("decoder", "Decoder"),
    ("candidates", "Next word"),
    ("grid", "Grid"),
    ("source", "Source"),
)
EXPORT_NAME = "attnstep-trace.json"  # the first format's; the suffix follows the format chosen

# (keys, action, footer label or "" to leave it out of the footer, key as ? shows it, what it does)
KEYS = [  # in order of use: where a narrow footer is cut, what goes is what is least needed
    ("question_mark", "help", "help", "?", "all keys"),
    ("right,l", "step", "step", "→ / l", "next time step (completes a step shown in sub-steps)"),
    ("left,h", "back", "back", "← / h", "previous time step"),
    (
        "s",
        "stage(1)",
        "stage",
        "s",
        f"next sub-step: the {STAGE_COUNT} stages of one step ({NO_ATTENTION_STAGE_COUNT} without attention), one at a time",
    ),
    ("S", "stage(-1)", "", "S", "previous sub-step"),
    (
        "a",
        "head(1)",
        "head",
        "a",
        "a Transformer's cross-attention: the next head of this layer, after the last the layer's mean of heads",
    ),
    ("A", "head(-1)", "", "A", "the previous head (or the mean of heads)"),
    ("d", "layer(1)", "layer", "d", "a Transformer's next decoder layer, the same head (or mean)"),
    ("D", "layer(-1)", "", "D", "the previous decoder layer"),
    (
        "o",
        "heads",
        "heads",
        "o",
        "heads overview: every head of every layer's weights at this step (↑/↓ choose one, Esc back)",
    ),
    ("g", "goto", "go to", "g", "go to step N"),
    ("f", "force", "force", "f", "force a different word at this step (top-k or typed)"),
    (
        "i",
        "edit",
        "edit",
        "i",
        "edit this step's attention (intervene): zero a word, all on one, uniform, τ, reverse, permute, or typed",
    ),
    (
        "u",
        "unforce",
        "undo",
        "u",
        "return to the model's own choice: undo the last forced word or attention edit, from any step",
    ),
    ("e,end", "end", "end", "e / End", "run to the end"),
    ("r,home", "restart", "restart", "r / Home", "restart: back to the encoder only"),
    ("n", "new_sentence", "new", "n", "new sentence"),
    (
        "x",
        "export",
        "export",
        "x",
        "export this trace: JSON (as `attnstep dump` writes it), the alignment as SVG or PNG, or Pharaoh links",
    ),
    ("b", "beam", "beam", "b", "the beam search at this step: its hypotheses and their attention (--beam K)"),
    ("q", "quit", "quit", "q", "quit"),
    (
        "w",
        "worked",
        "worked score",
        "w",
        "the worked score: how e_ti and a_ti come out of the vectors (↑/↓ another word)",
    ),
    ("m", "map", "map", "m", "the full-screen alignment map of the steps so far (# numbers, Esc back)"),
    (
        "c",
        "compare",
        "compare",
        "c",
        (
            "before/after a forced word or an edit: the model's own decoding beside the changed one; "
            "with a second --checkpoint and neither, that model's decoding beside this one"
        ),
    ),
    (
        "number_sign",
        "numbers",
        "numbers",
        "#",
        "numbers: the first components of h_t, C_t, a·h_i…, and log-probabilities beside p",
    ),
    (
        "v",
        "words",
        "words",
        "v",
        "word view: a subword model's pieces gathered into your words in the grid and attention panel",
    ),
]
NEEDS_MODEL = {"force", "unforce", "new_sentence", "edit"}  # off in a replay, which has no model
NEEDS_ATTENTION = {"map", "worked", "compare", "words"}  # off for a model without attention
NEEDS_HEADS = {"head", "layer", "heads"}  # only a Transformer's trace has layers and heads to choose from
PANEL_KEYS = [
    ("Tab", "next panel (on small terminals the panels are tabs)"),
    ("↑ / ↓", "in Source: select a word and list its h_i; in Next word: select, Enter forces it"),
    ("Shift+← →", "scroll a panel sideways (the grid of a long sentence)"),
]


def changed(trace: Trace) -> bool:
    """Whether the user changed this decoding: a word forced, or a step's attention edited."""
    return any(s.forced or s.edit is not None for s in trace.steps)


class MainScreen(Screen):
    """The app's only full screen; Tab cycles panels here instead of moving focus blindly."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "app.panel(1)", "panel"),
        Binding("shift+tab", "app.panel(-1)", "previous panel", show=False),
    ]

    narrow = False  # panels as tabs (see choose_layout)
    medium = False  # every panel, the grid on the right over two rows

    def choose_layout(self, trace: Trace | None) -> None:
        """Choose the layout for this terminal size and sentence: every panel at once where the
        grid has room (see WIDE_ROWS), else tabs."""
        width, height = self.size

        def least(columns: int) -> int:  # grid_width counts min(columns, all) columns
            return NO_TRACE_GRID if trace is None else PANEL_FRAME + grid_width(trace, columns)

        tall = height >= WIDE_ROWS
        wide = tall and width - CANDIDATES_WIDTH - LEFT_WIDTH >= least(MIN_GRID_COLUMNS)
        self.medium = (
            tall
            and not wide
            and width - LEFT_WIDTH >= least(MEDIUM_GRID_COLUMNS)
            and width - SOURCE_WIDTH >= ATTENTION_WIDTH
        )
        self.narrow = not (wide or self.medium)
        self.set_class(self.narrow, "-narrow")
        self.set_class(self.medium, "-medium")
        if not self.narrow:  # every panel is on screen: those that were hidden tabs catch up
            for panel in self.query(".panel").results(LinesView):
                panel.catch_up()

    def on_resize(self) -> None:
        app = self.app
        assert isinstance(app, AttnstepApp)  # the screen of no other app
        self.choose_layout(app.cursor.trace if app.cursor else None)


class AppOptions(TypedDict, total=False):
    """What the app is built over: :func:`attnstep.tui.make_app`'s keywords."""

    source_factory: SourceFactory | None  # where traces come from; None (the default) for replay
    trace: Trace | None  # a trace to show at once (replay)
    sentence: str | None  # the opening sentence, translated as soon as the source is ready
    examples: tuple[str, ...]  # the new-sentence box's examples (default: DEFAULT_EXAMPLES)
    source_language: str  # the name of the language the model translates from, for the box ("": unknown)
    origin: str  # the model's name on the status line
    reference: str | None  # the opening sentence's given translation, forced and scored instead of decoded
    open_on_sentence_box: bool  # with nothing to show, open the new-sentence box (default True)
    other_factory: SourceFactory | None  # a second model whose decoding of the sentence c sets beside
    other_origin: str  # the second model's name


class AttnstepApp(App[None]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: a subclass elsewhere (the served app) finds it too
    TITLE = "attnstep"
    ENABLE_COMMAND_PALETTE = False  # every command has a key; the footer needs the room
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(keys, action, label or action, show=bool(label)) for keys, action, label, _, _ in KEYS
    ]
    KEY_HELP: ClassVar[list[tuple[str, str]]] = [
        *((key, text) for _, _, _, key, text in KEYS),
        *PANEL_KEYS,
    ]  # what ? lists

    def __init__(self, **options: Unpack[AppOptions]) -> None:
        """The app over a source of traces (None for replay), or over a trace to replay (see AppOptions)."""
        super().__init__()
        self.source_factory = options.get("source_factory")  # None: replay, no model anywhere
        self.other_factory = options.get("other_factory")  # a second model for c
        self.other_origin = options.get("other_origin", "")
        self.other: TraceSource | None = None
        self.source: TraceSource | None = None
        self.cursor: StepCursor | None = None
        self.given: Trace | None = None  # the cursor's trace as it came, in its own View (the cursor's may be another)
        # a, d: a Transformer's layer and head chosen, kept over new decodings; None: each trace's own
        self.attention_view: AttentionView | None = None
        self.original: Trace | None = None
        self.state_scale = 1.0
        self.numbers = False  # #: numbers beside (or instead of) the pictures
        self.words = False  # v: pieces gathered into words in the grid and the attention panel
        trace = options.get("trace")
        if trace is not None:
            self.set_trace(trace, 0)
        sentence = options.get("sentence")
        self.pending_sentence = sentence  # translated as soon as the source is ready
        self.sentence = sentence or ""  # the sentence on screen, as the user typed it
        self.reference = options.get("reference")  # translate --target: the opening sentence's given translation
        self.examples = options.get("examples", DEFAULT_EXAMPLES)
        self.source_language = options.get("source_language", "")
        self.origin = options.get("origin", "")
        # with nothing to show yet: False for a student who follows a teacher
        self.open_on_sentence_box = options.get("open_on_sentence_box", True)
        self.error_message: str | None = None  # why the app exited with return code 1
        self.panel_index = 0

    # --- layout -----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        self.status = StatusLine(origin=self.origin, id="status")
        yield self.status
        self.tabs = Tabs(*[Tab(label, id=f"tab-{pid}") for pid, label in PANELS], id="tabs")
        self.tabs.can_focus = False  # ← → belong to stepping, not to the tab bar
        yield self.tabs
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
        yield KeyBar()
        yield LineStyles()

    def on_mount(self) -> None:
        self.show_panel(0)
        self.show_view()
        if self.source_factory is not None:
            self.set_busy("loading the model…")
            # Start importing torch only after the first frame is on screen.
            self.call_after_refresh(self.load_source, self.source_factory)
        if self.cursor is None and self.pending_sentence is None and self.open_on_sentence_box:
            self.action_new_sentence()

    @property
    def main_screen(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)  # get_default_screen's
        return screen

    @property
    def narrow(self) -> bool:
        return self.main_screen.narrow

    def action_panel(self, delta: int) -> None:
        self.show_panel((self.panel_index + delta) % len(PANELS))

    def show_panel(self, index: int) -> None:
        """Make panel ``index`` the current one: the visible tab when narrow, focused either way."""
        self.panel_index = index
        pid = PANELS[index][0]
        for other, panel in self.panels.items():
            panel.set_class(other == pid, "-shown")
        self.tabs.active = f"tab-{pid}"
        self.panels[pid].catch_up()
        self.panels[pid].focus()

    @on(Tabs.TabActivated)
    def tab_clicked(self, event: Tabs.TabActivated) -> None:
        # Setting Tabs.active (show_panel) posts this message too, later. After a burst of Tab or
        # s presses the older ones arrive stale; obeying them moved the panel back, which posted
        # another, and two panels alternated forever (the app stopped answering keys).
        if event.tab.id != self.tabs.active:
            return
        index = next(i for i, (pid, _) in enumerate(PANELS) if f"tab-{pid}" == event.tab.id)
        if index != self.panel_index:
            self.show_panel(index)

    # --- what is shown ----------------------------------------------------------------------

    def set_trace(self, trace: Trace, position: int) -> None:
        self.given = trace
        self.cursor = StepCursor(self.viewed(trace), position)
        if not changed(trace):
            self.original = trace  # the model's own decoding: what c compares a forced or edited one with
        if self.is_running:
            self.main_screen.choose_layout(trace)
            self.refresh_bindings()  # u is offered only once a word is forced or a step edited
        # Once per trace, not per step: a 40-word sentence has 20,000 encoder-state numbers.
        self.state_scale = max_abs([mean_bins(h) for h in trace.encoder_states]) if trace.encoder_states else 1.0

    def viewed(self, trace: Trace) -> Trace:
        """``trace`` with the layer and head chosen (a, d), where it is a Transformer's that has them."""
        view, architecture = self.attention_view, trace.architecture
        if view is None or architecture is None or view == trace.view:
            return trace
        try:
            return trace.with_view(view)
        except ValueError:  # a layer or head this model has not (a malformed class message): the trace's own
            return trace

    def choose_view(self, view: AttentionView) -> None:
        """Show a Transformer's head ``view.head`` of layer ``view.layer`` (or its mean), at the same step and sub-step."""
        cursor, given = self.cursor, self.given
        assert cursor is not None and given is not None  # a and d are offered only over a Transformer's trace
        self.attention_view = view
        self.cursor = StepCursor(self.viewed(given), cursor.position, cursor.stage)
        self.show_view()

    @property
    def view(self) -> View | None:
        if self.cursor is None:
            return None
        return View(
            self.cursor.trace, self.cursor.position, self.cursor.stage, self.state_scale, self.numbers, self.words
        )

    def show_view(self) -> None:
        view = self.view
        shown = PANELS[self.panel_index][0] if self.is_running and self.narrow else None  # narrow: one panel on screen
        for pid, panel in self.panels.items():
            if shown in (None, pid):
                panel.show(view)
            else:
                panel.defer(view)
        for widget in self.bars:
            widget.show(view)
        if isinstance(self.screen, MapScreen | HeadsScreen):  # they follow s, e, r, g, a, d… while open
            self.screen.show(view)
        stage = view.partial_stage if view is not None else None
        for pid, panel in self.panels.items():
            panel.set_class(stage is not None and stage.panel == pid, "-stage")
        if stage is not None and self.narrow:  # one panel at a time: show the one this stage changed
            self.show_panel(next(i for i, (pid, _) in enumerate(PANELS) if pid == stage.panel))

    def set_busy(self, state: str) -> None:
        self.status.state = state
        self.query_one("#panels").loading = bool(state)
        self.status.show(self.view)

    # --- moving: verbs on the cursor ----------------------------------------------------------

    def move(self, verb: Callable[[StepCursor], bool]) -> None:
        """Move the cursor by ``verb`` (there is nothing to move before a trace) and show where it went."""
        if self.cursor is not None and verb(self.cursor):
            self.show_view()

    def action_step(self) -> None:
        self.move(StepCursor.step)

    async def action_back(self) -> None:  # async as App.action_back (pop a screen), which ← replaces here
        self.move(StepCursor.back)

    def action_stage(self, delta: int) -> None:
        self.move(lambda cursor: cursor.sub_step(delta))

    def action_end(self) -> None:
        self.move(StepCursor.end)

    def action_restart(self) -> None:
        self.move(StepCursor.restart)

    def action_goto(self) -> None:
        if self.cursor is None:
            return

        def go(answer: str) -> None:
            self.move(lambda cursor: cursor.goto(int(answer)))
            cursor = self.cursor
            assert cursor is not None  # g asks only once there is a trace
            if cursor.position != int(answer):
                self.notify(
                    f"There is no step {answer}: the steps are 0 to {cursor.total}; this is step {cursor.position}.",
                    markup=False,
                )

        self.push_screen(AskDialog(f"Go to step (0–{self.cursor.total}):", integer=True), on_answer(go))

    # --- new traces from the source ---------------------------------------------------------

    @work(thread=True, group="load", exit_on_error=False, description="import torch and load the checkpoint")
    def load_source(self, factory: SourceFactory) -> None:
        source = factory()
        if not get_current_worker().is_cancelled:
            self.post_message(SourceReady(source))

    @work(thread=True, group="decode", exclusive=True, exit_on_error=False, description="decode")
    def decode(self, compute: Callable[[], TraceReady]) -> None:
        """Post the new decoding ``compute`` makes (it blocks: this runs in a thread), unless cancelled."""
        ready = compute()
        if not get_current_worker().is_cancelled:
            self.post_message(ready)

    @work(
        thread=True, group="other", exclusive=True, exit_on_error=False, description="decode with the second checkpoint"
    )
    def decode_other(self, trace: Trace, factory: SourceFactory) -> None:
        """The second model's decoding of ``trace``'s sentence, the model (``factory``'s) loaded on first use."""
        if self.other is None:
            self.other = factory()
        other = self.other.translate(self.sentence)
        if not get_current_worker().is_cancelled:
            self.post_message(OtherReady(trace, other))

    def on_other_ready(self, message: OtherReady) -> None:
        self.set_busy("")
        self.push_screen(CompareScreen(message.trace, message.other, labels=(self.origin, self.other_origin)))

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
            self.error_message = first_line(message) or "the model could not be loaded"
            self.exit(return_code=1)
            return
        self.set_busy("")
        self.notify(visible(message), severity="error", markup=False)

    def translate(self, sentence: str) -> None:
        self.pending_sentence = sentence
        if self.source is None:
            return  # on_source_ready translates it
        self.pending_sentence = None
        self.sentence = sentence
        self.set_busy("translating…")
        source, reference, self.reference = self.source, self.reference, None
        if reference is None or not isinstance(source, ScoringSource):  # only a local model is given one
            self.decode(lambda: TraceReady(source.translate(sentence), 0, ""))
        else:

            def given() -> Trace:
                # The model's own decoding too, so that c can set the given translation beside it.
                self.original = source.translate(sentence)
                return source.score_reference(sentence, reference)

            self.decode(lambda: TraceReady(given(), 0, ""))

    def model_for(self, what: str) -> TraceSource | None:
        """The model to do ``what`` with; None, once the user is told why it is not there."""
        if self.source is None:
            self.no_model(what)
        return self.source

    def no_model(self, what: str) -> None:
        """Say why ``what`` cannot be done: a replay has no model, and a local one may still be loading."""
        if self.source_factory is None:
            self.notify(
                f"{what} needs the model: this is a replay of a saved trace. Open the sentence with `attnstep translate` to do it.",
                severity="warning",
                markup=False,
            )
        else:
            self.notify(f"The model is still loading; {what.lower()} in a moment.", markup=False)

    def action_new_sentence(self) -> None:
        if self.source_factory is None:
            self.no_model("A new sentence")
            return
        self.push_screen(SentenceDialog(self.examples, self.source_language), on_answer(self.translate))

    def action_force(self) -> None:
        step = self.cursor.current if self.cursor else None
        source = self.model_for("Forcing a word")
        if source is None:
            return
        if step is None:
            self.notify("Take a step first (→): forcing replaces the word chosen at the current step.", markup=False)
            return
        pieces = self.cursor is not None and self.cursor.trace.subword
        self.push_screen(ForceDialog(step, pieces=pieces), on_answer(lambda word: self.force(source, word)))

    @on(HeadsGrid.Chosen)
    def head_chosen(self, message: HeadsGrid.Chosen) -> None:
        self.choose_view(message.view)

    @on(CandidatesPanel.Chosen)
    def candidate_chosen(self, message: CandidatesPanel.Chosen) -> None:
        source = self.model_for("Forcing a word")
        if source is not None:
            self.force(source, message.token)

    def force(self, source: TraceSource, word: str) -> None:
        cursor = self.cursor
        step = cursor.current if cursor else None
        assert cursor is not None and step is not None  # f and the Next-word panel force only at a step
        typed, top = word.strip(), step.candidates[0].token
        own = typed == top or (typed == surface(top) if cursor.trace.subword else typed.lower() == top)
        if own:  # the model's own choice: nothing to force
            if step.forced:
                self.unforce(source, step.index)
            else:
                self.notify(
                    f"{quote(word)} is the model's own choice at step {step.index + 1}: nothing to force.", markup=False
                )
            return
        # The trace as the model made it: a forced decoding keeps its steps before t.
        trace, t = self.given or cursor.trace, step.index
        self.set_busy("decoding…")

        def forced() -> TraceReady:
            new = source.force(trace, t, word)
            # A word of several pieces was forced piece by piece: show the last of them.
            end = next((s.index for s in new.steps[t:] if not s.forced), len(new.steps))
            where = f"as {end - t} pieces, steps {t + 1}–{end}" if end - t > 1 else f"at step {t + 1}"
            note = f"Forced {quote(word)} {where}; decoding continued from there. u returns to the model's choice."
            return TraceReady(new, end, note)

        self.decode(forced)

    def action_unforce(self) -> None:
        """Undo the last word forced or attention edited, wherever it is: both keep the steps before
        theirs, so the last forced or edited step of a trace is the latest change (an edit and a
        forced word at one step: the edit goes first)."""
        source = self.model_for("Returning to the model's choice")
        if source is not None and self.cursor is not None:
            trace = self.cursor.trace
            forced = [s.index for s in trace.steps if s.forced]
            edited = [s.index for s in trace.steps if s.edit is not None]  # check_action: one or the other
            if edited and (not forced or edited[-1] >= forced[-1]):
                self.unedit(source, edited[-1])
            else:
                self.unforce(source, forced_word_start(trace, forced[-1]))

    def unforce(self, source: TraceSource, t: int) -> None:
        cursor = self.cursor
        assert cursor is not None  # step t, to undo, is one of its trace's
        trace = self.given or cursor.trace
        self.set_busy("decoding…")
        # Stay on the current step if it comes before the one undone; steps after it may change.
        position = min(cursor.position, t + 1)
        note = f"Step {t + 1} is the model's own choice again."
        self.decode(lambda: TraceReady(source.unforce(trace, t), position, note))

    def action_edit(self) -> None:
        cursor = self.cursor
        step = cursor.current if cursor else None
        if cursor is not None and not cursor.trace.checkpoint.attends:
            self.notify(
                "This model has no attention: there are no weights to edit (its decoder reads one c at every step).",
                markup=False,
            )
            return
        source = self.model_for("Editing a step's attention")
        if source is None:
            return
        if cursor is None or step is None:
            self.notify("Take a step first (→): an edit changes the attention of the current step.", markup=False)
            return
        if cursor.trace.reference is not None:
            self.notify("A given translation's words are all forced: its attention is not edited here.", markup=False)
            return
        if cursor.trace.beam is not None:
            self.notify(
                "An edit decodes greedily from the edited step: translate without --beam to edit the attention.",
                markup=False,
            )
            return
        self.push_screen(EditDialog(cursor.trace, step.index), on_answer(lambda spec: self.edit(source, spec)))

    def edit(self, source: TraceSource, spec: str) -> None:
        """Decode again with step t's attention edited as ``spec`` (dump --edit's grammar, checked by the dialog)."""
        cursor = self.cursor
        assert cursor is not None  # i edits only at a step
        trace = self.given or cursor.trace  # the trace as the model made it, not as a head views it
        t, made = parse_edit(spec, trace)
        self.set_busy("decoding…")

        def edited() -> TraceReady:
            new = source.edit(trace, t, made)
            note = f"{edit_note(new, new.steps[t])} Decoding continued from there; u undoes it, c compares."
            return TraceReady(new, t + 1, note)

        self.decode(edited)

    def unedit(self, source: TraceSource, t: int) -> None:
        cursor = self.cursor
        assert cursor is not None  # step t, to undo, is one of its trace's
        trace = self.given or cursor.trace
        self.set_busy("decoding…")
        position = min(cursor.position, t + 1)
        note = f"Step {t + 1}'s attention is the model's own again."
        self.decode(lambda: TraceReady(source.unedit(trace, t), position, note))

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """A toast, on the main screen raised above the lines under the panels (the narration ends
        at the right, under where the toasts would stand)."""
        screen = self.screen
        panels = self.query_one("#panels").region if isinstance(screen, MainScreen) else None
        if panels:  # laid out: before that, its region is empty and the rack would be lifted off the screen
            below = screen.size.height - panels.bottom
            for rack in screen.query("#textual-toastrack"):  # Textual's, one a screen
                rack.styles.margin = (0, 0, below, 0)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # --- export and help ----------------------------------------------------------------------

    def action_export(self) -> None:
        if self.cursor is None:
            return
        trace = self.cursor.trace
        self.push_screen(
            ExportDialog(EXPORT_NAME, lambda kind, path: self.export(trace, kind, path)),
            on_answer(lambda name: self.notify(visible(f"Written to {Path(name).absolute()}"), markup=False)),
        )

    def export(self, trace: Trace, kind: str, path: Path) -> None:
        """Write ``trace`` as ``kind`` (json, svg, png, pharaoh) atomically; a failure is one AttnstepError line.

        Pictures and links follow the screen: in words where v shows words, with numbers where # shows them.
        """
        from attnstep.data.files import atomic_writer
        from attnstep.trace.writer import trace_file_bytes

        if kind in ("svg", "png"):
            from attnstep.report.plot import write_alignment

            if path.suffix.lower() != f".{kind}":
                raise AttnstepError(f"{kind.upper()} goes to a file name ending in .{kind}")
            write_alignment(trace, path, words=self.words, numbers=self.numbers)
            return
        if kind == "pharaoh":
            from attnstep.trace.alignment import pharaoh_line

            data = (pharaoh_line(trace, words=self.words) + "\n").encode()
        else:
            data = trace_file_bytes(trace)
        try:
            with atomic_writer(path, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise AttnstepError(f"cannot write {path}: {exc.strerror or exc}") from None

    def action_beam(self) -> None:
        if self.cursor is None or self.cursor.trace.beam is None:
            self.notify("This decoding is greedy: translate with --beam K to step through a beam search.", markup=False)
            return
        from attnstep.tui.screens.beam import BeamScreen

        self.push_screen(BeamScreen(self.cursor.trace, self.cursor.trace.beam, self.cursor.position - 1))

    def action_map(self) -> None:
        if self.cursor is None:
            return
        if not self.is_screen_installed("map"):
            self.install_screen(MapScreen(lambda: self.view), "map")
        self.push_screen("map")

    def action_numbers(self) -> None:
        self.numbers = not self.numbers
        self.show_view()

    def action_head(self, delta: int) -> None:
        """The next (``delta`` 1) or previous head of the layer in view, the layer's mean after its last head."""
        trace = self.cursor.trace if self.cursor else None
        if trace is None or trace.architecture is None or trace.view is None:
            return
        heads: list[int | None] = [*range(trace.architecture.heads), None]
        head = heads[(heads.index(trace.view.head) + delta) % len(heads)]
        self.choose_view(AttentionView(trace.view.layer, head))

    def action_layer(self, delta: int) -> None:
        """The same head (or mean) of the next or previous decoder layer."""
        trace = self.cursor.trace if self.cursor else None
        if trace is None or trace.architecture is None or trace.view is None:
            return
        self.choose_view(AttentionView((trace.view.layer + delta) % trace.architecture.layers, trace.view.head))

    def action_heads(self) -> None:
        if self.cursor is None:
            return
        if not self.is_screen_installed("heads"):
            self.install_screen(HeadsScreen(lambda: self.view), "heads")
        self.push_screen("heads")

    def action_words(self) -> None:
        if self.cursor is not None and not self.cursor.trace.subword:
            self.notify("This model reads whole words: there are no pieces to gather.", markup=False)
            return
        self.words = not self.words
        self.show_view()

    def action_compare(self) -> None:
        trace = self.cursor.trace if self.cursor else None
        if trace is not None and self.other_factory is not None and not changed(trace):
            self.set_busy(f"decoding with {visible(self.other_origin)}…")
            self.decode_other(trace, self.other_factory)
            return
        if trace is not None and not trace.checkpoint.attends:  # c is on for it only beside a second model
            self.notify(
                "This model has no attention: there is no alignment before and after a forced word to compare.",
                markup=False,
            )
            return
        if trace is None or not changed(trace):
            self.notify(
                "Nothing to compare yet: force a word (f) or edit a step's attention (i) first, "
                "then c shows the decoding before and after.",
                markup=False,
            )
        elif self.original is None or self.original.source != trace.source:
            self.notify(
                "The model's own decoding of this sentence is not here "
                "(a replay of a trace with a forced word or an edited step).",
                markup=False,
            )
        else:
            self.push_screen(CompareScreen(self.viewed(self.original), trace))

    def action_worked(self) -> None:
        if self.cursor is None or self.cursor.current is None:
            self.notify("Take a step first (→): the worked score is of the current step.", markup=False)
            return
        step = self.cursor.current
        best = max(range(len(step.weights)), key=lambda i: step.weights[i])
        self.push_screen(WorkedScoreDialog(self.cursor.trace, step.index, best))

    def action_help(self) -> None:
        trace = self.cursor.trace if self.cursor else None
        hidden = {
            key
            for _, action, _, key, _ in KEYS
            if (action in NEEDS_MODEL and self.source_factory is None)
            or (action.split("(")[0] in NEEDS_HEADS and (trace is None or trace.architecture is None))
        }
        keys = [(key, text) for key, text in self.KEY_HELP if key not in hidden]
        self.push_screen(HelpDialog(keys, transformer=trace is not None and trace.architecture is not None))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Which keys the footer offers (a key it does not offer does nothing): none that needs a model in a
        replay, none that needs attention for a model without it, u only once a word is forced or a step's
        attention edited (in a given translation every word is the reference's, none the user's to undo).
        i stays on for a model without attention, to say that it has nothing to edit."""
        if action in NEEDS_MODEL and self.source_factory is None:
            return False
        if action.split("(")[0] in NEEDS_HEADS:  # Textual passes the name; KEYS' readers the whole "head(1)"
            return self.cursor is not None and self.cursor.trace.architecture is not None
        if action in NEEDS_ATTENTION and self.cursor is not None and not self.cursor.trace.checkpoint.attends:
            return action == "compare" and self.other_factory is not None  # c can still set a second model beside it
        if action == "unforce":
            trace = self.cursor.trace if self.cursor else None
            return trace is not None and trace.reference is None and changed(trace)
        return True
