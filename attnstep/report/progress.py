"""Long jobs are never silent: a progress bar on a terminal, and one summary line on stderr at the end."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from rich.console import Console

from attnstep.report.visible import visible

if TYPE_CHECKING:
    from rich.progress import Progress
    from typing_extensions import Self  # typing.Self from Python 3.11


class Meter:
    """``with Meter(total, "tracing") as meter: … meter.update(done) … meter.finish("1000 traces")``.

    The bar (transient, on stderr) appears only when stderr is a terminal, so logs and pipes get
    just the summary line: what was done and how long it took.
    """

    def __init__(self, total: int | None, label: str) -> None:  # None: not known (a pipe)
        self.total, self.label = total, label
        self.console = Console(stderr=True, highlight=False)
        self.bar: Progress | None = None
        self.started = time.perf_counter()

    def __enter__(self) -> Self:
        self.started = time.perf_counter()
        if sys.stderr.isatty():
            from rich.progress import Progress

            self.bar = Progress(console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total)
        return self

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def finish(self, summary: str) -> None:
        seconds = time.perf_counter() - self.started
        self.console.print(f"attnstep: {visible(summary)} in {seconds:.1f} s", markup=False, soft_wrap=True)


def size_text(size: int) -> str:
    """Bytes as people read them: 803.2 MB, 12.0 KB, 512 bytes."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
