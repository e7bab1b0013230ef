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
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import data_option, test_captions

VOCAB = 32_000


def build_base_marian(folder: Path, captions: list[str], max_length: int) -> Path:
    import sentencepiece
    import torch
    import transformers

    def trained(lines: list[str]) -> bytes:
        sentencepiece.set_random_generator_seed(1)
        writer = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=writer,
            vocab_size=4000,
            hard_vocab_limit=False,  # the test captions have fewer pieces: the rest of the 32k are fillers
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            minloglevel=2,
        )
        return writer.getvalue()

    spm = trained(captions)
    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(spm)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    known = [p for p in pieces if p not in ("<unk>", "<s>", "</s>")]
    filler = [f"▁filler{i}" for i in range(VOCAB - 3 - len(known))]
    tokens = ["</s>", "<unk>", *known, *filler, "<pad>"]
    pad = len(tokens) - 1
    config = transformers.MarianConfig(
        vocab_size=len(tokens),
        decoder_vocab_size=len(tokens),
        d_model=512,
        encoder_layers=6,
        decoder_layers=6,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
        max_position_embeddings=512,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
    )
    torch.manual_seed(0)
    transformers.MarianMTModel(config).save_pretrained(folder)
    transformers.GenerationConfig(
        bad_words_ids=[[pad]],
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        max_length=max_length,
        num_beams=1,
        pad_token_id=pad,
    ).save_pretrained(folder)
    (folder / "source.spm").write_bytes(spm)
    (folder / "target.spm").write_bytes(spm)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    return folder


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
