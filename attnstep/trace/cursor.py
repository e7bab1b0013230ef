"""Cursors over a trace's records: the UI's moves (step, back, goto, sub-step), with no torch involved."""

from __future__ import annotations

from attnstep.trace.records import STAGE_COUNT, Step, Trace


class TraceCursor:
    """Step/back/goto over a trace's records: what the UI's moves are, with no torch involved.

    ``position`` counts the steps shown: 0 shows only the encoder, ``len(trace.steps)``
    shows the whole decoding. ``current`` is the step the screen describes.
    """

    def __init__(self, trace: Trace, position: int = 0):
        self.trace = trace
        self.position = 0
        self.goto(position)

    @property
    def total(self) -> int:
        return len(self.trace.steps)

    @property
    def current(self) -> Step | None:
        return self.trace.steps[self.position - 1] if self.position else None

    @property
    def visible(self) -> tuple[Step, ...]:
        return self.trace.steps[: self.position]

    def step(self) -> bool:
        return self.goto(self.position + 1)

    def back(self) -> bool:
        return self.goto(self.position - 1)

    def goto(self, position: int) -> bool:
        """Move to ``position`` (clamped); returns whether the cursor moved."""
        clamped = max(0, min(position, self.total))
        moved = clamped != self.position
        self.position = clamped
        return moved

    def end(self) -> bool:
        return self.goto(self.total)

    def restart(self) -> bool:
        return self.goto(0)


class StepCursor(TraceCursor):
    """A :class:`TraceCursor` that can also stop inside a step, at one of its sub-steps.

    ``stage`` (1..``trace.stage_count``) says how much of the current step is shown; the last is
    the whole step, and the only stage there is at position 0 (the encoder alone). Which
    computation each stage is depends on the scorer; that is the UI's business, the
    arithmetic of moving is here.
    """

    def __init__(self, trace: Trace, position: int = 0, stage: int = STAGE_COUNT):
        self.stage = trace.stage_count
        super().__init__(trace)
        self.goto(position, stage)

    @property
    def partial(self) -> bool:
        """True when the current step is shown only up to a stage before the pick."""
        return self.position > 0 and self.stage < self.trace.stage_count

    def goto(self, position: int, stage: int = STAGE_COUNT) -> bool:
        """Move to ``position`` (clamped) at ``stage`` (clamped; whole step by default)."""
        before = (self.position, self.stage)
        super().goto(position)
        last = self.trace.stage_count
        self.stage = max(1, min(stage, last)) if self.position else last
        return (self.position, self.stage) != before

    def step(self) -> bool:
        """Complete a partly shown step, or else take the next one whole."""
        if self.partial:
            return self.goto(self.position)
        return self.goto(self.position + 1)

    def sub_step(self, delta: int) -> bool:
        """One stage forward (into the next step's first stage) or back (to the previous step, whole)."""
        if delta > 0:
            if self.partial:
                return self.goto(self.position, self.stage + 1)
            return self.position < self.total and self.goto(self.position + 1, 1)
        if self.stage > 1 and self.position:
            return self.goto(self.position, self.stage - 1)
        return self.back()
