"""Enter on a new sentence → its decoded screen, in a real pty at 160×48, against the decoding alone.

The app (``attnstep translate``) is started once on ``--checkpoint``; then, for each sentence, ``n``
opens the input box, the sentence is typed, and the time runs from Enter until the Source panel
lists the sentence's first piece and the status line says "step 0 of" (the decoding done, its
first screen drawn), then until the screen is quiet. Baseline: ``Stepper.translate`` of the same
sentence in this process, on the same number of threads (one, the app's default): what the
decoding costs without the app. Medians; the app's peak RSS at the end.

Target (issue 20): ≤ 2 s after Enter, for a base-size Marian (``bench/marian_speed.py --folder DIR``
builds one).

    python bench/new_sentence.py --checkpoint DIR [--sentences 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import DEFAULT_CHECKPOINT, data_option, test_captions
from terminal import CLI, Terminal, python

QUIET = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--sentences", type=int, default=5)
    data_option(parser)
    args = parser.parse_args()

    import torch

    from attnstep.engine.stepper import load_stepper

    torch.set_num_threads(1)
    stepper = load_stepper(args.checkpoint)
    # Captions whose first pieces differ from the one before, so that each new screen is told apart.
    sentences: list[str] = []
    for caption in test_captions(args.data)[10:]:
        first = stepper.source_tokens(caption)[0].surface
        if not sentences or first != stepper.source_tokens(sentences[-1])[0].surface:
            sentences.append(caption)
        if len(sentences) == args.sentences + 1:
            break

    app = Terminal(python(*CLI, "translate", sentences[0], "--checkpoint", str(args.checkpoint)))
    app.wait_for("step 0 of")
    app.quiet(1.0)
    screens, decodings = [], []
    for sentence in sentences[1:]:
        start = time.perf_counter()
        stepper.translate(sentence)
        decodings.append(time.perf_counter() - start)
        app.press(b"n", "Enter", QUIET)  # the input box, with its hint
        app.press(sentence.encode(), sentence[-10:], QUIET)
        first = stepper.source_tokens(sentence)[0].surface
        answer = app.press(b"\r", f"│ 1 {first} ", QUIET, timeout=60)
        if answer is None:
            raise SystemExit(f"bench: the decoded screen of {sentence!r} never came:\n{app.text()}")
        screens.append(answer[0])
    rss = app.peak_rss_mb()
    app.close()

    screen, decoding = statistics.median(screens), statistics.median(decodings)
    print(f"checkpoint {args.checkpoint.name}, {len(screens)} sentences, 160×48, one thread")
    print(f"Stepper.translate alone (baseline)   median {decoding:.2f} s")
    print(f"Enter → decoded screen               median {screen:.2f} s   ×{screen / decoding:.2f} the decoding")
    print(f"slowest screen {max(screens):.2f} s; peak RSS of the app {rss:.0f} MB")
    print(f"target ≤ 2 s: {'met' if max(screens) <= 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
