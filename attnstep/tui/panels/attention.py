"""Attention for the current step: per source word the raw score e_ti, weight a_ti and a_ti·h_i."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text

from attnstep.report.glyphs import STATE_CELLS, bar, max_abs, mean_bins, norm, num
from attnstep.trace.records import EDIT_MARK, Step, Trace
from attnstep.tui.edited import what_was_edited
from attnstep.tui.lines import LinesView, first_numbers, fit
from attnstep.tui.safe import visible
from attnstep.tui.stages import (
    NO_ATTENTION_NOTE,
    View,
    attention_in_words,
    source_word,
    unknown_legend,
    word_brackets,
)

MAX_WORD_WIDTH = 14
OWN_WIDTH = 5  # an edited step's column of the model's own weights, after the ones it used: "0.45 "


class AttentionPanel(LinesView[View]):
    FROZEN_ROWS = 1  # the column headings

    def __init__(self, *, id: str, classes: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self._binned: tuple[Trace, list[list[float]], list[float]] | None = (
            None  # (trace, mean bins of each h_i, ‖h_i‖)
        )

    def build(self, view: View | None) -> list[Text]:
        if view is None:
            return []
        trace, step = view.trace, view.step
        if not trace.checkpoint.attends:
            return self.without_attention(view)
        if trace.architecture is not None:
            return self.transformer(view)
        edited = step is not None and step.edit is not None
        self.set_titles(
            f"Attention: score e, weight a' set by you ({EDIT_MARK}) beside the model's own a, weighted state a'·h_i"
            if edited
            else "Attention: score e, weight a = softmax(e), weighted state a·h_i",
            trace.checkpoint.formula,
        )
        label, dim, changed = self.style_of("label"), self.style_of("dim"), self.style_of("changed")
        names, word_width = self.names(trace)
        wide = self.size.width >= 90
        bar_width = 16 if wide else 10
        room = max(STATE_CELLS, self.size.width - word_width - bar_width - 25)  # 25: the number columns
        strip_width = room if view.numbers else STATE_CELLS
        # The header is as wide as a full row, so the panel keeps its size from the encoder-only
        # view to step 1 (a new size would repaint every panel's scrollbar rows).
        header = fit(
            Text.assemble(
                fit("piece" if trace.subword and not view.in_words else "word", word_width + 1, label),
                fit("score e", 8, label, right=True),
                "  ",
                self.weight_heading("weight a", step, bar_width),
                "  ",
                fit("‖a·h‖", 5, label, right=True),
                "  ",
                ("a·h_i", label),
            ),
            word_width + bar_width + 25 + strip_width + (OWN_WIDTH if edited else 0),
        )
        # Below the words: what the mark of an unknown word means, when there is one.
        legend = [Text(text, style=label) for text in [unknown_legend(trace)] if text]
        if step is None:  # the words, waiting: the panel keeps its size, so step 1 repaints only numbers
            return [
                header,
                *(
                    Text.assemble(fit(name, word_width + 1, self.style_of("text")), fit("·", 8, dim, right=True))
                    for name in names
                ),
                *legend,
            ]
        states = trace.encoder_states
        scale = view.state_scale
        state_bins, state_norms = self.binned_states(trace)
        show_weight, show_sum = view.shows("softmax"), view.shows("weight")
        plain, bar_style = self.style_of("text"), self.style_of("bar")
        lines = [header]
        # Columns are ordered for the terminal's sake: a changed row is resent from the panel's
        # edge to its last change (see changed_span), so the numbers that change on every step
        # come right after the word, in its style (one colour escape for both), and the wide
        # a·h_i strip last, where it is only resent for the words that are attended.
        for i in range(len(trace.source)):
            weight = step.weights[i]
            numbers = self.score_and_weight(view, step, i)
            row = Text.assemble(
                fit(names[i], word_width + 1, plain),
                numbers,
                (bar(weight, bar_width) if show_weight else " " * bar_width, bar_style),
            )
            if show_sum and states:
                # a·h_i from h_i's strip: the bins are means, so those of a·h_i are a times h_i's,
                # and ‖a·h_i‖ = a·‖h_i‖. A weight that rounds to 0.00 contributes nothing
                # visible: "·", like the grid. With # the first components are written out.
                size = "·" if num(weight) == num(0) else num(weight * state_norms[i])
                if view.numbers:
                    cells = Text(first_numbers([weight * x for x in states[i]], strip_width // 7), style=plain)
                else:
                    cells = self.vector([weight * x for x in state_bins[i]], STATE_CELLS, scale)
                scaled = Text.assemble((f"  {size:>5}  ", plain), cells)
                if view.just_done("weight"):
                    scaled.stylize(changed)
            else:
                scaled = Text("  ·" if states else "  (no vectors in this trace)", style=dim)
            row.append_text(scaled)
            lines.append(row)
        if show_weight:
            best = max(range(len(trace.source)), key=lambda i: step.weights[i])
            lines[best + 1].stylize(self.style_of("current"), 0, word_width)
        return lines + self.edit_lines(trace, step) + legend

    def weight_heading(self, heading: str, step: Step | None, bar_width: int) -> Text:
        """The weight column's heading; an edited step's names the weights it used and the model's own."""
        label = self.style_of("label")
        if step is None or step.edit is None:
            return fit(heading, 5 + bar_width, label)
        return fit(f"a' {EDIT_MARK}  own a", 5 + OWN_WIDTH + bar_width, label)

    def score_and_weight(self, view: View, step: Step, i: int) -> Text:
        """Token i's e_i and a_i (and an edited step's own a_i), "·" until their stage, the one just computed marked."""
        dim, changed = self.style_of("dim"), self.style_of("changed")
        show_weight = view.shows("softmax")
        numbers = Text(style=self.style_of("text"), end="")
        numbers.append(f"{num(step.scores[i]):>8}" if view.shows("score") else fit("·", 8, dim, right=True))
        numbers.append("  ")
        numbers.append(num(step.weights[i]) if show_weight else fit("   ·", 4, dim))
        numbers.append(" ")
        self.own_weight(numbers, step, i, show_weight)
        if view.just_done("score"):
            numbers.stylize(changed, 0, 8)
        elif view.just_done("softmax"):
            numbers.stylize(changed, 10, 14)
        return numbers

    def own_weight(self, numbers: Text, step: Step, i: int, shown: bool) -> None:
        """After an edited step's weight a'_i, the model's own a_i (its ``before``), dimmed: "·" until the softmax."""
        if step.edit is None:
            return
        dim = self.style_of("dim")
        numbers.append_text(
            Text(f"{num(step.edit.before.weights[i])} ", style=dim) if shown else fit("   ·", OWN_WIDTH, dim)
        )

    def edit_lines(self, trace: Trace, step: Step) -> list[Text]:
        """Under an edited step's rows: what the user set, and what the model's own weights chose."""
        if step.edit is None:
            return []
        before, sizes = step.edit.before, ""
        if before.context is not None and step.context is not None:  # an RNN's, with vectors
            sizes = f"; C_t from them: ‖C_t‖ {num(norm(step.context))}, from the own a: {num(norm(before.context))}"
        text = Text.assemble(
            (f"{EDIT_MARK} {what_was_edited(trace, step)}", self.style_of("label")), (sizes, self.style_of("dim"))
        )
        return list(text.wrap(self.app.console, max(20, self.size.width - 1)))

    def names(self, trace: Trace) -> tuple[list[str], int]:
        """The rows' source tokens, and the cells of their column (set as the frozen labels)."""
        # A word cut into pieces is bracketed (┌ │ └) so its pieces read as one word.
        brackets = word_brackets(trace)
        grouped = any(mark != " " for mark in brackets)
        names = [mark + source_word(t) if grouped else source_word(t) for mark, t in zip(brackets, trace.source)]
        word_width = min(MAX_WORD_WIDTH, max(4, *(cell_len(visible(name)) for name in names)))
        self.frozen_columns = word_width + 1
        return names, word_width

    def transformer(self, view: View) -> list[Text]:
        """A Transformer's cross-attention in view: one head's scores q·k_i/√d, weights, weighted values
        a_i·v_i and context c = Σ a_i v_i; or a layer's mean of heads, beside each head's weight."""
        trace, step = view.trace, view.step
        architecture, shown = trace.architecture, trace.view
        assert architecture is not None and shown is not None  # a Transformer's trace has both
        layer, head = shown.layer, shown.head
        label, dim, plain, changed = (self.style_of(name) for name in ("label", "dim", "text", "changed"))
        where = trace.view_label
        names, word_width = self.names(trace)
        bar_width = 16 if self.size.width >= 90 else 10
        unit = "piece" if trace.subword and not view.in_words else "word"
        values = None if trace.cross_values is None or head is None else trace.cross_values[layer][head]
        if head is None:
            # Every head's column on screen (8 of them at a projector's 120 columns): the bar gives way first.
            spare = self.scrollable_content_region.width - (word_width + 1 + 15 + 2 + 4 * architecture.heads)
            bar_width = max(0, min(bar_width, spare))
            self.set_titles(f"Attention, {where}: the heads' mean score and weight", "no softmax of one score")
            columns = ("mean e", "mean a", "".join(f" {f'h{h + 1}':>3}" for h in range(architecture.heads)), "")
        else:
            self.set_titles(f"Attention, {where}: score, weight, weighted value a·v_i", trace.checkpoint.formula)
            columns = ("q·k/√d", "weight a", "‖a·v‖", "a·v_i")
        header = Text.assemble(
            fit(unit, word_width + 1, label),
            fit(columns[0], 8, label, right=True),
            "  ",
            self.weight_heading(columns[1], step, bar_width),
            "  ",
            (columns[2], label) if head is None else fit(columns[2], 5, label, right=True),
            "  ",
            (columns[3], label),
        )
        legend = [Text(text, style=label) for text in [unknown_legend(trace)] if text]
        if step is None:
            waiting = (Text.assemble(fit(name, word_width + 1, plain), fit("·", 8, dim, right=True)) for name in names)
            return [header, *waiting, *legend]
        record = step.layers[layer]
        show_weight, show_sum = view.shows("softmax"), view.shows("weight")
        scale = max_abs([mean_bins(v) for v in values]) if values else 1.0
        listed = max(2, (self.size.width - word_width - bar_width - 28) // 7)  # with #: the numbers that fit
        lines = [header]
        for i in range(len(trace.source)):
            weight = step.weights[i]
            numbers = self.score_and_weight(view, step, i)
            row = Text.assemble(
                fit(names[i], word_width + 1, plain),
                numbers,
                (bar(weight, bar_width) if show_weight else " " * bar_width, self.style_of("bar")),
                "  ",
            )
            if head is None:  # each head's own weight of this token, of which the mean is the weight
                for h in record.cross:
                    row.append(" ")
                    row.append_text(self.weight_cell(h.weights[i], 3) if show_weight else fit("·", 3, dim, right=True))
            elif show_sum and values is not None:
                size = "·" if num(weight) == num(0) else num(weight * norm(values[i]))
                if view.numbers:
                    cells = Text(first_numbers([weight * x for x in values[i]], listed), style=plain)
                else:
                    cells = self.vector([weight * x for x in mean_bins(values[i])], STATE_CELLS, scale)
                row.append_text(Text.assemble((f"{size:>5}  ", plain), cells))
                if view.just_done("weight"):
                    row.stylize(changed, len(row) - len(cells) - 7)
            else:
                row.append(("·" if values is not None else "(no vectors in this trace)"), dim)
            lines.append(row)
        if show_weight:
            best = max(range(len(trace.source)), key=lambda i: step.weights[i])
            lines[best + 1].stylize(self.style_of("current"), 0, word_width)
        lines += self.edit_lines(trace, step)
        lines.append(Text(""))
        context = None if head is None else record.cross[head].context
        if head is None:
            note = (
                f"h1…h{architecture.heads}: each head's weights, a softmax of its own scores; mean a is their mean "
                "(no softmax of the mean score). a: one head's scores, values and context; o: every head."
            )
            lines += Text(note, style=label).wrap(self.app.console, max(20, self.size.width - 1))
        elif show_sum and context is not None:
            cells = (
                Text(first_numbers(context, listed), style=plain)
                if view.numbers
                else self.vector(mean_bins(context), STATE_CELLS, scale)
            )
            line = Text.assemble(  # its strip under the a·v_i column: after the word, numbers, bar and ‖a·v‖
                fit("c = Σ a_i·v_i", word_width + 1 + 15 + bar_width + 2 + 7, label),
                cells,
                (f"  ‖c‖ {num(norm(context))}, {len(context)} numbers: head {head + 1}'s context", label),
            )
            lines.append(line)
            note = f"v_i = W_v m_i, this head's value of each source {unit}; W_o joins the heads (Decoder)."
            lines += Text(note, style=dim).wrap(self.app.console, max(20, self.size.width - 1))
        else:
            lines.append(
                Text(f"c = Σ a_i·v_i, head {head + 1}'s context: at stage {view.stage_number('weight')}", style=dim)
            )
        return lines + legend

    def without_attention(self, view: View) -> list[Text]:
        """What a model without attention has in its place: the one context c of every step."""
        self.set_titles("Attention: none")
        label, dim = self.style_of("label"), self.style_of("dim")
        lines = list(Text(NO_ATTENTION_NOTE, style=label).wrap(self.app.console, max(20, self.size.width - 1)))
        context = view.trace.steps[0].context if view.trace.steps else None
        if context is None:
            return [*lines, Text("(c is not in this trace: it was dumped with --no-vectors)", style=dim)]
        strip = self.vector(mean_bins(context), STATE_CELLS, view.state_scale)
        return [
            *lines,
            Text(""),
            Text.assemble(fit("c", 4, label), strip, (f"  ‖c‖ {num(norm(context))}, the same at every step", label)),
        ]

    def binned_states(self, trace: Trace) -> tuple[list[list[float]], list[float]]:
        """Each h_i as its strip's mean bins, and ‖h_i‖: computed once per sentence."""
        if self._binned is None or self._binned[0] is not trace:
            states = trace.encoder_states or ()
            self._binned = (trace, [mean_bins(h) for h in states], [norm(h) for h in states])
        return self._binned[1], self._binned[2]

    def show(self, view: View | None) -> None:
        if view is not None and view.in_words and view.trace.checkpoint.attends:
            view = attention_in_words(view)
        super().show(view)
        if view is None or view.step is None or not view.shows("softmax"):
            return
        # Keep the most attended word on screen when the sentence is longer than the panel.
        step = view.step
        best = max(range(len(view.trace.source)), key=lambda i: step.weights[i])
        self.scroll_into_view(best + 1)
