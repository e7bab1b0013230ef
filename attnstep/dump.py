"""``attnstep dump``: traces as JSON for one sentence, or JSON Lines for a file of sentences."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import IO, Iterator

from attnstep.checkpoint import load_checkpoint
from attnstep.errors import AttnstepError
from attnstep.files import atomic_writer
from attnstep.stepper import Stepper
from attnstep.trace import DEFAULT_ALPHA, dumps

# Sentences sorted by length inside a window of this many are batched together, then written
# back in file order: padding stays small while memory stays bounded for any file size.
WINDOW = 512


def load_stepper(checkpoint: Path, *, top_k: int, vectors: bool, beam: int | None = None, alpha: float = DEFAULT_ALPHA) -> Stepper:
    stepper = Stepper(load_checkpoint(checkpoint), top_k=top_k, vectors=vectors, beam=beam, alpha=alpha)
    # torch leaves ~10^5 long-lived objects; every full collection would walk them again while
    # the traces allocate millions of tuples. Frozen, the collector skips them (~10% faster dumps).
    gc.freeze()
    return stepper


def dump_sentence(
    checkpoint: Path, sentence: str, output: Path | None, *, vectors: bool, precision: int | None, top_k: int,
    beam: int | None = None, alpha: float = DEFAULT_ALPHA, target: str | None = None,
) -> None:
    """One trace; ``target``: the given translation forced token by token instead of decoding."""
    stepper = load_stepper(checkpoint, top_k=top_k, vectors=vectors, beam=beam, alpha=alpha)
    trace = stepper.translate(sentence) if target is None else stepper.score_reference(sentence, target)
    data = dumps(trace, precision=precision, indent=True) + b"\n"
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    with atomic_writer(output, "wb") as handle:
        handle.write(data)


def read_sentences(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AttnstepError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise AttnstepError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = text.splitlines()
    if not lines:
        raise AttnstepError(f"{path} has no sentences")
    return lines


def trace_lines(stepper: Stepper, sentences: list[str], batch_size: int, precision: int | None) -> Iterator[tuple[int, bytes]]:
    """(number of sentences done, JSON line) in file order; refuses the first bad line by number."""
    sources = []
    for line_number, sentence in enumerate(sentences, start=1):
        try:
            sources.append(stepper.source_tokens(sentence))
        except AttnstepError as exc:
            raise AttnstepError(f"line {line_number}: {exc}") from None
    for start in range(0, len(sentences), WINDOW):
        window = sources[start : start + WINDOW]
        order = sorted(range(len(window)), key=lambda i: len(sentences[start + i]))
        lines: list[bytes] = [b""] * len(window)
        for b in range(0, len(order), batch_size):
            chunk = order[b : b + batch_size]
            for i, trace in zip(chunk, stepper.decode_batch([window[i] for i in chunk])):
                lines[i] = dumps(trace, precision=precision) + b"\n"
        for offset, line in enumerate(lines):
            yield start + offset + 1, line


def _write_lines(handle: IO[bytes], lines: Iterator[tuple[int, bytes]], total: int) -> None:
    if not sys.stderr.isatty():
        for _, line in lines:
            handle.write(line)
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("tracing", total=total)
        for done, line in lines:
            handle.write(line)
            progress.update(task, completed=done)


def dump_file(
    checkpoint: Path, input: Path, output: Path | None, *, vectors: bool, precision: int | None, top_k: int, batch_size: int,
    beam: int | None = None, alpha: float = DEFAULT_ALPHA,
) -> None:
    sentences = read_sentences(input)
    stepper = load_stepper(checkpoint, top_k=top_k, vectors=vectors, beam=beam, alpha=alpha)
    lines = trace_lines(stepper, sentences, batch_size, precision)
    if output is None:
        _write_lines(sys.stdout.buffer, lines, len(sentences))
        sys.stdout.flush()
        return
    with atomic_writer(output, "wb") as handle:
        _write_lines(handle, lines, len(sentences))
