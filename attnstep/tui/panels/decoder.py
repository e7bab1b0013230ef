"""The decoder side of the current step: input word, h_t, C_t, [h_t; C_t], the feed-forward layer W_c and its
h~_t, and the output layer W_s."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from attnstep.report.glyphs import STATE_CELLS, mean_bins, norm, num
from attnstep.tui.lines import LinesView, fit
from attnstep.tui.safe import safe_text
from attnstep.tui.stages import View, piece_text, state_name, vocabulary_size

LABEL_WIDTH = 11
TANH_SCALE = 1.0  # h_t (a GRU state) and h~_t (a tanh) lie in (-1, 1)
# What a strip cell is; the same for h_i (Source), a·h_i (Attention) and C_t, so the C_t strip is
# the a-weighted sum of the h_i strips, cell by cell.
STRIP_LEGEND = (
    "Strips of h_i, a·h_i and C_t: a cell is {cell}, on one scale, so C_t is the sum of the a·h_i strips "
    "cell by cell (h_t, h̃_t: the largest of those). Standing up: positive, hanging down: negative. "
    "# shows the numbers."
)
NO_ATTENTION_STRIP_LEGEND = (
    "Strips of h_i and C_t = c: a cell is {cell}, on one scale (h_t, h̃_t: the largest of those). "
    "Standing up: positive, hanging down: negative. # shows the numbers."
)


class DecoderPanel(LinesView[View]):
    def build(self, view: View | None) -> list[Text]:
        if view is None:
            return []
        trace, step = view.trace, view.step
        h = state_name(trace.checkpoint.attention)
        self.set_titles("Decoder")
        label, dim, changed = self.style_of("label"), self.style_of("dim"), self.style_of("changed")
        if step is None:  # the same rows, empty: step 1 then repaints only what it fills in
            return [Text.assemble(fit("input", LABEL_WIDTH, label), ("→ takes step 1", dim))] + [
                Text.assemble(fit(name, LABEL_WIDTH, label), ("·", dim))
                for name in (h, "C_t", f"[{h}; C_t]", "W_c", "h̃_t", "W_s")
            ]
        unit = "piece" if view.trace.subword else "word"
        previous = "the start symbol" if step.index == 0 else f"the {unit} chosen at step {step.index}"
        lines = [
            Text.assemble(
                fit("input", LABEL_WIDTH, label),
                safe_text(piece_text(view.trace, step.input_token), self.style_of("chosen")),
                (f"  ({previous})", label),
            )
        ]
        hidden, context, concat, attentional = step.hidden, step.context, step.concat, step.attentional
        if hidden is None or context is None or concat is None or attentional is None:  # dropped together
            note = Text("h_t, C_t, [h_t; C_t] and h̃_t are not in this trace (dumped with --no-vectors).", style=dim)
            return lines + list(note.wrap(self.app.console, max(20, self.size.width - 1)))
        context_scale = view.state_scale  # C_t is a weighted mean of the h_i: the same scale

        def row(name: str, stage: str, cells: Text, note: str, vector: Sequence[float] | None = None) -> list[Text]:
            """The row of one quantity and, with #, a line of its first numbers below it."""
            if not view.shows(stage):
                return [Text.assemble(fit(name, LABEL_WIDTH, label), ("·", dim))]
            line = Text.assemble(fit(name, LABEL_WIDTH, label), cells, ("  " + note if note else "", label))
            if view.just_done(stage):
                line.stylize(changed, 0, LABEL_WIDTH)
            if not (view.numbers and vector):
                return [line]
            shown = max(2, (self.size.width - LABEL_WIDTH - 3) // 7)
            return [line, Text(" " * LABEL_WIDTH + "".join(f"{x:7.2f}" for x in vector[:shown]) + " …", style=label)]

        hidden_size = len(hidden)
        made = "Σ a_i·h_i" if trace.checkpoint.attends else "c, at every step (no attention)"
        # Its halves drawn as the h_t and C_t strips above them are, cell for cell.
        concat_cells = Text.assemble(
            self.vector(concat[:hidden_size], STATE_CELLS, TANH_SCALE),
            ("│", label),
            self.vector(mean_bins(concat[hidden_size:]), STATE_CELLS, context_scale),
        )
        lines += [
            *row(
                h,
                "rnn",
                self.vector(hidden, STATE_CELLS, TANH_SCALE),
                f"‖{h}‖ {num(norm(hidden))}",
                hidden,
            ),
            *row(
                "C_t",
                "sum",
                self.vector(mean_bins(context), STATE_CELLS, context_scale),
                f"‖C_t‖ {num(norm(context))}  = {made}",
                context,
            ),
            *row(f"[{h}; C_t]", "concat", concat_cells, f"{hidden_size}+{len(context)}"),
            *row(
                "W_c",
                "feed_forward",
                Text(f"h̃_t = tanh(W_c[{h}; C_t]), {len(concat)} → {len(attentional)}"),
                "",
            ),
            *row(
                "h̃_t",
                "feed_forward",
                self.vector(attentional, STATE_CELLS, TANH_SCALE),
                f"‖h̃_t‖ {num(norm(attentional))}",
                attentional,
            ),
            *row(
                "W_s",
                "output",
                Text(f"p(y_t) = softmax(W_s h̃_t + b), {len(attentional)} → {vocabulary_size(view.trace)}"),
                "",
            ),
            Text(""),
        ]
        per = len(context) // STATE_CELLS
        legend = Text(
            (STRIP_LEGEND if trace.checkpoint.attends else NO_ATTENTION_STRIP_LEGEND).format(
                cell=f"the mean of {per} components" if per > 1 else "one component"
            ),
            style=dim,
        )
        return lines + list(legend.wrap(self.app.console, max(20, self.size.width - 1)))
