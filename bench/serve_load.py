"""A class over SSH: N concurrent sessions of `attnstep serve`, stepping at a class's pace.

The server runs as `attnstep serve` in its own process (the shipped checkpoint, or a tiny one
if it is missing). N asyncssh clients log in with passwords, each types an example sentence
and then presses → (← on the way back) every 1–3 s, randomised, for --seconds. A key's
latency is the time from writing it to the arrival of the bytes that draw the new step
counter ("step k"), found in the output with its escape sequences taken out: Textual writes
a changed segment of a line whole, so the counter arrives as one run of text (a pyte screen
fed the same bytes showed it every time, 154 of 154 keys, when this was checked).
(This bench first kept a pyte screen per client: emulating 100 terminals took 86% of this
process's CPU while students arrived, its event loop then read answers late, and that
counted as the server's latency. Students' terminals run on their own machines.)

Memory is the server's and its session processes' proportional set size (PSS: shared pages
split between the processes that share them) once every session is stepping, minus the
server's with the model loaded and no session, per session. One local `attnstep translate`
on the same sentence is then measured the same way, in the same run.

With --burst N, all N students instead log in at the same moment, as a class does when the
teacher says "go": each one's time from the start of its SSH connection to the app's first
frame on its screen (the sentence box's prompt in its output), and the memory per session
once all N are in. This process runs the N clients on the same cores as the server, so the
figures include its work.

Targets (issue 4): p95 keypress → screen update ≤ 150 ms, ≤ 60 MB per session, zero errors.
Targets (issue 10): --burst 30: p95 login → first frame ≤ 1.5 s; --burst 100: ≤ 5 s;
≤ 20 MB PSS per session; --sessions 100: p95 keypress → screen update ≤ 50 ms.

    python bench/serve_load.py [--sessions 30] [--seconds 60] [--checkpoint DIR]
    python bench/serve_load.py --burst 30
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import asyncssh
from common import DEFAULT_CHECKPOINT, ROOT
from terminal import CLI, Terminal, python
from tui_latency import checkpoint_or_tiny, percentile

from attnstep.data.model_card import model_card_examples
from attnstep.serve.auth import add_user

PASSWORD = "bench"
RIGHT, LEFT = b"\x1b[C", b"\x1b[D"
SIZE = (120, 36)  # columns, rows: a laptop terminal, where the panels are tabs (too narrow for the grid beside them)
KEY_TIMEOUT = 10.0  # a key unanswered this long counts as an error
FIRST_FRAME = "sentence and press Enter"  # the sentence box's prompt, whatever the model's language
# CSI (cursor, colours, modes), OSC (title) and two-character escapes: what remains is the text drawn
ESCAPE = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[ -/]*[0-~])")


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


def parents() -> dict[int, int]:
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                found[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    return found


@dataclass
class ClassMemory:
    shared_pss: float  # the server's, and the zygote's where there is one
    sessions_pss: list[float]  # each session process's (spares waiting for a student included)
    sessions_rss: list[float]


def class_memory(server: int) -> ClassMemory:
    """The memory of the server, of its zygote if it has one, and of each session process below them."""
    shared, sessions = class_processes(server)
    memory = ClassMemory(sum(map(pss_mb, shared)), [], [])
    for pid in sessions:
        try:
            memory.sessions_pss.append(pss_mb(pid))
            memory.sessions_rss.append(rss_mb(pid))
        except OSError:
            continue  # ended while being measured
    return memory


def class_processes(server: int) -> tuple[list[int], list[int]]:
    """The server and its zygote, if it has one (which forks the sessions); and each session process below them."""
    tree = parents()
    shared = [server, *(pid for pid, parent in tree.items() if parent == server and pid_is_zygote(pid))]
    return shared, [pid for pid, parent in tree.items() if parent in shared and pid not in shared]


def pid_is_zygote(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"attnstep.serve.zygote" in cmdline.read()
    except OSError:
        return False


@dataclass
class ClassCpu:
    """Where the CPU went in a window of the run: CPU seconds, by whom, and the keys sent meanwhile."""

    keys: int  # keys sent in the window
    window: float  # its seconds
    sessions: float  # the session processes' CPU seconds
    server: float  # the server's and its zygote's
    clients: float  # this benchmark's own process: the students' clients

    def total(self) -> float:
        """CPU seconds in all, every party's."""
        return self.sessions + self.server + self.clients

    def line(self, cores: int) -> str:
        per_key = 1000 / max(1, self.keys)  # ms per key for each CPU second
        return (
            f"CPU per key: sessions {self.sessions * per_key:.1f} ms, server {self.server * per_key:.1f} ms,"
            f" the students' clients (this bench) {self.clients * per_key:.1f} ms;"
            f" {self.total() / self.window:.2f} of {cores} cores busy ({self.keys} keys in {self.window:.0f} s)"
        )


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (0 where it has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuLook(NamedTuple):
    """One look at the class's CPU: when, the server's and zygote's and each session's by pid, and this process's."""

    at: float  # time.perf_counter()
    shared: dict[int, float]
    sessions: dict[int, float]
    own: float


def look_at_cpu(server: int) -> CpuLook:
    shared, sessions = class_processes(server)
    at, own = time.perf_counter(), sum(os.times()[:2])
    return CpuLook(at, {pid: process_cpu(pid) for pid in shared}, {pid: process_cpu(pid) for pid in sessions}, own)


def cpu_between(students: list[Student], a: CpuLook, b: CpuLook) -> ClassCpu:
    """Where the CPU went between two looks, and how many keys the students sent meanwhile."""
    keys = sum(a.at <= sent < b.at for student in students for sent in student.sent)
    # A session that started inside the window counts from 0; one that ended inside it is left out.
    session_cpu = sum(cpu - a.sessions.get(pid, 0.0) for pid, cpu in b.sessions.items())
    shared_cpu = sum(cpu - a.shared.get(pid, 0.0) for pid, cpu in b.shared.items())
    return ClassCpu(keys, b.at - a.at, session_cpu, shared_cpu, b.own - a.own)


def per_session(alone: ClassMemory, busy: ClassMemory, sessions: int) -> tuple[float, float, float]:
    """PSS per session: a session process's, plus its share of what the server and zygote grew by (both
    given too); and a session process's RSS."""
    if not busy.sessions_pss:
        return float("nan"), float("nan"), float("nan")
    growth = (busy.shared_pss - alone.shared_pss) / max(1, sessions)
    return statistics.mean(busy.sessions_pss) + growth, growth, statistics.mean(busy.sessions_rss)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Student:
    def __init__(self, number: int, port: int, sentence: str, rng: random.Random) -> None:
        self.number, self.port, self.sentence, self.rng = number, port, sentence, rng
        self.latencies: list[float] = []
        self.sent: list[float] = []  # when each key was pressed (perf_counter)
        self.errors: list[str] = []
        self.first_frame = 0.0
        self.in_at = math.inf  # when its translation was on screen: from then on it steps

    def connect(self):
        return asyncssh.connect(
            "127.0.0.1",
            self.port,
            username=f"s{self.number}",
            password=PASSWORD,
            known_hosts=None,
            client_keys=None,
            agent_path=None,
        )

    async def run(self, stop_at: float) -> None:
        try:
            started = time.perf_counter()
            async with self.connect() as conn:
                process = await first_frame(conn)
                self.first_frame = time.perf_counter() - started
                process.stdin.write(self.sentence.encode() + b"\r")
                self.in_at, match = await read_until(process, r"step 0 of (\d+) ", 120)
                await self.step(process, stop_at, int(match.group(1)))
                process.stdin.write(b"q")
                await process.wait_closed()
        except Exception as exc:  # noqa: BLE001 (every failure is counted, none ends the benchmark)
            self.errors.append(f"student {self.number}: {type(exc).__name__}: {exc}")

    async def arrive(self, everyone_in: asyncio.Event, measured: asyncio.Event) -> None:
        """Log in, note the first frame, and stay until the class's memory has been measured."""
        try:
            started = time.perf_counter()
            async with self.connect() as conn:
                await first_frame(conn)
                self.first_frame = time.perf_counter() - started
                everyone_in.set()
                await measured.wait()  # then leave by closing the connection, as a closed laptop does
        except Exception as exc:  # noqa: BLE001 (as above)
            self.errors.append(f"student {self.number}: {type(exc).__name__}: {exc}")
        finally:
            everyone_in.set()

    async def step(self, process, stop_at: float, total: int) -> None:
        """→ to the last step, ← back to the encoder, and again, until ``stop_at``."""
        position, direction = 0, 1
        while True:
            await asyncio.sleep(self.rng.uniform(1.0, 3.0))
            # No key after the end: it would be answered while the rest of the class quits at once,
            # 100 apps exiting on two cores (such keys took 230 ms at the median).
            if time.perf_counter() >= stop_at:
                break
            if not 0 <= position + direction <= total:
                direction = -direction
            position += direction
            sent = time.perf_counter()
            process.stdin.write(RIGHT if direction > 0 else LEFT)
            arrived, _ = await read_until(process, rf"step {position}(?!\d)", KEY_TIMEOUT)
            self.latencies.append(arrived - sent)
            self.sent.append(sent)


def key_phases(students: list[Student]) -> dict[str, list[float]]:
    """Key → screen latencies while others still arrive and once all are in: students step as soon as
    their translation is on screen, while others still log in and translate, and the two phases load
    the machine differently."""
    all_in = max(s.in_at for s in students)
    phases: dict[str, list[float]] = {"while others arrive": [], "once all are in": []}
    for student in students:
        for sent, latency in zip(student.sent, student.latencies):
            phases["while others arrive" if sent < all_in else "once all are in"].append(latency)
    return phases


def phase_lines(students: list[Student], indent: str = "  ") -> list[str]:
    """:func:`key_phases`, a line each."""
    return [
        f"{indent}{phase:<23} median {statistics.median(keys) * 1000:6.1f} ms   p95 {percentile(keys, 0.95) * 1000:6.1f} ms"
        f"   ({len(keys)} keys)"
        for phase, keys in key_phases(students).items()
        if keys
    ]


async def read_until(process: asyncssh.SSHClientProcess, pattern: str, timeout: float) -> tuple[float, re.Match]:
    """Read until ``pattern`` (a regex) matches the text that arrives from now on: when it did, and the match."""
    deadline = time.perf_counter() + timeout
    seen = bytearray()
    while not (match := re.search(pattern, text := ESCAPE.sub(b"", seen).decode(errors="replace"))):
        data = await asyncio.wait_for(process.stdout.read(1 << 16), deadline - time.perf_counter())
        if not data:
            raise EOFError(f"the session ended; its output ends: {text[-160:]!r}")
        seen += data
    return time.perf_counter(), match


async def first_frame(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientProcess:
    """Open the app in a terminal on ``conn`` and wait for its first frame (the sentence box's prompt)."""
    process = await conn.create_process(term_type="xterm-256color", term_size=SIZE, encoding=None)
    await read_until(process, FIRST_FRAME, 120)
    return process


def start_server(checkpoint: Path, passwords: Path, folder: Path, *options: str) -> tuple[subprocess.Popen, int]:
    """`attnstep serve` in its own process on a free port, logging to FOLDER/server.log: (process, port)."""
    port = free_port()
    with open(folder / "server.log", "w") as log:  # the server writes to its own copy of the handle
        server = subprocess.Popen(
            python(
                *CLI,
                "serve",
                "--checkpoint",
                str(checkpoint),
                "--port",
                str(port),
                "--passwords",
                str(passwords),
                "--host-key",
                str(folder / "host_key"),
                *options,
            ),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    return server, port


def stop_server(server: subprocess.Popen, folder: Path) -> str:
    """Stop the server and remove its folder: its log."""
    server.terminate()
    server.wait(30)
    log = (folder / "server.log").read_text()
    shutil.rmtree(folder, ignore_errors=True)
    return log


async def server_ready(server: subprocess.Popen, folder: Path) -> None:
    """Wait until the server listens and, where it keeps spare sessions, has them started."""
    deadline = time.monotonic() + 600
    while "students connect with" not in (log := (folder / "server.log").read_text()) or (
        "starting" in log and "spare sessions ready" not in log
    ):
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench: the server did not start:\n{log}")
        await asyncio.sleep(0.2)


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


def load_average() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


async def burst(students: list[Student], server: int) -> ClassMemory:
    """Every student logs in at once; the class's memory once all are in."""
    measured = asyncio.Event()
    arrivals = [asyncio.Event() for _ in students]
    tasks = [asyncio.ensure_future(s.arrive(event, measured)) for s, event in zip(students, arrivals)]
    await asyncio.gather(*(event.wait() for event in arrivals))
    memory = class_memory(server)
    measured.set()
    await asyncio.gather(*tasks)
    return memory


async def steady(students: list[Student], seconds: float, server: int) -> tuple[ClassMemory, ClassCpu, ClassCpu]:
    """Students arrive over ~10 s and step until ``seconds`` after the last; the class's memory mid-run,
    and where the CPU went over the second half of the run, once every student steps, and while they
    arrived (from the first login until the last student's translation is on screen)."""
    stop_at = time.perf_counter() + 10 + seconds
    tasks = []
    arrival_start = await asyncio.to_thread(look_at_cpu, server)
    for student in students:
        tasks.append(asyncio.ensure_future(student.run(stop_at)))
        await asyncio.sleep(10 / len(students))
    while any(s.in_at == math.inf and not s.errors for s in students) and time.perf_counter() < stop_at:
        await asyncio.sleep(0.1)
    arrival_end = await asyncio.to_thread(look_at_cpu, server)
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()) / 2)  # mid-run: every session stepping
    # In a thread: reading 100 processes' smaps took this event loop ~0.2 s, which the keys then waited for
    memory = await asyncio.to_thread(class_memory, server)
    stepping_start = await asyncio.to_thread(look_at_cpu, server)
    await asyncio.sleep(max(0.0, stop_at - 1 - time.perf_counter()))
    stepping_end = await asyncio.to_thread(look_at_cpu, server)
    await asyncio.gather(*tasks)
    stepping = cpu_between(students, stepping_start, stepping_end)
    return memory, stepping, cpu_between(students, arrival_start, arrival_end)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long every student steps once all are in")
    parser.add_argument(
        "--burst", type=int, metavar="N", help="N students log in at once: login → first frame and memory"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    count = args.burst or args.sessions
    checkpoint = checkpoint_or_tiny(args.checkpoint)
    examples = model_card_examples(checkpoint)
    folder = Path(tempfile.mkdtemp(prefix="serve-load-"))
    passwords = folder / "passwords"
    for number in range(count):
        add_user(passwords, f"s{number}", PASSWORD)
    server, port = start_server(checkpoint, passwords, folder, "--max-sessions", str(count))
    load_before = load_average()
    try:
        await server_ready(server, folder)
        await asyncio.sleep(2)  # whatever the server still starts after that
        alone = class_memory(server.pid)
        rng = random.Random(args.seed)
        students = [Student(n, port, examples[n % len(examples)], random.Random(rng.random())) for n in range(count)]
        if args.burst:
            busy, cpu, arriving = await burst(students, server.pid), None, None
        else:
            busy, cpu, arriving = await steady(students, args.seconds, server.pid)
        load_after = load_average()
    finally:
        log = stop_server(server, folder)

    errors = [e for s in students for e in s.errors]
    first = [s.first_frame for s in students if s.first_frame]
    per_pss, growth, per_rss = per_session(alone, busy, len(first))
    if args.burst:
        print(f"attnstep serve: {count} SSH logins at once on {os.cpu_count()} cores, checkpoint {checkpoint.name}")
    else:
        print(
            f"attnstep serve: {count} SSH sessions on {os.cpu_count()} cores, checkpoint {checkpoint.name}, "
            f"a key every 1–3 s for {args.seconds:.0f} s"
        )
    print(f"machine                   {load_before} before, {load_after} at the end")
    if first:
        print(
            f"login → first frame       p50 {statistics.median(first):.2f} s   p95 {percentile(first, 0.95):.2f} s"
            f"   max {max(first):.2f} s   ({len(first)} sessions)"
        )
    print(
        f"session processes         {len(busy.sessions_pss)} for {len(first)} sessions"
        f" ({len(alone.sessions_pss)} started before anyone logged in)"
    )
    print(
        f"memory per session        {per_pss:.1f} MB PSS: its process {per_pss - growth:.1f} (RSS {per_rss:.1f}),"
        f" the server's growth {growth:.1f}; server alone {alone.shared_pss:.0f} MB PSS"
    )
    p95 = None
    if not args.burst:
        latencies = [x for s in students for x in s.latencies]
        local, local_rss = local_translate(checkpoint, examples[0], 40)
        p95 = percentile(latencies, 0.95) * 1000
        print(
            f"keypress → screen update  median {statistics.median(latencies) * 1000:6.1f} ms   p95 {p95:6.1f} ms"
            f"   max {max(latencies) * 1000:6.0f} ms   ({len(latencies)} keys)"
        )
        for line in phase_lines(students):
            print(line)
        if cpu is not None and arriving is not None:
            print(f"once all are in, {cpu.line(os.cpu_count() or 1)}")
            print(f"while they arrive, {arriving.line(os.cpu_count() or 1)}")
            print(
                f"CPU per arrival (login, session, first translation, the keys meanwhile): {arriving.total() / count:.2f} s"
            )
        print(
            f"local attnstep translate  median {statistics.median(local) * 1000:6.1f} ms   p95 {percentile(local, 0.95) * 1000:6.1f} ms"
            f"   ({len(local)} keys, alone; {local_rss:.0f} MB RSS)"
        )
    print(f"errors                    {len(errors)}")
    for error in errors[:10]:
        print(f"  {error}")
    if errors:
        print("the server's log ends:", *log.splitlines()[-15:], sep="\n  ")
    if args.burst:
        first_target = 1.5 if count <= 30 else 5.0
        checks = [(f"p95 first frame ≤ {first_target} s", bool(first) and percentile(first, 0.95) <= first_target)]
    else:
        checks = [("p95 keypress ≤ 150 ms", p95 <= 150), ("p95 keypress ≤ 50 ms (100 students)", p95 <= 50)]
    checks += [("≤ 20 MB PSS per session", per_pss <= 20), ("zero errors", not errors)]
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks))


if __name__ == "__main__":
    asyncio.run(main())
