"""``attnstep dump``: traces as JSON for one sentence, or JSON Lines for a file of sentences;
with ``--format pharaoh``, each sentence's alignment links as fast_align writes them; with
``--format text``, its translation (``--scores``: and log-probability; ``--n-best``: the N best);
``--edit SPEC``: one sentence's decoding with steps' attention edited (:mod:`attnstep.trace.edits`)."""

from __future__ import annotations

import itertools
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from attnstep.data.files import output, output_name, refuse_writing_over
from attnstep.engine.stepper import DecodingOptions, Stepper, load_stepper
from attnstep.errors import AttnstepError
from attnstep.report.progress import Meter, size_text
from attnstep.report.visible import visible
from attnstep.text.words import REPLACEMENT, Replacements, is_control, replace_controls
from attnstep.trace.alignment import AS_RECORDED, ViewChoice
from attnstep.trace.edits import apply_edits
from attnstep.trace.records import SourceToken, Trace, View
from attnstep.trace.writer import trace_file_bytes

# Sentences sorted by length inside a window of this many are batched together (little padding),
# then written back in file order.
WINDOW = 512
# A window's JSON lines wait in memory up to this size, then in an unlinked temporary file, so
# memory does not grow with the window (512 full-vector traces are ~400 MB).
SPOOL_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Format:
    """How each input line's trace is written, and what the summary line calls them."""

    # (the input line's number, its trace) → its bytes; the trace is None for a blank line,
    # which has nothing to translate
    render: Callable[[int, Trace | None], bytes]
    noun: str
    # what is written after the last line, and its size: npz's archive of what render gathered
    end: Callable[[IO[bytes]], int] = lambda _: 0


def json_format(precision: int | None, *, indent: bool) -> Format:
    """The trace itself: indented for one sentence, a line each for a file (JSON Lines)."""
    return Format(
        lambda _, trace: b"null\n" if trace is None else trace_file_bytes(trace, precision=precision, indent=indent),
        "traces",
    )


def pharaoh_format(*, words: bool, threshold: float | None) -> Format:
    """A line of ``i-j`` links per sentence (see :mod:`attnstep.trace.alignment`)."""
    from attnstep.trace.alignment import pharaoh_line

    return Format(
        lambda _, trace: (
            b"\n" if trace is None else (pharaoh_line(trace, words=words, threshold=threshold) + "\n").encode()
        ),
        "alignments",
    )


def npz_format() -> Format:
    """Every trace's numbers in one NumPy archive (see :mod:`attnstep.trace.arrays`), written at the
    end: nothing goes out line by line."""
    from attnstep.trace.arrays import ArrayWriter

    arrays = ArrayWriter()

    def render(number: int, trace: Trace | None) -> bytes:
        arrays.add(number, trace)
        return b""

    return Format(render, "traces", end=arrays.write)


def viewed_format(form: Format, view: View | None) -> Format:
    """``form`` writing each trace with its steps' scores and weights, its alignment, read off a
    Transformer's ``view`` (None: as the engine recorded them, its default view)."""
    if view is None:
        return form
    return replace(
        form, render=lambda number, trace: form.render(number, None if trace is None else trace.with_view(view))
    )


def text_format(*, scores: bool, n_best: bool) -> Format:
    """The translation, a line per input line (a blank line for a blank one); ``scores``: a tab and
    its log-probability, log p(translation | sentence), after it. ``n_best``: a line per result of
    the beam's n-best list, best first, each the input line's number and a tab before it (a blank
    input line has one, its translation empty)."""

    def score(logprob: float) -> str:
        return f"\t{logprob:.4f}" if scores else ""

    def render(number: int, trace: Trace | None) -> bytes:
        if not n_best:
            return b"\n" if trace is None else (trace.translation + score(trace.logprob) + "\n").encode()
        if trace is None:
            return f"{number}\t\n".encode()
        assert trace.beam is not None  # an n-best list comes from a beam search
        return "".join(f"{number}\t{r.translation}{score(r.score)}\n" for r in trace.beam.n_best).encode()

    return Format(render, "translations")


class Decoding(DecodingOptions, total=False):
    """How dump decodes: :func:`~attnstep.engine.stepper.load_stepper`'s settings."""

    device: str  # auto, cpu or cuda
    threads: int  # torch's CPU threads (0: its default)


def dump_sentence(
    checkpoint: Path,
    sentence: str,
    out: Path | None,
    form: Format,
    decoding: Decoding,
    *,
    target: str | None = None,
    view: ViewChoice = AS_RECORDED,
    edits: tuple[str, ...] = (),
) -> None:
    """One trace; ``target``: the given translation forced token by token instead of decoding; ``view``:
    a Transformer's alignment; ``edits``: --edit SPECs, each step's attention edited and decoding on from it."""
    stepper = load_stepper(checkpoint, **decoding)
    form = viewed_format(form, view.view(stepper.info.architecture, None))
    trace = stepper.translate(sentence) if target is None else stepper.score_reference(sentence, target)
    trace = apply_edits(trace, edits, stepper.edit)
    data = form.render(1, trace)
    with output(out) as handle:
        handle.write(data)
        form.end(handle)


STDIN = "-"  # the --input that means standard input


@contextmanager
def open_input(path: Path) -> Iterator[IO[bytes]]:
    """--input's file, or standard input for ``-``, as bytes; every failure to open is one line."""
    if str(path) == STDIN:
        yield sys.stdin.buffer
        return
    try:
        # Opened outside ``with``: an OSError of the body's (a write to a closed pipe) is not a failure to read.
        handle = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise AttnstepError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        yield handle


def read_sentences(handle: IO[bytes], name: str) -> Iterator[str]:
    """The sentences of an open --input, one a line, read as they are needed (a file of any length, a pipe)."""
    try:
        for number, line in enumerate(handle, start=1):
            try:
                yield line.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError as exc:
                raise AttnstepError(
                    f"{name} line {number} is not UTF-8 (byte 0x{line[exc.start]:02X} at byte {exc.start + 1})"
                ) from None
    except OSError as exc:
        raise AttnstepError(f"cannot read {name}: {exc.strerror or exc}") from None


def stream_sentences(path: Path) -> Iterator[str]:
    """The sentences of the file ``path``, one a line, read as they are needed."""
    with open_input(path) as handle:
        yield from read_sentences(handle, str(path))


def _source(stepper: Stepper, number: int, sentence: str, replacements: Replacements) -> tuple[SourceToken, ...]:
    """The tokens of one input line: () for a blank line; a control character is read as
    REPLACEMENT and shown as itself, escaped, where a token is just that character."""
    cleaned, was = replace_controls(sentence)
    if was:
        replacements.add(number, sum(map(is_control, was)))
    if not cleaned.strip():
        return ()
    try:
        tokens = stepper.source_tokens(cleaned)
    except AttnstepError as exc:
        raise AttnstepError(f"line {number}: {exc}") from None
    stand_ins = [i for i, token in enumerate(tokens) if token.surface == REPLACEMENT]
    if not was or len(stand_ins) != len(was):  # a subword model's pieces may split or merge them
        return tokens
    surfaces = dict(zip(stand_ins, map(visible, was)))
    return tuple(replace(token, surface=surfaces.get(i, token.surface)) for i, token in enumerate(tokens))


def is_regular(handle: IO[bytes]) -> bool:
    """Whether an input is a regular file; a pipe or a terminal is read only once, as it comes."""
    try:
        return stat.S_ISREG(os.fstat(handle.fileno()).st_mode)
    except (OSError, ValueError):  # no descriptor: a test's stdin
        return False


def line_count(handle: IO[bytes]) -> int | None:
    """How many lines a regular file holds, for the progress bar, counted and rewound; None for
    a pipe or a terminal."""
    if not is_regular(handle):
        return None
    count, last = 0, b""
    for block in iter(lambda: handle.read(1 << 20), b""):
        count, last = count + block.count(b"\n"), block
    handle.seek(0)
    return count + (1 if last and not last.endswith(b"\n") else 0)


def trace_lines(stepper: Stepper, sentences: Iterable[str], batch_size: int, precision: int | None) -> Iterator[bytes]:
    """One JSON line per sentence, in input order."""
    return rendered_lines(stepper, sentences, batch_size, json_format(precision, indent=False))


def rendered_lines(
    stepper: Stepper,
    sentences: Iterable[str],
    batch_size: int,
    form: Format,
    replacements: Replacements | None = None,
    window_size: int = WINDOW,
) -> Iterator[bytes]:
    """``form``'s lines of each sentence, in input order; memory holds one window's sources, one
    batch's traces and at most SPOOL_BYTES of finished lines. A window of 1 answers each line before
    the next is read (a pipe both ways)."""
    numbered = enumerate(sentences, start=1)
    replaced = Replacements() if replacements is None else replacements
    first = 1  # the number of the window's first line
    while window := [
        _source(stepper, n, sentence, replaced) for n, sentence in itertools.islice(numbered, window_size)
    ]:
        order = sorted((i for i in range(len(window)) if window[i]), key=lambda i: len(window[i]))
        spans = [(0, 0)] * len(window)  # (offset, size) of each sentence's lines in the spool
        with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                for i, trace in zip(chunk, stepper.decode_batch([window[i] for i in chunk])):
                    line = form.render(first + i, trace)
                    spans[i] = (spool.tell(), len(line))
                    spool.write(line)
            for i, (tokens, (offset, size)) in enumerate(zip(window, spans)):
                spool.seek(offset)
                yield spool.read(size) if tokens else form.render(first + i, None)
        first += len(window)


def dump_file(
    checkpoint: Path,
    input: Path,
    out: Path | None,
    form: Format,
    decoding: Decoding,
    *,
    batch_size: int,
    view: ViewChoice = AS_RECORDED,
) -> None:
    written = done = 0
    with open_input(input) as source:
        refuse_writing_over(source, out, _input_name(input))
        stepper = load_stepper(checkpoint, **decoding)
        form = viewed_format(form, view.view(stepper.info.architecture, None))
        sentences = read_sentences(source, _input_name(input))
        replacements = Replacements()
        # A pipe or a terminal is answered a line at a time, as fairseq-interactive does: whoever
        # writes the next line may be waiting for this one's answer.
        streaming = not is_regular(source)
        lines = rendered_lines(stepper, sentences, batch_size, form, replacements, 1 if streaming else WINDOW)
        with Meter(line_count(source), "tracing") as meter, output(out) as handle:
            for done, line in enumerate(lines, 1):
                handle.write(line)
                if streaming:
                    handle.flush()
                written += len(line)
                meter.update(done)
            if not done:
                raise AttnstepError(f"{_input_name(input)} has no sentences")
            written += form.end(handle)
    if replacements.lines:
        meter.console.print(f"attnstep: {replacements}", markup=False, soft_wrap=True)
    meter.finish(f"{done} {form.noun}, {size_text(written)}, written to {output_name(out)}")


def _input_name(path: Path) -> str:
    return "standard input" if str(path) == STDIN else str(path)
