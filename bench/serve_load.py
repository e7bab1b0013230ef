"""A class over SSH: N concurrent sessions of `attnstep serve`, stepping at a class's pace.

The server runs as `attnstep serve` in its own process (the shipped checkpoint, or a tiny one
if it is missing). N asyncssh clients log in with passwords, each types an example sentence
and then presses → (← on the way back) every 1–3 s, randomised, for --seconds. A key's
latency is the time from writing it to the arrival of the bytes that draw the new step
counter ("step k of"). Memory is the server's and its session processes' proportional set
size (PSS: shared pages split between the processes that share them) once every session is
stepping, minus the server's with the model loaded and no session, per session. One local
`attnstep translate` on the same sentence is then measured the same way, in the same run.

Targets (issue 4): p95 keypress → screen update ≤ 150 ms, ≤ 60 MB per session, zero errors.

    python bench/serve_load.py [--sessions 30] [--seconds 60] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import asyncssh
import pyte
from common import DEFAULT_CHECKPOINT, ROOT
from terminal import CLI, Terminal, python
from tui_latency import checkpoint_or_tiny, percentile

from attnstep.serve.auth import add_user
from attnstep.model_card import model_card_examples

PASSWORD = "bench"
RIGHT, LEFT = b"\x1b[C", b"\x1b[D"
SIZE = (120, 36)  # columns, rows: wide enough for every panel at once
KEY_TIMEOUT = 10.0  # a key unanswered this long counts as an error


def pss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except OSError:
            continue
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Student:
    def __init__(self, number: int, port: int, sentence: str, rng: random.Random) -> None:
        self.number, self.port, self.sentence, self.rng = number, port, sentence, rng
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.first_frame = 0.0
        self.screen = pyte.Screen(*SIZE)
        self.stream = pyte.ByteStream(self.screen)

    async def wait_for(self, process, pattern: str, timeout: float) -> tuple[float, re.Match]:
        """Read until ``pattern`` (a regex) matches the screen; the time it did, and the match.

        The screen, not the byte stream: Textual may redraw only the characters that changed.
        """
        deadline = time.perf_counter() + timeout
        while not (match := re.search(pattern, "\n".join(self.screen.display))):
            data = await asyncio.wait_for(process.stdout.read(1 << 16), deadline - time.perf_counter())
            if not data:
                last = [line.strip() for line in self.screen.display if line.strip()][-2:]
                raise EOFError(f"the session ended; its screen ends: {last}")
            self.stream.feed(data)
        return time.perf_counter(), match

    async def run(self, stop_at: float) -> None:
        try:
            started = time.perf_counter()
            async with asyncssh.connect("127.0.0.1", self.port, username=f"s{self.number}", password=PASSWORD,
                                        known_hosts=None, client_keys=None, agent_path=None) as conn:
                process = await conn.create_process(term_type="xterm-256color", term_size=SIZE, encoding=None)
                self.first_frame = (await self.wait_for(process, "Type a French sentence", 120))[0] - started
                process.stdin.write(self.sentence.encode() + b"\r")
                _, match = await self.wait_for(process, r"step 0 of (\d+) ", 120)
                await self.step(process, stop_at, int(match.group(1)))
                process.stdin.write(b"q")
                await process.wait_closed()
        except Exception as exc:  # every failure is counted, none ends the benchmark
            self.errors.append(f"student {self.number}: {type(exc).__name__}: {exc}")

    async def step(self, process, stop_at: float, total: int) -> None:
        """→ to the last step, ← back to the encoder, and again, until ``stop_at``."""
        position, direction = 0, 1
        while time.perf_counter() < stop_at:
            await asyncio.sleep(self.rng.uniform(1.0, 3.0))
            if not 0 <= position + direction <= total:
                direction = -direction
            position += direction
            sent = time.perf_counter()
            process.stdin.write(RIGHT if direction > 0 else LEFT)
            arrived, _ = await self.wait_for(process, f"step {position} of ", KEY_TIMEOUT)
            self.latencies.append(arrived - sent)


def local_translate(checkpoint: Path, sentence: str, keys: int) -> tuple[list[float], float]:
    """Key latencies and RSS of one `attnstep translate` in a local pty, at the same size."""
    app = Terminal(python(*CLI, "translate", sentence, "--checkpoint", str(checkpoint)), size=SIZE)
    app.wait_for("step 0 of")
    app.quiet(0.5)
    total = int(app.text().split("step 0 of ")[1].split()[0])
    latencies = []
    rng = random.Random(1)
    for i in range(keys):
        position = i % (2 * total)
        forward = position < total
        target = position + 1 if forward else 2 * total - position - 1
        time.sleep(rng.uniform(0.2, 0.5))
        sent = time.perf_counter()
        os.write(app.fd, RIGHT if forward else LEFT)
        latencies.append(app.wait_for(f"step {target} of", 10) - sent)
    rss = rss_mb(app.pid)
    app.close()
    return latencies, rss


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long every student steps once all are in")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    checkpoint = checkpoint_or_tiny(args.checkpoint)
    examples = model_card_examples(checkpoint)
    folder = Path(tempfile.mkdtemp(prefix="serve-load-"))
    passwords = folder / "passwords"
    for number in range(args.sessions):
        add_user(passwords, f"s{number}", PASSWORD)
    port = free_port()
    server = subprocess.Popen(
        python(*CLI, "serve", "--checkpoint", str(checkpoint), "--port", str(port), "--passwords", str(passwords),
               "--host-key", str(folder / "host_key"), "--max-sessions", str(args.sessions)),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "w"),
    )
    try:
        deadline = time.monotonic() + 120
        while "students connect with" not in (folder / "server.log").read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: the server did not start:\n{(folder / 'server.log').read_text()}")
            await asyncio.sleep(0.2)
        server_alone = pss_mb(server.pid), rss_mb(server.pid)
        rng = random.Random(args.seed)
        students = [Student(n, port, examples[n % len(examples)], random.Random(rng.random())) for n in range(args.sessions)]
        # Students arrive over ~10 s, as a class does; each steps for --seconds once the last is in.
        stop_at = time.perf_counter() + 10 + args.seconds
        tasks = []
        for student in students:
            tasks.append(asyncio.ensure_future(student.run(stop_at)))
            await asyncio.sleep(10 / args.sessions)
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()) / 2)  # mid-run: every session stepping
        sessions = children(server.pid)
        class_pss = pss_mb(server.pid) + sum(pss_mb(pid) for pid in sessions)
        class_rss = rss_mb(server.pid) + sum(rss_mb(pid) for pid in sessions)
        await asyncio.gather(*tasks)
    finally:
        server.terminate()
        server.wait(30)
        log = (folder / "server.log").read_text()
        shutil.rmtree(folder, ignore_errors=True)

    latencies = [x for s in students for x in s.latencies]
    errors = [e for s in students for e in s.errors]
    first = [s.first_frame for s in students if s.first_frame]
    local, local_rss = local_translate(checkpoint, examples[0], 40)
    print(f"attnstep serve: {args.sessions} SSH sessions on {os.cpu_count()} cores, checkpoint {checkpoint.name}, "
          f"a key every 1–3 s for {args.seconds:.0f} s")
    print(f"keypress → screen update  median {statistics.median(latencies) * 1000:6.1f} ms   p95 {percentile(latencies, 0.95) * 1000:6.1f} ms"
          f"   max {max(latencies) * 1000:6.0f} ms   ({len(latencies)} keys)")
    print(f"local attnstep translate  median {statistics.median(local) * 1000:6.1f} ms   p95 {percentile(local, 0.95) * 1000:6.1f} ms"
          f"   ({len(local)} keys, alone)")
    print(f"login → first frame       median {statistics.median(first):.2f} s   max {max(first):.2f} s")
    print(f"session processes seen    {len(sessions)}")
    per_pss = (class_pss - server_alone[0]) / max(1, len(sessions))
    per_rss = (class_rss - server_alone[1]) / max(1, len(sessions))
    print(f"memory per session        {per_pss:.1f} MB PSS ({per_rss:.1f} MB RSS); server alone {server_alone[0]:.0f} MB PSS;"
          f" local translate {local_rss:.0f} MB RSS")
    print(f"errors                    {len(errors)}")
    for error in errors[:10]:
        print(f"  {error}")
    if errors:
        print("the server's log ends:", *log.splitlines()[-15:], sep="\n  ")
    p95 = percentile(latencies, 0.95) * 1000
    print("targets: p95 ≤ 150 ms {}, ≤ 60 MB per session {}, zero errors {}".format(
        *("met" if ok else "MISSED" for ok in (p95 <= 150, per_pss <= 60, not errors))))


if __name__ == "__main__":
    asyncio.run(main())
