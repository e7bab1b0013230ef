"""The engine: runs the decoder one step at a time and yields immutable :class:`~attnstep.trace.Step` records.

As bdb is to pdb, this module is to the UI: it knows nothing of Textual. The UI moves a
:class:`~attnstep.trace.TraceCursor` over the traces it returns, and asks it for a new
trace only when the decoding itself must change (a new sentence, a forced word).

What the UI may call:
    ``translate(sentence)``            the greedy trace of a sentence
    ``force(trace, t, word)``          the same sentence with ``word`` chosen at step t, decoding
                                       greedily after it; steps before t are kept as they were
    ``unforce(trace, t)``              back to the model's own choice from step t on
    ``decode(source, prefix)``         the trace of already-tokenized source whose first steps make the
                                       given choices (what a model in another process is asked for)
    ``translate_batch(sentences)``     many traces in one batched decoding (``decode_batch`` for
                                       sources already tokenized, as ``dump --input`` has them)
    ``iter_steps(sentence, prefix)``   the records one at a time, as they are computed

Every path goes through one batched loop over ``Seq2Seq.step``; a single sentence is a
batch of one, so stepping and batched decoding cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from attnstep.batch import pad
from attnstep.checkpoint import Checkpoint
from attnstep.errors import AttnstepError
from attnstep.model.attention import FORMULAS
from attnstep.model.seq2seq import max_output_length
from attnstep.codec import SubwordCodec
from attnstep.text import BOS, BOS_ID, EOS_ID, PAD
from attnstep.trace import Candidate, CheckpointInfo, SourceToken, Step, Trace, Word

DEFAULT_TOP_K = 5
Choice = tuple[int, bool]  # (target token id, forced by the user)


@dataclass(frozen=True)
class _Row:
    """Per-sentence bookkeeping inside a batch."""

    source: tuple[SourceToken, ...]
    prefix: tuple[Choice, ...]  # choices to make at steps 0..len-1 instead of the model's
    limit: int  # maximum number of steps


class Stepper:
    def __init__(self, checkpoint: Checkpoint, *, top_k: int = DEFAULT_TOP_K, vectors: bool = True):
        if top_k < 1:
            raise AttnstepError("top-k must be at least 1")
        self.checkpoint = checkpoint
        self.codec = checkpoint.codec
        self.model = checkpoint.model.eval()
        self.top_k = min(top_k, len(checkpoint.tgt_vocab))
        self.vectors = vectors  # False skips h_t, C_t, [h_t; C_t], h~_t and encoder states (dump --no-vectors)
        self.info = CheckpointInfo(
            name=checkpoint.name,
            sha256=checkpoint.digest,
            attention=checkpoint.config.attention,
            formula=FORMULAS[checkpoint.config.attention],
            source_language=str(checkpoint.meta.get("source_language", "")),
            target_language=str(checkpoint.meta.get("target_language", "")),
            tokenizer=self.codec.kind,
        )

    # --- what the UI may call -------------------------------------------------------------

    def source_tokens(self, sentence: str) -> tuple[SourceToken, ...]:
        """The tokens (words or pieces) the model sees for a user's sentence; refuses bad input."""
        return tuple(SourceToken(*piece) for piece in self.codec.source_pieces(sentence))

    def translate(self, sentence: str) -> Trace:
        return self.translate_batch([sentence])[0]

    def force(self, trace: Trace, t: int, word: str | int) -> Trace:
        """Choose ``word`` (a target token or id) at step ``t`` and re-decode from that prefix."""
        if not 0 <= t <= len(trace.steps) or (t == len(trace.steps) and trace.finished):
            raise AttnstepError(f"there is no step {t} to force in this trace")
        prefix = tuple((s.chosen_id, s.forced) for s in trace.steps[:t]) + ((self.target_id(word), True),)
        return self.decode(trace.source, prefix)

    def unforce(self, trace: Trace, t: int) -> Trace:
        """Keep steps before ``t`` and let the model choose from step ``t`` on."""
        return self.decode(trace.source, tuple((s.chosen_id, s.forced) for s in trace.steps[:t]))

    def decode(self, source: tuple[SourceToken, ...], prefix: Sequence[Choice] = ()) -> Trace:
        """The trace of ``source`` with ``prefix``'s choices made at its first steps, greedy after them."""
        return self._decode([self._row(tuple(source), tuple(prefix))])[0]

    def target_id(self, word: str | int) -> int:
        """The target vocabulary id of ``word`` (a token or an id), refusing what the model cannot output."""
        vocab = self.checkpoint.tgt_vocab
        if isinstance(word, int):
            if not 0 <= word < len(vocab):
                raise AttnstepError(f"target id {word} is outside the vocabulary (size {len(vocab)})")
            return word
        index = self.codec.target_id(word)
        if index is None or vocab.tokens[index] in (BOS, PAD):
            kind = "piece" if isinstance(self.codec, SubwordCodec) else "word"
            raise AttnstepError(f"{word!r} is not a {kind} the model can output (not in the target vocabulary)")
        return index

    def translate_batch(self, sentences: Sequence[str]) -> list[Trace]:
        return self.decode_batch([self.source_tokens(s) for s in sentences])

    def decode_batch(self, sources: Sequence[tuple[SourceToken, ...]]) -> list[Trace]:
        """Greedy traces of already-tokenized sources, decoded together."""
        return self._decode([self._row(tuple(source), ()) for source in sources])

    def iter_steps(self, sentence: str, prefix: Sequence[Choice] = ()) -> Iterator[Step]:
        """Yield one sentence's step records as the decoder produces them."""
        row = self._row(self.source_tokens(sentence), tuple(prefix))
        for _, produced in self._run([row]):
            yield from (step for _, step in produced)

    # --- inside ----------------------------------------------------------------------------

    def _row(self, source: tuple[SourceToken, ...], prefix: tuple[Choice, ...]) -> _Row:
        limit = max(max_output_length(len(source)), len(prefix))
        return _Row(source, prefix, limit)

    def _source_words(self, source: tuple[SourceToken, ...]) -> tuple[tuple[SourceToken, ...], tuple[Word, ...]]:
        """The user's words over the source tokens, derived from the tokens themselves.

        A request from another process (the SSH server's sessions) sends only the tokens, so
        the word grouping is always recomputed here rather than trusted.
        """
        if isinstance(self.codec, SubwordCodec):
            spans = self.codec.source_words([t.token for t in source], [t.id for t in source])
        else:
            spans = [(t.surface, i, i + 1) for i, t in enumerate(source)]
        words = tuple(Word(*span) for span in spans)
        word_of = [w for w, word in enumerate(words) for _ in range(word.start, word.end)]
        return tuple(SourceToken(t.surface, t.token, t.id, w) for t, w in zip(source, word_of)), words

    def _trace(self, row: _Row, encoder_states, steps: list[Step]) -> Trace:
        source, words = self._source_words(row.source)
        tokens = [s.chosen_token for s in steps if s.chosen_id != EOS_ID]
        return Trace(
            checkpoint=self.info,
            source=source,
            encoder_states=encoder_states if self.vectors else None,
            steps=tuple(steps),
            finished=bool(steps) and steps[-1].chosen_id == EOS_ID,
            words=words,
            output_words=tuple(Word(*span) for span in self.codec.target_words(tokens)),
            translation_text=self.codec.detokenize(tokens),
        )

    def _decode(self, rows: list[_Row]) -> list[Trace]:
        steps: list[list[Step]] = [[] for _ in rows]
        states = None
        for encoder_states, produced in self._run(rows):
            states = states or encoder_states
            for index, step in produced:
                steps[index].append(step)
        return [
            self._trace(row, states[i] if self.vectors else None, row_steps)
            for i, (row, row_steps) in enumerate(zip(rows, steps))
        ]

    @torch.no_grad()
    def _run(self, rows: list[_Row]) -> Iterator[tuple[list, list[tuple[int, Step]]]]:
        """The batched loop: yields (encoder states per row, [(row index, step record), ...]) per time step."""
        vocab = self.checkpoint.tgt_vocab.tokens
        src, lengths = pad([[t.id for t in row.source] for row in rows])
        memory, state = self.model.encode(src, lengths)
        encoder_states = [tuple(map(tuple, memory.states[i, : len(row.source)].tolist())) for i, row in enumerate(rows)] if self.vectors else []
        prev = torch.full((len(rows), 1), BOS_ID, dtype=torch.long)  # (B, 1)
        active = list(range(len(rows)))
        # Each step's numbers are copied out as one row per sentence, laid out as
        # [h_t | C_t | h~_t | e_t (S) | a_t (S) | top-k log-probs | log p(chosen)], so that
        # [h_t; C_t] is the row's first H + M numbers. One copy per step: per-tensor
        # copies would cost more than the decoder step itself at batch size 1.
        S, k = src.size(1), self.top_k
        H, M = (self.model.config.dec_hidden, self.model.config.memory_dim) if self.vectors else (0, 0)
        V = H + M + (self.model.config.out_dim if self.vectors else 0)  # where the vectors end
        t = 0
        while active:
            output, state = self.model.step(prev.view(-1), state, memory)
            logprobs = torch.log_softmax(output.logits, dim=-1)  # (B, V)
            top_logprobs, top_ids = logprobs.topk(k, dim=-1)  # (B, k)
            chosen = top_ids.narrow(1, 0, 1)  # (B, 1) greedy
            chosen_logprob = top_logprobs.narrow(1, 0, 1)  # (B, 1)
            forcing = [i for i in active if t < len(rows[i].prefix)]
            if forcing:
                chosen = chosen.clone()
                chosen[forcing, 0] = torch.tensor([rows[i].prefix[t][0] for i in forcing])
                chosen_logprob = logprobs.gather(1, chosen)  # (B, 1)
            vectors = [output.hidden, output.context, output.attentional] if self.vectors else []
            table = torch.cat([*vectors, output.scores, output.weights, top_logprobs, chosen_logprob], dim=1)
            ints = torch.cat([top_ids, chosen, prev], dim=1)  # (B, k + 2)
            if len(active) < len(rows):
                index = torch.tensor(active)
                table, ints = table[index], ints[index]
            produced = []
            still_active = []
            for i, numbers, ids in zip(active, table.tolist(), ints.tolist()):
                numbers = tuple(numbers)  # slices of a tuple are tuples: one copy, not two
                n = len(rows[i].source)
                chosen_id, prev_id = ids[k], ids[k + 1]
                # NaN anywhere in the step (state, scores, context) reaches every logit, and so the
                # log-normaliser: one finite log-probability vouches for the whole row.
                if not math.isfinite(numbers[V + 2 * S + k]):
                    raise AttnstepError("the model produced NaN or infinite values; the checkpoint is unusable")
                step = Step(
                    index=t,
                    input_token=vocab[prev_id],
                    input_id=prev_id,
                    scores=numbers[V : V + n],
                    weights=numbers[V + S : V + S + n],
                    hidden=numbers[:H] if self.vectors else None,
                    context=numbers[H : H + M] if self.vectors else None,
                    concat=numbers[: H + M] if self.vectors else None,
                    attentional=numbers[H + M : V] if self.vectors else None,
                    candidates=tuple(
                        Candidate(vocab[c], c, math.exp(logprob)) for c, logprob in zip(ids[:k], numbers[V + 2 * S : V + 2 * S + k])
                    ),
                    chosen_token=vocab[chosen_id],
                    chosen_id=chosen_id,
                    chosen_logprob=numbers[V + 2 * S + k],
                    forced=t < len(rows[i].prefix) and rows[i].prefix[t][1],
                )
                produced.append((i, step))
                if chosen_id != EOS_ID and t + 1 < rows[i].limit:
                    still_active.append(i)
            yield encoder_states, produced
            prev = chosen
            active = still_active
            t += 1
