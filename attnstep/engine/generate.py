"""Greedy decoding and beam search as Hugging Face's ``generate`` does them, over a Transformer family's step.

The settings come from the folder's ``generation_config.json`` (or, without one, from its
``config.json``, as ``GenerationConfig.from_model_config`` takes them), and the processing of
each step's log-probabilities follows ``generate``'s logits processors in their order: banned
sequences (``bad_words_ids``: opus-mt bans <pad>, so it is never emitted), ``min_length``, a forced
first token, the forced </s> at the last position, and renormalization. Lengths count the decoder
start token, as ``max_length`` does.

The beam search is ``generate``'s (transformers 5): at each step the 2K best extensions of the K
running hypotheses by summed log-probability; those ending in </s> among the first K become
finished candidates scored sum / length^length_penalty (length: tokens generated, </s>
included), the K best unfinished ones run on; the search stops when no running hypothesis can
beat the worst finished one (by ``early_stopping``'s rule), or at ``max_length``. Given a
:class:`Trail`, it also keeps what each step did, from which :func:`attnstep.engine.beam.generated_beams`
records the search as a trace's Beam.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

from attnstep.errors import AttnstepError
from attnstep.model.family import CacheT, EncoderDecoder, MemoryT, TransformerStep, select

# generate's defaults where neither file sets a value (GenerationConfig._get_default_generation_params)
DEFAULTS: dict[str, Any] = {
    "max_length": 20,
    "max_new_tokens": None,
    "min_length": 0,
    "num_beams": 1,
    "length_penalty": 1.0,
    "early_stopping": False,
    "bad_words_ids": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "renormalize_logits": False,
}
# Settings that change what generate picks and that attnstep does not do: a file setting one is
# refused rather than decoded differently. Sampling settings are left aside: attnstep does not sample.
UNSUPPORTED = {
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "sequence_bias": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "exponential_decay_length_penalty": None,
    "min_new_tokens": None,
    "diversity_penalty": 0.0,
    "constraints": None,
    "force_words_ids": None,
}
BANNED = -math.inf
FINISHED_OUT = -1.0e9  # generate's mark for a candidate that cannot be chosen


@dataclass(frozen=True)
class GenerationSettings:
    decoder_start_token_id: int  # the decoder's first input
    pad_token_id: int  # what a finished row reads on; opus-mt's start token too
    eos_token_ids: tuple[int, ...]  # any of them ends a hypothesis
    max_length: int = 20  # tokens per output, the start token included
    min_length: int = 0  # </s> is banned while the output is shorter
    num_beams: int = 1  # 1: greedy
    length_penalty: float = 1.0  # finished beam hypotheses are ranked by sum log p / length^this
    early_stopping: bool | str = False  # True, False or "never", as generate reads it
    bad_words_ids: tuple[tuple[int, ...], ...] = ()  # token sequences never produced
    forced_bos_token_id: int | None = None  # the first generated token, where set (mBART, NLLB)
    forced_eos_token_id: int | None = None  # </s> at the last position max_length allows
    renormalize_logits: bool = False  # log softmax again after the bans

    @classmethod
    def from_files(cls, generation: dict | None, model: dict, origin: str) -> GenerationSettings:
        """From generation_config.json's object (None without the file) and config.json's; one line per fault."""
        source = generation if generation is not None else model
        values = {**DEFAULTS, **{key: source[key] for key in DEFAULTS if source.get(key) is not None}}
        for key, neutral in UNSUPPORTED.items():
            if source.get(key, neutral) not in (neutral, None):
                raise AttnstepError(f"{origin}: {key} = {source[key]!r} is a generation setting attnstep does not do")
        ids = {
            key: source.get(key, model.get(key)) for key in ("decoder_start_token_id", "pad_token_id", "eos_token_id")
        }
        start, pad, eos = ids["decoder_start_token_id"], ids["pad_token_id"], ids["eos_token_id"]
        eos_ids = tuple(eos) if isinstance(eos, list) else (eos,)
        if type(start) is not int or type(pad) is not int or not all(type(i) is int for i in eos_ids):
            raise AttnstepError(f"{origin}: decoder_start_token_id, pad_token_id and eos_token_id must be set")
        max_new = values.pop("max_new_tokens")
        if max_new is not None:  # counted after the start token, as generate counts it for an encoder–decoder
            values["max_length"] = max_new + 1
        bad = values["bad_words_ids"] or []
        try:
            settings = cls(
                start,
                pad,
                eos_ids,
                **{**values, "bad_words_ids": tuple(tuple(words) for words in bad)},
            )
        except TypeError as exc:
            raise AttnstepError(f"{origin}: {exc}") from None
        settings.check(origin)
        return settings

    def check(self, origin: str) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("max_length", "num_beams") and (type(value) is not int or not 1 <= value <= 4096):
                raise AttnstepError(f"{origin}: {f.name} must be an integer from 1 to 4096, not {value!r}")
        if type(self.min_length) is not int or self.min_length < 0:
            raise AttnstepError(f"{origin}: min_length must be a non-negative integer")
        if type(self.length_penalty) not in (int, float) or not math.isfinite(self.length_penalty):
            raise AttnstepError(f"{origin}: length_penalty must be a number")
        if self.early_stopping not in (True, False, "never"):
            raise AttnstepError(f'{origin}: early_stopping must be true, false or "never"')
        if not all(words and all(type(i) is int for i in words) for words in self.bad_words_ids):
            raise AttnstepError(f"{origin}: bad_words_ids must be lists of token ids")


@dataclass(frozen=True)
class Hypothesis:
    tokens: list[int]  # generated ids, the start token left out, the final </s> kept
    score: float  # beam search's: sum log p / length^length_penalty; greedy's: sum log p


@dataclass(frozen=True)
class SearchStep:
    """One position of a batch's beam search: its 2K candidates, best first, and what became of them."""

    scores: Tensor  # (B, 2K) summed log-probabilities, the prompt's left out (generate's running scores)
    normalized: Tensor  # (B, 2K) scores / length^length_penalty, length: the tokens after the prompt
    parents: Tensor  # (B, 2K) the running slot (0 .. K - 1) each extends
    tokens: Tensor  # (B, 2K)
    logprobs: Tensor  # (B, 2K) the log-probability each added: the model's, after the processors
    weights: Tensor  # (B, 2K, S) the attention row (Trail.watch's) of the step that wrote each
    live: Tensor  # (B, K) the candidates that run on (none at the last position)
    entered: Tensor  # (B, 2K) the finished candidates: ended among the first K while the sentence could improve
    ended: Tensor  # (B,) the sentence's search ends here: nothing can enter its finished ones after this step
    last: bool  # max_length reached: the first K all became finished candidates, ended or not


@dataclass
class Trail:
    """What a beam search did, step by step: given to :func:`beam_search`, which fills it."""

    watch: Callable[[Any], Tensor]  # a step's (N, S) attention row that the records show, from its step record
    prompt: list[tuple[Tensor, Tensor]] = field(default_factory=list)  # per prompt token: (B,) log p, (B, S) a_t
    steps: list[SearchStep] = field(default_factory=list)


def process(log_probs: Tensor, sequences: Tensor, settings: GenerationSettings) -> Tensor:
    """generate's logits processors, in its order: log_probs (N, V) for the next token after sequences (N, T)."""
    scores = log_probs.clone()  # (N, V)
    length = sequences.size(1)
    for words in settings.bad_words_ids:
        if len(words) == 1 and words[0] in settings.eos_token_ids:
            continue  # generate never bans </s> by itself
        *prefix, last = words
        if not prefix:
            scores[:, last] = BANNED
        elif length >= len(prefix):
            matches = (sequences[:, length - len(prefix) :] == sequences.new_tensor(prefix)).all(dim=1)  # (N,)
            scores[matches, last] = BANNED
    if length < settings.min_length:
        scores[:, list(settings.eos_token_ids)] = BANNED
    for forced, position in (
        (settings.forced_bos_token_id, 1),
        (settings.forced_eos_token_id, settings.max_length - 1),
    ):
        if forced is not None and length == position:
            scores.fill_(BANNED)
            scores[:, forced] = 0.0
    return scores.log_softmax(dim=-1) if settings.renormalize_logits else scores  # (N, V)


def _ends(tokens: Tensor, settings: GenerationSettings) -> Tensor:
    return torch.isin(tokens, tokens.new_tensor(settings.eos_token_ids))  # like tokens, bool


def greedy(
    model: EncoderDecoder[MemoryT, CacheT, TransformerStep], src: Tensor, mask: Tensor, settings: GenerationSettings
) -> list[Hypothesis]:
    """generate(num_beams=1, do_sample=False) for a batch: the most probable token at each step."""
    memory = model.encode(src, mask)
    batch = src.size(0)
    cache = model.empty_cache(batch)
    sequences = torch.full((batch, 1), settings.decoder_start_token_id)  # (B, 1)
    running = torch.ones(batch, dtype=torch.bool)  # (B,)
    totals = torch.zeros(batch)  # (B,)
    while sequences.size(1) < settings.max_length and bool(running.any()):
        step, cache = model.step(sequences[:, -1], cache, memory)
        scores = process(step.log_probs, sequences, settings)  # (B, V)
        tokens = scores.argmax(dim=-1)  # (B,)
        totals += torch.where(running, step.log_probs.gather(1, tokens[:, None]).squeeze(1), 0.0)
        tokens = torch.where(running, tokens, settings.pad_token_id)  # (B,)
        sequences = torch.cat([sequences, tokens[:, None]], dim=1)  # (B, T + 1)
        running &= ~_ends(tokens, settings)
    return [Hypothesis(_trim(row, settings), float(total)) for row, total in zip(sequences[:, 1:].tolist(), totals)]


def _trim(row: list[int], settings: GenerationSettings) -> list[int]:
    """A generated row up to and with its first </s>."""
    for i, token in enumerate(row):
        if token in settings.eos_token_ids:
            return row[: i + 1]
    return row


def beam_search(
    model: EncoderDecoder[MemoryT, CacheT, TransformerStep],
    src: Tensor,
    mask: Tensor,
    settings: GenerationSettings,
    prompt: Sequence[int] = (),
    trail: Trail | None = None,
) -> list[Hypothesis]:
    """generate(num_beams=K) for a batch of B sentences: each one's best hypothesis. ``prompt``: tokens every
    sentence's output starts with after the start token, as generate's ``decoder_input_ids`` give them (scores
    and the length penalty count only what follows them); one that ends with </s> is the result, unsearched
    (generate would write on after it). ``trail``: filled with each step's candidates."""
    beams, batch, limit = settings.num_beams, src.size(0), settings.max_length
    keep = max(2, 1 + len(settings.eos_token_ids)) * beams  # candidates per step: enough to leave K unfinished
    device = src.device
    rows = torch.arange(batch, device=device).repeat_interleave(beams)  # (B·K,) each sentence's K rows together
    memory = select(model.encode(src, mask), rows)
    cache = model.empty_cache(batch * beams)
    running = torch.full((batch, beams, limit), settings.pad_token_id, device=device)  # (B, K, limit)
    running[:, :, 0] = settings.decoder_start_token_id
    prompt_length = 1 + len(prompt)  # generate's decoder_prompt_len: the start token and the prompt
    running[:, :, 1:prompt_length] = torch.tensor(prompt, dtype=torch.long, device=device)
    for position in range(prompt_length - 1):  # the prompt read into the cache, all but its last token
        step, cache = model.step(running[:, :, position].flatten(), cache, memory)
        if trail is not None:  # each sentence's first row: its K rows read the same tokens
            first = step.log_probs[::beams]  # (B, V)
            trail.prompt.append((first[:, prompt[position]], trail.watch(step)[::beams]))  # (B,), (B, S)
    if prompt and prompt[-1] in settings.eos_token_ids:
        return [Hypothesis(list(prompt), 0.0) for _ in range(batch)]
    running_scores = torch.zeros(batch, beams, device=device)  # (B, K) only the first beam is live at the start
    running_scores[:, 1:] = FINISHED_OUT
    finished = running.clone()  # (B, K, limit)
    finished_scores = torch.full((batch, beams), FINISHED_OUT, device=device)  # (B, K)
    is_finished = torch.zeros(batch, beams, dtype=torch.bool, device=device)  # (B, K)
    improvable = torch.ones(batch, 1, dtype=torch.bool, device=device)  # (B, 1)
    first_k = torch.arange(keep, device=device) < beams  # (2K,)
    length = prompt_length
    while True:
        step, cache = model.step(running[:, :, length - 1].flatten(), cache, memory)
        vocab = step.log_probs.size(1)
        scores = process(step.log_probs, running[:, :, :length].flatten(0, 1), settings)  # (B·K, V)
        totals = (scores.view(batch, beams, vocab) + running_scores[:, :, None]).view(batch, -1)  # (B, K·V)
        top_scores, top_index = totals.topk(keep, dim=1)  # (B, 2K)
        parents = top_index // vocab  # (B, 2K)
        candidates = running.gather(1, parents[:, :, None].expand(-1, -1, limit)).clone()  # (B, 2K, limit)
        candidates[:, :, length] = top_index % vocab
        ends = _ends(candidates[:, :, length], settings) | (length + 1 >= limit)  # (B, 2K)

        # The K best that did not end run on.
        live = (top_scores + ends.float() * FINISHED_OUT).topk(beams, dim=1).indices  # (B, K)
        running = candidates.gather(1, live[:, :, None].expand(-1, -1, limit))
        running_scores = (top_scores + ends.float() * FINISHED_OUT).gather(1, live)
        chosen_parents = parents.gather(1, live)  # (B, K)

        # Those that ended among the first K are finished candidates, ranked with the length penalty.
        just_finished = ends & first_k[None, :]  # (B, 2K)
        normalized = top_scores / ((length + 1 - prompt_length) ** settings.length_penalty)  # (B, 2K)
        complete = is_finished.all(dim=1, keepdim=True) & (settings.early_stopping is True)  # (B, 1)
        ranked = normalized + complete * FINISHED_OUT
        ranked = ranked + (~improvable).float() * FINISHED_OUT + (~just_finished).float() * FINISHED_OUT
        entered = just_finished & improvable & ~complete  # (B, 2K)
        merged = torch.cat([finished_scores, ranked], dim=1).topk(beams, dim=1).indices  # (B, K)
        finished = torch.cat([finished, candidates], dim=1).gather(1, merged[:, :, None].expand(-1, -1, limit))
        finished_scores = torch.cat([finished_scores, ranked], dim=1).gather(1, merged)
        is_finished = torch.cat([is_finished, just_finished], dim=1).gather(1, merged)

        cache = select(cache, (chosen_parents + torch.arange(batch, device=device)[:, None] * beams).flatten())
        length += 1
        improvable = improvable & _can_improve(
            running_scores,
            finished_scores,
            is_finished,
            length - prompt_length,
            settings.max_length - prompt_length,
            settings,
        )
        if trail is not None:
            parent_rows = (parents + torch.arange(batch, device=device)[:, None] * beams).flatten()  # (B·2K,)
            full = is_finished.all(dim=1) & (settings.early_stopping is True)  # (B,) early_stopping's end
            trail.steps.append(
                SearchStep(
                    scores=top_scores,
                    normalized=normalized,
                    parents=parents,
                    tokens=candidates[:, :, length - 1],
                    logprobs=scores[parent_rows, candidates[:, :, length - 1].flatten()].view(batch, keep),
                    weights=trail.watch(step)[parent_rows].view(batch, keep, -1),  # (B, 2K, S)
                    live=live,
                    entered=entered,
                    ended=~improvable[:, 0] | full | (length >= limit),
                    last=length >= limit,
                )
            )
        stop_all = bool(is_finished.all()) and settings.early_stopping is True
        if not bool(improvable.any()) or stop_all or bool(ends.all()):
            break
    best = finished[:, 0, 1:].tolist()  # (B, limit - 1)
    return [Hypothesis(_trim(row, settings), float(score)) for row, score in zip(best, finished_scores[:, 0])]


def _can_improve(
    running_scores: Tensor,
    finished_scores: Tensor,
    is_finished: Tensor,
    generated: int,
    most: int,
    settings: GenerationSettings,
) -> Tensor:
    """(B, 1): whether the best running hypothesis could still beat the worst finished one; ``generated``:
    the tokens the running ones have after the prompt, ``most``: the most they can have."""
    penalty = settings.length_penalty
    best_length = most if settings.early_stopping == "never" and penalty > 0 else generated
    best_possible = running_scores[:, :1] / (best_length**penalty)  # (B, 1)
    worst = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True).values, FINISHED_OUT)  # (B, K)
    return (best_possible > worst).any(dim=1, keepdim=True)


def decode(
    model: EncoderDecoder[MemoryT, CacheT, TransformerStep], src: Tensor, mask: Tensor, settings: GenerationSettings
) -> list[Hypothesis]:
    """As generate decodes with these settings: greedy for one beam, beam search for more."""
    with torch.no_grad():
        return (greedy if settings.num_beams == 1 else beam_search)(model, src, mask, settings)
