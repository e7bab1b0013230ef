"""Attention for the current step: per source word the raw score e_ti, weight a_ti and a_ti·h_i."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text

from attnstep.tui.glyphs import bar, max_abs, norm, num
from attnstep.tui.lines import LinesView, fit
from attnstep.tui.safe import visible
from attnstep.tui.stages import View

MAX_WORD_WIDTH = 14


class AttentionPanel(LinesView):
    def build(self, view: View | None) -> list[Text]:
        if view is None:
            return []
        trace, step = view.trace, view.step
        self.set_titles("Attention: score e, weight a = softmax(e), weighted state a·h_i", trace.checkpoint.formula)
        label, dim, changed = self.style_of("label"), self.style_of("dim"), self.style_of("changed")
        word_width = min(MAX_WORD_WIDTH, max(4, *(cell_len(visible(t.surface)) for t in trace.source)))
        wide = self.size.width >= 90
        bar_width = 16 if wide else 10
        strip_width = max(6, min(32, self.size.width - word_width - bar_width - 28))
        header = Text.assemble(
            fit("word", word_width + 1, label), fit("score e", 8, label, right=True), "  ",
            fit("weight a", 6 + bar_width, label), "  ", ("a·h_i", label),
        )
        if step is None:
            return [header, Text("→ computes the first step's attention over these words.", style=dim)]
        states = trace.encoder_states
        scale = max_abs(states) if states else 0.0
        show_score, show_weight, show_sum = view.shows("score"), view.shows("softmax"), view.shows("weight")
        lines = [header]
        for i, token in enumerate(trace.source):
            weight = step.weights[i]
            score = Text(f"{num(step.scores[i]):>8}", style=changed if view.just_done("score") else "") if show_score else fit("·", 8, dim, right=True)
            if show_weight:
                weight_cells = Text.assemble(
                    (num(weight), changed if view.just_done("softmax") else ""), " ", (bar(weight, bar_width), self.style_of("bar"))
                )
            else:
                weight_cells = fit("   ·", 5 + bar_width, dim)
            if show_sum and states:
                weighted = tuple(weight * x for x in states[i])
                scaled = Text.assemble(self.vector(weighted, strip_width, scale), f" {num(norm(weighted)):>5}")
                if view.just_done("weight"):
                    scaled.stylize(changed)
            else:
                scaled = Text("·", style=dim) if states else Text("(no vectors in this trace)", style=dim)
            lines.append(Text.assemble(fit(token.surface, word_width + 1), score, "  ", weight_cells, "  ", scaled))
        if show_weight:
            best = max(range(len(trace.source)), key=lambda i: step.weights[i])
            lines[best + 1].stylize(self.style_of("current"), 0, word_width)
        return lines

    def show(self, view: View | None) -> None:
        super().show(view)
        if view is not None and view.step is not None and view.shows("softmax"):
            # Keep the most attended word on screen when the sentence is longer than the panel.
            best = max(range(len(view.trace.source)), key=lambda i: view.step.weights[i])
            self.scroll_line_into_view(best + 1)
