"""Password guessing against `attnstep serve` while a real student keeps logging in.

The server runs as `attnstep serve` in its own process, as in serve_load.py. N guessers try
wrong passwords for one account, each on a new connection as soon as its last one was
refused (what `hydra -t N` does); meanwhile a student with the right password logs in every
second, from the same address, and is timed from the start of the SSH connection to the app's
first frame. Also: how many guesses were answered and how many of those the server checked
(from its log), and the server's memory before and after.

Target (issue 10): every real login ≤ 1 s while 40 guessers run; the server's memory does not grow.

    python bench/serve_guessing.py [--guessers 40] [--seconds 60] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import asyncssh
from common import DEFAULT_CHECKPOINT
from serve_load import PASSWORD, first_frame, load_average, pss_mb, rss_mb, server_ready, start_server, stop_server
from tui_latency import checkpoint_or_tiny, percentile

from attnstep.serve.auth import add_user

GUESSED = "teach"


def connect(port: int, user: str, password: str):
    return asyncssh.connect(
        "127.0.0.1", port, username=user, password=password, known_hosts=None, client_keys=None, agent_path=None
    )


async def guesser(port: int, stop_at: float, answered: list[float]) -> None:
    """Wrong passwords, one connection after another, until ``stop_at``."""
    while time.perf_counter() < stop_at:
        try:
            async with connect(port, GUESSED, f"guess {len(answered)}"):
                pass
        except (asyncssh.PermissionDenied, asyncssh.DisconnectError, OSError):
            answered.append(time.perf_counter())


async def student(port: int, stop_at: float) -> list[float]:
    """Log in every second until ``stop_at``; each login's time to the app's first frame."""
    times = []
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        async with connect(port, "ann", PASSWORD) as conn:
            await first_frame(conn)
            times.append(time.perf_counter() - started)
        await asyncio.sleep(1)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--guessers", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--spares", type=int, help="the server's --spares (its default if not given)")
    args = parser.parse_args()
    checkpoint = checkpoint_or_tiny(args.checkpoint)
    folder = Path(tempfile.mkdtemp(prefix="serve-guessing-"))
    passwords = folder / "passwords"
    add_user(passwords, "ann", PASSWORD)
    add_user(passwords, GUESSED, os.urandom(16).hex())
    server, port = start_server(
        checkpoint, passwords, folder, *(["--spares", str(args.spares)] if args.spares is not None else [])
    )
    load_before = load_average()
    try:
        await server_ready(server, folder)
        await student(port, 0)  # one login first: what every login then finds in place
        await asyncio.sleep(2)
        before = pss_mb(server.pid), rss_mb(server.pid)
        alone = await student(port, time.perf_counter() + 10)
        stop_at = time.perf_counter() + args.seconds
        answered: list[float] = []
        guessers = [asyncio.ensure_future(guesser(port, stop_at, answered)) for _ in range(args.guessers)]
        during = await student(port, stop_at)
        await asyncio.gather(*guessers)
        after = pss_mb(server.pid), rss_mb(server.pid)
        load_after = load_average()
    finally:
        log = stop_server(server, folder)

    spares = "the server's default spares" if args.spares is None else f"--spares {args.spares}"
    print(
        f"attnstep serve ({spares}): {args.guessers} password guessers for {args.seconds:.0f} s, one student logging in"
        f" every second, on {os.cpu_count()} cores, checkpoint {checkpoint.name}"
    )
    print(f"machine                   {load_before} before, {load_after} at the end")
    print(
        f"student login → app       alone: p50 {statistics.median(alone):.2f} s   max {max(alone):.2f} s ({len(alone)} logins)"
    )
    print(
        f"                          during the guessing: p50 {statistics.median(during):.2f} s"
        f"   p95 {percentile(during, 0.95):.2f} s   max {max(during):.2f} s ({len(during)} logins)"
    )
    refused = [line for line in log.splitlines() if f"refused password for {GUESSED!r}" in line]
    checked = [line for line in refused if "unchecked" not in line]
    print(
        f"guesses answered          {len(answered)} ({len(answered) / args.seconds:.1f} a second);"
        f" the server checked {len(checked)} ({len(checked) / args.seconds:.2f} a second)"
    )
    print(
        f"server memory             {before[0]:.0f} → {after[0]:.0f} MB PSS ({before[1]:.0f} → {after[1]:.0f} MB RSS)"
    )
    print("target: every login during the guessing ≤ 1 s {}".format("met" if max(during) <= 1.0 else "MISSED"))


if __name__ == "__main__":
    asyncio.run(main())
