"""Beam search (as Marian does it), on the same step function and records as greedy decoding.

Each step extends every live hypothesis by every token and keeps the best extensions by
cumulative log-probability, as many as the sentence still needs; one that ends in <eos> is
finished and leaves the beam, which then needs one fewer, so the search ends with K finished
hypotheses (or at the length limit). Hypotheses of one step all have the same length, so
ranking them needs no normalization; the finished ones, of different lengths, are ranked by
score / lp with GNMT's lp = ((5 + length) / 6)^α (Wu et al. 2016, eq. 14; OpenNMT-py's
``-length_penalty wu``), length counting <eos>. An unfinished hypothesis wins only where none
finished. With K = 1 it makes the greedy choices.

A Transformer's beam search is ``generate``'s (:func:`attnstep.engine.generate.beam_search`), whose
:class:`~attnstep.engine.generate.Trail` :func:`generated_beams` makes into the same :class:`Beam`
records (:data:`LENGTH_PENALTY` normalization): a step keeps its K running hypotheses and the
finished candidates among its first K, up to 2K.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic

import torch

from attnstep.engine.generate import Trail
from attnstep.engine.recording import Columns, Pick, Row, check_finite
from attnstep.model.family import Family, MemoryT, Specials, StateT, StepOutput, select
from attnstep.trace.records import (
    ALIVE,
    FINISHED,
    GNMT,
    LENGTH_PENALTY,
    PRUNED,
    Beam,
    Hypothesis,
    Step,
    length_penalty,
    ranking,
)

Tables = list[tuple[torch.Tensor, torch.Tensor]]  # per step: rows of numbers (B·K, C), top-k ids (B·K, k)
# A sentence's K extensions, best first: cumulative scores, parent slots, tokens, token log-probs, weights a_t
Extensions = tuple[list[float], list[int], list[int], list[float], list[list[float]]]


@dataclass
class _Live:
    """One beam hypothesis during the search (a Hypothesis once its status is known)."""

    parent: int | None  # index in the previous step's list
    row: int  # the batch row whose step computed it (its parent's): where its record's numbers are
    id: int
    logprob: float
    score: float
    normalized: float
    weights: tuple[float, ...]
    status: str = ALIVE


class BeamSearch(Generic[MemoryT, StateT]):
    """Beam search of width K for batches of sentences: ``run`` gives each its best records and its beam."""

    def __init__(
        self,
        model: Family[MemoryT, StateT],
        width: int,
        alpha: float,
        columns: Callable[[StepOutput], Columns],  # a batch's columns, from its first step
    ):
        self.model, self.width, self.alpha, self.columns = model, width, alpha, columns

    def run(self, rows: list[Row], memory: MemoryT, state: StateT) -> list[tuple[list[Step], Beam]]:
        """Search a batch: the p-th sentence still searching has batch rows p·K .. p·K + K - 1.

        A row without a hypothesis (its sentence needs fewer than K) computes what nobody reads,
        as greedy's finished rows do, but a sentence whose search has ended leaves the batch.
        Each step's numbers are kept as one tensor; only the best hypothesis's rows become
        records, at the end. Memory: B·K rows × steps × a row's numbers.
        """
        batch = _Batch(rows, self.width, self.alpha, memory, state, self.model.specials)
        tables: Tables = []
        c: Columns | None = None
        while batch.searching:
            output, batch.state = self.model.step(batch.prev, batch.state, batch.memory)
            c = c or self.columns(output)
            logprobs = torch.log_softmax(output.logits, dim=-1)  # (B·K, V)
            top_logprobs, top_ids = logprobs.topk(c.k, dim=-1)  # (B·K, k)
            tables.append((c.numbers(output, top_logprobs), top_ids))
            batch.advance(logprobs, output.weights)
        assert c is not None  # every sentence takes a first step
        return [self._result(row, steps, tables, c) for row, steps in zip(rows, batch.hypotheses)]

    def _result(self, row: Row, steps: list[list[_Live]], tables: Tables, c: Columns) -> tuple[list[Step], Beam]:
        """One sentence's search: the records of its best hypothesis, and the whole beam."""
        beam, best_t = _beam(steps, c.vocab, self.width, self.alpha, len(row.prefix), GNMT)
        records = []
        input_id = self.model.specials.start
        for t, j in enumerate(beam.lineage(best_t, beam.best)):
            h = steps[t][j]
            table, top_ids = tables[t]
            numbers = c.split(table[h.row : h.row + 1], [top_ids[h.row].tolist()])[0]
            forced = t < len(row.prefix) and row.prefix[t][1]
            records.append(c.record(len(row.source), numbers, Pick(t, input_id, h.id, h.logprob, forced)))
            input_id = h.id
        return records, beam


def _beam(
    steps: list[list[_Live]], vocab: Sequence[str], width: int, alpha: float, start: int, normalization: str
) -> tuple[Beam, int]:
    """A search's hypotheses as a Beam whose best is its first result, and the beam step of that result."""
    hypotheses = tuple(
        tuple(
            Hypothesis(h.parent, vocab[h.id], h.id, h.logprob, h.score, h.normalized, h.status, h.weights) for h in kept
        )
        for kept in steps
    )
    best_t, best_j = ranking(hypotheses, normalization)[0]
    return Beam(width, alpha, start, hypotheses, best_j, normalization=normalization), best_t


def generated_beams(
    trail: Trail, prompt: Sequence[int], sources: Sequence[int], vocab: Sequence[str], width: int, lp: float, ends
) -> list[tuple[Beam, list[int]]]:
    """Each sentence's Beam of ``generate``'s search that filled ``trail``, from ``prompt`` (a fixed
    prefix: a hypothesis a step, with the model's own log-probabilities), and its best result's tokens.
    ``sources``: each sentence's source length, ``lp``: the length_penalty, ``ends``: the end token ids.

    Scores are cumulative from the first step, so that each is its parent's plus its log-probability;
    normalized ones are generate's own, which count only what follows the prompt. A hypothesis that
    ended at the limit without </s> stays alive; the running ones of a search that ended before the
    limit (none could beat the finished ones) are pruned.
    """
    results = []
    for b, n in enumerate(sources):
        steps: list[list[_Live]] = []
        score = 0.0
        for t, (given, rows) in enumerate(trail.prompt):
            logprob = float(given[b])
            score += logprob
            status = FINISHED if prompt[t] in ends else ALIVE
            steps.append(
                [_Live(0 if t else None, b, prompt[t], logprob, score, score, tuple(rows[b, :n].tolist()), status)]
            )
        # the running slots' indices in the previous step (at the first, every slot is the prompt's end)
        prefix_score, occupants = score, [0] * width
        for step in trail.steps:
            live = [] if step.last else step.live[b].tolist()  # at the limit what runs on is nothing
            kept_at = [i for i, e in enumerate(step.entered[b].tolist()) if e or i in live]
            ended = bool(step.ended[b])
            tokens, parents, logprobs, scores, normalized = (
                x[b].tolist() for x in (step.tokens, step.parents, step.logprobs, step.scores, step.normalized)
            )
            weights = step.weights[b, :, :n].tolist()  # (2K, n)
            kept = []
            for i in kept_at:
                status = PRUNED if ended and i in live else FINISHED if tokens[i] in ends else ALIVE
                parent = occupants[parents[i]] if steps else None
                total = prefix_score + scores[i]
                kept.append(_Live(parent, b, tokens[i], logprobs[i], total, normalized[i], tuple(weights[i]), status))
            _prune(steps, kept)
            steps.append(kept)
            if ended:
                break
            occupants = [kept_at.index(i) for i in live]
        beam, best_t = _beam(steps, vocab, width, lp, len(prompt), LENGTH_PENALTY)
        results.append((beam, [h.id for h in beam.history(best_t, beam.best)]))
    return results


def _prune(steps: list[list[_Live]], kept: list[_Live]) -> None:
    """The last step's alive hypotheses that ``kept`` (the next step's) does not extend end there."""
    if steps:
        extended = {h.parent for h in kept}
        for index, parent in enumerate(steps[-1]):
            if parent.status == ALIVE and index not in extended:
                parent.status = PRUNED


class _Batch(Generic[MemoryT, StateT]):
    """A batch's search in progress: its rows' decoder inputs and scores, and each sentence's hypotheses."""

    def __init__(self, rows: list[Row], K: int, alpha: float, memory: MemoryT, state: StateT, specials: Specials):
        self.rows, self.K, self.alpha, self.t, self.end = rows, K, alpha, 0, specials.end
        self.device = memory[0].device  # the bookkeeping is made where the model computes: no copy per step
        keep = torch.arange(len(rows), device=self.device).repeat_interleave(K)  # (B·K,) each encoding, K times
        self.memory, self.state = select(memory, keep), select(state, keep)  # (B·K, S, ·), (B·K, ·)
        self.prev = torch.full((len(keep),), specials.start, dtype=torch.long, device=self.device)  # (B·K,)
        # (B, K) cumulative log-prob of each row's hypothesis
        self.score = torch.full((len(rows), K), -math.inf, device=self.device)
        self.score[:, 0] = 0.0  # one hypothesis, <bos>, to start from
        self.searching = list(range(len(rows)))  # the sentences in the batch, in batch order
        self.seeking = [K] * len(rows)  # how many more hypotheses each sentence needs: K less those finished
        self.occupants: list[list[int]] = [[0] for _ in rows]  # per sentence: previous step's index of each row's
        self.hypotheses: list[list[list[_Live]]] = [[] for _ in rows]  # per sentence, per step

    def advance(self, logprobs: torch.Tensor, weights: torch.Tensor) -> None:
        """Keep each sentence's best extensions of this step's (B·K, V) log-probs, (B·K, S) weights;
        set the rows up for the next step."""
        B, K = len(self.searching), self.K
        top_scores, parent_slot, token = self._extensions(logprobs)  # (B, K) each
        batch_rows = torch.arange(B, device=self.device).view(B, 1) * K  # (B, 1)
        parent_row = (parent_slot + batch_rows).view(-1)  # (B·K,) batch row of each parent
        token_logprob = logprobs[parent_row, token.view(-1)].view(B, K)  # (B, K)
        weights = weights[parent_row].view(B, K, weights.size(1))  # (B, K, S) a_t, computed from each parent
        # Filled in Python and made tensors once: element writes would each be a device operation.
        reorder = list(range(B * K))  # the row each row's next state comes from
        prev = [self.end] * (B * K)  # rows left empty read <eos>
        score = [[-math.inf] * K for _ in range(B)]
        candidates = zip(
            top_scores.tolist(), parent_slot.tolist(), token.tolist(), token_logprob.tolist(), weights.tolist()
        )
        for p, (i, extensions) in enumerate(zip(self.searching, candidates)):
            kept = self._kept(p, i, extensions)
            for slot, j in enumerate(self._settle(i, kept)):
                reorder[p * K + slot], prev[p * K + slot], score[p][slot] = kept[j].row, kept[j].id, kept[j].score
        self.prev = torch.tensor(prev, dtype=torch.long, device=self.device)  # (B·K,)
        self.score = torch.tensor(score, device=self.device)  # (B, K)
        self.state = select(self.state, torch.tensor(reorder, dtype=torch.long, device=self.device))
        self._leave()
        self.t += 1

    def _extensions(self, logprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each sentence's K best one-token extensions, best first: cumulative scores, parent slots, tokens."""
        B, K = len(self.searching), self.K
        vocab_size = logprobs.size(1)
        held = [p for p, i in enumerate(self.searching) if len(self.rows[i].prefix) <= self.t < self.rows[i].min_length]
        if held:  # no <eos> before the minimum length
            logprobs = logprobs.clone()
            logprobs.view(B, K, vocab_size)[held, :, self.end] = -math.inf
        extended = (self.score.view(-1, 1) + logprobs).view(B, K * vocab_size)  # (B, K·V) every one-token extension
        top_scores, top = extended.topk(K, dim=1)  # (B, K) best first
        for p, i in enumerate(self.searching):  # a step of a fixed prefix has one extension: the prefix's word
            prefix = self.rows[i].prefix
            if self.t < len(prefix):
                word = prefix[self.t][0]
                top[p, 0], top_scores[p, 0], top_scores[p, 1:] = (
                    word,
                    self.score[p, 0] + logprobs[p * K, word],
                    -math.inf,
                )
        return top_scores, top // vocab_size, top % vocab_size  # (B, K) each

    def _kept(self, p: int, i: int, extensions: Extensions) -> list[_Live]:
        """Sentence i's best extensions (its batch position is p), as many as it still seeks."""
        scores, slots, tokens, logprobs, weights = extensions
        n = len(self.rows[i].source)
        kept = []
        for j in range(self.seeking[i]):
            if scores[j] == -math.inf:  # a prefix step keeps one
                break
            check_finite(scores[j])
            parent = self.occupants[i][slots[j]] if self.t else None
            status = FINISHED if tokens[j] == self.end else ALIVE
            normalized = scores[j] / length_penalty(self.t + 1, self.alpha)
            kept.append(
                _Live(
                    parent,
                    p * self.K + slots[j],
                    tokens[j],
                    logprobs[j],
                    scores[j],
                    normalized,
                    tuple(weights[j][:n]),
                    status,
                )
            )
        return kept

    def _settle(self, i: int, kept: list[_Live]) -> list[int]:
        """Add sentence i's step: prune the parents it did not extend; → which kept ones go on (none once it ends)."""
        steps = self.hypotheses[i]
        _prune(steps, kept)
        steps.append(kept)
        alive = [j for j, h in enumerate(kept) if h.status == ALIVE]
        self.seeking[i] -= len(kept) - len(alive)
        if not alive or self.t + 1 >= self.rows[i].limit:
            self.seeking[i] = 0  # at the length limit, what is alive stays so, unfinished
            return []
        self.occupants[i] = alive
        return alive

    def _leave(self) -> None:
        """Sentences whose search ended leave the batch."""
        if all(self.seeking[i] for i in self.searching):
            return
        stay = [p for p, i in enumerate(self.searching) if self.seeking[i]]
        staying = torch.tensor(stay, dtype=torch.long, device=self.device).view(-1, 1)  # (B', 1)
        keep = (staying * self.K + torch.arange(self.K, device=self.device)).view(-1)  # (B'·K,)
        self.memory, self.state = select(self.memory, keep), select(self.state, keep)  # (B'·K, S, ·), (B'·K, ·)
        self.prev, self.score = self.prev[keep], self.score[stay]  # (B'·K,), (B', K)
        self.searching = [self.searching[p] for p in stay]
