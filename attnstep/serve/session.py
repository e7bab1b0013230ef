"""One SSH session's process: the stepping app on the session's pseudo-terminal, never importing torch.

The zygote (:mod:`attnstep.serve.zygote`) forks it with the pty as its controlling terminal
and stdin/stdout/stderr, and calls :func:`main`. Traces come from the server's model
(:class:`~attnstep.serve.remote.RemoteTraceSource`). In a class with a teacher, students
follow the teacher from the start: the step, and the view (see :class:`SharedView`: the
toggles, the screen open over the steps, the word or cell the teacher points at). Any move of
their own detaches them, and ``t`` follows again. In a class without one, they start on their
own, in the new-sentence box. The teacher's status line counts who follows.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.actions import parse as parse_action
from textual.binding import Binding, BindingType
from textual.events import InputEvent
from textual.widget import Widget
from textual.widgets import Static

from attnstep.data.model_card import model_card_examples, source_language
from attnstep.errors import AttnstepError
from attnstep.serve.remote import ClassCount, ClassLink, Notice, RemoteTraceSource, TeacherShows
from attnstep.serve.wire import SharedView, crash_report_name
from attnstep.trace.records import STAGE_COUNT
from attnstep.trace.records import View as AttentionView
from attnstep.tui import make_app
from attnstep.tui.app import AttnstepApp
from attnstep.tui.messages import SourceReady, TraceReady
from attnstep.tui.panels.grid import AlignmentGrid
from attnstep.tui.panels.source import SourcePanel
from attnstep.tui.panels.worked import WorkedScoreDialog
from attnstep.tui.screens.alignment import AlignmentMap, AlignmentScreen, CompareScreen, MapScreen
from attnstep.tui.screens.beam import BeamScreen
from attnstep.tui.screens.dialogs import TextDialog
from attnstep.tui.screens.heads import HeadsScreen

# Actions that move the student's own view: doing one leaves follow mode.
EXPLORING = {"step", "back", "stage", "goto", "end", "restart", "force", "unforce", "edit", "new_sentence"}
SHARED_SCREENS = {
    "worked": WorkedScoreDialog,
    "map": MapScreen,
    "compare": CompareScreen,
    "beam": BeamScreen,
    "heads": HeadsScreen,
}
# Seconds between two looks at the teacher's view: what changes it (a dialog opened or closed, a
# click, a toggle) happens in a dozen widgets; the step itself is sent as it moves.
VIEW_SAMPLE = 0.1


class StillLoading(Static):
    """The overlay over the panels while the model works, without Textual's spinner. The spinner
    redraws 16 times a second: ~57 ms of CPU and ~70 KB of output a second for each waiting
    student, and a class arriving at once waits at once. The status line says what is awaited."""

    DEFAULT_CSS = """
    StillLoading { width: 100%; height: 100%; min-height: 1; content-align: center middle; color: $primary; }
    StillLoading.-textual-loading-indicator { layer: _loading; background: $boost; dock: top; }
    """

    def __init__(self) -> None:
        super().__init__("one moment…")

    @on(InputEvent)
    def swallow(self, event: InputEvent) -> None:  # as Textual's LoadingIndicator: the covered panels get no clicks
        event.stop()
        event.prevent_default()


class ServedApp(AttnstepApp):
    BINDINGS: ClassVar[list[BindingType]] = [*AttnstepApp.BINDINGS, Binding("t", "follow", "follow")]
    KEY_HELP: ClassVar[list[tuple[str, str]]] = [
        *AttnstepApp.KEY_HELP,
        ("t", "in a class: follow the teacher's screen, or explore on your own"),
    ]

    link: ClassLink
    teaching: bool  # this session is the class's teacher
    user: str
    _following = False
    shown: TeacherShows | None = None  # the teacher's latest state, with its whole trace
    sent: tuple[int, int, int, SharedView] | None = None  # the last move a teacher sent: version, step, stage, view
    students: ClassCount | None = None  # for a teacher: who follows, who explores

    def join_class(self, link: ClassLink, *, teacher: bool, follow: bool, user: str) -> None:
        """``follow``: a student in a class with a teacher, who starts out following (and so was
        built with ``open_on_sentence_box=False``: q in that box would type a q while the teacher
        has yet to show anything)."""
        self.link = link
        self.teaching = teacher
        self.user = user
        self.following = follow

    @property
    def following(self) -> bool:
        return self._following

    @following.setter
    def following(self, on: bool) -> None:
        if on != self._following:
            self._following = on
            self.link.following(on)

    # Textual calls the base class's handlers of a message after these: no super() calls.

    def on_mount(self) -> None:
        self.follow_teacher()
        threading.Thread(target=self.listen, name="class", daemon=True).start()
        if self.teaching:
            self.set_interval(VIEW_SAMPLE, self.send_view)

    def on_source_ready(self, message: SourceReady) -> None:
        # The base class then freezes every object left (a local model's, there); here those are
        # the app's own, and what startup left over is collected first instead of kept for good.
        gc.collect()

    def on_unmount(self) -> None:
        self.link.close()

    def get_loading_widget(self) -> Widget:
        return StillLoading()

    # --- the teacher broadcasts -----------------------------------------------------------

    def show_view(self) -> None:
        super().show_view()
        if self.teaching:
            self.send_view()

    def send_view(self) -> None:
        if self.cursor is None or self.given is None or not isinstance(self.source, RemoteTraceSource):
            return
        version = self.source.version_of(self.given)  # the trace as decoded, whichever head it is seen through
        if version is None:
            return
        move = (version, self.cursor.position, self.cursor.stage, self.shared_view())
        if move != self.sent:
            self.sent = move
            self.link.move(*move)

    def shared_view(self) -> SharedView:
        """What this screen shows besides the step, as students' apps can show it."""
        source, grid, screen = self.query_one(SourcePanel), self.query_one(AlignmentGrid), self.screen
        heads = self.cursor.trace.view if self.cursor is not None else None  # a Transformer's layer and head
        view = SharedView(
            words=self.words,
            numbers=self.numbers,
            word=source.selected if source.has_focus else None,
            cell=grid.pointed,
            layer=heads.layer if heads is not None else None,
            head=heads.head if heads is not None else None,
        )
        if isinstance(screen, AlignmentScreen):  # # there is the screen's own
            view = replace(view, numbers=screen.query(AlignmentMap).first().numbers)
        if isinstance(screen, WorkedScoreDialog):
            return replace(view, screen="worked", word=screen.i)
        if isinstance(screen, BeamScreen):
            return replace(view, screen="beam", beam=(screen.view.t, screen.view.selected))
        name = next((name for name, kind in SHARED_SCREENS.items() if isinstance(screen, kind)), None)
        return replace(view, screen=name)

    # --- students follow ------------------------------------------------------------------

    def listen(self) -> None:
        """The class-channel thread: every change of the teacher's screen, of the class's count,
        and every notice, becomes a call."""
        try:
            for update in self.link.updates():
                if isinstance(update, Notice):
                    self.call_from_thread(self.notify, update.text, markup=False)
                elif isinstance(update, ClassCount):
                    self.call_from_thread(self.count_students, update)
                else:
                    self.call_from_thread(self.teacher_shows, update)
        except OSError:
            pass  # the link was closed under the read (the app is closing) or the server is gone, which the model channel reports
        except RuntimeError:
            if self.is_running:
                raise  # a real failure: it reaches the crash report
            # else call_from_thread found the app already stopped: nothing is lost

    def teacher_shows(self, update: TeacherShows) -> None:
        if update.trace is None and self.shown is not None and update.teacher is not None:
            update.trace = self.shown.trace
        self.shown = update
        self.follow_teacher()

    def count_students(self, count: ClassCount) -> None:
        self.students = count
        self.describe_mode()

    def follow_teacher(self) -> None:
        """Show what the teacher shows, when following; either way, say on the status line which it is."""
        shown = self.shown
        if self.following and shown is not None and shown.trace is not None:
            view = shown.view
            if view.layer is not None:  # the teacher's head (or layer's mean) of a Transformer
                self.attention_view = AttentionView(view.layer, view.head)
            heads = self.attention_view
            if (
                self.cursor is None
                or self.given is not shown.trace
                or (
                    heads is not None and self.cursor.trace.architecture is not None and self.cursor.trace.view != heads
                )
            ):
                self.set_trace(shown.trace, shown.position)
            assert self.cursor is not None  # set by set_trace
            self.cursor.goto(shown.position, shown.stage or STAGE_COUNT)
            self.words = view.words and self.cursor.trace.subword
            if view.screen is None:
                self.numbers = view.numbers
            self.query_one(SourcePanel).point(view.word if view.screen is None else None)
            self.query_one(AlignmentGrid).point(view.cell)
            self.show_view()
            self.show_screen(view)
        self.describe_mode()

    def show_screen(self, view: SharedView) -> None:
        """Open the screen the teacher has open over the steps (closing the one the teacher closed), as the teacher has it."""
        shared = tuple(SHARED_SCREENS.values())
        wanted = SHARED_SCREENS.get(view.screen or "")
        if isinstance(self.screen, shared) and not (wanted and isinstance(self.screen, wanted)):
            self.pop_screen()
        if wanted is not None and not isinstance(self.screen, wanted):
            getattr(self, f"action_{view.screen}")()  # each screen's name is the name of the action opening it
        screen = self.screen  # one just opened shows what it is set to once mounted
        if isinstance(screen, WorkedScoreDialog) and view.word is not None and view.word < len(screen.trace.source):
            screen.i = view.word
            if screen.is_mounted:
                screen.show_word()
        elif isinstance(screen, BeamScreen) and view.beam is not None:
            t, selected = view.beam
            if t < len(screen.view.beam.steps) and selected < len(screen.view.beam.steps[t]):
                screen.view = replace(screen.view, t=t, selected=selected)
                if screen.is_mounted:
                    screen.show_view()
        if isinstance(screen, AlignmentScreen):  # once its maps are there, if just opened
            self.call_after_refresh(self.map_numbers, screen, view.numbers)

    @staticmethod
    def map_numbers(screen: AlignmentScreen, numbers: bool) -> None:
        for grid in screen.query(AlignmentMap):
            if grid.numbers != numbers:
                grid.numbers = numbers
                grid.redraw()

    def action_follow(self) -> None:
        self.following = not self.following
        self.follow_teacher()
        self.notify(
            "Following the teacher." if self.following else "Exploring on your own; t follows the teacher again.",
            markup=False,
        )

    async def run_action(self, action, default_namespace=None, namespaces=None) -> bool:
        _, name, _ = parse_action(action) if isinstance(action, str) else action
        if self.following and name in EXPLORING:
            self.following = False
            self.describe_mode()
            self.notify("Exploring on your own; t follows the teacher again.", markup=False)
        return await super().run_action(action, default_namespace, namespaces)

    def on_trace_ready(self, message: TraceReady) -> None:
        self.following = False  # a trace the student asked for
        self.describe_mode()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "follow":
            return not self.teaching  # a teacher's screen is the one followed
        return super().check_action(action, parameters)

    def describe_mode(self) -> None:
        shown, short = self.shown, ""
        if self.teaching:
            count = self.students
            mode = f"teaching as {self.user}"
            if count is not None:
                mode += f" · {count.following} following, {count.exploring} exploring"
                short = f"teaching: {count.following} follow, {count.exploring} explore"
        elif not self.following:
            mode = "on your own"
        elif shown is not None and shown.teacher is not None:
            mode = f"following {shown.teacher}"
        elif shown is not None and shown.waiting is not None:
            mode = f"following {shown.waiting} (no sentence yet)"
        elif shown is not None and shown.left is not None:
            mode = f"following ({shown.left} has left)"
        else:
            mode = "following (no teacher yet)"
        self.status.mode, self.status.short_mode = mode, short
        self.status.show(self.view)

    # --- a student's files are not written on the server ---------------------------------

    def action_export(self) -> None:
        """A student's file would be written on the server, so the alignment is shown as SVG text to
        copy instead. The teacher's is written: the server runs on the teacher's machine (see main)."""
        if self.teaching:
            super().action_export()
            return
        if self.cursor is None:
            return
        from attnstep.report.plot import alignment_svg

        try:
            svg = alignment_svg(self.cursor.trace, words=self.words, numbers=self.numbers)
        except AttnstepError as exc:
            self.notify(str(exc), markup=False)
            return
        heading = (
            "Over SSH a file would be written on the server, so here is the alignment as SVG: "
            "copy it into a file.svg on your machine. `attnstep dump` and `attnstep plot` write files there."
        )
        self.push_screen(TextDialog(heading, svg))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="attnstep-session")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--session", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--teacher", action="store_true")
    parser.add_argument("--follow", action="store_true", help="a student in a class with a teacher")
    parser.add_argument("--files", type=Path, help="a teacher's: the folder x writes into (where the server started)")
    parser.add_argument("--checkpoint", required=True, type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    crash_report = Path(crash_report_name(args.session)).absolute()  # in the server's private folder, the cwd
    if args.teacher and args.files is not None:
        os.chdir(args.files)  # the teacher's exports land where `attnstep serve` was started
    link = ClassLink(args.socket, args.session)
    app = make_app(
        ServedApp,
        source_factory=lambda: RemoteTraceSource(args.socket, args.session),
        examples=model_card_examples(args.checkpoint),
        source_language=source_language(args.checkpoint),
        origin=args.checkpoint.name,
        open_on_sentence_box=not args.follow,
    )
    app.join_class(link, teacher=args.teacher, follow=args.follow, user=args.user)
    # Textual draws on sys.__stderr__ (the pty) but prints a crash's traceback to sys.stderr:
    # catch it, so the student sees one line and the details (server paths) stay on the server.
    sys.stderr = crash = io.StringIO()
    try:
        app.run()
    finally:
        sys.stderr = sys.__stderr__
    if crash.getvalue():
        crash_report.write_text(crash.getvalue(), encoding="utf-8")
        print("attnstep: the app stopped on an internal error; the details are in the server's log", file=sys.stderr)
        return 1
    if app.error_message:
        print(f"attnstep: {app.error_message}", file=sys.stderr)
    return app.return_code or 0
