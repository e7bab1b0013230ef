"""The engine: runs the decoder one step at a time and yields immutable :class:`~attnstep.trace.records.Step` records.

As bdb is to pdb, this module is to the UI: it knows nothing of Textual. The UI moves a
:class:`~attnstep.trace.cursor.TraceCursor` over the traces it returns, and asks it for a new
trace only when the decoding itself must change (a new sentence, a forced word).

What the UI may call:
    ``translate(sentence)``            the trace of a sentence: greedy, or a beam search of width
                                       ``beam`` when the Stepper was made with one
    ``force(trace, t, word)``          the same sentence with ``word`` chosen at step t, decoding
                                       on after it (a new beam starts from that prefix); steps before
                                       t are kept as they were
    ``unforce(trace, t)``              back to the model's own choice from step t on
    ``decode(source, prefix)``         the trace of already-tokenized source whose first steps make the
                                       given choices (what a model in another process is asked for)
    ``translate_batch(sentences)``     many traces in one batched decoding (``decode_batch`` for
                                       sources already tokenized, as ``dump --input`` has them)
    ``iter_steps(sentence, prefix)``   the greedy records one at a time, as they are computed
    ``score_reference(sentence, ref)`` teacher forcing: every token of a given translation forced,
                                       with the probability the model gives each

Greedy decoding goes through one batched loop over ``Seq2Seq.step``; a single sentence is a
batch of one, so stepping and batched decoding cannot drift apart. Beam search is a second
loop over the same step function that builds the same records through the same code, and
with K = 1 makes the greedy choices.

Beam search (as Marian does it): each step extends every live hypothesis by every token and
keeps the best extensions by cumulative log-probability, as many as the sentence still needs;
one that ends in <eos> is finished and leaves the beam, which then needs one fewer, so the
search ends with K finished hypotheses (or at the length limit). Hypotheses of one step all
have the same length, so ranking them needs no normalization; the finished ones, of
different lengths, are ranked by score / lp with GNMT's lp = ((5 + length) / 6)^α (Wu et al.
2016, eq. 14; OpenNMT-py's ``-length_penalty wu``), length counting <eos>. An unfinished
hypothesis wins only where none finished.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch

from attnstep.engine.batch import pad
from attnstep.engine.checkpoint import Checkpoint, load_checkpoint
from attnstep.errors import AttnstepError
from attnstep.model.rnn.attention import FORMULAS
from attnstep.model.rnn.decoder import DecoderState, Memory
from attnstep.model.rnn.seq2seq import max_output_length
from attnstep.text.codec import SubwordCodec
from attnstep.text.words import BOS, BOS_ID, EOS_ID, PAD
from attnstep.trace.records import (
    ALIVE,
    DEFAULT_ALPHA,
    FINISHED,
    MAX_BEAM,
    PRUNED,
    Beam,
    Candidate,
    CheckpointInfo,
    Floats,
    Hypothesis,
    SourceToken,
    Step,
    Trace,
    Word,
    length_penalty,
)

DEFAULT_TOP_K = 5
Choice = tuple[int, bool]  # (target token id, forced by the user)


@dataclass(frozen=True)
class _Row:
    """Per-sentence bookkeeping inside a batch."""

    source: tuple[SourceToken, ...]
    prefix: tuple[Choice, ...]  # choices to make at steps 0..len-1 instead of the model's
    limit: int  # maximum number of steps


class _Encoded(NamedTuple):
    """One sentence's encoding, as the trace records it (both None without vectors)."""

    states: tuple[Floats, ...] | None  # h_i per source token
    keys: tuple[Floats, ...] | None  # the scorer's key per source token (None for dot: the keys are the states)


@dataclass(frozen=True)
class _Columns:
    """Where each quantity sits in a step's row of numbers:
    [h_t | C_t | h~_t | query term (concat/additive) | e_t (S) | a_t (S) | top-k log-probs | ...].

    The vectors, the first V numbers ([h_t; C_t] is the first H + M), leave torch as float32
    bytes; the rest, from e_t on (the row's "tail"), as Python floats. One copy out of torch per
    step: per-tensor copies would cost more than the decoder step itself at batch size 1.
    """

    H: int  # h_t (0 without vectors)
    M: int  # C_t (0 without vectors)
    V: int  # where the vectors end
    S: int  # padded source length (0 for a model without attention: nothing is scored)
    k: int  # top-k candidates
    Q: int = 0  # the scorer's query term, just before V (concat/additive with vectors)

    def split(self, table: torch.Tensor) -> list[tuple[bytes, int, tuple[float, ...]]]:
        """Each row of a step's (B, C) numbers: (the table's float32 bytes, where the row starts in
        them, the row's tail as floats). The row's vectors are spans of the bytes, not copies."""
        raw = table.numpy().tobytes()
        numbers = memoryview(raw).cast("f")
        width = table.size(1)
        return [(raw, i, tuple(numbers[i + self.V : i + width].tolist())) for i in range(0, len(numbers), width)]


@dataclass
class _Live:
    """One beam hypothesis during the search (a Hypothesis once its status is known)."""

    parent: int | None  # index in the previous step's list
    row: int  # the batch row whose step computed it (its parent's): where its record's numbers are
    id: int
    logprob: float
    score: float
    weights: tuple[float, ...]
    status: str = ALIVE


class Stepper:
    def __init__(
        self,
        checkpoint: Checkpoint,
        *,
        top_k: int = DEFAULT_TOP_K,
        vectors: bool = True,
        beam: int | None = None,
        alpha: float = DEFAULT_ALPHA,
    ):
        if top_k < 1:
            raise AttnstepError("top-k must be at least 1")
        if beam is not None and not 1 <= beam <= MAX_BEAM:
            raise AttnstepError(f"the beam width must be 1 to {MAX_BEAM}, not {beam}")
        if alpha < 0 or not math.isfinite(alpha):
            raise AttnstepError(f"the length normalization alpha must be 0 or more, not {alpha}")
        self.checkpoint = checkpoint
        self.codec = checkpoint.codec
        # The engine only ever runs the model forward. Parameters that need no gradient let it run
        # without a no_grad context, whose wrapper around the step generator costs ~25 µs a step.
        self.model = checkpoint.model.eval().requires_grad_(False)
        self.top_k = min(top_k, len(checkpoint.tgt_vocab))
        self.vectors = vectors  # False skips h_t, C_t, [h_t; C_t], h~_t and encoder states (dump --no-vectors)
        # None: greedy; K: beam search of width K (capped by the vocabulary, which bounds the extensions)
        self.beam = None if beam is None else min(beam, len(checkpoint.tgt_vocab))
        self.alpha = alpha
        self.info = CheckpointInfo(
            name=checkpoint.name,
            sha256=checkpoint.digest,
            attention=checkpoint.config.attention,
            formula=FORMULAS[checkpoint.config.attention],
            source_language=str(checkpoint.meta.get("source_language", "")),
            target_language=str(checkpoint.meta.get("target_language", "")),
            tokenizer=self.codec.kind,
        )
        attention = checkpoint.config.attention
        self.attends = attention != "none"
        self.keyed = vectors and attention not in ("dot", "none")  # dot's keys are the encoder states: not stored twice
        self.queried = vectors and attention in ("concat", "additive")  # a query term W q, and v_a
        self.v_a = _floats(self.model.decoder.scorer.v_a.weight)[0] if self.queried else None

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
        """Traces of already-tokenized sources, decoded together."""
        return self._decode([self._row(tuple(source), ()) for source in sources])

    def score_reference(self, sentence: str, reference: str) -> Trace:
        """Teacher forcing: each token of ``reference`` (cut by the checkpoint's codec), then <eos>, forced.

        Every step shows the attention and the probability the model gives the reference token;
        its first candidate is the model's own choice. ``Trace.logprob`` is log p(reference | sentence).
        """
        source = self.source_tokens(sentence)
        try:
            ids = self.codec.reference_ids(reference)
        except AttnstepError as exc:
            raise AttnstepError(f"the reference: {exc}") from None
        prefix = tuple((i, True) for i in ids) + ((EOS_ID, True),)
        trace = self._greedy([self._row(source, prefix)])[0]
        return replace(trace, reference=reference)

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

    def _trace(self, row: _Row, encoded: _Encoded, steps: list[Step], beam: Beam | None = None) -> Trace:
        source, words = self._source_words(row.source)
        tokens = [s.chosen_token for s in steps if s.chosen_id != EOS_ID]
        return Trace(
            checkpoint=self.info,
            source=source,
            encoder_states=encoded.states,
            keys=encoded.keys,
            v_a=self.v_a,
            steps=tuple(steps),
            finished=bool(steps) and steps[-1].chosen_id == EOS_ID,
            words=words,
            output_words=tuple(Word(*span) for span in self.codec.target_words(tokens)),
            translation_text=self.codec.detokenize(tokens),
            beam=beam,
        )

    def _decode(self, rows: list[_Row]) -> list[Trace]:
        return self._greedy(rows) if self.beam is None else self._search(rows)

    def _greedy(self, rows: list[_Row]) -> list[Trace]:
        steps: list[list[Step]] = [[] for _ in rows]
        encoded = None
        for row_encoded, produced in self._run(rows):
            encoded = encoded or row_encoded
            for index, step in produced:
                steps[index].append(step)
        return [self._trace(row, encoded[i], row_steps) for i, (row, row_steps) in enumerate(zip(rows, steps))]

    def _encode(self, rows: list[_Row]):
        """Encode a batch: (memory, first decoder state, each row's _Encoded, columns of a step's row)."""
        src, lengths = pad([[t.id for t in row.source] for row in rows])
        memory, state = self.model.encode(src, lengths)

        def per_row(tensor: torch.Tensor, wanted: bool) -> list:  # (B, S, D) → per row, its tokens' vectors
            return [_floats(tensor[i, : len(row.source)]) if wanted else None for i, row in enumerate(rows)]

        encoded = [
            _Encoded(*pair) for pair in zip(per_row(memory.states, self.vectors), per_row(memory.keys, self.keyed))
        ]
        config = self.model.config
        H, M = (config.dec_hidden, config.memory_dim) if self.vectors else (0, 0)
        Q = len(self.v_a) if self.queried else 0
        S = src.size(1) if self.attends else 0
        columns = _Columns(H, M, H + M + (config.out_dim if self.vectors else 0) + Q, S, self.top_k, Q)
        return memory, state, encoded, columns

    def _numbers(self, output, top_logprobs: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        """A step's rows of numbers (see :class:`_Columns`), with ``extra`` columns appended: (B, C)."""
        vectors = [output.concat, output.attentional] if self.vectors else []  # concat is [h_t; C_t]
        if self.queried:
            vectors.append(output.query)
        return torch.cat([*vectors, output.scores, output.weights, top_logprobs, *extra], dim=1)

    def _record(
        self,
        c: _Columns,
        t: int,
        n: int,
        row: tuple[bytes, int, tuple[float, ...]],
        top_ids: list[int],
        input_id: int,
        chosen_id: int,
        chosen_logprob: float,
        forced: bool,
    ) -> Step:
        """One step's record from its row of numbers (see :meth:`_Columns.split`); ``n`` is the sentence's own source length."""
        vocab = self.checkpoint.tgt_vocab.tokens
        data, start, numbers = row
        H, M, V, S = (
            start + c.H,
            start + c.H + c.M,
            start + c.V,
            c.S,
        )  # where h_t, C_t and the vectors end in data; S in the tail
        n = min(n, S)  # no scores or weights without attention
        # NaN anywhere in the step (state, scores, context) reaches every logit, and so the
        # log-normaliser: one finite log-probability vouches for the whole row.
        if not math.isfinite(chosen_logprob):
            raise AttnstepError("the model produced NaN or infinite values; the checkpoint is unusable")
        return Step(
            index=t,
            input_token=vocab[input_id],
            input_id=input_id,
            scores=numbers[:n],
            weights=numbers[S : S + n],
            hidden=Floats(data, start, H) if self.vectors else None,
            context=Floats(data, H, M) if self.vectors else None,
            concat=Floats(data, start, M) if self.vectors else None,
            attentional=Floats(data, M, V - c.Q) if self.vectors else None,
            candidates=tuple(
                Candidate(vocab[i], i, math.exp(logprob)) for i, logprob in zip(top_ids, numbers[2 * S : 2 * S + c.k])
            ),
            chosen_token=vocab[chosen_id],
            chosen_id=chosen_id,
            chosen_logprob=chosen_logprob,
            forced=forced,
            query=Floats(data, V - c.Q, V) if self.queried else None,
        )

    def _run(self, rows: list[_Row]) -> Iterator[tuple[list, list[tuple[int, Step]]]]:
        """The greedy batched loop: yields (each row's _Encoded, [(row index, step record), ...]) per time step."""
        memory, state, encoded, c = self._encode(rows)
        prev = torch.full((len(rows), 1), BOS_ID, dtype=torch.long)  # (B, 1)
        input_ids = [BOS_ID] * len(rows)
        active = list(range(len(rows)))
        t = 0
        while active:
            output, state = self.model.step(prev.view(-1), state, memory)
            logprobs = torch.log_softmax(output.logits, dim=-1)  # (B, V)
            top_logprobs, top_ids = logprobs.topk(c.k, dim=-1)  # (B, k)
            chosen = top_ids.narrow(1, 0, 1)  # (B, 1) greedy
            forcing = [i for i in active if t < len(rows[i].prefix)]
            if forcing:  # the forced words' log-probabilities become an extra, last column
                chosen = chosen.clone()
                chosen[forcing, 0] = torch.tensor([rows[i].prefix[t][0] for i in forcing])
                table = self._numbers(output, top_logprobs, logprobs.gather(1, chosen))  # (B, C + 1)
            else:
                table = self._numbers(output, top_logprobs)  # (B, C)
            chosen_column = -1 if forcing else 2 * c.S  # in each row's tail: the gathered column, or the top-1
            if len(active) < len(rows):
                table = table[torch.tensor(active)]
            top = top_ids.tolist()
            produced = []
            still_active = []
            for i, row in zip(active, c.split(table)):
                prefix = rows[i].prefix
                chosen_id = prefix[t][0] if t < len(prefix) else top[i][0]
                forced = t < len(prefix) and prefix[t][1]
                step = self._record(
                    c, t, len(rows[i].source), row, top[i], input_ids[i], chosen_id, row[2][chosen_column], forced
                )
                produced.append((i, step))
                input_ids[i] = chosen_id
                if chosen_id != EOS_ID and t + 1 < rows[i].limit:
                    still_active.append(i)
            yield encoded, produced
            prev = chosen
            active = still_active
            t += 1

    def _search(self, rows: list[_Row]) -> list[Trace]:
        """Beam search for a batch of sentences: the p-th sentence still searching has batch rows p·K .. p·K + K - 1.

        A row without a hypothesis (its sentence needs fewer than K) computes what nobody reads,
        as greedy's finished rows do, but a sentence whose search has ended leaves the batch.
        Each step's numbers are kept as one tensor; only the best hypothesis's rows become
        records, at the end. Memory: B·K rows × steps × a row's numbers.
        """
        K = self.beam
        memory, state, encoded, c = self._encode(rows)
        searching = list(range(len(rows)))  # the sentences in the batch, in batch order
        keep = torch.arange(len(rows)).repeat_interleave(K)  # (B·K,) each sentence's encoding, K times
        memory = Memory(*(m.index_select(0, keep) for m in memory))  # (B·K, S, ·)
        state = DecoderState(*(s.index_select(0, keep) for s in state))  # (B·K, ·)
        prev = torch.full((len(keep),), BOS_ID, dtype=torch.long)  # (B·K,)
        score = torch.full((len(rows), K), -math.inf)  # (B, K) cumulative log-prob of each row's hypothesis
        score[:, 0] = 0.0  # one hypothesis, <bos>, to start from
        seeking = [K] * len(rows)  # how many more hypotheses each sentence needs: K less those finished
        occupants: list[list[int]] = [
            [0] for _ in rows
        ]  # per sentence: the previous step's index of each row's hypothesis
        hypotheses: list[list[list[_Live]]] = [[] for _ in rows]  # per sentence, per step
        tables: list[tuple[torch.Tensor, torch.Tensor]] = []  # per step: rows of numbers (B·K, C), top-k ids (B·K, k)
        t = 0
        while searching:
            B = len(searching)
            output, state = self.model.step(prev, state, memory)
            logprobs = torch.log_softmax(output.logits, dim=-1)  # (B·K, V)
            top_logprobs, top_ids = logprobs.topk(c.k, dim=-1)  # (B·K, k)
            tables.append((self._numbers(output, top_logprobs), top_ids))
            vocab_size = logprobs.size(1)
            extended = (score.view(-1, 1) + logprobs).view(B, K * vocab_size)  # (B, K·V) every one-token extension
            top_scores, top = extended.topk(K, dim=1)  # (B, K) best first
            for p, i in enumerate(searching):  # a step of a fixed prefix has one extension: the prefix's word
                if t < len(rows[i].prefix):
                    word = rows[i].prefix[t][0]
                    top[p, 0], top_scores[p, 0], top_scores[p, 1:] = (
                        word,
                        score[p, 0] + logprobs[p * K, word],
                        -math.inf,
                    )
            parent_slot, token = top // vocab_size, top % vocab_size  # (B, K)
            parent_row = (parent_slot + torch.arange(B).view(B, 1) * K).view(-1)  # (B·K,) batch row of each parent
            token_logprob = logprobs[parent_row, token.view(-1)].view(B, K)  # (B, K)
            weights = output.weights[parent_row].view(B, K, c.S)  # (B, K, S) a_t, computed from each parent
            reorder = torch.arange(B * K)  # (B·K,) the row each row's next state comes from
            prev = torch.full((B * K,), EOS_ID, dtype=torch.long)  # (B·K,) rows left empty read <eos>
            score = torch.full((B, K), -math.inf)
            columns = zip(
                searching,
                top_scores.tolist(),
                parent_slot.tolist(),
                token.tolist(),
                token_logprob.tolist(),
                weights.tolist(),
            )
            for p, (i, scores_i, slots_i, tokens_i, logprobs_i, weights_i) in enumerate(columns):
                kept = []
                for j in range(seeking[i]):
                    if scores_i[j] == -math.inf:  # a prefix step keeps one
                        break
                    if not math.isfinite(scores_i[j]):
                        raise AttnstepError("the model produced NaN or infinite values; the checkpoint is unusable")
                    kept.append(
                        _Live(
                            parent=occupants[i][slots_i[j]] if t else None,
                            row=p * K + slots_i[j],
                            id=tokens_i[j],
                            logprob=logprobs_i[j],
                            score=scores_i[j],
                            weights=tuple(weights_i[j][: len(rows[i].source)]),
                            status=FINISHED if tokens_i[j] == EOS_ID else ALIVE,
                        )
                    )
                if t:
                    extended_parents = {h.parent for h in kept}
                    for index, parent in enumerate(hypotheses[i][-1]):  # none of its extensions was kept: it ends here
                        if parent.status == ALIVE and index not in extended_parents:
                            parent.status = PRUNED
                hypotheses[i].append(kept)
                alive = [j for j, h in enumerate(kept) if h.status == ALIVE]
                seeking[i] -= len(kept) - len(alive)
                if not alive or t + 1 >= rows[i].limit:
                    seeking[i] = 0  # at the length limit, what is alive stays so, unfinished
                    continue
                occupants[i] = alive
                for slot, j in enumerate(alive):
                    reorder[p * K + slot], prev[p * K + slot], score[p, slot] = kept[j].row, kept[j].id, kept[j].score
            state = DecoderState(*(s.index_select(0, reorder) for s in state))
            if not all(seeking[i] for i in searching):  # sentences whose search ended leave the batch
                stay = [p for p, i in enumerate(searching) if seeking[i]]
                keep = (torch.tensor(stay, dtype=torch.long).view(-1, 1) * K + torch.arange(K)).view(
                    -1
                )  # (B'·K,) their rows
                memory = Memory(*(m.index_select(0, keep) for m in memory))  # (B'·K, S, ·)
                state = DecoderState(*(s.index_select(0, keep) for s in state))  # (B'·K, ·)
                prev, score = prev[keep], score[stay]  # (B'·K,), (B', K)
                searching = [searching[p] for p in stay]
            t += 1
        return [self._beam_trace(row, encoded[i], hypotheses[i], tables, c) for i, row in enumerate(rows)]

    def _beam_trace(self, row: _Row, encoded: _Encoded, steps: list[list[_Live]], tables, c: _Columns) -> Trace:
        """The trace of one sentence's search: the records of its best hypothesis, and the whole beam."""
        finished = [(t, j) for t, kept in enumerate(steps) for j, h in enumerate(kept) if h.status == FINISHED]
        last = len(steps) - 1
        contenders = finished or [(last, j) for j in range(len(steps[last]))]  # none finished: the length limit's
        normalized = [[h.score / length_penalty(t + 1, self.alpha) for h in kept] for t, kept in enumerate(steps)]
        best_t, best_j = max(contenders, key=lambda tj: normalized[tj[0]][tj[1]])
        chain = [best_j]
        for t in range(best_t, 0, -1):
            chain.append(steps[t][chain[-1]].parent)
        chain.reverse()
        records = []
        for t, j in enumerate(chain):
            h = steps[t][j]
            table, top_ids = tables[t]
            numbers = c.split(table[h.row : h.row + 1])[0]
            input_id = BOS_ID if t == 0 else steps[t - 1][chain[t - 1]].id
            forced = t < len(row.prefix) and row.prefix[t][1]
            records.append(
                self._record(c, t, len(row.source), numbers, top_ids[h.row].tolist(), input_id, h.id, h.logprob, forced)
            )
        vocab = self.checkpoint.tgt_vocab.tokens
        beam = Beam(
            width=self.beam,
            alpha=self.alpha,
            start=len(row.prefix),
            steps=tuple(
                tuple(
                    Hypothesis(h.parent, vocab[h.id], h.id, h.logprob, h.score, normalized[t][j], h.status, h.weights)
                    for j, h in enumerate(kept)
                )
                for t, kept in enumerate(steps)
            ),
            best=best_j,
        )
        return self._trace(row, encoded, records, beam)


def load_stepper(
    checkpoint,
    *,
    top_k: int = DEFAULT_TOP_K,
    vectors: bool = True,
    beam: int | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> Stepper:
    """A stepper over the checkpoint folder ``checkpoint``, for a process that then decodes for long.

    torch and the model leave ~10^5 long-lived objects, and every full collection would walk them
    again: `dump` allocates millions of tuples (frozen: ~10% faster), and the SSH server's event loop,
    which relays every student's keys, stood still for 0.15-0.2 s at each one. Frozen, after one
    collection so that no garbage is kept with them, the collector skips them.
    """
    stepper = Stepper(load_checkpoint(checkpoint), top_k=top_k, vectors=vectors, beam=beam, alpha=alpha)
    gc.collect()
    gc.freeze()
    return stepper


def _floats(tensor: torch.Tensor) -> tuple[Floats, ...]:
    """The rows of a float32 (R, D) tensor, as Floats: one copy out of torch."""
    raw = tensor.contiguous().numpy().tobytes()
    width = tensor.size(1)
    return tuple(Floats(raw, i, i + width) for i in range(0, len(raw) // 4, width))
