"""A class in browsers beside a class over SSH: `attnstep serve --web`, measured as serve_load.py measures SSH.

One `attnstep serve` process listens for both (the shipped checkpoint, or a tiny one if it is
missing). Its students are serve_load.py's, with their connection swapped: a browser student
posts the login form, keeps the cookie and opens the websocket, speaking textual.js's protocol
(``["stdin", KEYS]`` text frames; the screen in binary frames) as the page does, with aiohttp's
client instead of a browser (a hundred chromium tabs would take the two cores from the server).
The timings are read as serve_load.py reads them: the first frame is the sentence box's prompt in
what arrived, a key's answer the new step counter.

In one run, on the same server, one phase after the other (each waits until the spares are
started again, so that both ways in meet the same server):

1. --burst N browser students log in at the same moment: login form → the app's first frame
   on screen; then the memory per session with all N in (PSS, as serve_load.py: a session
   process's, plus its share of what the server and zygote grew by);
2. the same N over SSH;
3. --sessions M browser students arrive over 10 s and step (a key every 1–3 s) for --seconds:
   key → screen, and the memory per session mid-run;
4. the same M over SSH.

Targets (issue 24): 30 browser logins at once p95 ≤ 3 s; 100 browser students stepping p95 key →
screen ≤ 100 ms, once all are in (the keys pressed while the rest of the class still arrives, 10
logins a second, are reported beside: those logins alone keep two cores busy, and the CPU each
party used in each phase is printed); ≤ 25 MB PSS per browser session. No key is pressed after
the run's end, when the whole class quits at once.

    python bench/serve_web.py [--burst 30] [--sessions 100] [--seconds 30] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from common import DEFAULT_CHECKPOINT
from serve_load import (
    PASSWORD,
    ClassCpu,
    ClassMemory,
    Student,
    burst,
    class_memory,
    free_port,
    key_phases,
    load_average,
    per_session,
    phase_lines,
    server_ready,
    start_server,
    steady,
    stop_server,
)
from tui_latency import checkpoint_or_tiny, percentile

from attnstep.data.model_card import model_card_examples
from attnstep.serve.auth import add_user
from tests.serve_helpers import BrowserTab

if TYPE_CHECKING:
    from typing_extensions import Self

SPARES_READY = "spare sessions ready"


class Browser:
    """One browser: it logs in as its async context begins, and opens its tab as an SSH client opens a terminal."""

    def __init__(self, url: str, user: str) -> None:
        self.url, self.user = url, user
        self.client: aiohttp.ClientSession | None = None
        self.tab: BrowserTab | None = None

    async def __aenter__(self) -> Self:
        # unsafe: the cookie jar keeps a cookie from an address (127.0.0.1), as a browser does
        self.client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        form = {"user": self.user, "password": PASSWORD}
        async with self.client.post(f"{self.url}login", data=form, allow_redirects=False) as response:
            if response.status != 303:
                await self.client.close()
                raise ConnectionError(f"login refused: {response.status}")
        return self

    async def __aexit__(self, *_) -> None:
        if self.tab is not None:
            await self.tab.close()
        if self.client is not None:
            await self.client.close()

    async def create_process(self, *, term_type: str, term_size: tuple[int, int], encoding: None) -> BrowserTab:
        assert self.client is not None  # logged in by __aenter__
        columns, rows = term_size
        self.tab = BrowserTab(await self.client.ws_connect(f"{self.url}ws?width={columns}&height={rows}"))
        return self.tab


class BrowserStudent(Student):
    """serve_load.py's student, in a browser: ``port`` is the web page's."""

    def connect(self):
        return Browser(f"http://127.0.0.1:{self.port}/", f"s{self.number}")


async def spares_ready(server_log: Path, seen: int) -> int:
    """Wait until the server says its spares are started once more than ``seen`` times: the new count."""
    deadline = time.monotonic() + 600
    while (count := server_log.read_text().count(SPARES_READY)) <= seen:
        if time.monotonic() > deadline:
            raise SystemExit("bench: the spares were not started again")
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # whatever the server still does after that
    return count


def report(name: str, students: list[Student], alone: ClassMemory, busy: ClassMemory, cpu: ClassCpu | None) -> dict:
    first = [s.first_frame for s in students if s.first_frame]
    pss, growth, rss = per_session(alone, busy, len(first))
    errors = [e for s in students for e in s.errors]
    result = {"pss": pss, "errors": errors}
    print(f"{name}")
    if first:
        result["first_p95"] = percentile(first, 0.95)
        print(
            f"  login → first frame     p50 {statistics.median(first):.2f} s   p95 {result['first_p95']:.2f} s"
            f"   max {max(first):.2f} s   ({len(first)} sessions)"
        )
    if cpu is not None:
        latencies = [x for s in students for x in s.latencies]
        if stepped := key_phases(students)["once all are in"]:
            result["key_p95"] = percentile(stepped, 0.95) * 1000
        if latencies:
            print(
                f"  key → screen            median {statistics.median(latencies) * 1000:6.1f} ms"
                f"   p95 {percentile(latencies, 0.95) * 1000:6.1f} ms   max {max(latencies) * 1000:6.0f} ms   ({len(latencies)} keys)"
            )
        for line in phase_lines(students, "    "):
            print(line)
        stepping, arriving = cpu
        print(f"  once all are in, {stepping.line(os.cpu_count() or 1)}")
        print(f"  while they arrive, {arriving.line(os.cpu_count() or 1)}")
        print(
            f"  CPU per arrival (login, session, first translation, the keys meanwhile): {arriving.total() / len(students):.2f} s"
        )
    print(
        f"  memory per session      {pss:.1f} MB PSS: its process {pss - growth:.1f} (RSS {rss:.1f}),"
        f" the server's growth {growth:.1f}"
    )
    print(f"  errors                  {len(errors)}")
    for error in errors[:5]:
        print(f"    {error}")
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--burst", type=int, default=30, metavar="N", help="students logging in at once")
    parser.add_argument("--sessions", type=int, default=100, metavar="M", help="students stepping")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long every student steps once all are in")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    count = max(args.burst, args.sessions)
    checkpoint = checkpoint_or_tiny(args.checkpoint)
    examples = model_card_examples(checkpoint)
    folder = Path(tempfile.mkdtemp(prefix="serve-web-"))
    passwords = folder / "passwords"
    for number in range(count):
        add_user(passwords, f"s{number}", PASSWORD)
    web_port = free_port()
    server, ssh_port = start_server(checkpoint, passwords, folder, "--max-sessions", str(count), "--web", str(web_port))
    rng = random.Random(args.seed)
    load_before = load_average()
    results = {}
    print(f"attnstep serve --web: on {os.cpu_count()} cores, checkpoint {checkpoint.name}")
    try:
        await server_ready(server, folder)
        ready = await spares_ready(folder / "server.log", 0)
        alone = class_memory(server.pid)
        phases = [
            ("browsers, logging in at once", BrowserStudent, web_port, args.burst, False),
            ("SSH, logging in at once", Student, ssh_port, args.burst, False),
            ("browsers, stepping", BrowserStudent, web_port, args.sessions, True),
            ("SSH, stepping", Student, ssh_port, args.sessions, True),
        ]
        for number, (name, kind, port, n, stepping) in enumerate(phases, 1):
            students = [kind(i, port, examples[i % len(examples)], random.Random(rng.random())) for i in range(n)]
            if stepping:
                busy, once_in, arriving = await steady(students, args.seconds, server.pid)
                results[name] = report(name, students, alone, busy, (once_in, arriving))
            else:
                results[name] = report(name, students, alone, await burst(students, server.pid), None)
            if number < len(phases):
                ready = await spares_ready(folder / "server.log", ready)
        load_after = load_average()
    finally:
        log = stop_server(server, folder)
    print(f"machine: {load_before} before, {load_after} at the end")
    if any(r["errors"] for r in results.values()):
        print("the server's log ends:", *log.splitlines()[-15:], sep="\n  ")
    logins = results["browsers, logging in at once"]
    stepping = results["browsers, stepping"]
    checks = [
        (f"{args.burst} browser logins p95 ≤ 3 s", logins.get("first_p95", float("inf")) <= 3.0),
        (
            f"{args.sessions} browsers stepping key p95 ≤ 100 ms (once all are in)",
            stepping.get("key_p95", float("inf")) <= 100.0,
        ),
        ("≤ 25 MB PSS per browser session", max(logins["pss"], stepping["pss"]) <= 25.0),
        ("zero errors", not any(r["errors"] for r in results.values())),
    ]
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks))


if __name__ == "__main__":
    asyncio.run(main())
