"""The decoder side of the current step: input word, h_t (and an LSTM's c_t, a stacked RNN's lower layers), C_t,
[h_t; C_t], the feed-forward layer W_c and its h~_t, and the output layer W_s; for a Transformer, the embedding
and position and each layer's vectors."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from attnstep.report.glyphs import STATE_CELLS, mean_bins, norm, num
from attnstep.trace.records import LayerStep, Step
from attnstep.tui.lines import LinesView, first_numbers, fit
from attnstep.tui.safe import safe_text
from attnstep.tui.stages import View, piece_text, quote, self_weights, state_name, viewed_layer, vocabulary_size

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
    # A Transformer's: the line kept on screen, the last of the layer in view (its heading above it),
    # or where the sub-step just shown is (the embedding, W_s).
    focus_row: int | None = None
    ROW_ANCHOR = 0.85  # that line near the bottom, the rows before it above

    def show(self, view: View | None) -> None:
        super().show(view)
        if self.focus_row is not None and view is not None and view.trace.architecture is not None:
            self.scroll_into_view(self.focus_row)

    def build(self, view: View | None) -> list[Text]:
        if view is None:
            return []
        trace, step = view.trace, view.step
        if trace.architecture is not None:
            return self.transformer(view)
        h = state_name(trace.checkpoint.attention)
        self.set_titles("Decoder")
        label, dim, changed = self.style_of("label"), self.style_of("dim"), self.style_of("changed")
        if step is None:  # the same rows, empty: step 1 then repaints only what it fills in
            layers = [name for name, *_ in rnn_layers(trace.steps[0])] if trace.steps else []
            return [Text.assemble(fit("input", LABEL_WIDTH, label), ("→ takes step 1", dim))] + [
                Text.assemble(fit(name, LABEL_WIDTH, label), ("·", dim))
                for name in (h, *layers, "C_t", f"[{h}; C_t]", "W_c", "h̃_t", "W_s")
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
            return [line, Text(" " * (LABEL_WIDTH + 1) + first_numbers(vector, shown), style=label)]

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
                f"‖{h}‖ {num(norm(hidden))}"
                + (f"  layer {len(step.layer_states)}: the top" if step.layer_states else ""),
                hidden,
            ),
            *(
                line
                for name, vector, note, scale in rnn_layers(step)
                for line in row(
                    name, "rnn", self.vector(vector, STATE_CELLS, scale), f"‖·‖ {num(norm(vector))}  {note}", vector
                )
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
                Text(
                    f"{trace.checkpoint.attentional_formula or f'h̃_t = tanh(W_c[{h}; C_t])'}, {len(concat)} → {len(attentional)}"
                ),
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
                Text(
                    f"{trace.checkpoint.output_formula or 'p(y_t) = softmax(W_s h̃_t + b)'}, "
                    f"{len(attentional)} → {vocabulary_size(view.trace)}"
                ),
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

    def transformer(self, view: View) -> list[Text]:
        """A Transformer's step: x = E[y]·√D + PE, then each layer's vectors (post-norm: each sublayer's
        LayerNorm(x + sublayer(x))), the layer in view marked ▶, shown as far as its stage; below it the
        layers run whole before its self-attention, above it after its feed-forward block."""
        trace, step = view.trace, view.step
        label, dim, changed = self.style_of("label"), self.style_of("dim"), self.style_of("changed")
        self.set_titles("Decoder: the layers' vectors (post-norm)")
        if step is None:
            return [Text.assemble(fit("input", LABEL_WIDTH, label), ("→ takes step 1", dim))]
        architecture, shown, head, _ = viewed_layer(trace, step)
        unit = "piece" if trace.subword else "word"
        previous = "the start symbol" if step.index == 0 else f"the {unit} chosen at step {step.index}"
        lines = [
            Text.assemble(
                fit("input", LABEL_WIDTH, label),
                safe_text(piece_text(trace, step.input_token), self.style_of("chosen")),
                (f"  ({previous})", label),
            )
        ]

        def row(name: str, stage: str, vector: Sequence[float] | None, note: str) -> list[Text]:
            """One vector's strip (scaled to its own largest cell) and norm, once its stage is shown; with #,
            its first numbers. Nothing where the trace has no vectors: the note at the end says so."""
            if step.embedding is None:
                return []
            if not view.shows(stage):
                return [Text.assemble(fit(name, LABEL_WIDTH, label), ("·", dim))]
            assert vector is not None  # a trace's vectors are kept or dropped together
            cells = mean_bins(vector)
            line = Text.assemble(
                fit(name, LABEL_WIDTH, label),
                self.vector(cells, STATE_CELLS, max(map(abs, cells)) or 1.0),
                (f"  {num(norm(vector)):>5}  {note}", label),
            )
            if view.just_done(stage):
                line.stylize(changed, 0, LABEL_WIDTH)
            if not view.numbers:
                return [line]
            count = max(2, (self.size.width - LABEL_WIDTH - 3) // 7)
            return [line, Text(" " * (LABEL_WIDTH + 1) + first_numbers(vector, count), style=label)]

        d_model = architecture.d_model
        lines += row("E[y]·√D", "embed", step.embedding, f"embedding × √{d_model}")
        lines += row("+ PE", "embed", step.position, f"position {step.index}")
        for n, layer in enumerate(step.layers):
            # Layers below the one in view run whole before its self-attention; those above after its FFN.
            stages = (
                ("self_attention",) * 4
                if n < shown
                else ("output",) * 4
                if n > shown
                else ("self_attention", "join", "join", "feed_forward")
            )
            mark = "▶ " if n == shown else "  "
            if n == shown:  # its heading, 5 vectors and, from stage 2, the self-attention's weights
                self.focus_row = len(lines) + 6
            lines.append(
                Text(
                    f"{mark}layer {n + 1}/{architecture.layers}",
                    style=self.style_of("current" if n == shown else "label"),
                )
            )
            lines += row("  x", "embed" if n == 0 else stages[0], layer.input, "layer input")
            lines += row("  self", stages[0], layer.self_output, "LN(x + SelfAttn)")
            if n == shown and view.shows("self_attention"):
                lines.append(self.self_attention(view, layer, head))
            lines += row("  W_o c", stages[1], layer.joined, "W_o[c_1…c_h]")
            lines += row("  cross", stages[2], layer.cross_output, "LN(self + W_o c)")
            lines += row("  out", stages[3], layer.output, "LN(cross + FFN)")
        if view.just_done("embed") or view.just_done("output"):
            self.focus_row = 1 if view.just_done("embed") else len(lines)
        lines.append(
            Text.assemble(
                fit("W_s", LABEL_WIDTH, label),
                (f"p(y_t) = softmax(W_s x + b), {d_model} → {vocabulary_size(trace)}", label),
            )
            if view.shows("output")
            else Text.assemble(fit("W_s", LABEL_WIDTH, label), ("·", dim))
        )
        if step.embedding is None:
            note = "The vectors are not in this trace (dumped with --no-vectors): the weights are."
            lines += Text(note, style=dim).wrap(self.app.console, max(20, self.size.width - 1))
        else:
            note = (
                "The numbers are norms ‖·‖. Each strip is on its own scale (its largest cell full), "
                "a cell the mean of its components; # lists them."
            )
            lines += [Text(""), *Text(note, style=dim).wrap(self.app.console, max(20, self.size.width - 1))]
        return lines

    def self_attention(self, view: View, layer: LayerStep, head: int | None) -> Text:
        """The layer in view's self-attention weights over the target tokens read so far (this head's, or their mean)."""
        weights = self_weights(layer, head)
        read = [s.input_token for s in view.trace.steps[: len(weights)]]
        who = "mean a" if head is None else f"h{head + 1} a"
        line = Text.assemble(fit(f"  {who}", LABEL_WIDTH, self.style_of("label")))
        for token, weight in zip(read, weights):
            line.append_text(safe_text(f"{quote(piece_text(view.trace, token))} {num(weight)}  "))
        return line


def rnn_layers(step: Step) -> list[tuple[str, Sequence[float], str, float]]:
    """(label, vector, note, strip scale) of each state a toolkit's RNN has beside h_t: an LSTM's c_t, then a
    stacked RNN's lower layers' h_t (and c_t), top down; none for attnstep's one-layer GRU or without vectors.
    An h_t lies in (-1, 1); a c_t is not bounded so, and its strip is on its own scale."""

    def cell(vector: Sequence[float]) -> float:
        return max(map(abs, vector)) or 1.0

    rows: list[tuple[str, Sequence[float], str, float]] = []
    if step.cell is not None:
        rows.append(("c_t", step.cell, "the LSTM's cell state", cell(step.cell)))
    for k in reversed(range(len(step.layer_states) - 1)):
        hidden = step.layer_states[k]
        rows.append((f"h_t ({k + 1})", hidden, f"layer {k + 1}'s h_t", TANH_SCALE))
        if step.layer_cells:
            rows.append((f"c_t ({k + 1})", step.layer_cells[k], f"layer {k + 1}'s c_t", cell(step.layer_cells[k])))
    return rows
