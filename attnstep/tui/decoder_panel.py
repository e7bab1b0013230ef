"""The decoder side of the current step: input word, h_t, C_t, [h_t; C_t] and the attentional vector."""

from __future__ import annotations

from rich.text import Text

from attnstep.tui.glyphs import norm, num
from attnstep.tui.lines import LinesView, fit
from attnstep.tui.safe import safe_text
from attnstep.tui.stages import View

LABEL_WIDTH = 11
NOTE_WIDTH = 31  # the longest note after a strip: "  ‖h̃_t‖ 1.63  = tanh(W_c[…])"
TANH_SCALE = 1.0  # h_t (a GRU state) and h~_t (a tanh) lie in (-1, 1)


class DecoderPanel(LinesView):
    def build(self, view: View | None) -> list[Text]:
        if view is None:
            return []
        trace, step = view.trace, view.step
        additive = trace.checkpoint.attention == "additive"
        h = "s_t" if additive else "h_t"
        self.set_titles("Decoder")
        label, dim, changed = self.style_of("label"), self.style_of("dim"), self.style_of("changed")
        if step is None:  # the same rows, empty: step 1 then repaints only what it fills in
            return [Text.assemble(fit("input", LABEL_WIDTH, label), ("→ takes step 1", dim))] + [
                Text.assemble(fit(name, LABEL_WIDTH, label), ("·", dim)) for name in (h, "C_t", f"[{h}; C_t]", "h̃_t")
            ]
        previous = "the start symbol" if step.index == 0 else f"the word chosen at step {step.index}"
        lines = [Text.assemble(fit("input", LABEL_WIDTH, label), safe_text(step.input_token, self.style_of("chosen")), (f"  ({previous})", label))]
        if step.hidden is None:
            lines.append(Text("h_t, C_t, [h_t; C_t] and h̃_t are not in this trace (dumped with --no-vectors).", style=dim))
            return lines
        width = max(8, min(40, self.size.width - LABEL_WIDTH - NOTE_WIDTH))
        context_scale = view.state_scale  # C_t is a weighted mean of the h_i: the same scale

        def row(name: str, stage: str, cells: Text, note: str) -> Text:
            if not view.shows(stage):
                return Text.assemble(fit(name, LABEL_WIDTH, label), ("·", dim))
            line = Text.assemble(fit(name, LABEL_WIDTH, label), cells, ("  " + note, label))
            if view.just_done(stage):
                line.stylize(changed, 0, LABEL_WIDTH)
            return line

        half = max(4, width // 2)
        hidden_size = len(step.hidden)
        lines += [
            row(h, "rnn", self.vector(step.hidden, width, TANH_SCALE), f"‖{h}‖ {num(norm(step.hidden))}"),
            row("C_t", "sum", self.vector(step.context, width, context_scale), f"‖C_t‖ {num(norm(step.context))}  = Σ a_i·h_i"),
            row(
                f"[{h}; C_t]",
                "output",
                Text.assemble(
                    self.vector(step.concat[:hidden_size], half, TANH_SCALE), ("│", label), self.vector(step.concat[hidden_size:], half, context_scale)
                ),
                f"{hidden_size} + {len(step.context)}",
            ),
            row("h̃_t", "output", self.vector(step.attentional, width, TANH_SCALE), f"‖h̃_t‖ {num(norm(step.attentional))}  = tanh(W_c[…])"),
        ]
        return lines
