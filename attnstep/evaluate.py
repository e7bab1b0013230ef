"""Corpus translation and sacreBLEU scoring (greedy decoding, detokenized output vs raw references)."""

from __future__ import annotations

from dataclasses import dataclass

import sacrebleu
import torch

from attnstep.batch import pad
from attnstep.model import Seq2Seq
from attnstep.codec import Codec, codec_target_tokens


def translate_corpus(model: Seq2Seq, codec: Codec, sentences: list[str], batch_size: int = 128) -> list[str]:
    """Greedy translations, batched by length so that little work is spent on padding."""
    # An empty line still gets a translation (of "."), so hypotheses stay aligned with references.
    ids = [codec.corpus_source(s)[: codec.max_source_tokens] or codec.corpus_source(".") for s in sentences]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list[str] = [""] * len(ids)
    tokens = codec_target_tokens(codec)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            src, lengths = pad([ids[i] for i in chunk])
            for i, hypothesis in zip(chunk, model.greedy(src, lengths)):
                out[i] = codec.detokenize([tokens[t] for t in hypothesis])
    return out


@dataclass
class Scores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str


def score(hypotheses: list[str], references: list[str], *, lowercase: bool = True) -> Scores:
    """sacreBLEU on detokenized text; lowercase=True for word models, which only ever write lower case."""
    bleu = sacrebleu.metrics.BLEU(lowercase=lowercase)
    chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return Scores(bleu_score.score, chrf_score.score, str(bleu.get_signature()), str(chrf.get_signature()))
