"""attnstep stepping a base-size Marian, every quantity recorded, vs transformers' own ``generate``.

Baseline: ``MarianMTModel.generate(num_beams=1, do_sample=False)`` (transformers' default attention),
one sentence at a time, as the app decodes. Measured: ``Stepper.translate`` on the same sentence,
every layer's and head's attention and (by default) every vector recorded, and with ``--no-vectors``.
The figure is time per generated token, each ratio the median of rounds alternating the order.

The model is random, of opus-mt's size (6 + 6 layers, d_model 512, 8 heads, FFN 2048, a 32k
vocabulary; built once into ``--folder``): its speed is that of a real one, its translations are
noise, so generation is held to ``--max-length`` tokens for both. The tokenizer is SentencePiece
trained on the captions, its vocab.json filled up to 32,000 entries as opus-mt's 58k are.
Needs transformers (the test extra) and the Multi30k test captions.

    python bench/marian_speed.py [--sentences 100] [--rounds 3] [--max-length 32] [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import data_option, test_captions

VOCAB = 32_000


def build_base_marian(folder: Path, captions: list[str], max_length: int) -> Path:
    """A random base-size opus-mt (6+6 layers, d512, 8 heads, 32k pieces), its SentencePiece model trained
    on ``captions`` (the rest of the 32k are fillers)."""
    from tests.marian_helpers import spm_pieces, train_spm, write_marian_folder

    spm = train_spm(captions, 4000, repeat=1, hard_limit=False)  # the captions have fewer pieces
    known = [p for p in spm_pieces(spm) if p not in ("<unk>", "<s>", "</s>")]
    filler = [f"▁filler{i}" for i in range(VOCAB - 3 - len(known))]
    sizes = {"d_model": 512, "layers": 6, "heads": 8, "ffn": 2048, "positions": 512}
    generation = {"max_length": max_length, "num_beams": 1}
    return write_marian_folder(
        folder, ["</s>", "<unk>", *known, *filler, "<pad>"], (spm, spm), sizes, generation=generation
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--folder", type=Path, help="where the random model is built (default: a temporary folder)")
    data_option(parser)
    args = parser.parse_args()

    import torch
    import transformers

    from attnstep.engine.stepper import load_stepper

    torch.set_num_threads(args.threads)
    captions = test_captions(args.data)
    sentences = captions[: args.sentences]
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch) / "opus-mt-random-base"
        if not (folder / "config.json").is_file():
            build_base_marian(folder, captions, args.max_length)
        theirs = transformers.MarianMTModel.from_pretrained(folder).eval()
        tokenizer = transformers.MarianTokenizer.from_pretrained(folder)
        full, bare = load_stepper(folder), load_stepper(folder, vectors=False)

        def generate() -> int:
            tokens = 0
            with torch.no_grad():
                for sentence in sentences:
                    batch = tokenizer(sentence, return_tensors="pt")
                    tokens += theirs.generate(**batch, num_beams=1, do_sample=False).size(1) - 1
            return tokens

        def stepping(stepper) -> int:
            return sum(len(stepper.translate(sentence).steps) for sentence in sentences)

        runs = {"generate": generate, "all quantities": lambda: stepping(full), "--no-vectors": lambda: stepping(bare)}
        per_token: dict[str, list[float]] = {name: [] for name in runs}
        for round_ in range(args.rounds):
            order = list(runs) if round_ % 2 == 0 else list(reversed(runs))
            for name in order:
                start = time.perf_counter()
                tokens = runs[name]()
                per_token[name].append((time.perf_counter() - start) / tokens)
    base = statistics.median(per_token["generate"])
    print(f"{len(sentences)} sentences, greedy, batch 1, {args.threads} thread(s), ≤ {args.max_length} tokens each")
    print(f"generate (baseline): {base * 1e3:.2f} ms/token")
    for name in ("all quantities", "--no-vectors"):
        median = statistics.median(per_token[name])
        print(f"attnstep, {name}: {median * 1e3:.2f} ms/token, ×{median / base:.2f} generate's")


if __name__ == "__main__":
    main()
