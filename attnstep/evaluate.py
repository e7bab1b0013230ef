"""Corpus translation and sacreBLEU scoring (greedy decoding, detokenized output vs raw references)."""

from __future__ import annotations

from dataclasses import dataclass

import sacrebleu
import torch

from attnstep.batch import pad
from attnstep.model import Seq2Seq
from attnstep.text import Vocab, detokenize, tokenize_lenient, MAX_SOURCE_TOKENS


def translate_corpus(model: Seq2Seq, src_vocab: Vocab, tgt_vocab: Vocab, sentences: list[str], batch_size: int = 128) -> list[str]:
    """Greedy translations, batched by length so that little work is spent on padding."""
    ids = [src_vocab.ids(tokenize_lenient(s)[:MAX_SOURCE_TOKENS]) or [src_vocab.id(".")] for s in sentences]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list[str] = [""] * len(ids)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            src, lengths = pad([ids[i] for i in chunk])
            for i, hypothesis in zip(chunk, model.greedy(src, lengths)):
                out[i] = detokenize(tgt_vocab.tokens[t] for t in hypothesis)
    return out


@dataclass
class Scores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str


def score(hypotheses: list[str], references: list[str], *, lowercase: bool = True) -> Scores:
    """sacreBLEU on detokenized text; lowercase=True because the model only ever writes lower case."""
    bleu = sacrebleu.metrics.BLEU(lowercase=lowercase)
    chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return Scores(bleu_score.score, chrf_score.score, str(bleu.get_signature()), str(chrf.get_signature()))
