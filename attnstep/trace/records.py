"""The trace: immutable records of one decoding (no tensors).

A trace is plain Python data so that everything downstream — ``attnstep dump``, the TUI, replay
and the SSH server — can read it without importing torch. The model's state vectors are
:class:`Floats` (their float32 bytes), the other numbers Python floats. The engine
(:mod:`attnstep.engine.stepper`) produces traces; :mod:`attnstep.trace.writer` writes their JSON
form, :mod:`attnstep.trace.reader` reads and checks it, and the UI only moves a
:class:`~attnstep.trace.cursor.StepCursor` over them.

A Transformer's trace (format 3) records, per step, every decoder layer (:class:`LayerStep`):
each cross-attention head's scores q·k_i/√d and weights (:class:`HeadStep`), the self-attention's
weights, and with vectors each sublayer's output; once per trace the heads' keys and values of
every source token. Its :class:`Architecture` says how many layers and heads there are, and its
:class:`View` which cross-attention the step-level ``scores``/``weights`` (and so the alignment,
the grid and every picture) show: one head, or the mean of a layer's heads.
:meth:`Trace.with_view` shows another.

Two views of the same decoding: ``source`` and ``steps`` are the tokens the model saw and
wrote (subword pieces for a SentencePiece model); ``words`` and ``output_words`` group them
into the words a person reads, as spans [start, end) of tokens or steps
(:mod:`attnstep.trace.word_view` gathers the weights per word).

Two optional parts: ``beam`` when the decoding was a beam search (``steps`` are then the
records of its best hypothesis), ``reference`` when every step was forced to a given
translation (teacher forcing).

An edited step (:class:`StepEdit`, ``Step.edit``): the user replaced the model's attention weights
a_t of step t by others (:class:`Edit`: zero a token and renormalise, all on one token, uniform, a
temperature, reverse, permute, or typed weights; for a Transformer one head or a whole layer), and
the rest of the step was computed from them. Steps after it are the decoding that continues from
it, as after a forced word. The step keeps the model's own record of it (``before``).

The scorer's own terms, for a worked score: ``keys`` (W_a h_i, or W_k h_i + b), and for
concat/additive ``v_a`` and each step's ``query`` term. :meth:`Trace.without_vectors` drops
them with the other state vectors (``--no-vectors``).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import cast, overload

from attnstep.text.words import detokenize

WORD_TOKENIZER = "attnstep-words"
WORD_TOKENIZERS = (WORD_TOKENIZER, "words")  # a token is a word ("words": a toolkit model's pre-tokenized text)
EOS_TOKEN = "<eos>"
# An RNN trace's first input → the token that ends it: attnstep's own <bos>/<eos>, JoeyNMT's and OpenNMT-py's <s>/</s>
RNN_ENDS = {"<bos>": EOS_TOKEN, "<s>": "</s>"}
NO_ATTENTION = "none"  # the attention of an encoder–decoder that has none (Cho et al. 2014)
MULTI_HEAD = "multi-head"  # a Transformer's: scaled dot-product attention, h heads in each of L layers
SCORER_NAMES = {
    "dot": "Luong dot",
    "general": "Luong general",
    "concat": "Luong concat",
    "additive": "Bahdanau additive",
    NO_ATTENTION: "no attention",
    MULTI_HEAD: "multi-head scaled dot-product",
}
# Sub-steps of one decoder step: RNN, score, softmax, weight, sum, [h_t; C_t], the feed-forward
# layer (h~_t), the output layer (W_s and softmax: the distribution), the pick.
STAGE_COUNT = 9
NO_ATTENTION_STAGE_COUNT = 6  # without attention: RNN, the (fixed) context, then the same last four
Vector = tuple[float, ...]  # a few numbers per source token or candidate: scores, weights


class Floats(Sequence[float]):
    """An immutable vector of float32 numbers kept as their bytes: the model's states in a trace
    (h_i, h_t, C_t, [h_t; C_t], h~_t, keys, query terms).

    They are a thousand numbers and more per step. As a tuple of Python floats each number costs
    32 bytes, and making them was most of the engine's overhead over a plain decoder step; here
    a step's numbers leave torch as one copy of bytes, and its vectors are spans of it
    (numbers ``start`` to ``stop``). Items are Python floats (float32 values, as the model
    computed them); equality is exact.
    """

    __slots__ = ("_data", "_start", "_stop")
    _data: bytes
    _start: int
    _stop: int

    def __init__(self, data: bytes, start: int = 0, stop: int | None = None) -> None:
        if len(data) % 4:
            raise ValueError("float32 data must be a multiple of 4 bytes long")
        stop = len(data) // 4 if stop is None else stop
        if not 0 <= start <= stop <= len(data) // 4:
            raise ValueError(f"numbers {start} to {stop} are not within the data")
        object.__setattr__(self, "_data", bytes(data))
        object.__setattr__(self, "_start", start)
        object.__setattr__(self, "_stop", stop)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Floats are immutable")

    @classmethod
    def of(cls, values: Iterable[float]) -> Floats:
        """Numbers rounded to float32 (out-of-range ones become ±inf)."""
        return cls(array("f", values).tobytes())

    def _view(self) -> memoryview[float]:
        return memoryview(self._data).cast("f")[self._start : self._stop]

    def tolist(self) -> list[float]:
        # typeshed has memoryview.tolist return list[int] whatever the format; a "f" view's items are floats
        return cast("list[float]", self._view().tolist())

    def tobytes(self) -> bytes:
        return self._data[4 * self._start : 4 * self._stop]

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[float, ...]: ...
    def __getitem__(self, index):
        item = self._view()[index]
        return tuple(item.tolist()) if isinstance(index, slice) else item

    def __iter__(self) -> Iterator[float]:
        return iter(self.tolist())

    def __eq__(self, other: object) -> bool:
        return self.tobytes() == other.tobytes() if isinstance(other, Floats) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.tobytes())

    def __repr__(self) -> str:
        return f"Floats({self.tolist()!r})"

    def __reduce__(self):
        return Floats, (self.tobytes(),)


@dataclass(frozen=True)
class Architecture:
    """A Transformer's shape, as its trace records it (an RNN trace has none)."""

    family: str  # "marian"
    layers: int  # decoder layers L
    heads: int  # cross-attention heads per layer h
    head_dim: int  # d: numbers per head's query, key, value and context
    d_model: int  # D = h·d: every layer's width
    encoder_layers: int


@dataclass(frozen=True)
class View:
    """Which cross-attention a Transformer trace's step ``scores`` and ``weights`` are: one head of a
    layer, or (``head`` None) the mean of that layer's heads. 0-based here and in the JSON; people
    read them 1-based (:meth:`label`)."""

    layer: int
    head: int | None = None

    def label(self, architecture: Architecture) -> str:
        """ "layer 5/6, head 3/8" or "layer 5/6, mean of 8 heads": what every picture says it shows."""
        where = f"layer {self.layer + 1}/{architecture.layers}"
        if self.head is None:
            return f"{where}, mean of {architecture.heads} heads"
        return f"{where}, head {self.head + 1}/{architecture.heads}"


def default_view(architecture: Architecture) -> View:
    """The mean of the penultimate decoder layer's heads (the last one's, with a single layer): the
    attention that aligns best of a Transformer's, by Garg et al. 2019 ("Jointly Learning to Align
    and Translate with Transformer Models", §4: layer 5 of 6, heads averaged)."""
    return View(max(architecture.layers - 2, 0))


@dataclass(frozen=True)
class CheckpointInfo:
    name: str  # checkpoint directory name
    sha256: str  # of model.safetensors: which exact weights made this trace
    attention: str  # dot | general | concat | additive | none (no attention: steps have no scores or weights)
    formula: str  # the scorer's formula, for display
    source_language: str
    target_language: str
    tokenizer: str = WORD_TOKENIZER  # attnstep-words | sentencepiece | marian | subword-nmt | words
    target_vocab_size: int = 0  # the tokens W_s scores; 0: not recorded (older traces)
    architecture: Architecture | None = None  # a Transformer's layers and heads; None: an RNN
    # The scorer as the model's toolkit names it ("JoeyNMT bahdanau (MLP)"), where ``attention`` is only
    # the attnstep scorer it computes the same as; "" for attnstep's and Marian's models
    scorer: str = ""
    # A toolkit's attentional and output layers, where they are not attnstep's h~_t = tanh(W_c [h_t; C_t])
    # and p(y_t) = softmax(W_s h~_t + b) ("h̃_t = W_c[C_t; h_t] + b_c" for OpenNMT-py's mlp); "" for attnstep's
    attentional_formula: str = ""
    output_formula: str = ""

    @property
    def attends(self) -> bool:
        return self.attention != NO_ATTENTION

    @property
    def scorer_name(self) -> str:
        """ "Luong general", "no attention", "OpenNMT-py mlp": the attention as people name it."""
        return self.scorer or SCORER_NAMES.get(self.attention, self.attention)


@dataclass(frozen=True)
class SourceToken:
    surface: str  # as a reader sees it: the user's word, or a piece without its "▁"
    token: str  # vocabulary form the model saw ("<unk>" if unknown, "<0xNN>" for a byte)
    id: int  # source vocabulary id
    word: int = 0  # index in Trace.words of the user's word this token belongs to


@dataclass(frozen=True)
class Word:
    """A word as a person reads it, and the span of tokens (source) or steps (output) it is made of."""

    text: str
    start: int
    end: int  # exclusive


@dataclass(frozen=True)
class Candidate:
    token: str
    id: int
    prob: float  # p(y_t = token | y_<t, x)


@dataclass(frozen=True)
class HeadStep:
    """One cross-attention head of one decoder layer at one step."""

    scores: Vector  # q·k_i / √d per source token
    weights: Vector  # softmax of the scores over the source
    query: Floats | None = None  # q = W_q x + b_q, this head's d numbers (None when vectors were dropped)
    context: Floats | None = None  # Σ_i a_i v_i: this head's context (d)


@dataclass(frozen=True)
class LayerStep:
    """One decoder layer of a Transformer at one step: self-attention, cross-attention, feed-forward,
    each followed by its residual and LayerNorm (post-norm, as Marian computes it)."""

    cross: tuple[HeadStep, ...]  # the h cross-attention heads
    self_weights: tuple[Vector, ...]  # per head: softmax weights over the t + 1 target positions read so far
    # With vectors (each D numbers), bottom to top:
    input: Floats | None = None  # x: what the layer reads (the embedding plus position, at the first)
    self_output: Floats | None = None  # LayerNorm(x + SelfAttn(x)): the cross-attention's query side
    joined: Floats | None = None  # W_o [c_1; …; c_h] + b_o: the heads' contexts joined
    cross_output: Floats | None = None  # LayerNorm(self_output + joined)
    output: Floats | None = None  # LayerNorm(cross_output + FFN(cross_output)): the layer's output

    def attention(self, head: int | None) -> tuple[Vector, Vector]:
        """The cross-attention's scores and weights as ``head`` has them, or the means over the heads (None)."""
        if head is not None:
            return self.cross[head].scores, self.cross[head].weights
        count = len(self.cross)
        return (
            tuple(sum(column) / count for column in zip(*(h.scores for h in self.cross))),
            tuple(sum(column) / count for column in zip(*(h.weights for h in self.cross))),
        )


EDIT_OPERATIONS = ("zero", "one", "uniform", "temperature", "reverse", "permute", "weights")
EDIT_MARK = "~"  # after a word whose step's attention the user edited, as "*" after a forced one


@dataclass(frozen=True)
class Edit:
    """What the user did to step t's attention weights a_t, before C_t = Σ_i a'_ti h_i is summed.

    ``operation`` is one of :data:`EDIT_OPERATIONS`:
        zero         a'_i = 0 at ``tokens`` (a word's pieces), the others renormalised to sum 1
        one          all the weight on ``tokens``, shared as the model's weights share it among them
        uniform      a'_i = 1/n
        temperature  a' = softmax(e_t / τ) (``temperature`` τ > 0: under 1 sharpens, over 1 flattens)
        reverse      a'_i = a_{n-1-i}
        permute      the weights shuffled by ``seed`` (Python's random.Random(seed).shuffle)
        weights      typed weights (``weights``: one per source token, non-negative, summing to 1)
    A Transformer's edit names a decoder ``layer`` and a ``head`` of it, or every head of the layer
    (``head`` None), each edited alike; an RNN's has neither. Indices are 0-based, as in the JSON.
    """

    operation: str
    tokens: tuple[int, ...] = ()  # zero, one: indices in Trace.source
    temperature: float | None = None  # temperature: τ
    seed: int | None = None  # permute
    weights: Vector = ()  # weights: the typed a'_t
    layer: int | None = None  # a Transformer's decoder layer (0-based); None for an RNN
    head: int | None = None  # a head of ``layer`` (0-based); None: every head of it


@dataclass(frozen=True)
class StepEdit:
    """An edited step's edit, with the weights before and after it and the model's own step."""

    edit: Edit
    # per edited head (one row for an RNN; a Transformer's layer edit: its h heads, in order)
    own: tuple[Vector, ...]  # the model's weights a_t
    edited: tuple[Vector, ...]  # the weights the step used, a'_t
    # The model's own record of this step (unedited, with the same input): the "before" beside the
    # step's "after". Its own ``edit`` is None.
    before: Step


@dataclass(frozen=True)
class Step:
    """Everything the decoder computed at time step ``index`` (0-based)."""

    index: int
    input_token: str  # y_{t-1}: "<bos>" at step 0, else the word chosen at the previous step
    input_id: int
    scores: Vector  # e_t: one raw score per source token
    weights: Vector  # a_t = softmax(e_t): one weight per source token, sums to 1
    hidden: Floats | None  # h_t (None when vectors were dropped)
    context: Floats | None  # C_t = Σ_i a_ti h_i
    concat: Floats | None  # [h_t; C_t]
    attentional: Floats | None  # h~_t = tanh(W_c [h_t; C_t])
    candidates: tuple[Candidate, ...]  # top-k next words, most probable first
    chosen_token: str  # the word this step outputs ("<eos>" ends the sentence)
    chosen_id: int
    chosen_logprob: float  # log p(chosen)
    forced: bool  # True when a user chose the word instead of the model
    # concat/additive, with vectors: the scorer's query term, W_q h_t (Luong concat) or
    # W_a s_{t-1} (Bahdanau); e_ti = v_aᵀ tanh(query + keys_i). dot/general score h_t itself.
    query: Floats | None = None
    # A Transformer's step: every decoder layer, bottom first (() for an RNN). ``scores`` and
    # ``weights`` above are then the trace's View of them; ``hidden`` is the top layer's output,
    # what the output layer reads, and context/concat/attentional are None (an RNN's quantities).
    layers: tuple[LayerStep, ...] = ()
    embedding: Floats | None = None  # E[y_{t-1}] (times √D where the model scales it), with vectors
    position: Floats | None = None  # the sinusoid of position t, with vectors
    # The user's edit of this step's attention (None: the model's own); the rest of the step, and
    # the steps after it, were computed from the edited weights
    edit: StepEdit | None = None
    # A toolkit's RNN, with vectors: an LSTM's cell state c_t beside h_t (None for a GRU), and a
    # stacked RNN's every layer's h_t and (an LSTM's) c_t, bottom first, the last h_t's and c_t's own
    # (() for one layer). Attention reads the top layer's h_t.
    cell: Floats | None = None
    layer_states: tuple[Floats, ...] = ()
    layer_cells: tuple[Floats, ...] = ()

    @property
    def chosen_prob(self) -> float:
        return math.exp(self.chosen_logprob)


ALIVE, FINISHED, PRUNED = "alive", "finished", "pruned"
DEFAULT_ALPHA = 0.6  # GNMT's length normalization exponent (Wu et al. 2016 found 0.6–0.7 best)
# A beam's length normalization: attnstep's beam divides by GNMT's ((5 + length) / 6)^α (Wu et al.
# 2016, eq. 14), a Transformer's (generate's) by length^length_penalty, length counting the tokens after
# the fixed prefix (generate's decoder_input_ids) with the end token
GNMT, LENGTH_PENALTY = "gnmt", "length_penalty"
MAX_BEAM = 100  # the schema's limit on K (a step of generate's search keeps up to 2K hypotheses: 200)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016, eq. 14): a hypothesis's score is divided by it."""
    return ((5 + length) / 6) ** alpha


@dataclass(frozen=True)
class Hypothesis:
    """One hypothesis of a beam step: the one at ``parent`` in the step before, plus ``token``."""

    parent: int | None  # index in the previous beam step (None at step 0)
    token: str  # the token it adds
    id: int
    # log p(token | the parent's tokens, x) as the search scored it: a Transformer's after generate's
    # processors (renormalized after its bans, 0 for a forced end), so not always its step's chosen_logprob
    logprob: float
    score: float  # cumulative log-probability: the parent's score + logprob
    normalized: float  # the score normalized for length: what results are ranked by (see Beam.normalization)
    # alive: extended at the next step, or still in the beam when the length limit ended the search;
    # finished: ends with <eos>; pruned: none of its extensions stayed in the beam (a Transformer's
    # search also ends with its running ones pruned once none of them can beat the finished ones).
    status: str
    weights: Vector  # a_t of the step that wrote ``token`` (computed from the parent's state)


@dataclass(frozen=True)
class Ranked:
    """One of a beam search's N best results (dump --n-best): hypothesis ``index`` of beam step ``step``."""

    step: int
    index: int
    translation: str  # its tokens, <eos> left out, detokenized
    score: float  # log p(translation | source)
    normalized: float  # what it is ranked by


@dataclass(frozen=True)
class Beam:
    """A whole beam search: each step's hypotheses, highest score first."""

    width: int  # K
    alpha: float  # the length normalization's exponent: GNMT's α, or generate's length_penalty
    start: int  # steps before this one were a fixed prefix (a forced word and the choices before it)
    steps: tuple[tuple[Hypothesis, ...], ...]
    best: int  # index, in beam step len(trace.steps) - 1, of the hypothesis that trace.steps records
    n_best: tuple[Ranked, ...] = ()  # the best results, best first, when asked for (the first is ``best``)
    # GNMT: normalized = score / ((5 + length) / 6)^alpha; LENGTH_PENALTY (generate's): normalized =
    # (score - the fixed prefix's) / (length - start)^alpha, and a hypothesis the length limit stopped
    # ranks among the finished ones
    normalization: str = GNMT

    def lineage(self, t: int, index: int) -> tuple[int, ...]:
        """Indices, at beam steps 0..t, of hypothesis ``index`` of step ``t`` and its ancestors."""
        path = [index]
        for step in range(t, 0, -1):
            parent = self.steps[step][path[-1]].parent
            assert parent is not None  # only step 0's hypotheses have none
            path.append(parent)
        return tuple(reversed(path))

    def history(self, t: int, index: int) -> tuple[Hypothesis, ...]:
        """The hypotheses along ``lineage(t, index)``: its tokens and attention rows, step by step."""
        return tuple(self.steps[step][i] for step, i in enumerate(self.lineage(t, index)))


def ranking(steps: Sequence[Sequence[Hypothesis]], normalization: str = GNMT) -> list[tuple[int, int]]:
    """(step, index) of each result a search ended with, best first: the finished hypotheses by
    normalized score, then those the length limit stopped (an unfinished one wins only where none
    finished); generate's (LENGTH_PENALTY) ranks both together, as it finishes what the limit stops."""
    finished = [(t, j) for t, kept in enumerate(steps) for j, h in enumerate(kept) if h.status == FINISHED]
    stopped = [(len(steps) - 1, j) for j, h in enumerate(steps[-1]) if h.status == ALIVE]

    def normalized(tj: tuple[int, int]) -> float:
        return steps[tj[0]][tj[1]].normalized

    # sorted is stable, so of equal scores the first found ranks first
    if normalization == LENGTH_PENALTY:
        return sorted(finished + stopped, key=normalized, reverse=True)
    return sorted(finished, key=normalized, reverse=True) + sorted(stopped, key=normalized, reverse=True)


@dataclass(frozen=True)
class Trace:
    checkpoint: CheckpointInfo
    source: tuple[SourceToken, ...]
    encoder_states: tuple[Floats, ...] | None  # h_1..h_n, once per trace (None when dropped)
    steps: tuple[Step, ...]
    finished: bool  # True when the last step chose <eos>, False when the length limit stopped it
    words: tuple[Word, ...] = ()  # the user's words over ``source``; () means one word per token
    output_words: tuple[Word, ...] | None = None  # words over the steps; None means one per token
    translation_text: str | None = None  # the detokenized output; None means word-model detokenization
    beam: Beam | None = None  # the search, when the decoding was a beam search
    reference: str | None = None  # the given translation every step was forced to (teacher forcing)
    # What the scorer compares the query with, once per source token (with vectors): W_a h_i
    # (general), W_k h_i + b (concat; U_a h_i + b in Bahdanau's notation). None for dot, whose
    # keys are the encoder states themselves.
    keys: tuple[Floats, ...] | None = None
    v_a: Floats | None = None  # concat/additive: e_ti = v_aᵀ tanh(…)
    # A Transformer's: which cross-attention the steps' scores and weights show, and (with vectors)
    # each layer's heads' keys W_k m_i + b_k and values W_v m_i + b_v, [layer][head][source token].
    view: View | None = None
    cross_keys: tuple[tuple[tuple[Floats, ...], ...], ...] | None = None
    cross_values: tuple[tuple[tuple[Floats, ...], ...], ...] | None = None

    @property
    def architecture(self) -> Architecture | None:
        return self.checkpoint.architecture

    @property
    def end_token(self) -> str:
        """The token that ends this decoding: the last step's where it finished; else an RNN's own (RNN_ENDS
        of the token it starts from: attnstep's <eos>, a toolkit's </s>), or <eos> for a Transformer's,
        whose end token (Marian's </s>) only a finished trace says."""
        if self.finished and self.steps:
            return self.steps[-1].chosen_token
        if self.architecture is None and self.steps:
            return RNN_ENDS.get(self.steps[0].input_token, EOS_TOKEN)
        return EOS_TOKEN

    @property
    def view_label(self) -> str:
        """Which cross-attention a Transformer's trace shows, "layer 1/6, head 3/8" (View.label); "" for an RNN's."""
        return "" if self.architecture is None or self.view is None else self.view.label(self.architecture)

    def with_view(self, view: View) -> Trace:
        """The same decoding with the steps' scores and weights (the alignment) read off another
        cross-attention: head ``view.head`` of layer ``view.layer``, or that layer's mean of heads
        (whose scores are then the heads' mean scores: the weights are not their softmax)."""
        architecture = self.architecture
        if architecture is None:
            raise ValueError("only a Transformer's trace has layers and heads to view")
        if not 0 <= view.layer < architecture.layers or not (view.head is None or 0 <= view.head < architecture.heads):
            raise ValueError(f"{architecture.layers} layers of {architecture.heads} heads have no {view}")
        steps = []
        for step in self.steps:
            scores, weights = step.layers[view.layer].attention(view.head)
            edit = step.edit
            if edit is not None:  # the model's own step, its "before", seen through the same view
                own_scores, own_weights = edit.before.layers[view.layer].attention(view.head)
                edit = replace(edit, before=replace(edit.before, scores=own_scores, weights=own_weights))
            steps.append(replace(step, scores=scores, weights=weights, edit=edit))
        return replace(self, steps=tuple(steps), view=view)

    @property
    def output_tokens(self) -> list[str]:
        """The tokens written, without the end token that finished them (<eos>; a Marian's </s>)."""
        return [s.chosen_token for s in (self.steps[:-1] if self.finished else self.steps)]

    @property
    def translation(self) -> str:
        return detokenize(self.output_tokens) if self.translation_text is None else self.translation_text

    @property
    def logprob(self) -> float:
        """log p(output | source): the sum of every step's log p(chosen)."""
        return sum(s.chosen_logprob for s in self.steps)

    @property
    def mismatches(self) -> tuple[Step, ...]:
        """Steps whose word is not the model's own top choice (candidates[0]): forced ones, in practice."""
        return tuple(s for s in self.steps if s.candidates[0].id != s.chosen_id)

    def mark(self, step: Step) -> str:
        """ "*" after a word the user forced, "~" after one whose attention the user edited; in a given
        translation (all forced), "≠" where the model disagrees."""
        edited = EDIT_MARK if step.edit is not None else ""
        if self.reference is not None:
            return ("≠" if step.candidates[0].id != step.chosen_id else "") + edited
        return ("*" if step.forced else "") + edited

    @property
    def source_words(self) -> tuple[Word, ...]:
        return self.words or tuple(Word(t.surface, i, i + 1) for i, t in enumerate(self.source))

    @property
    def target_words(self) -> tuple[Word, ...]:
        if self.output_words is not None:
            return self.output_words
        return tuple(Word(token, i, i + 1) for i, token in enumerate(self.output_tokens))

    @property
    def subword(self) -> bool:
        return self.checkpoint.tokenizer not in WORD_TOKENIZERS

    @property
    def stage_count(self) -> int:
        """How many sub-steps one step of this decoding has."""
        return STAGE_COUNT if self.checkpoint.attends else NO_ATTENTION_STAGE_COUNT

    @property
    def has_vectors(self) -> bool:
        return self.encoder_states is not None

    def without_vectors(self) -> Trace:
        steps = tuple(_step_without_vectors(s) for s in self.steps)
        return replace(self, encoder_states=None, keys=None, v_a=None, cross_keys=None, cross_values=None, steps=steps)

    @property
    def edits(self) -> dict[int, Edit]:
        """The user's edits by step index: what a decoding of the same prefix must apply again."""
        return {s.index: s.edit.edit for s in self.steps if s.edit is not None}


def _step_without_vectors(step: Step) -> Step:
    edit = step.edit and replace(step.edit, before=_step_without_vectors(step.edit.before))
    return replace(
        step,
        hidden=None,
        context=None,
        concat=None,
        attentional=None,
        query=None,
        embedding=None,
        position=None,
        cell=None,
        layer_states=(),
        layer_cells=(),
        layers=tuple(_layer_without_vectors(layer) for layer in step.layers),
        edit=edit,
    )


def _layer_without_vectors(layer: LayerStep) -> LayerStep:
    return LayerStep(cross=tuple(HeadStep(h.scores, h.weights) for h in layer.cross), self_weights=layer.self_weights)
