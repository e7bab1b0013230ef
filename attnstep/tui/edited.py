"""What the app says of a step whose attention the user edited (``i``): one wording for the
narration, the worked score, the Next-word panel and the notices, from the step's own record
(``Step.edit``), so a replayed dump with edits reads as the live app does."""

from __future__ import annotations

from attnstep.report.glyphs import num, prob
from attnstep.trace.edits import describe
from attnstep.trace.records import EDIT_MARK, Step, Trace
from attnstep.tui.safe import visible
from attnstep.tui.stages import View, narrate, quote, source_word


def what_was_edited(trace: Trace, step: Step) -> str:
    """ "weights set by you: étudiant 0 → the rest renormalised" ("" for a step the model attended alone)."""
    if step.edit is None:
        return ""
    return f"weights set by you: {visible(describe(step.edit.edit, trace))}"


def edit_note(trace: Trace, step: Step) -> str:
    """The edit and what the model's own weights made of the step, for the narration and the notices."""
    if step.edit is None:
        return ""
    before = step.edit.before
    own = f"{quote(before.chosen_token)}, p = {prob(before.chosen_prob)}"
    now = f"{quote(step.chosen_token)}, p = {prob(step.chosen_prob)}"
    outcome = (
        f"it still outputs {now}" if before.chosen_id == step.chosen_id else f"it outputs {now}; the model's own: {own}"
    )
    return f"{EDIT_MARK} Step {step.index + 1}'s {what_was_edited(trace, step)}; {outcome}."


def narrate_edited(view: View) -> str | None:
    """The narration of an edited step where the edit shows: the whole step (the edit first, then what
    the step did) and the softmax, whose weights the user's replaced; None elsewhere (the usual one)."""
    step = view.step
    if step is None or step.edit is None:
        return None
    stage = view.partial_stage
    if stage is None:
        return f"{edit_note(view.trace, step)} {narrate(view)}"
    if stage.key != "softmax":
        return None
    words = [source_word(token) for token in view.trace.source]
    own, used = step.edit.before.weights, step.weights
    top, best = (max(range(len(words)), key=lambda i: a[i]) for a in (own, used))
    if own == used:  # a Transformer's edit of another head than the one in view
        return (
            f"softmax turns the scores into weights that sum to 1: {quote(words[top])} gets {num(own[top])}, the "
            f"model's own here; the {what_was_edited(view.trace, step)} are of another head (o shows every head)."
        )
    return (
        f"softmax gives the model's own weights ({quote(words[top])} {num(own[top])}); the {what_was_edited(view.trace, step)} "
        f"replace them: {quote(words[best])} gets {num(used[best])}. The rest of the step is computed from these."
    )
