"""Helpers shared by the TUI tests: build the app on the tiny seeded model and wait for its workers."""

from __future__ import annotations

import asyncio
import functools

from attnstep.tui import make_app

SENTENCE = "une voiture rouge court dans la rue ."


def app_on(stepper, sentence: str | None = SENTENCE, **kwargs):
    """The app the CLI builds, but over the session's already-loaded tiny stepper."""
    return make_app(source_factory=lambda: stepper, sentence=sentence, origin="tiny", **kwargs)


async def settle(pilot) -> None:
    """Wait until no worker is running and every message they posted has been handled."""
    app = pilot.app
    for _ in range(50):  # a load worker starts a decode worker: a few rounds at most
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers):
            return
    raise AssertionError("workers kept running")


def row_of(lines: list[str], word: str) -> str:
    return next(line for line in lines if line.startswith(word))


def async_test(test):
    """Run an ``async def`` test in its own event loop (no asyncio plugin is installed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run
