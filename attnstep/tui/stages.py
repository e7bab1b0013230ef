"""The stages of one attention step, what each reveals, and one line saying what happened.

Nine with attention, one per computation a step does: the RNN, score, softmax, weight, sum
into C_t, [h_t; C_t], the feed-forward layer h~_t = tanh(W_c[h_t; C_t]), the output layer W_s
and its softmax (the distribution), the pick; six without. Luong et al. (2015) run the RNN
first and score its new state h_t; Bahdanau et al. (2014), the "additive" checkpoints, score
the *previous* state s_{t-1}, build C_t, and only then run the RNN on [y_{t-1}; C_t]. The
stage order follows the checkpoint, so the narration never describes a computation the model
did not do in that order.

A Transformer's nine (Marian, post-norm) are those of the decoder layer the trace's View shows:
the embedding and position, the layers below run whole and then this one's self-attention with
its residual and norm, the cross-attention's scores q·k_i/√d, softmax, each head's Σ a_i v_i,
the heads joined by W_o with the residual and norm, the feed-forward block with its own, then the
layers above and the output distribution, and the pick: the order the model computes them in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from attnstep.report.glyphs import norm, num
from attnstep.text.codec import surface
from attnstep.text.subword import WORD_START, is_byte_piece
from attnstep.text.words import UNK, detokenize
from attnstep.trace.cursor import StepCursor
from attnstep.trace.records import (
    MULTI_HEAD,
    NO_ATTENTION,
    STAGE_COUNT,
    Architecture,
    Floats,
    LayerStep,
    SourceToken,
    Step,
    Trace,
    Vector,
)
from attnstep.trace.records import View as AttentionView
from attnstep.trace.word_view import word_alignment, word_states, word_weights
from attnstep.tui.safe import visible


@dataclass(frozen=True)
class Stage:
    key: str  # what this stage computes: rnn, score, softmax, weight, sum, concat, feed_forward, output, pick
    name: str  # short label for the status line
    panel: str  # id of the panel that shows what it changed


def state_name(attention: str) -> str:
    """The decoder state's name: s_t in Bahdanau's notation (additive), h_t in Luong's."""
    return "s_t" if attention == "additive" else "h_t"


_ATTEND = (
    Stage("score", "score", "attention"),
    Stage("softmax", "softmax", "attention"),
    Stage("weight", "weight", "attention"),
    Stage("sum", "sum → C_t", "decoder"),
)
_LAST = (  # after [h_t; C_t], the same for every model
    Stage("feed_forward", "FF → h̃_t", "decoder"),
    Stage("output", "W_s, softmax → p(y_t)", "candidates"),
    Stage("pick", "pick", "candidates"),
)
_RNN, _CONCAT = Stage("rnn", "RNN → h_t", "decoder"), Stage("concat", "[h_t; C_t]", "decoder")

# One per sub-step of a step; how many a step has is the trace's to say (Trace.stage_count).
LUONG_STAGES = (_RNN, *_ATTEND, _CONCAT, *_LAST)
BAHDANAU_STAGES = (*_ATTEND, Stage("rnn", "RNN → s_t", "decoder"), Stage("concat", "[s_t; C_t]", "decoder"), *_LAST)
# Without attention nothing is scored: the context stage shows the one c every step gets.
NO_ATTENTION_STAGES = (_RNN, Stage("sum", "context c", "decoder"), _CONCAT, *_LAST)
# A Transformer's, for the decoder layer in view: "weight" is each head's weighting and sum of
# its values (its context c), so the keys the panels ask for (score, softmax, weight, output,
# pick) mean what they mean for an RNN.
TRANSFORMER_STAGES = (
    Stage("embed", "embedding + position", "decoder"),
    Stage("self_attention", "self-attention", "decoder"),
    Stage("score", "q·k/√d", "attention"),
    Stage("softmax", "softmax", "attention"),
    Stage("weight", "Σ a·v → c", "attention"),
    Stage("join", "W_o, residual, norm", "decoder"),
    Stage("feed_forward", "FFN, residual, norm", "decoder"),
    Stage("output", "W_s, softmax → p(y_t)", "candidates"),
    Stage("pick", "pick", "candidates"),
)


def stages_for(attention: str) -> tuple[Stage, ...]:
    stages = {"additive": BAHDANAU_STAGES, NO_ATTENTION: NO_ATTENTION_STAGES, MULTI_HEAD: TRANSFORMER_STAGES}
    return stages.get(attention, LUONG_STAGES)


@dataclass(frozen=True)
class View:
    """What the screen shows: ``position`` steps of ``trace``, the last one up to ``stage`` (1 to
    ``trace.stage_count``; STAGE_COUNT, the default, is always the whole step)."""

    trace: Trace
    position: int
    stage: int = STAGE_COUNT
    state_scale: float = 1.0  # largest |mean bin| (glyphs.mean_bins) of any h_i: strips of h_i, a·h_i, C_t share it
    numbers: bool = False  # # pressed: the first numbers of the vectors, and log-probabilities, are shown
    words: bool = False  # v pressed: a subword model's pieces are gathered into the user's words, on every panel

    @cached_property
    def cursor(self) -> StepCursor:
        """This place in the trace as the trace layer counts it: the current step, the stage (clamped
        to the trace's stage count), whether the step is shown only in part."""
        return StepCursor(self.trace, self.position, self.stage)

    @property
    def step(self) -> Step | None:
        return self.cursor.current

    @property
    def stages(self) -> tuple[Stage, ...]:
        return stages_for(self.trace.checkpoint.attention)

    @property
    def current_stage(self) -> Stage | None:
        return self.stages[self.cursor.stage - 1] if self.position else None

    @property
    def partial_stage(self) -> Stage | None:
        """The stage a step shown in part (sub-step mode, before the pick) stops at; None when it is whole."""
        return self.current_stage if self.cursor.partial else None

    @property
    def in_words(self) -> bool:
        """Whether the screen gathers pieces into the user's words: v pressed, on a subword model's trace."""
        return self.words and self.trace.subword

    def shows(self, key: str) -> bool:
        """Whether the current step's quantity computed at stage ``key`` is on screen yet."""
        return self.position > 0 and key in {s.key for s in self.stages[: self.cursor.stage]}

    def stage_number(self, key: str) -> int:
        """The sub-step (1 to ``trace.stage_count``) at which this model computes ``key``."""
        return next(n for n, stage in enumerate(self.stages, 1) if stage.key == key)

    def just_done(self, key: str) -> bool:
        """Whether stage ``key`` is the one the user just stepped into (sub-step mode only)."""
        stage = self.partial_stage
        return stage is not None and stage.key == key


UNKNOWN_MARK = "?"  # after a source token the model has no entry for: read as <unk>, or byte by byte


def unknown(token: SourceToken) -> bool:
    return token.token == UNK or is_byte_piece(token.token)


def source_word(token: SourceToken) -> str:
    """A source token as the screen shows it: as the user wrote it, marked when the model never saw it."""
    return token.surface + UNKNOWN_MARK if unknown(token) else token.surface


def piece_text(trace: Trace, token: str) -> str:
    """An output token as the screen shows it: a subword piece without SentencePiece's word-start mark "▁"."""
    return surface(token) if trace.subword else token


def unknown_legend(trace: Trace) -> str | None:
    """What the mark means in this sentence, or None when no token has it."""
    kinds = {"read as <unk>" if t.token == UNK else "read byte by byte" for t in trace.source if unknown(t)}
    return f"{UNKNOWN_MARK}: not in the model's vocabulary, {' or '.join(sorted(kinds))}" if kinds else None


def output_pieces(trace: Trace) -> list[str]:
    """Each step's token as it appears in the translation, with the space before it (if any)."""
    words = trace.output_tokens  # the end token (<eos>, a toolkit's or Marian's </s>) apart
    if trace.subword:  # a SentencePiece piece marks the start of a word with "▁"
        pieces = [word.replace(WORD_START, " ") for word in words]
    else:
        # Detokenizing grows a prefix at its end (a word, maybe a space before it), so the
        # difference between successive prefixes is what each word adds.
        texts = [detokenize(words[:i]) for i in range(len(words) + 1)]
        pieces = [
            texts[i + 1][len(texts[i]) :] if texts[i + 1].startswith(texts[i]) else " " + words[i]
            for i in range(len(words))
        ]
    return [*pieces, " " + trace.end_token] if trace.finished else pieces


NO_ATTENTION_NOTE = (
    "This model has no attention (an encoder–decoder as in Cho et al. 2014): nothing is scored or weighted, "
    "and every step gets the same context c = [h→_n; h←_1], the forward state after the last word and the "
    "backward state after the first."
)


def quote(token: str) -> str:
    """A word or token in quotes, as a reader sees it: a subword piece without its word-start "▁"."""
    return f"“{visible(surface(token))}”"


def output_token(trace: Trace, token: str) -> str:
    """An output token quoted for the narration, named a piece where the model writes pieces."""
    return f"the piece {quote(token)}" if trace.subword and token != trace.end_token else quote(token)


def narrate(view: View) -> str:
    """One line saying what the current stage did, with this sentence's numbers."""
    step = view.step
    trace = view.trace
    if step is None and trace.reference is not None:
        n, differ = len(trace.steps), len(trace.mismatches)
        return (
            f"Scoring a given translation: every token forced. log p = {num(trace.logprob)} "
            f"over {n} tokens with {trace.end_token} "
            f"({num(trace.logprob / n)} a token); the model's own choice differs at {differ} (≠). → steps through it."
        )
    if step is None:
        n, words_read = len(trace.source), len(trace.source_words)
        count = sum(map(unknown, trace.source))
        read = f"all {n} source words" if n == words_read else f"the {words_read} source words as {n} pieces"
        if count:
            read += f" ({count} of them unknown to the model, marked {UNKNOWN_MARK})"
        first = "piece" if trace.subword else "word"
        if not trace.checkpoint.attends:
            return (
                f"The encoder has read {read} and hands over only its final states, "
                f"c = [h→_n; h←_1]: the decoder sees nothing else. → decodes the first {first}; s goes stage by stage."
            )
        architecture = trace.architecture
        if architecture is not None:
            return (
                f"The encoder's {architecture.encoder_layers} layers have read {read} and hand over {n} states "
                f"m_1…m_{n}; each decoder layer's heads make keys k_i = W_k m_i and values v_i = W_v m_i of them. "
                f"→ decodes the first {first}; s goes stage by stage."
            )
        return (
            f"The encoder has read {read} and hands over {n} states h_1…h_{n}. "
            f"→ decodes the first {first}; s goes stage by stage."
        )
    t = step.index + 1
    if not trace.checkpoint.attends:
        return _narrate_without_attention(view, step)
    if view.in_words:  # the source as the user's words, each with its pieces' weights summed
        view = attention_in_words(view)
        trace, step = view.trace, view.step
        assert step is not None  # the same step, its weights gathered
    words = [source_word(s) for s in trace.source]
    best = max(range(len(words)), key=lambda i: step.weights[i])
    stage = view.partial_stage
    where = f" ({trace.view_label})" if trace.architecture is not None else ""  # which head or heads attended
    if stage is None and trace.reference is not None:
        return (
            f"Step {t}: attended most{where} to {quote(words[best])} ({num(step.weights[best])}); the reference's "
            f"{quote(step.chosen_token)} gets p = {num(step.chosen_prob)}. {model_choice(step)}"
        )
    if stage is None:
        forced = " (forced)" if step.forced else ""
        return (
            f"Step {t}: attended most{where} to {quote(words[best])} ({num(step.weights[best])}) and output "
            f"{output_token(trace, step.chosen_token)}{forced}, p = {num(step.chosen_prob)}{beam_choice(trace, step)}. "
            "s: stage by stage."
        )
    if trace.architecture is not None:
        return _narrate_transformer(view, step, stage.key, words)
    additive = trace.checkpoint.attention == "additive"
    query = "s_{t-1} (the state before this step's RNN)" if additive else "h_t"
    key = stage.key
    if key not in ("score", "softmax", "weight", "sum"):
        return _narrate_decoder(view, step, key)
    if key == "score":
        worst = min(range(len(words)), key=lambda i: step.scores[i])
        top = max(range(len(words)), key=lambda i: step.scores[i])
        return (
            f"Every encoder state h_i is scored against {query}: highest {quote(words[top])} "
            f"{num(step.scores[top])}, lowest {quote(words[worst])} {num(step.scores[worst])}."
        )
    if key == "softmax":
        return (
            f"softmax turns the scores into weights that sum to 1: {quote(words[best])} gets {num(step.weights[best])}."
        )
    if key == "weight":
        return f"Each h_i is multiplied by its weight a_i: {quote(words[best])} keeps {num(step.weights[best])} of its state, the others shrink."
    size = "" if step.context is None else f" (‖C_t‖ = {num(norm(step.context))})"
    return f"The weighted states are added up into the context vector C_t = Σ a_i·h_i{size}."


def viewed_layer(trace: Trace, step: Step) -> tuple[Architecture, int, int | None, LayerStep]:
    """A Transformer step's layer in view: the architecture, layer and head (None: the mean) and its record."""
    architecture, view = trace.architecture, trace.view
    assert architecture is not None and view is not None  # a Transformer's trace always has its view
    return architecture, view.layer, view.head, step.layers[view.layer]


def self_weights(layer: LayerStep, head: int | None) -> Vector:
    """The self-attention's weights over the target positions so far: one head's, or the mean of the heads'."""
    return layer.self_weights[head] if head is not None else mean_vector(layer.self_weights)


def short_label(view: AttentionView) -> str:
    """ "L5 h3", "L5 mean": a View in few cells (1-based), where its label does not fit."""
    return f"L{view.layer + 1} " + ("mean" if view.head is None else f"h{view.head + 1}")


def _narrate_transformer(view: View, step: Step, key: str, words: list[str]) -> str:
    """A Transformer's sub-steps (Marian: post-norm, each sublayer x → LayerNorm(x + sublayer(x))),
    for the layer in view; the layers below it run whole before its self-attention, those above after its FFN.
    Two lines of an 80-column terminal each."""
    trace = view.trace
    architecture, layer, head, record = viewed_layer(trace, step)
    n, last, d, heads = layer + 1, architecture.layers, architecture.head_dim, architecture.heads
    best = max(range(len(words)), key=lambda i: step.weights[i])

    def size(name: str, vector: Floats | None) -> str:
        return "" if vector is None else f" ‖{name}‖ = {num(norm(vector))}."

    if key == "embed":
        return (
            f"x = E[{quote(step.input_token)}]·√{architecture.d_model} + PE({step.index}): the embedding (× √D, as "
            f"opus-mt's scale_embedding asks) plus position {step.index}'s sinusoid; layer 1 reads it."
            f"{size('x', step.layers[0].input)}"
        )
    if key == "self_attention":
        below = f"Layers 1–{layer} run whole. " if layer > 1 else ("Layer 1 runs whole. " if layer else "")
        own = self_weights(record, head)
        most = max(range(len(own)), key=lambda j: own[j])
        who = "the heads' mean" if head is None else f"head {head + 1}"
        return (
            f"{below}Layer {n}'s masked self-attention over the {len(own)} tokens so far ({who} puts {num(own[most])} "
            f"on {quote(trace.steps[most].input_token)}), then LayerNorm(x + SelfAttn(x))."
        )
    if key == "score":
        worst = min(range(len(words)), key=lambda i: step.scores[i])
        highest = max(range(len(words)), key=lambda i: step.scores[i])
        whose = "the heads' mean" if head is None else f"head {head + 1}"
        return (
            f"Layer {n}'s {heads} heads score each source token, e_i = q·k_i/√d (d = {d}); {whose}: highest "
            f"{quote(words[highest])} {num(step.scores[highest])}, lowest {quote(words[worst])} {num(step.scores[worst])}."
        )
    if key == "softmax":
        if head is None:
            return (
                f"Each head's softmax sums to 1; the mean of heads is their weights' mean, no softmax of one score: "
                f"{quote(words[best])} gets {num(step.weights[best])}."
            )
        return (
            f"softmax turns head {head + 1}'s scores into weights that sum to 1: "
            f"{quote(words[best])} gets {num(step.weights[best])}."
        )
    if key == "weight":
        if head is None:
            return f"Each head adds up its values by its own weights: c_h = Σ a_i v_i, {d} numbers (a: one head's)."
        return (
            f"Head {head + 1}'s context c = Σ a_i v_i (v_i = W_v m_i, {d} numbers): {quote(words[best])} gives "
            f"{num(step.weights[best])} of its value.{size('c', record.cross[head].context)}"
        )
    if key == "join":
        return (
            f"The {heads} heads' contexts [c_1; …; c_{heads}] ({heads} × {d} = {architecture.d_model}) through W_o, "
            f"plus the residual, then LayerNorm.{size('x', record.cross_output)}"
        )
    if key == "feed_forward":
        return (
            f"Layer {n}'s feed-forward W_2 act(W_1 x + b_1) + b_2, plus the residual, then LayerNorm: "
            f"the layer's output.{size('x', record.output)}"
        )
    above = f"Layers {n + 1}–{last} run whole; " if n + 1 < last else (f"Layer {last} runs whole; " if n < last else "")
    top = step.candidates[0]
    return (
        f"{above}W_s (the tied embeddings, + the logits bias) scores the {vocabulary_size(trace)} tokens from the "
        f"top layer's output; softmax: most likely {quote(top.token)} {num(top.prob)}."
    )


def _narrate_without_attention(view: View, step: Step) -> str:
    """The narration of a model that attends to nothing: the same c at every step."""
    stage = view.partial_stage
    if stage is not None and stage.key != "sum":
        return _narrate_decoder(view, step, stage.key)
    if stage is not None:
        size = "" if step.context is None else f" (‖c‖ = {num(norm(step.context))})"
        return f"No attention: the context is c = [h→_n; h←_1], the encoder's final states, as at every step{size}."
    forced = " (forced)" if step.forced else ""
    return (
        f"Step {step.index + 1}: output {quote(step.chosen_token)}{forced}, p = {num(step.chosen_prob)}"
        f"{beam_choice(view.trace, step)}, from h_t and the same c as every step (no attention). s: stage by stage."
    )


def beam_choice(trace: Trace, step: Step) -> str:
    """For a beam search's step whose word is not the model's top one: that the search chose it, and over what."""
    top = step.candidates[0]
    if trace.beam is None or step.forced or top.id == step.chosen_id:
        return ""
    return f", chosen by the beam search over the model's top choice {quote(top.token)} ({num(top.prob)})"


def _narrate_decoder(view: View, step: Step, key: str) -> str:
    """The stages every decoder has before the pick: the RNN, [h_t; C_t], the feed-forward layer, the output layer."""
    trace = view.trace
    additive = trace.checkpoint.attention == "additive"
    state = state_name(trace.checkpoint.attention)
    hidden, concat, attentional = step.hidden, step.concat, step.attentional
    if key == "rnn":
        # Luong's input feeding: the attentional vector of the step before, zeros before the first
        feeding = "h̃_0 = 0 (input feeding)" if step.index == 0 else "h̃_{t-1} (input feeding)"
        fed = "C_t" if additive else feeding
        word = quote(step.input_token) + (" (the start symbol; <END> in some diagrams)" if step.index == 0 else "")
        size = "" if hidden is None else f" ‖{state}‖ = {num(norm(hidden))}"
        if step.cell is not None:  # a toolkit's LSTM: its cell state c_t beside h_t
            size += f", ‖c_t‖ = {num(norm(step.cell))}"
            state, rnn = f"{state} and c_t", "RNN (an LSTM: h_t and c_t)"
        else:
            rnn = "RNN"
        layers = len(step.layer_states)
        stacked = (
            f" Its {layers} layers are stacked, each reading the one below; attention reads the top one's."
            if layers
            else ""
        )
        return f"The {rnn} reads the embedding of {word}, {fed} and its previous state → {state}.{stacked}{size}"
    if key == "concat":
        sizes = (
            ""
            if hidden is None or concat is None
            else f": {len(hidden)} + {len(concat) - len(hidden)} = {len(concat)} numbers"
        )
        return f"The concatenation [{state}; C_t] puts {state} and C_t end to end in one vector{sizes}."
    if key == "feed_forward":
        sizes = "" if concat is None or attentional is None else f", {len(concat)} → {len(attentional)} numbers"
        fed = "" if additive else " and (input feeding) the next step's RNN"
        norms = "" if attentional is None else f" ‖h̃_t‖ = {num(norm(attentional))}"
        formula = trace.checkpoint.attentional_formula or f"h̃_t = tanh(W_c[{state}; C_t])"  # a toolkit's own
        return f"The feed-forward layer {formula}{sizes}, feeds the output layer{fed}.{norms}"
    # The output layer: the pick is never a partial stage (it completes the step), so narrate says it whole.
    top = step.candidates[0]
    numbers = "h̃_t" if attentional is None else f"the {len(attentional)} numbers of h̃_t"
    return (
        f"The output layer W_s scores each of the {vocabulary_size(trace)} tokens of the vocabulary from {numbers}; "
        "softmax makes the scores "
        f"p(y_t): most likely {quote(top.token)} {num(top.prob)}."
    )


def vocabulary_size(trace: Trace) -> str:
    """How many tokens W_s scores, "8,000"; "|V|" for a trace written before that was recorded."""
    size = trace.checkpoint.target_vocab_size
    return f"{size:,}" if size else "|V|"


def model_choice(step: Step) -> str:
    """For a forced step: the model's own top choice, and whether it is the forced word."""
    top = step.candidates[0]
    if top.id == step.chosen_id:
        return "It is the model's own choice too."
    return f"≠ the model's own choice, {quote(top.token)} (p = {num(top.prob)})."


# --- the word view (v): pieces gathered into the user's words ------------------------------------


def word_brackets(trace: Trace) -> list[str]:
    """Per source token, the bracket that groups a word's pieces: ┌ │ └, or a space for a one-piece word."""
    marks = []
    for word in trace.source_words:
        size = word.end - word.start
        marks += [" "] if size == 1 else ["┌", *["│"] * (size - 2), "└"]
    return marks


def word_tokens(trace: Trace) -> tuple[SourceToken, ...]:
    """The user's words as source tokens; a word with a piece the model read byte by byte keeps that mark."""
    tokens = []
    for index, word in enumerate(trace.source_words):
        pieces = trace.source[word.start : word.end]
        unknown_piece = next((p.token for p in pieces if unknown(p)), None)
        tokens.append(SourceToken(word.text, unknown_piece or word.text, pieces[0].id, index))
    return tuple(tokens)


def sentence_in_words(trace: Trace) -> Trace:
    """The source side of the word view: one token per user's word, its state the mean of its pieces' h_i."""
    return replace(trace, source=word_tokens(trace), words=(), encoder_states=word_states(trace), keys=None)


def grid_in_words(view: View) -> View:
    """The grid's word view: a column per user's word (its pieces' weights summed) and a row per
    output word (the mean of its pieces' rows, as ``trace.word_alignment`` computes them), the
    final end token a row of its own. The current step's row is its word's, labelled with the pieces
    written so far ("stud…" until "ent" comes)."""
    trace = view.trace
    shown = trace.steps[: view.position]
    steps = []
    for index, (word, row) in enumerate(word_alignment(trace, shown, eos=True)):
        pieces = shown[word.start : word.end]
        text = word.text
        if len(pieces) < word.end - word.start:  # decoding has reached only part of this word
            text = "".join(p.chosen_token for p in pieces).replace(WORD_START, "") + "…"
        last = pieces[-1]
        steps.append(replace(last, index=index, weights=row, chosen_token=text, forced=any(p.forced for p in pieces)))
    # A step that only continues a word adds no row of its own: the row of its word grows instead.
    words = replace(trace, source=word_tokens(trace), words=(), steps=tuple(steps), encoder_states=None)
    return replace(view, trace=words, position=len(steps))


def attention_in_words(view: View) -> View:
    """The attention panel's word view at the current step: one row per user's word.

    A word's weight is the sum of its pieces' weights, and its score the log-sum-exp of their
    scores, so that softmax over the words' scores gives exactly those sums. Its state is the
    pieces' states averaged by weight, so weight × state = Σ a_i h_i: the word's share of C_t.
    A Transformer's layer in view has each head gathered so, with its own weights (the head in
    view's values v_i as the states h_i), and its mean is the mean of the gathered heads.
    """
    trace, step = view.trace, view.step
    if step is None:
        return replace(view, trace=replace(trace, source=word_tokens(trace), words=(), encoder_states=None))
    scores, weights, states = _in_words(trace, step.scores, step.weights, trace.encoder_states)
    current = replace(step, scores=scores, weights=weights)
    values = trace.cross_values
    if step.layers:
        # Only the layer in view is gathered, and only its head in view's values (the others' left
        # empty): no panel reads them, and a base model's 48 heads' values cost more than the step.
        _, layer, head, record = viewed_layer(trace, step)
        heads = [_in_words(trace, h.scores, h.weights, None) for h in record.cross]
        cross = tuple(
            replace(h, scores=scores, weights=weights) for h, (scores, weights, _) in zip(record.cross, heads)
        )
        layers = (*step.layers[:layer], replace(record, cross=cross), *step.layers[layer + 1 :])
        if values is not None and head is not None:
            own = _in_words(trace, record.cross[head].scores, record.cross[head].weights, values[layer][head])[2]
            values = tuple(
                tuple(own or () if (n, k) == (layer, head) else () for k in range(len(per_layer)))
                for n, per_layer in enumerate(values)
            )
        shown = cross if head is None else (cross[head],)
        current = replace(
            current,
            layers=layers,
            scores=mean_vector([h.scores for h in shown]),
            weights=mean_vector([h.weights for h in shown]),
        )
    steps = (*trace.steps[: step.index], current, *trace.steps[step.index + 1 :])
    words = replace(trace, source=word_tokens(trace), words=(), steps=steps, encoder_states=states, cross_values=values)
    return replace(view, trace=words)


def _in_words(
    trace: Trace, scores: Vector, weights: Vector, vectors: Sequence[Floats] | None
) -> tuple[Vector, Vector, tuple[Floats, ...] | None]:
    """One attention's scores, weights and vectors over the pieces gathered into the user's words."""
    words = trace.source_words
    summed = word_weights(trace, weights)
    gathered = tuple(_logsumexp(scores[w.start : w.end]) for w in words)
    if vectors is None:
        return gathered, summed, None
    averaged = []
    for word, total in zip(words, summed):
        span = range(word.start, word.end)
        share = [weights[i] / total if total > 0 else 1 / len(span) for i in span]
        pieces = [vectors[i] for i in span]
        averaged.append(Floats.of(sum(a * x for a, x in zip(share, column)) for column in zip(*pieces)))
    return gathered, summed, tuple(averaged)


def mean_vector(vectors: Sequence[Vector]) -> Vector:
    """The componentwise mean: a layer's mean of its heads' weights (or scores)."""
    return tuple(sum(column) / len(vectors) for column in zip(*vectors))


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
