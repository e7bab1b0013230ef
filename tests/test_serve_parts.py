"""The server's parts without SSH: passwords, keys, host key, rate limit, request checks, the class hub, the CLI."""

from __future__ import annotations

import asyncio
import gc
import stat
import subprocess
import sys
import threading
from pathlib import Path

import asyncssh
import orjson
import pytest
from typer.testing import CliRunner

from attnstep.cli import app
from attnstep.errors import AttnstepError
from attnstep.serve.auth import (
    Accounts,
    LoginThrottle,
    add_user,
    check_password,
    hash_password,
    host_key,
    load_accounts,
    read_passwords,
)
from attnstep.serve.hub import Hub
from attnstep.serve.remote import TeacherShows
from attnstep.serve.service import ModelService, RateLimit
from attnstep.serve.wire import SharedView, crash_report_name, source_to_wire, trace_from_wire
from attnstep.trace.writer import dumps, dumps_wire
from attnstep.tui import make_app
from tests.serve_helpers import wait_until
from tests.tui_helpers import SENTENCE, async_test, settle


def test_passwords_are_stored_hashed_and_checked(tmp_path):
    path = tmp_path / "passwords"
    add_user(path, "ann", "s3cret")
    add_user(path, "bob", "other")
    add_user(path, "ann", "new one")  # replaces ann's
    text = path.read_text()
    assert "s3cret" not in text and "new one" not in text and text.count("ann:") == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = read_passwords(path)
    assert check_password("new one", users["ann"]) and not check_password("s3cret", users["ann"])
    # the same password twice: different salts, so different hashes
    assert hash_password("x", n=2**10) != hash_password("x", n=2**10)


@pytest.mark.parametrize("name", ["", "a b", "../etc", "ann:x", "é", "\x1b[31m", "x" * 33])
def test_user_names_are_plain(tmp_path, name):
    with pytest.raises(AttnstepError):
        add_user(tmp_path / "passwords", name, "pw")


def test_an_unknown_user_and_a_wrong_password_are_refused():
    accounts = Accounts(passwords={"ann": hash_password("pw", n=2**10)})
    assert accounts.password_ok("ann", "pw")
    assert not accounts.password_ok("ann", "PW") and not accounts.password_ok("zoe", "pw")


def test_per_user_key_files_and_the_shared_one(tmp_path):
    # what the server is shown: public keys
    key, other = (asyncssh.generate_private_key("ssh-ed25519").convert_to_public() for _ in range(2))
    (tmp_path / "teach.pub").write_bytes(key.export_public_key())
    per_user = Accounts(keys_path=str(tmp_path / "%u.pub"), teachers=frozenset({"teach"}))
    assert per_user.key_ok("teach", key, "127.0.0.1")  # a teacher may use a key of their own
    assert not per_user.key_ok("teach", other, "127.0.0.1")
    assert not per_user.key_ok("../teach", key, "127.0.0.1")  # no paths through the name
    (tmp_path / "all").write_bytes(key.export_public_key())
    shared = Accounts(keys_path=str(tmp_path / "all"), teachers=frozenset({"teach"}))
    assert shared.key_ok("anyone", key, "127.0.0.1") and not shared.key_ok("teach", key, "127.0.0.1")


def test_nobody_able_to_log_in_is_an_error():
    with pytest.raises(AttnstepError, match="nobody could log in"):
        load_accounts(None, None, [], allow_anonymous=False)


def test_a_shared_keys_file_without_a_valid_key_is_refused_or_warned_of(tmp_path, caplog):
    keys, passwords = tmp_path / "keys", tmp_path / "pw"
    keys.write_text("ssh-ed25519 not-base64 ann@laptop\n")
    with pytest.raises(AttnstepError, match=f"nobody could log in: {keys} holds no valid key"):
        load_accounts(keys, None, [], allow_anonymous=False)
    add_user(passwords, "ann", "pw")
    load_accounts(keys, passwords, [], allow_anonymous=False)  # passwords still let students in
    assert f"{keys} holds no valid key" in caplog.text


def test_a_teacher_who_could_not_log_in_is_refused(tmp_path):
    passwords = tmp_path / "pw"
    add_user(passwords, "ann", "pw")
    with pytest.raises(AttnstepError) as info:
        load_accounts(None, passwords, ["teach"], allow_anonymous=False)
    assert str(info.value) == (
        f"--teacher teach could not log in: {passwords} has no password for teach"
        f" (add one with `attnstep serve add-user teach --passwords {passwords}`)"
    )
    # A key of the teacher's own is a way in; a shared file's never is.
    key = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    (tmp_path / "teach.pub").write_bytes(key.export_public_key())
    load_accounts(tmp_path / "%u.pub", passwords, ["teach"], allow_anonymous=False)
    with pytest.raises(AttnstepError, match="--teacher teach could not log in"):
        load_accounts(tmp_path / "teach.pub", passwords, ["teach"], allow_anonymous=False)


@pytest.mark.parametrize(
    "name, where, message",
    [
        ("ann", "no/such/folder/pw", "cannot write the passwords file {tmp}/no/such/folder/pw: there is no folder"),
        ("ann", ".", "cannot read the passwords file {tmp}: Is a directory"),
        ("../ann", "pw", "'../ann' is not a user name"),
    ],
)
def test_serve_add_user_refuses_before_asking_for_the_password(tmp_path, name, where, message):
    result = CliRunner().invoke(app, ["serve", "add-user", name, "--passwords", str(tmp_path / where)], input="")
    assert result.exit_code == 1
    assert "Password" not in result.output and result.output.count("\n") == 1
    assert message.format(tmp=tmp_path) in result.output


def test_the_host_key_is_made_once_private_and_reused(tmp_path):
    path = tmp_path / "data" / "host_key"
    first = host_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert host_key(path).get_fingerprint() == first.get_fingerprint()
    path.chmod(0o644)
    with pytest.raises(AttnstepError, match="readable by others"):
        host_key(path)


def test_password_guesses_wait_their_turn_by_address_and_name():
    now = [0.0]
    throttle = LoginThrottle(free=2, base=1, most=4, give_up=10, clock=lambda: now[0])
    # two free tries, then turns 1, 2, 4, 4 s apart, queued one after another
    assert [throttle.turn("10.0.0.1", "teach") for _ in range(6)] == [0, 0, 1, 3, 7, None]
    assert throttle.turn("10.0.0.1", "ann") == 0  # another name from the same address does not wait
    assert throttle.turn("10.0.0.2", "teach") == 0  # nor the same name from another address
    throttle.succeeded("10.0.0.1", "teach")
    assert throttle.turn("10.0.0.1", "teach") == 0
    now[0] += 3600  # old pairs are forgotten
    throttle.turn("10.0.0.3", "x")
    assert throttle.attempts("10.0.0.1", "ann") == 0


def test_rate_limit_allows_a_burst_then_a_steady_rate():
    now = [0.0]
    limit = RateLimit(per_second=2, burst=3, clock=lambda: now[0])
    assert [limit.allow() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one more request's worth
    assert limit.allow() and not limit.allow()


def test_the_loaded_service_hides_its_long_lived_objects_from_the_collector(tiny_checkpoint):
    # The server's event loop relays every student's keys: a full collection that walks torch's
    # objects stalls them all at once (0.2 s, seen in bench/serve_load.py).
    gc.unfreeze()
    try:
        service = ModelService.load(tiny_checkpoint, 5)
        assert gc.get_freeze_count() > 0
        assert not any(obj is service.stepper for obj in gc.get_objects())  # the stepper is among the frozen
    finally:
        gc.unfreeze()


@async_test
async def test_the_service_decodes_what_the_stepper_would(stepper):
    service = ModelService(stepper)
    trace = stepper.translate(SENTENCE)
    assert await service.answer({"op": "translate", "sentence": SENTENCE}) == dumps_wire(trace)
    request = {
        "op": "decode",
        "source": source_to_wire(trace.source),
        "prefix": [[s.chosen_id, s.forced] for s in trace.steps[:2]],
    }
    forced = trace_from_wire(orjson.loads(await service.answer(request | {"word": "dog"})))
    assert forced == stepper.force(trace, 2, "dog")


@async_test
async def test_the_service_forces_a_word_of_several_pieces_as_the_stepper_does(subword_checkpoint):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper
    from attnstep.serve.remote import RemoteTraceSource

    subword = Stepper(load_checkpoint(subword_checkpoint))
    service = ModelService(subword)
    trace = subword.translate("Je suis étudiant.")
    request = RemoteTraceSource._decode(trace, 1) | {"word": "agreement"}  # what a served session's f sends
    forced = trace_from_wire(orjson.loads(await service.answer(request)))
    assert forced == subword.force(trace, 1, "agreement")
    assert sum(s.forced for s in forced.steps) == len(subword.codec.tgt_model.encode("agreement")) > 1


@async_test
async def test_the_service_takes_a_subword_sentence_longer_than_100_pieces(subword_checkpoint):
    from attnstep.engine.checkpoint import load_checkpoint
    from attnstep.engine.stepper import Stepper

    subword = Stepper(load_checkpoint(subword_checkpoint))
    source = subword.source_tokens(" ".join(["Une voiture rouge est garée devant la maison."] * 5))
    assert 100 < len(source) <= 200
    trace = trace_from_wire(
        orjson.loads(
            await ModelService(subword).answer({"op": "decode", "source": source_to_wire(source), "prefix": []})
        )
    )
    assert trace.source == subword.decode(source).source and trace.source_words[0].text == "Une"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"source": [["x", "voiture", 0]]}, "does not match the model's vocabulary"),  # id and token disagree
        ({"source": [["x", "?", 10**6]]}, "does not match"),
        ({"source": []}, "1 to 100 source tokens"),
        ({"source": [["x", "une", 4]] * 101}, "1 to 100 source tokens"),
        ({"prefix": [[5, False]] * 40}, "longer than a decoding"),
        ({"prefix": [[-1, True]]}, "not a target id"),
        ({"word": "zzz-not-a-word"}, "not a word the model can output"),
        ({"op": "shell"}, "unknown request"),
    ],
)
@async_test
async def test_the_service_refuses_malformed_requests(stepper, change, message):
    src = stepper.checkpoint.src_vocab
    request = {"op": "decode", "source": [["une", "une", src.id("une")]], "prefix": []} | change
    with pytest.raises(AttnstepError, match=message):
        await ModelService(stepper).answer(request)


@async_test
async def test_a_slow_student_gets_the_latest_state_not_every_step(stepper):
    hub = Hub()
    version = hub.publish("teach", dumps(stepper.translate(SENTENCE)))
    hub.move("teach", version, 1, 7, {})
    received = []

    class Writer:  # a student whose socket drains only when told to
        def __init__(self):
            self.gate = asyncio.Event()

        def write(self, data):
            received.append(orjson.loads(data))

        async def drain(self):
            await self.gate.wait()
            self.gate.clear()

    writer = Writer()
    task = asyncio.ensure_future(hub.follow(writer))
    await wait_until(lambda: received, "the student's first message")  # then it waits for its socket
    for position in range(2, 6):  # the teacher steps four times while the student is stuck
        hub.move("teach", version, position, 7, {})
    writer.gate.set()
    await wait_until(lambda: len(received) == 2, "the latest position, once the socket drained", lambda: received)
    writer.gate.set()
    # Once the socket has drained again the hub waits for the teacher: nothing more is sent.
    await wait_until(lambda: not writer.gate.is_set(), "the socket to drain again")
    task.cancel()
    assert [m["position"] for m in received] == [1, 5]
    assert "trace" in received[0] and "trace" not in received[1]  # the trace only once
    hub.move("stranger", version, 3, 7, {})  # another user cannot steer the class
    assert hub.shown.position == 5


def test_the_session_modules_do_not_import_torch():
    code = "import sys, attnstep.serve.session, attnstep.serve.remote; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_serve_add_user_writes_a_hash(tmp_path):
    path = tmp_path / "pw"
    result = CliRunner().invoke(
        app, ["serve", "add-user", "ann", "--passwords", str(path)], input="hunter22\nhunter22\n"
    )
    assert result.exit_code == 0, result.output
    assert check_password("hunter22", read_passwords(path)["ann"])


def test_serve_refuses_a_passwords_file_that_others_can_read(tmp_path):
    path = tmp_path / "pw"
    add_user(path, "ann", "hunter22")
    path.chmod(0o644)
    result = CliRunner().invoke(app, ["serve", "--passwords", str(path), "--host-key", str(tmp_path / "k")])
    assert result.exit_code == 1
    assert "readable by others (mode 644): chmod 600 it" in result.output


def test_serve_without_any_way_in_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["serve", "--host-key", str(tmp_path / "k")])
    assert result.exit_code == 1
    assert "nobody could log in" in result.output


def test_a_crash_shows_one_line_and_leaves_the_traceback_to_the_server(tmp_path, monkeypatch, capfd):
    from attnstep.serve import session

    class CrashingApp:
        """Stands in for the app: Textual prints a crash's traceback to sys.stderr as it exits."""

        error_message, return_code = None, 1

        def __init__(self, **settings):
            pass

        def join_class(self, link, **settings):
            pass

        def run(self):
            print('Traceback (most recent call last):\n  File "/srv/attnstep/secret.py", line 1', file=sys.stderr)

    monkeypatch.setattr(session, "ServedApp", CrashingApp)
    monkeypatch.setattr(session, "ClassLink", lambda *args: None)
    monkeypatch.chdir(tmp_path)  # the server starts sessions in its private folder
    status = session.main(["--socket", "s", "--session", "7", "--user", "ann", "--checkpoint", str(tmp_path)])
    assert status == 1
    assert "/srv/attnstep/secret.py" in (tmp_path / crash_report_name(7)).read_text()
    shown = capfd.readouterr().err
    assert "secret" not in shown and "internal error" in shown


def test_the_class_channel_ends_quietly_only_when_it_should():
    """A closed link or a stopped app ends the listening thread; any other failure reaches the crash report."""
    from attnstep.serve.session import ServedApp

    def updates(error):
        yield TeacherShows("ann", None, 1, 0)
        raise error

    class Link:
        def __init__(self, error):
            self.updates = lambda: updates(error)

    class Session:
        """The parts of ServedApp that listen() uses."""

        def __init__(self, error, running=True):
            self.link, self.is_running, self.shown = Link(error), running, []

        def call_from_thread(self, callback, *args):
            callback(*args)

        def teacher_shows(self, update):
            self.shown.append(update)

    closed = Session(ConnectionResetError())
    ServedApp.listen(closed)  # the server went away
    assert [u.position for u in closed.shown] == [1]
    ServedApp.listen(Session(RuntimeError("App is not running"), running=False))  # the app stopped first
    for error in (ValueError("bad update"), RuntimeError("a bug"), KeyError("position")):
        with pytest.raises(type(error)):
            ServedApp.listen(Session(error))


@async_test
async def test_a_served_session_waits_for_the_model_without_animating(stepper):
    """While a translation is awaited the panels are covered, still: Textual's spinner would redraw
    16 times a second for every waiting student of a class."""
    from attnstep.serve.session import ServedApp, StillLoading

    release = threading.Event()

    class SlowModel:
        def __getattr__(self, name):
            return getattr(stepper, name)

        def translate(self, sentence):
            release.wait(30)
            return stepper.translate(sentence)

    class QuietLink:
        def following(self, on):
            pass

        def updates(self):
            release.wait(30)
            return iter(())

        def close(self):
            release.set()

    app = make_app(ServedApp, source_factory=SlowModel, sentence="une voiture rouge .", origin="tiny")
    app.join_class(QuietLink(), teacher=False, follow=False, user="s1")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(
            lambda: "translating" in app.status.plain, "'translating' on the status line", lambda: app.status.plain
        )
        panels = app.query_one("#panels")
        overlay = (
            panels._cover_widget
        )  # Textual keeps a loading widget beside the DOM, as the cover of the widget loading
        assert isinstance(overlay, StillLoading) and "one moment" in str(overlay.render())
        assert not overlay.auto_refresh and not any(w.auto_refresh for w in app.query("*"))
        release.set()
        await settle(pilot)
        assert app.cursor is not None and panels._cover_widget is None


@async_test
async def test_the_service_decodes_a_sentence_asked_again_once(stepper, monkeypatch):
    """A class translates the same sentences: one decoding each, shared by those asking meanwhile;
    failures are not kept, and old answers go past a byte limit."""
    from attnstep.serve import service as service_module

    asked = []

    class Counting:
        def __getattr__(self, name):
            return getattr(stepper, name)

        def translate(self, sentence):
            asked.append(sentence)
            return stepper.translate(sentence)

    service = ModelService(Counting())
    try:
        request = {"op": "translate", "sentence": SENTENCE}
        first, meanwhile = await asyncio.gather(service.answer(request), service.answer(request))
        assert first == meanwhile == await service.answer(request) == dumps_wire(stepper.translate(SENTENCE))
        assert asked == [SENTENCE]
        too_long = {"op": "translate", "sentence": " ".join(["chien"] * 150)}
        for _ in range(2):
            with pytest.raises(AttnstepError):
                await service.answer(too_long)
        assert len(asked) == 3  # the failure was asked for again
        monkeypatch.setattr(service_module, "ANSWERS_KEPT_BYTES", len(first) + 1)
        await service.answer({"op": "translate", "sentence": "un chien ."})  # keeps only itself
        await service.answer(request)
        assert asked[-2:] == ["un chien .", SENTENCE]
    finally:
        service.close()


class SilentLink:
    """A class channel that the test speaks for: it says nothing, and keeps what the app sends."""

    def __init__(self):
        self.moves, self.closed = [], threading.Event()

    def following(self, on):
        pass

    def move(self, *move):
        self.moves.append(move)

    def updates(self):
        self.closed.wait(30)
        return iter(())

    def close(self):
        self.closed.set()


@pytest.mark.slow
@async_test
async def test_a_follower_sees_the_teachers_views_and_what_the_teacher_points_at(stepper):
    from attnstep.serve.session import ServedApp
    from attnstep.tui.panels.grid import AlignmentGrid
    from attnstep.tui.panels.source import SourcePanel
    from attnstep.tui.panels.worked import WorkedScoreDialog
    from attnstep.tui.screens.alignment import AlignmentMap, MapScreen

    trace = stepper.translate(SENTENCE)
    app = make_app(ServedApp, source_factory=lambda: stepper, origin="tiny", open_on_sentence_box=False)
    app.join_class(SilentLink(), teacher=False, follow=True, user="ann")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)

        async def teacher(position, view, new_trace=None):
            app.teacher_shows(TeacherShows("teach", new_trace, position, 0, view))
            await pilot.pause()

        await teacher(2, SharedView(screen="worked", word=1), trace)  # w, then ↓ to the second word
        assert isinstance(app.screen, WorkedScoreDialog) and (app.screen.t, app.screen.i) == (1, 1)
        await teacher(2, SharedView(screen="worked", word=2))
        assert app.screen.i == 2
        await teacher(2, SharedView(word=3))  # Esc, then a word selected in the Source panel
        assert not isinstance(app.screen, WorkedScoreDialog)
        source = app.query_one(SourcePanel)
        assert source.selected == 3 and source.pointed and not source.has_focus
        await teacher(3, SharedView(cell=(1, 2), numbers=True))  # a grid cell clicked, and #
        grid = app.query_one(AlignmentGrid)
        assert grid.pointed == (1, 2) and app.numbers and not source.pointed
        start, end = grid.columns[2]
        pointed_style = grid._lines[2].crop(start, end)  # the cell's row is the step's line after the header
        assert all(s.style == grid.style_of("cursor") + s.style for s in pointed_style)
        await teacher(3, SharedView(screen="map", numbers=True))  # m, then # there
        assert isinstance(app.screen, MapScreen) and app.screen.query_one(AlignmentMap).numbers
        await teacher(3, SharedView())
        assert not isinstance(app.screen, MapScreen) and not app.numbers and grid.pointed is None
        assert "following teach" in app.status.plain


@pytest.mark.slow
@async_test
async def test_the_teachers_views_go_to_the_class_and_t_is_not_offered(stepper):
    from attnstep.serve.remote import ClassCount, RemoteTraceSource
    from attnstep.serve.session import ServedApp
    from attnstep.tui.keybar import KeyBar
    from attnstep.tui.panels.grid import AlignmentGrid

    class Served(RemoteTraceSource):
        """The server's model, without the server: each trace gets a class version."""

        def __init__(self):
            self.versions = []

        def translate(self, sentence):
            trace = stepper.translate(sentence)
            self.versions.append((trace, len(self.versions) + 1))
            return trace

    link = SilentLink()
    app = make_app(ServedApp, source_factory=Served, sentence=SENTENCE, origin="tiny")
    app.join_class(link, teacher=True, follow=False, user="teach")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)

        async def sent():
            await pilot.pause(0.3)  # a few looks at the view
            return link.moves[-1]

        await pilot.press("right", "right")
        assert (await sent())[:3] == (1, 2, app.cursor.trace.stage_count)
        await pilot.press("w")
        assert (await sent())[3] == SharedView(screen="worked", word=app.screen.i)
        await pilot.press("down", "escape")
        assert (await sent())[3] == SharedView()
        await pilot.press("tab", "tab", "tab", "tab", "down")  # the Source panel, its second word
        assert (await sent())[3] == SharedView(word=1)
        grid = app.query_one(AlignmentGrid)
        start, _ = grid.columns[2]
        await pilot.click(AlignmentGrid, offset=(start + 1 + 1, 1 + 2))  # border, then the header and step 1's row
        assert (await sent())[3] == SharedView(cell=(1, 2))
        assert "follow" not in app.query_one(KeyBar).render().plain
        app.count_students(ClassCount(following=2, exploring=1))
        assert "teaching as teach · 2 following, 1 exploring" in app.status.plain
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert "step 2 of" in app.status.plain and "teaching: 2 follow, 1 explore" in app.status.plain


def test_a_teachers_exports_are_written_where_the_server_was_started(tmp_path, monkeypatch):
    from attnstep.serve import session

    folders = []

    class App:
        error_message, return_code = None, 0

        def __init__(self, **settings):
            pass

        def join_class(self, link, **settings):
            pass

        def run(self):
            folders.append(Path.cwd())

    monkeypatch.setattr(session, "ServedApp", App)
    monkeypatch.setattr(session, "ClassLink", lambda *args: None)
    (tmp_path / "private").mkdir()
    monkeypatch.chdir(tmp_path / "private")
    argv = ["--socket", "s", "--session", "7", "--user", "ann", "--checkpoint", str(tmp_path)]
    session.main(argv)  # a student's session stays in the server's folder
    session.main([*argv, "--teacher", "--files", str(tmp_path)])
    assert folders == [tmp_path / "private", tmp_path]


@async_test
async def test_students_are_told_whether_the_teacher_is_yet_to_come_has_no_sentence_or_has_left(stepper):
    hub = Hub()
    received = []

    class Writer:
        def write(self, data):
            received.append(orjson.loads(data))

        async def drain(self):
            pass

    task = asyncio.ensure_future(hub.follow(Writer()))
    await wait_until(lambda: received, "the first state")
    hub.teacher_arrived("teach")
    await wait_until(lambda: len(received) == 2, "the teacher's arrival")
    hub.move("teach", hub.publish("teach", dumps(stepper.translate(SENTENCE))), 1, 0, {"words": True})
    await wait_until(lambda: len(received) == 3, "the teacher's first move")
    hub.teacher_arrived("teach")  # a second session of the same teacher comes and goes
    hub.teacher_left("teach")
    await wait_until(lambda: len(received) >= 4, "the second session's coming and going")
    assert received[-1]["teacher"] == "teach"  # the first one still shows its sentence
    hub.teacher_left("teach")
    await wait_until(lambda: received[-1]["teacher"] is None, "the teacher's leaving")
    task.cancel()
    assert received[0] == {"teacher": None}
    assert received[1] == {"teacher": None, "waiting": "teach"}
    assert received[2]["view"] == {"words": True} and "trace" in received[2]
    assert received[-1] == {"teacher": None, "left": "teach"}


def test_a_teachers_view_from_the_wire_keeps_only_what_it_can_show():
    view = SharedView(words=True, screen="beam", word=2, cell=(1, 3), beam=(4, 0))
    assert SharedView.from_wire(orjson.loads(orjson.dumps(view.to_wire()))) == view
    odd = {"screen": "shell", "numbers": 1, "word": True, "cell": [1, -2], "beam": [1, 2, 3], "extra": "x" * 99}
    assert SharedView.from_wire(odd) == SharedView() and SharedView.from_wire([1]) == SharedView()


@pytest.mark.slow
@async_test
async def test_a_students_export_shows_the_svg_under_a_heading_read_whole_at_80_columns(stepper):
    from attnstep.serve.session import ServedApp
    from attnstep.tui.screens.dialogs import TextDialog

    app = make_app(ServedApp, source_factory=lambda: stepper, sentence=SENTENCE, origin="tiny")
    app.join_class(SilentLink(), teacher=False, follow=False, user="ann")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        assert isinstance(app.screen, TextDialog)
        shown = " ".join(line.strip() for line in app.screen.query_one("Static").render().plain.splitlines())
        assert "write files there." in shown and app.screen.query_one("Static").size.height > 1
