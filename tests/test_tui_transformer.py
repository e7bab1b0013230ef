"""The app over a Transformer's trace: the layer and head selector, the Attention panel for a head or a
layer's mean, the heads overview, the worked score q·k/√d, the nine sub-steps and their narration, and
follow mode carrying the head; an RNN's trace offers none of it.

The trace is tests/transformer_traces.py's (2 layers of 4 heads, d = 4): consistent numbers with no
model behind them, fed to the app as replay feeds a saved trace.
"""

from __future__ import annotations

import math

import pytest

from attnstep.report.glyphs import cell_number, num
from attnstep.serve.remote import RemoteTraceSource, TeacherShows
from attnstep.serve.wire import SharedView
from attnstep.trace.records import MULTI_HEAD, STAGE_COUNT, Trace, View, default_view
from attnstep.tui import make_app, replay_app
from attnstep.tui.keybar import KeyBar
from attnstep.tui.panels.worked import lines, worked_score
from attnstep.tui.screens.dialogs import HelpDialog
from attnstep.tui.screens.heads import HeadsGrid, HeadsScreen
from attnstep.tui.stages import source_word, stages_for
from tests.test_serve_parts import SilentLink
from tests.transformer_traces import transformer_trace
from tests.tui_helpers import app_on, async_test, settle

WIDE, SMALL = (160, 48), (80, 24)
LAYERS, HEADS = 2, 4


@pytest.fixture(scope="module")
def trace() -> Trace:
    return transformer_trace(layers=LAYERS, heads=HEADS)


def token_row(lines: list[str], surface: str) -> str:
    """The Attention panel's row of a source token (after the bracket that groups a word's pieces)."""
    return next(line for line in lines[1:] if line.lstrip(" ┌│└").startswith(surface + " "))


def panel_text(app, pid: str) -> str:
    return "\n".join(app.panels[pid].plain_lines)


def test_a_transformer_step_has_nine_stages_in_the_order_it_computes(trace):
    stages = stages_for(MULTI_HEAD)
    assert trace.stage_count == len(stages) == STAGE_COUNT == 9
    assert [s.key for s in stages] == [
        "embed",
        "self_attention",
        "score",
        "softmax",
        "weight",
        "join",
        "feed_forward",
        "output",
        "pick",
    ]
    assert [s.panel for s in stages] == ["decoder"] * 2 + ["attention"] * 3 + ["decoder"] * 2 + ["candidates"] * 2


@async_test
async def test_the_stages_are_narrated_with_the_heads_numbers(trace):
    app = replay_app(trace, "t.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "a")  # step 1 whole, then head 1 of layer 1 (the default is layer 1's mean)
        step = app.cursor.trace.steps[1]
        head = step.layers[0].cross[0]
        said = {}
        for _ in range(STAGE_COUNT - 1):
            await pilot.press("s")
            stage = app.view.current_stage
            said[stage.key] = app.bars[3].plain.replace("\n", " ")
            assert app.panels[stage.panel].has_class("-stage")
            assert f"stage {app.cursor.stage}/9 {stage.name}" in app.status.plain
        best = max(range(4), key=lambda i: head.weights[i])
        highest = max(range(4), key=lambda i: head.scores[i])
        assert "√16" in said["embed"] and "PE(1)" in said["embed"]  # D = 16, step 2 reads position 1
        assert "Layer 1's masked self-attention over the 2 tokens so far" in said["self_attention"]
        assert f"highest “{trace.source[highest].surface}” {num(head.scores[highest])}" in said["score"]
        assert f"“{trace.source[best].surface}” gets {num(head.weights[best])}" in said["softmax"]
        assert f"‖c‖ = {num(math.hypot(*head.context))}" in said["weight"]
        assert "[c_1; …; c_4] (4 × 4 = 16) through W_o" in said["join"]
        assert "feed-forward" in said["feed_forward"] and "LayerNorm" in said["feed_forward"]
        assert "Layer 2 runs whole" in said["output"] and "most likely" in said["output"]
        await pilot.press("s")  # the pick completes the step
        assert "attended most (layer 1/2, head 1/4)" in app.bars[3].plain.replace("\n", " ")


@async_test
async def test_the_selector_keys_change_the_view_titles_and_panel_keeping_the_place(trace):
    app = replay_app(trace, "t.json")
    async with app.run_test(size=WIDE) as pilot:
        assert app.cursor.trace.view == default_view(trace.architecture) == View(0)
        await pilot.press("right", "right", "s", "s", "s", "s")  # step 3, stage 4 (softmax)
        assert "layer 1/2, mean of 4 heads" in app.panels["attention"].border_title
        assert app.panels["grid"].border_title == "Alignment so far, layer 1/2, mean of 4 heads"
        place = (app.cursor.position, app.cursor.stage)
        chosen = []
        for key in ["a", "a", "a", "a", "a", "A", "d", "d", "D"]:
            await pilot.press(key)
            chosen.append(app.cursor.trace.view)
            assert (app.cursor.position, app.cursor.stage) == place
        assert chosen == [
            View(0, 0),
            View(0, 1),
            View(0, 2),
            View(0, 3),
            View(0),
            View(0, 3),
            View(1, 3),
            View(0, 3),
            View(1, 3),
        ]
        step = app.cursor.current
        head = step.layers[1].cross[3]
        assert step.weights == head.weights and step.scores == head.scores  # the cursor's trace is that head's
        assert str(app.panels["attention"].border_title).startswith("Attention, layer 2/2, head 4/4")
        assert app.panels["grid"].border_title == "Alignment so far, layer 2/2, head 4/4"
        for token, score, weight in zip(trace.source, head.scores, head.weights):
            row = token_row(app.panels["attention"].plain_lines, token.surface)
            assert f"{num(score)}  {num(weight)}" in row
        grid_row = app.panels["grid"].plain_lines[3]  # the current step's row, under the header and two steps
        assert [cell_number(w) for w in head.weights] == grid_row.split()[-len(trace.source) :]
        await pilot.press("m")
        assert "layer 2/2, head 4/4" in app.screen.query_one("#map").border_title


@async_test
async def test_the_attention_panel_shows_a_heads_weighted_values_and_context_or_the_heads_of_a_mean(trace):
    app = replay_app(trace, "t.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right")
        text = panel_text(app, "attention")
        header = app.panels["attention"].plain_lines[0]
        assert "mean e" in header and "h1  h2  h3  h4" in header
        step = app.cursor.current
        for i, token in enumerate(trace.source):
            row = token_row(app.panels["attention"].plain_lines, token.surface)
            assert row.split()[-4:] == [cell_number(h.weights[i]) for h in step.layers[0].cross]
        assert "no softmax of the mean score" in " ".join(text.split())
        assert app.panels["attention"].border_subtitle == "no softmax of one score"
        await pilot.press("a", "a")  # head 2
        text = panel_text(app, "attention")
        context = app.cursor.current.layers[0].cross[1].context
        assert "c = Σ a_i·v_i" in text and f"‖c‖ {num(math.hypot(*context))}, 4 numbers: head 2's context" in text
        assert "a·v_i" in app.panels["attention"].plain_lines[0]


@async_test
async def test_the_heads_overview_shows_every_layer_and_head_and_chooses_one(trace):
    app = replay_app(trace, "t.json")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("right", "o")
        assert isinstance(app.screen, HeadsScreen)
        grid = app.screen.query_one(HeadsGrid)
        rows = grid.plain_lines[1:]
        names = [" ".join(row.lstrip("▶ ").split()[:2]) for row in rows[: LAYERS * (HEADS + 1)]]
        assert names == [f"L{n} {h}" for n in (1, 2) for h in ("h1", "h2", "h3", "h4", "mean")]
        assert rows[HEADS].startswith("▶ L1 mean")  # the view shown: layer 1's mean
        step = trace.steps[0]
        for n in range(LAYERS):
            for h in range(HEADS):
                cells = rows[n * (HEADS + 1) + h].split()[-len(trace.source) :]
                assert cells == [cell_number(w) for w in step.layers[n].cross[h].weights]
        await pilot.press("down")  # layer 2, head 1: the panels follow
        assert app.cursor.trace.view == View(1, 0)
        assert grid.plain_lines[HEADS + 2].startswith("▶ L2 h1") and "layer 2/2, head 1/4" in grid.border_title
        await pilot.press("right")  # the app's → steps the overview
        assert app.cursor.position == 2 and "at step 2" in grid.border_title
        await pilot.press("escape")
        assert not isinstance(app.screen, HeadsScreen)
        assert "layer 2/2, head 1/4" in app.panels["attention"].border_title


def test_the_worked_score_of_a_head_is_q_dot_k_over_root_d(trace):
    for view in (View(0, 2), View(1, 0)):
        shown = trace.with_view(view)
        for t in range(len(shown.steps)):
            for i in range(len(shown.source)):
                work = worked_score(shown, t, i)
                assert work.vectors is not None and work.vectors.divisor == 2.0  # √4
                assert math.isclose(sum(work.vectors.terms) / 2.0, shown.steps[t].scores[i], abs_tol=1e-6)
    text = "\n".join(line.plain for line in lines(worked_score(trace.with_view(View(1, 0)), 2, 1), 120))
    assert "head 1's query" in text and "/ √4 = " in text and "layer 2/2, head 1/4" in text


def listed(values) -> str:
    """Numbers as the panels and the worked score list them."""
    return " ".join(f"{x:6.2f}" for x in values)


@async_test
async def test_the_worked_score_of_a_small_head_lists_every_term_and_says_so(trace):
    app = replay_app(trace, "t.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "a", "w")  # head 1 of layer 1 at step 1; its d = 4 numbers all fit
        text = "\n".join(str(static.render()) for static in app.screen.query("Static"))
    i = max(range(len(trace.source)), key=lambda i: trace.steps[0].layers[0].cross[0].weights[i])
    assert f"[{listed(trace.cross_keys[0][0][i])}]  ‖k‖" in text  # no "…": no component is left out
    assert f"[{listed(trace.steps[0].layers[0].cross[0].query)}]  ‖q‖" in text
    assert "terms q[j]·k[j], largest first:" in text and "largest terms" not in text
    assert "the other 0" not in text and "largest give" not in text  # no partial sum when every term is listed


@async_test
async def test_with_numbers_only_a_vector_cut_short_ends_in_an_ellipsis(trace):
    app = replay_app(trace, "t.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "a", "a", *"sssss", "number_sign")  # head 2 at stage 5, its d = 4 numbers
        attention, decoder = app.panels["attention"].plain_lines, app.panels["decoder"].plain_lines
    head = trace.steps[1].layers[0].cross[1]
    values = trace.cross_values[0][1]
    for i in range(len(trace.source)):
        row = next(line for line in attention[1:] if line[1:].startswith(source_word(trace.source[i])))
        assert row.endswith(listed([head.weights[i] * x for x in values[i]]))
    context = next(line for line in attention if line.startswith("c = Σ a_i·v_i"))
    assert f"{listed(head.context)}  ‖c‖" in context
    embedding = decoder[decoder.index(next(line for line in decoder if line.startswith("E[y]"))) + 1]
    assert embedding.endswith(" …") and len(embedding.split()) < 1 + 16  # 16 numbers, those that fit listed


def test_the_worked_score_of_a_mean_is_the_mean_of_the_heads_weights(trace):
    step = trace.steps[1]
    text = "\n".join(line.plain for line in lines(worked_score(trace, 1, 2), 120))
    weights = [h.weights[2] for h in step.layers[0].cross]
    assert "no softmax of one score" in text
    assert f"a = ({' + '.join(num(w) for w in weights)}) / 4 = {num(sum(weights) / 4)}" in text
    assert f"recorded in the trace: a {num(step.weights[2])}" in text


@async_test
async def test_without_vectors_the_panels_keep_the_weights(trace):
    app = replay_app(trace.without_vectors(), "t.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "a")
        assert "(no vectors in this trace)" in panel_text(app, "attention")
        decoder = panel_text(app, "decoder")
        assert "not in this trace" in decoder and "--no-vectors" in decoder and "h1 a" in decoder  # self-attention's
        await pilot.press("w")
        assert "no vectors" in "\n".join(str(s.render()) for s in app.screen.query("Static"))


@async_test
async def test_the_word_view_gathers_each_heads_pieces(trace):
    app = replay_app(trace, "t.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "a", "v")  # head 1; "noir" is pieces 3 and 4
        head = trace.steps[0].layers[0].cross[0]
        row = token_row(app.panels["attention"].plain_lines, "noir")
        assert f"  {num(head.weights[2] + head.weights[3])} " in row


@async_test
async def test_an_rnn_trace_offers_no_selector(stepper):
    app = app_on(stepper)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right")
        before = app.cursor.trace
        for key in ("a", "d", "o"):
            assert not app.check_action({"a": "head", "d": "layer", "o": "heads"}[key], ())
            await pilot.press(key)
        assert app.cursor.trace is before and not isinstance(app.screen, HeadsScreen)
        labels = [entry.plain for entry, _ in app.query_one(KeyBar).entries()]
        assert not any(label.startswith(("a ", "d ", "o ")) for label in labels)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpDialog)
        assert not any(key in ("a", "A", "d", "D", "o") for key, _ in app.screen.keys)


@async_test
async def test_a_transformer_trace_offers_the_selector_in_the_key_line_and_help(trace):
    app = replay_app(trace, "t.json")
    async with app.run_test(size=WIDE) as pilot:
        labels = [entry.plain for entry, _ in app.query_one(KeyBar).entries()]
        assert {"a head", "d layer", "o heads"} <= set(labels)
        await pilot.press("question_mark")
        assert {"a", "A", "d", "D", "o"} <= {key for key, _ in app.screen.keys}
        help_text = " ".join(str(static.render()) for static in app.screen.query("Static"))
        assert "A Transformer's (Marian, post-norm)" in help_text and "q·k/√d → softmax → Σ a·v" in help_text


class Decoding:
    """A model over the synthetic trace: what force and unforce were handed is kept."""

    def __init__(self, trace: Trace):
        self.trace, self.handed = trace, []

    def translate(self, sentence):
        return self.trace

    def force(self, trace, t, word):
        self.handed.append(trace)
        return self.trace

    def unforce(self, trace, t):
        self.handed.append(trace)
        return self.trace


@async_test
async def test_the_head_chosen_stays_over_a_forced_word_and_the_model_gets_its_own_trace(trace):
    source = Decoding(trace)
    app = make_app(source_factory=lambda: source, sentence="Le chat noir", origin="tiny-marian")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "d", "a")  # layer 2's mean, then its head 1
        assert app.cursor.trace.view == View(1, 0)
        await pilot.press("f", "down", "enter")
        await settle(pilot)
        assert source.handed == [trace]  # as the model made it, not the view
        assert app.cursor.trace.view == View(1, 0)


def test_the_shared_view_carries_layer_0_and_a_mean():
    for view in (SharedView(layer=0), SharedView(layer=1, head=0), SharedView(word=0)):
        assert SharedView.from_wire(view.to_wire()) == view


@pytest.mark.slow
@async_test
async def test_a_follower_sees_the_teachers_head_and_overview(trace):
    from attnstep.serve.session import ServedApp

    app = make_app(ServedApp, origin="tiny-marian", open_on_sentence_box=False)
    app.join_class(SilentLink(), teacher=False, follow=True, user="ann")
    async with app.run_test(size=WIDE) as pilot:
        app.teacher_shows(TeacherShows("teach", trace, 2, 0, SharedView(layer=1, head=2)))
        await pilot.pause()
        assert app.cursor.trace.view == View(1, 2) and app.cursor.position == 2
        assert "layer 2/2, head 3/4" in app.panels["attention"].border_title
        app.teacher_shows(TeacherShows("teach", None, 2, 0, SharedView(layer=0, screen="heads")))
        await pilot.pause()
        assert app.cursor.trace.view == View(0) and isinstance(app.screen, HeadsScreen)


@pytest.mark.slow
@async_test
async def test_the_teachers_head_goes_to_the_class(trace):
    from attnstep.serve.session import ServedApp

    class Served(RemoteTraceSource):
        def __init__(self):
            self.versions = []

        def translate(self, sentence):
            self.versions.append((trace, 1))
            return trace

    link = SilentLink()
    app = make_app(ServedApp, source_factory=Served, sentence="Le chat noir", origin="tiny-marian")
    app.join_class(link, teacher=True, follow=False, user="teach")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "d", "a")
        version, position, stage, view = link.moves[-1]
        assert (version, position, stage) == (1, 1, STAGE_COUNT) and (view.layer, view.head) == (1, 0)


def pressed(*keys: str):
    """A run_before that presses ``keys`` in a replay of the synthetic trace."""

    async def run(pilot) -> None:
        for key in keys:
            await pilot.press(key)
        await pilot.pause()

    return run


@pytest.mark.slow
class TestScreens:
    """The new screens as pictures: for the lead to look at as PNG and pin (no SVG is committed with them)."""

    def test_a_head_at_its_weighted_values(self, snap_compare, trace):
        # → a a, then s ×5: step 2 at stage 5 (Σ a·v → c), head 2 of layer 1, every panel at once
        keys = ("right", "a", "a", "s", "s", "s", "s", "s")
        assert snap_compare(replay_app(trace, "t.json"), terminal_size=WIDE, run_before=pressed(*keys))

    def test_a_layers_mean_on_a_small_terminal(self, snap_compare, trace):
        # →: step 1, the default view (layer 1's mean of heads) in the Attention tab
        assert snap_compare(replay_app(trace, "t.json"), terminal_size=SMALL, run_before=pressed("right"))

    def test_the_decoder_tab_at_self_attention(self, snap_compare):
        # → s s: step 2 at stage 2, a base-sized model's (6 layers of 8 heads) Decoder tab, layer 5 in view
        app = replay_app(transformer_trace(layers=6, heads=8, head_dim=64), "t.json")
        assert snap_compare(app, terminal_size=SMALL, run_before=pressed("right", "s", "s"))

    @pytest.mark.parametrize("no_color", [False, True], ids=["colour", "no-color"])
    def test_the_heads_overview(self, snap_compare, monkeypatch, no_color):
        # → → o: every head of 6 layers of 8 at step 2, layer 5's mean marked
        if no_color:
            monkeypatch.setenv("NO_COLOR", "1")
        app = replay_app(transformer_trace(layers=6, heads=8, head_dim=64), "t.json")
        assert snap_compare(app, terminal_size=SMALL, run_before=pressed("right", "right", "o"))

    def test_the_worked_score_of_a_head(self, snap_compare, trace):
        # → a w: q·k/√d of head 1 of layer 1 for the most attended piece at step 1
        assert snap_compare(replay_app(trace, "t.json"), terminal_size=WIDE, run_before=pressed("right", "a", "w"))


@async_test
async def test_the_decoder_panel_keeps_the_sub_steps_rows_on_a_small_terminal():
    app = replay_app(transformer_trace(layers=6, heads=8, head_dim=8), "t.json")
    async with app.run_test(size=SMALL) as pilot:
        decoder = app.panels["decoder"]

        def on_screen(text: str) -> bool:
            top, rows = decoder.scroll_offset.y, decoder.scrollable_content_region.height
            return any(text in line for line in decoder.plain_lines[top : top + rows])

        await pilot.press("right", "s")  # stage 1: the embedding, at the top
        assert app.panel_index == 1 and on_screen("E[y]·√D")
        for _ in range(6):  # stage 7: layer 5's feed-forward, far below the embedding
            await pilot.press("s")
        assert on_screen("▶ layer 5/6") and on_screen("LN(cross + FFN)")
        assert not on_screen("E[y]·√D")


@pytest.mark.slow  # builds a tiny Marian with transformers (~5 s)
@async_test
async def test_a_real_marians_step_in_the_app(tmp_path):
    from attnstep.commands.translate import translate_app
    from tests.marian_helpers import build_tiny_marian

    folder = build_tiny_marian(tmp_path / "opus-mt-tiny")
    app = translate_app(folder, "Un chien noir court dans la rue.")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        trace = app.cursor.trace
        architecture = trace.architecture
        assert architecture is not None and trace.view == default_view(architecture)
        for layer in range(architecture.layers):  # the worked score adds up from the engine's own q and k
            for head in range(architecture.heads):
                shown = trace.with_view(View(layer, head))
                for i in range(len(shown.source)):
                    work = worked_score(shown, 1, i)
                    assert work.vectors is not None
                    total = sum(work.vectors.terms) / work.vectors.divisor
                    assert math.isclose(total, shown.steps[1].scores[i], abs_tol=1e-4)
        for _ in range(STAGE_COUNT):  # every sub-step of step 3 narrated, head 2 of the layer in view
            await pilot.press("s")
        await pilot.press("a", "a", "o")
        grid = app.screen.query_one(HeadsGrid)
        assert len([row for row in grid.plain_lines[1:] if row.lstrip("▶ ").startswith("L")]) == architecture.layers * (
            architecture.heads + 1
        )
        await pilot.press("escape", "w")
        assert "/ √" in "\n".join(str(static.render()) for static in app.screen.query("Static"))


@async_test
async def test_hostile_tokens_stay_text_in_the_new_panels(trace):
    from dataclasses import replace

    from tests.test_tui_untrusted import EVIL, RAW

    source = tuple(replace(token, surface=EVIL[i % len(EVIL)]) for i, token in enumerate(trace.source))
    steps = tuple(replace(step, input_token=EVIL[(step.index + 3) % len(EVIL)]) for step in trace.steps)
    app = replay_app(replace(trace, source=source, steps=steps), "t.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "right", "a", "o")  # head 1 at step 2, then the overview
        shown = [*app.screen.query_one(HeadsGrid).plain_lines]
        await pilot.press("escape")
        for pid in ("attention", "decoder"):
            shown += app.panels[pid].plain_lines
        shown.append(app.bars[3].plain)
        text = "\n".join(shown)
        assert "[bold]b" in text and "[link=http://x]hi[/link]" in text  # as typed, not applied
        assert not any(raw in text for raw in RAW)


@async_test
async def test_the_heads_overview_gathers_pieces_into_words(trace):
    app = replay_app(trace, "t.json")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("right", "v", "o")  # "noir" is pieces 3 and 4
        grid = app.screen.query_one(HeadsGrid)
        assert grid.plain_lines[0].split() == ["Le", "chat", "noir"]
        weights = trace.steps[0].layers[1].cross[2].weights
        row = next(line for line in grid.plain_lines if line.lstrip("▶ ").startswith("L2 h3"))
        assert row.split()[-3:] == [
            cell_number(weights[0]),
            cell_number(weights[1]),
            cell_number(weights[2] + weights[3]),
        ]


@async_test
async def test_every_heads_column_of_a_mean_fits_a_projector():
    app = replay_app(transformer_trace(layers=6, heads=8, head_dim=8), "t.json")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("right")
        panel = app.panels["attention"]
        widest = max(len(line.rstrip()) for line in panel.plain_lines[:5])
        assert "h8" in panel.plain_lines[0] and widest <= panel.scrollable_content_region.width


@async_test
async def test_the_beam_view_says_its_rows_are_the_default_views_whichever_head_is_shown(trace):
    from dataclasses import replace

    from attnstep.trace.records import ALIVE, FINISHED, Beam, Hypothesis

    score, hypotheses = 0.0, []
    for step in trace.steps:  # a beam of one: the decoding itself, each row the default view's weights
        score += step.chosen_logprob
        status = FINISHED if step.index == len(trace.steps) - 1 else ALIVE
        parent = None if step.index == 0 else 0
        hypotheses.append(
            (
                Hypothesis(
                    parent, step.chosen_token, step.chosen_id, step.chosen_logprob, score, score, status, step.weights
                ),
            )
        )
    searched = replace(trace, beam=Beam(1, 0.6, 0, tuple(hypotheses), 0))
    app = replay_app(searched, "t.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "right", "a", "a", "b")  # head 2 shown, then the beam view
        for panel in ("#beam-row", "#beam-history"):
            assert "layer 1/2, mean of 4 heads" in str(app.screen.query_one(panel).border_title)


@async_test
async def test_b_on_a_transformers_greedy_trace_says_how_to_get_a_beam(trace):
    app = replay_app(trace, "t.json")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("right", "b")  # a Marian's --beam K records its search (issue 20): this one is greedy
        assert [str(n.message) for n in app._notifications] == [
            "This decoding is greedy: translate with --beam K to step through a beam search."
        ]
