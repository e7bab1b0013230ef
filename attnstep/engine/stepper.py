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
    ``edit(trace, t, edit)``           step t recomputed with its attention weights edited (an
                                       :class:`~attnstep.trace.records.Edit`), decoding on greedily
                                       from it; ``unedit(trace, t)`` decodes from step t without it
    ``decode(source, prefix, edits)``  the trace of already-tokenized source whose first steps make the
                                       given choices and edits (what a model in another process is asked for)
    ``translate_batch(sentences)``     many traces in one batched decoding (``decode_batch`` for
                                       sources already tokenized, as ``dump --input`` has them)
    ``iter_steps(sentence, prefix)``   the greedy records one at a time, as they are computed
    ``score_reference(sentence, ref)`` teacher forcing: every token of a given translation forced,
                                       with the probability the model gives each
    ``probe(sources)``                 the probe experiment: every manipulation of each greedy step's
                                       attention, that step only, and what it changed

Greedy decoding goes through one batched loop over the model's step function; a single sentence
is a batch of one, so stepping and batched decoding cannot drift apart. Beam search
(:mod:`attnstep.engine.beam`) is a second loop over the same step function that builds the same
records through the same :class:`~attnstep.engine.recording.Columns`, and with K = 1 makes the
greedy choices. The model is used only through :class:`~attnstep.model.family.Family`: attnstep's
RNN, or a Marian Transformer (:class:`~attnstep.model.marian.family.MarianFamily`), whose steps
become records through :class:`~attnstep.engine.recording.LayerColumns` (every layer and head).

Each step's choice goes through ``generate``'s logits processors
(:func:`~attnstep.engine.generate.process`) where any applies: banned tokens (a Marian folder's
``bad_words_ids``: its <pad> is never emitted), no end before the minimum length, the end forced
at the last step where the folder says so (``forced_eos_token_id``); the candidates stay the
model's own distribution. A Marian folder's generation settings give the lengths: ``max_length``
less the decoder start token (generate counts it), its ``min_length`` likewise; a Stepper's
``max_length``/``min_length`` (dump's --max-length/--min-length, counted in steps, the end
included), where given, replace them. attnstep's checkpoints: no minimum, and at most
2 × the source's tokens + 10 steps, unless given.

A Transformer's beam search is ``generate``'s (:func:`~attnstep.engine.generate.beam_search`, with
the folder's ``length_penalty`` and ``early_stopping``; ``alpha`` is GNMT's, for attnstep's beam),
recorded whole as the trace's beam (:func:`~attnstep.engine.beam.generated_beams`: every step's
hypotheses, their scores and the default view's a_t); its best hypothesis is then decoded by the
greedy loop as an unforced prefix, so that its steps are recorded as every other decoding's.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, cast

import torch

from attnstep.engine.batch import pad
from attnstep.engine.beam import BeamSearch, generated_beams
from attnstep.engine.checkpoint import Checkpoint
from attnstep.engine.device import use_device
from attnstep.engine.edit import MANIPULATIONS, Probed, Reweighing, jensen_shannon, manipulation, probe_random
from attnstep.engine.generate import GenerationSettings, Trail, beam_search, process
from attnstep.engine.marian_checkpoint import MarianCheckpoint, load_any
from attnstep.engine.recording import Choice, Columns, LayerColumns, Numbers, Pick, Row, floats
from attnstep.engine.toolkit_checkpoint import ToolkitCheckpoint
from attnstep.errors import AttnstepError
from attnstep.model.family import Family, LayeredFamily, StepOutput
from attnstep.model.marian.family import real_tokens
from attnstep.model.rnn.seq2seq import max_output_length
from attnstep.trace.edits import EditError, check_edit, check_edit_fits
from attnstep.trace.forcing import check_forceable
from attnstep.trace.records import (
    DEFAULT_ALPHA,
    MAX_BEAM,
    Beam,
    CheckpointInfo,
    Edit,
    Floats,
    Ranked,
    SourceToken,
    Step,
    StepEdit,
    Trace,
    Word,
    default_view,
    ranking,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

DEFAULT_TOP_K = 5
Opaque = Any  # a family's memory or decoder state: the engine hands it back to the model unread
PerHead = tuple[tuple[tuple[Floats, ...], ...], ...]  # [layer][head][source token]


class _Encoded(NamedTuple):
    """One sentence's encoding, as the trace records it (all None without vectors)."""

    states: tuple[Floats, ...] | None  # h_i per source token (a Transformer's: the encoder's top layer)
    keys: tuple[Floats, ...] | None  # the scorer's key per source token (None for dot: the keys are the states)
    cross_keys: PerHead | None = None  # a Transformer's: each layer's heads' keys W_k m_i + b_k
    cross_values: PerHead | None = None  # and values


class Stepper:
    def __init__(
        self,
        checkpoint: Checkpoint | MarianCheckpoint | ToolkitCheckpoint,
        *,
        top_k: int = DEFAULT_TOP_K,
        vectors: bool = True,
        beam: int | None = None,
        alpha: float = DEFAULT_ALPHA,
        min_length: int = 0,
        max_length: int | None = None,
        n_best: int | None = None,
    ):
        if top_k < 1:
            raise AttnstepError("top-k must be at least 1")
        if beam is not None and not 1 <= beam <= MAX_BEAM:
            raise AttnstepError(f"the beam width must be 1 to {MAX_BEAM}, not {beam}")
        if alpha < 0 or not math.isfinite(alpha):
            raise AttnstepError(f"the length normalization alpha must be 0 or more, not {alpha}")
        generation = checkpoint.generation
        if isinstance(checkpoint, MarianCheckpoint):  # the folder's lengths unless given (less its start token)
            min_length = min_length or max(checkpoint.generation.min_length - 1, 0)
            max_length = max_length or min(checkpoint.generation.max_length - 1, checkpoint.positions)
        if isinstance(checkpoint, ToolkitCheckpoint):  # its toolkit's translation lengths unless given
            min_length, max_length = min_length or checkpoint.min_length, max_length or checkpoint.max_length
        if min_length < 0 or (max_length is not None and max_length <= min_length):
            raise AttnstepError(
                f"the maximum length must be over the minimum, {min_length} (the <eos> counts), not {max_length}"
            )
        if max_length is not None and checkpoint.positions is not None and max_length > checkpoint.positions:
            raise AttnstepError(f"the model has positions for {checkpoint.positions} tokens, not {max_length}")
        if n_best is not None and beam is None:
            raise AttnstepError("an n-best list needs a beam search")
        if n_best is not None and beam is not None and not 1 <= n_best <= beam:
            raise AttnstepError(f"an n-best list must be 1 to the beam's width, {beam}, not {n_best}")
        self.n_best = n_best  # the beam's this many best results are listed in the trace
        # <eos> is not chosen at the first min_length steps; max_length steps at most (<eos> counted),
        # else max_output_length's for the source's length
        self.min_length, self.max_length = min_length, max_length
        self.checkpoint = checkpoint
        self.codec = checkpoint.codec
        # The engine only ever runs the model forward. Parameters that need no gradient let it run
        # without a no_grad context, whose wrapper around the step generator costs ~25 µs a step.
        self.model = cast(Family[Opaque, Opaque], checkpoint.family.eval().requires_grad_(False))
        self.device = next(checkpoint.family.parameters()).device  # inputs are made where the model is
        self.specials = start, end, pad = self.model.specials  # the model's own start, end and padding ids
        # generate's processing of each step's choice (no forced end for attnstep's: max_length unread)
        self.rules = replace(
            generation or GenerationSettings(start, pad, (end,)),
            min_length=min_length + 1,
            max_length=(max_length or 0) + 1,
        )
        self.architecture = checkpoint.architecture  # a Transformer's layers and heads; None: an RNN
        self.view = None if self.architecture is None else default_view(self.architecture)
        self.top_k = min(top_k, len(checkpoint.tgt_vocab))
        self.vectors = vectors  # False skips h_t, C_t, [h_t; C_t], h~_t and encoder states (dump --no-vectors)
        v_a = self.model.v_a if vectors else None  # (A,)
        self.queried = v_a is not None  # a query term W q, and v_a, to work a score out
        self.v_a = None if v_a is None else floats(v_a.view(1, -1))[0]
        # None: greedy; else a beam search of width K (capped by the vocabulary, which bounds the extensions)
        width = None if beam is None else min(beam, len(checkpoint.tgt_vocab))
        self.search = None
        if width is not None and self.architecture is None:
            self.search = BeamSearch(self.model, width, alpha, self._rnn_columns)
        # A Transformer's beam: generate's, with the folder's length_penalty and early_stopping (not alpha)
        self.generated = replace(self.rules, num_beams=width) if width and self.architecture is not None else None
        self.info = CheckpointInfo(
            name=checkpoint.name,
            sha256=checkpoint.digest,
            attention=self.model.attention,
            formula=self.model.formula,
            source_language=str(checkpoint.meta.get("source_language", "")),
            target_language=str(checkpoint.meta.get("target_language", "")),
            tokenizer=self.codec.kind,
            target_vocab_size=len(checkpoint.tgt_vocab),
            architecture=self.architecture,
            **(checkpoint.model.display_names if isinstance(checkpoint, ToolkitCheckpoint) else {}),
        )

    # --- what the UI may call -------------------------------------------------------------

    def source_tokens(self, sentence: str) -> tuple[SourceToken, ...]:
        """The tokens (words or pieces) the model sees for a user's sentence; refuses bad input."""
        return tuple(SourceToken(*piece) for piece in self.codec.source_pieces(sentence))

    def translate(self, sentence: str) -> Trace:
        return self.translate_batch([sentence])[0]

    def force(self, trace: Trace, t: int, word: str | int) -> Trace:
        """Choose ``word`` (a target token or id) at step ``t`` and re-decode from that prefix; a word
        a subword model writes as several pieces is forced piece by piece, from step ``t`` on."""
        check_forceable(trace, t)
        kept = tuple((s.chosen_id, s.forced) for s in trace.steps[:t])
        edits = {k: e for k, e in trace.edits.items() if k <= t}  # step t's edited weights stay with its new word
        return self.decode(trace.source, (*kept, *((i, True) for i in self.target_ids(word))), edits)

    def unforce(self, trace: Trace, t: int) -> Trace:
        """Keep steps before ``t`` and let the model choose from step ``t`` on."""
        kept = tuple((s.chosen_id, s.forced) for s in trace.steps[:t])
        return self.decode(trace.source, kept, {k: e for k, e in trace.edits.items() if k < t})

    def edit(self, trace: Trace, t: int, edit: Edit) -> Trace:
        """Step ``t`` with its attention weights edited and the rest of it computed from them (its word the
        model's choice from the edited distribution, unless the user forced one there), decoding on from it;
        the steps before ``t`` and their edits as they were."""
        check_edit(trace, t, edit)
        kept = tuple((s.chosen_id, s.forced) for s in trace.steps[: t + 1 if trace.steps[t].forced else t])
        edits = {k: e for k, e in trace.edits.items() if k < t}
        return self.decode(trace.source, kept, {**edits, t: edit})

    def unedit(self, trace: Trace, t: int) -> Trace:
        """Step ``t`` as the model computes it (a word forced there stays), decoding on from it."""
        kept = tuple((s.chosen_id, s.forced) for s in trace.steps[: t + 1 if trace.steps[t].forced else t])
        return self.decode(trace.source, kept, {k: e for k, e in trace.edits.items() if k < t})

    def decode(
        self, source: tuple[SourceToken, ...], prefix: Sequence[Choice] = (), edits: Mapping[int, Edit] | None = None
    ) -> Trace:
        """The trace of ``source`` with ``prefix``'s choices made at its first steps, greedy after them;
        ``edits`` edit the attention of the steps they name (0-based)."""
        return self._decode([self._row(tuple(source), tuple(prefix), dict(edits or {}))])[0]

    def target_ids(self, word: str | int) -> tuple[int, ...]:
        """The target vocabulary ids that write ``word`` (a token, an id, or a word a subword model
        writes as several pieces), refusing what the model cannot output."""
        vocab = self.checkpoint.tgt_vocab
        if isinstance(word, int):
            if not 0 <= word < len(vocab):
                raise AttnstepError(f"target id {word} is outside the vocabulary (size {len(vocab)})")
            return (word,)
        ids = tuple(self.codec.target_ids(word))
        if not ids or any(i in (self.specials.start, self.specials.pad) for i in ids):
            raise AttnstepError(
                f"{word!r} is not a {self.codec.unit} the model can output (not in the target vocabulary)"
            )
        return ids

    def translate_batch(self, sentences: Sequence[str]) -> list[Trace]:
        return self.decode_batch([self.source_tokens(s) for s in sentences])

    def decode_batch(self, sources: Sequence[tuple[SourceToken, ...]]) -> list[Trace]:
        """Traces of already-tokenized sources, decoded together."""
        return self._decode([self._row(tuple(source), ()) for source in sources])

    def limit(self, source_length: int) -> int:
        """The most steps a decoding of a source this long takes, but for a longer forced prefix."""
        return self.max_length or max(max_output_length(source_length), self.min_length + 1)

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
        prefix = (*((i, True) for i in ids), (self.specials.end, True))
        trace = self._greedy([self._row(source, prefix)])[0]
        return replace(trace, reference=reference)

    def iter_steps(self, sentence: str, prefix: Sequence[Choice] = ()) -> Iterator[Step]:
        """Yield one sentence's step records as the decoder produces them."""
        row = self._row(self.source_tokens(sentence), tuple(prefix))
        memory, state, _ = self._encode([row])
        for produced in self._run([row], memory, state):
            yield from (step for _, step in produced)

    def probe(self, sources: Sequence[tuple[SourceToken, ...]], *, seed: int = 0, first: int = 0) -> list[Probed]:
        """At each step of each source's greedy decoding (decoded together), each of
        :data:`~attnstep.engine.edit.MANIPULATIONS` applied to that step only, in one batched forward pass
        per manipulation from the step's own state: whether the step's word changes, and the Jensen–Shannon
        divergence of its distribution. A Transformer's manipulation edits its view's attention: one head, or
        every head of the layer alike (the largest weight: of the heads' mean). Sentence ``first + i``'s draws are seeded by
        ``seed`` (:func:`~attnstep.engine.edit.probe_random`), whatever the batching."""
        if not self.info.attends:
            raise EditError(f"{self.info.name} has no attention to edit (a model without attention)")
        if self.search is not None or self.generated is not None:
            raise AttnstepError("the probe decodes greedily: not with a beam search (--beam)")
        rows = [self._row(tuple(source), ()) for source in sources]
        memory, state, _ = self._encode(rows)
        end = self.specials.end
        prev = torch.full((len(rows),), self.specials.start, dtype=torch.long, device=self.device)  # (B,)
        sequences = prev[:, None]  # (B, t + 1)
        layer, head = (None, None) if self.view is None else (self.view.layer, self.view.head)
        active, found, t = list(range(len(rows))), [], 0
        while active:
            output, next_state = self.model.step(prev, state, memory)
            logprobs = torch.log_softmax(output.logits, dim=-1)  # (B, V)
            chosen = self._pick(logprobs, sequences, t)  # (B,)
            weights = output.weights if self.view is None else self._watched(output)  # (B, S)
            own = weights[torch.tensor(active, device=self.device)].tolist()
            changed, divergence = [], []
            for name in MANIPULATIONS:
                edits = []
                for i, row_weights in zip(active, own):
                    n = len(rows[i].source)
                    edit = manipulation(name, row_weights[:n], probe_random(seed, first + i, t, name))
                    edits.append((i, replace(edit, layer=layer, head=head), n))
                edited, _ = self.model.step(prev, state, memory, Reweighing(edits))
                logq = torch.log_softmax(edited.logits, dim=-1)  # (B, V)
                changed.append((self._pick(logq, sequences, t) != chosen).tolist())
                divergence.append(jensen_shannon(logprobs, logq).tolist())
            ids = chosen.tolist()
            for i in active:
                found.append(
                    Probed(first + i, t, ids[i], tuple(c[i] for c in changed), tuple(d[i] for d in divergence))
                )
            state, prev = next_state, chosen
            sequences = torch.cat([sequences, chosen[:, None]], dim=1)  # (B, t + 2)
            active = [i for i in active if ids[i] != end and t + 1 < rows[i].limit]
            t += 1
        return found

    # --- inside ----------------------------------------------------------------------------

    def _row(
        self, source: tuple[SourceToken, ...], prefix: tuple[Choice, ...], edits: dict[int, Edit] | None = None
    ) -> Row:
        limit = max(self.limit(len(source)), len(prefix))
        positions = self.checkpoint.positions
        if positions is not None and limit > positions:
            raise AttnstepError(f"the model has positions for {positions} tokens; the forced ones are {len(prefix)}")
        if edits and (self.search is not None or self.generated is not None):
            raise AttnstepError("an edited attention decodes greedily: not with a beam search (--beam)")
        if edits and not self.info.attends:
            raise EditError(f"{self.info.name} has no attention to edit (a model without attention)")
        for edit in (edits or {}).values():  # what another process asks for is checked here, as a trace's edit is
            check_edit_fits(edit, len(source), self.architecture)
        return Row(source, prefix, limit, self.min_length, edits or {})

    def _source_words(self, source: tuple[SourceToken, ...]) -> tuple[tuple[SourceToken, ...], tuple[Word, ...]]:
        """The user's words over the source tokens, derived from the tokens themselves.

        A request from another process (the SSH server's sessions) sends only the tokens, so
        the word grouping is always recomputed here rather than trusted.
        """
        words = tuple(Word(*span) for span in self.codec.source_words(source))
        word_of = [w for w, word in enumerate(words) for _ in range(word.start, word.end)]
        return tuple(SourceToken(t.surface, t.token, t.id, w) for t, w in zip(source, word_of)), words

    def _trace(self, row: Row, encoded: _Encoded, steps: list[Step], beam: Beam | None = None) -> Trace:
        source, words = self._source_words(row.source)
        end = self.specials.end
        tokens = [s.chosen_token for s in steps if s.chosen_id != end]
        return Trace(
            checkpoint=self.info,
            source=source,
            encoder_states=encoded.states,
            keys=encoded.keys,
            v_a=self.v_a,
            steps=tuple(steps),
            finished=bool(steps) and steps[-1].chosen_id == end,
            words=words,
            output_words=tuple(Word(*span) for span in self.codec.target_words(tokens)),
            translation_text=self.codec.detokenize(tokens),
            beam=beam,
            view=self.view,
            cross_keys=encoded.cross_keys,
            cross_values=encoded.cross_values,
        )

    def _decode(self, rows: list[Row]) -> list[Trace]:
        if self.generated is not None:
            searched = self._searched(rows)
            traces = self._greedy([row for row, _ in searched])
            return [replace(trace, beam=self._listed(beam)) for trace, (_, beam) in zip(traces, searched)]
        if self.search is None:
            return self._greedy(rows)
        memory, state, encoded = self._encode(rows)
        found = self.search.run(rows, memory, state)
        return [self._trace(row, e, steps, self._listed(beam)) for row, e, (steps, beam) in zip(rows, encoded, found)]

    def _searched(self, rows: list[Row]) -> list[tuple[Row, Beam]]:
        """A Transformer's beam search, generate's (:func:`~attnstep.engine.generate.beam_search`): each row
        with its best hypothesis as its prefix, unforced after its own, so that the greedy loop records its
        steps, and the whole search as a Beam. Rows with the same prefix are searched together, from it, as
        generate continues ``decoder_input_ids``."""
        settings = self.generated
        assert settings is not None
        marian = cast(MarianCheckpoint, self.checkpoint).model
        by_prefix: dict[tuple[int, ...], list[int]] = {}
        for i, row in enumerate(rows):
            by_prefix.setdefault(tuple(choice[0] for choice in row.prefix), []).append(i)
        searched: dict[int, tuple[Row, Beam]] = {}
        for prompt, members in by_prefix.items():
            src, lengths = pad([[t.id for t in rows[i].source] for i in members], self.device, self.specials.pad)
            trail = Trail(self._watched)
            beam_search(marian, src, real_tokens(src, lengths), settings, prompt, trail)
            sources = [len(rows[i].source) for i in members]
            beams = generated_beams(
                trail, prompt, sources, self._vocab, settings.num_beams, settings.length_penalty, settings.eos_token_ids
            )
            for i, (beam, tokens) in zip(members, beams):
                found = tuple((token, False) for token in tokens[len(prompt) :])
                searched[i] = (replace(rows[i], prefix=rows[i].prefix + found), beam)
        return [searched[i] for i in range(len(rows))]

    def _watched(self, output: Any) -> torch.Tensor:
        """(N, S) the cross-attention weights of the trace's view in a Transformer's DecoderStep: what a
        beam hypothesis keeps."""
        assert self.view is not None
        weights = output.layers[self.view.layer].cross_attention.weights  # (N, h, S)
        return weights.mean(dim=1) if self.view.head is None else weights[:, self.view.head]  # (N, S)

    def _listed(self, beam: Beam) -> Beam:
        """The beam with its n-best list, where one is asked for."""
        return beam if self.n_best is None else replace(beam, n_best=self._n_best(beam))

    def _n_best(self, beam: Beam) -> tuple[Ranked, ...]:
        """The beam's best results, as many as asked for (fewer where the search ended with fewer)."""
        listed = []
        for t, j in ranking(beam.steps, beam.normalization)[: self.n_best]:
            h = beam.steps[t][j]
            tokens = [step.token for step in beam.history(t, j) if step.id != self.specials.end]
            listed.append(Ranked(t, j, self.codec.detokenize(tokens), h.score, h.normalized))
        return tuple(listed)

    def _greedy(self, rows: list[Row]) -> list[Trace]:
        memory, state, encoded = self._encode(rows)
        steps: list[list[Step]] = [[] for _ in rows]
        for produced in self._run(rows, memory, state):
            for index, step in produced:
                steps[index].append(step)
        return [self._trace(row, e, row_steps) for row, e, row_steps in zip(rows, encoded, steps)]

    def _encode(self, rows: list[Row]) -> tuple[Opaque, Opaque, list[_Encoded]]:
        """Encode a batch: (the family's memory, its first decoder state, each row's _Encoded)."""
        src, lengths = pad([[t.id for t in row.source] for row in rows], self.device, self.specials.pad)
        memory, state = self.model.encode(src, lengths)
        states, keys = self.model.encoder_vectors(memory) if self.vectors else (None, None)  # (B, S, M), (B, S, K)

        def per_row(tensor: torch.Tensor | None) -> list[tuple[Floats, ...] | None]:  # (B, S, D) → each row's tokens'
            return [None if tensor is None else floats(tensor[i, : len(row.source)]) for i, row in enumerate(rows)]

        encoded = [_Encoded(*pair) for pair in zip(per_row(states), per_row(keys))]
        if self.architecture is not None and self.vectors:
            cross = cast(LayeredFamily, self.model).cross_vectors(memory)  # (B, L, h, S, d) keys, values
            encoded = [
                e._replace(cross_keys=_per_head(cross[0][i], n), cross_values=_per_head(cross[1][i], n))
                for i, (e, n) in enumerate(zip(encoded, (len(row.source) for row in rows)))
            ]
        return memory, state, encoded

    @cached_property
    def _vocab(self) -> list[str]:
        return self.codec.target_tokens

    def _columns(self, output: Any) -> Columns | LayerColumns:
        """Where a step's quantities go in its rows of numbers: a StepOutput's, or a Transformer's DecoderStep's."""
        if self.view is not None:
            return LayerColumns.of(output, self._vocab, self.top_k, self.vectors, self.view)
        return self._rnn_columns(output)

    def _rnn_columns(self, output: StepOutput) -> Columns:
        return Columns.of(output, self._vocab, self.top_k, self.vectors, self.queried)

    def _run(self, rows: list[Row], memory: Opaque, state: Opaque) -> Iterator[list[tuple[int, Step]]]:
        """The greedy batched loop over an encoded batch: yields [(row index, step record), ...] per time step."""
        start, end, _ = self.specials
        prev = torch.full((len(rows), 1), start, dtype=torch.long, device=self.device)  # (B, 1)
        sequences = prev  # (B, t + 1) what each row has read: generate's processors look back over it
        input_ids = [start] * len(rows)
        active = list(range(len(rows)))
        c: Columns | LayerColumns | None = None
        t = 0
        while active:
            output, next_state = self.model.step(prev.view(-1), state, memory)
            c = self._columns(output) if c is None or c.grows else c
            edited = [(i, rows[i].edits[t], len(rows[i].source)) for i in active if t in rows[i].edits]
            before: dict[int, Step] = {}
            if edited:  # the model's own step is each edited row's "before"; the step again with the edits
                own_chosen, own_numbers, own_column = self._choose(rows, active, t, output, c, sequences)
                before = dict(self._records(rows, active, t, input_ids, c, own_numbers, own_column, own_chosen))
                reweighing = Reweighing(edited)
                output, next_state = self.model.step(prev.view(-1), state, memory, reweighing)
            state = next_state
            prev, numbers, chosen_column = self._choose(rows, active, t, output, c, sequences)
            sequences = torch.cat([sequences, prev], dim=1)  # (B, t + 2)
            produced = self._records(rows, active, t, input_ids, c, numbers, chosen_column, prev)
            for k, (i, step) in enumerate(produced):
                if i in before:
                    made = StepEdit(rows[i].edits[t], reweighing.own[i], reweighing.edited[i], before[i])
                    produced[k] = (i, replace(step, edit=made))
                input_ids[i] = step.chosen_id
            yield produced
            active = [i for i in active if input_ids[i] != end and t + 1 < rows[i].limit]
            t += 1

    def _records(
        self,
        rows: list[Row],
        active: list[int],
        t: int,
        input_ids: list[int],
        c: Columns | LayerColumns,
        numbers: list[Numbers],
        chosen_column: int,
        chosen: torch.Tensor,
    ) -> list[tuple[int, Step]]:
        """Each active row's step record from its numbers and its choice (chosen (B, 1))."""
        chosen_ids = chosen.view(-1).tolist() if chosen_column == -1 else None  # else each row's top-1
        produced = []
        for i, row_numbers in zip(active, numbers):
            prefix = rows[i].prefix
            chosen_id = row_numbers.top_ids[0] if chosen_ids is None else chosen_ids[i]
            forced = t < len(prefix) and prefix[t][1]
            pick = Pick(t, input_ids[i], chosen_id, row_numbers.tail[chosen_column], forced)
            produced.append((i, c.record(len(rows[i].source), row_numbers, pick)))
        return produced

    def _pick(self, logprobs: torch.Tensor, sequences: torch.Tensor, t: int) -> torch.Tensor:
        """Greedy choices (B,) from (B, V) log-probabilities, as _choose makes them when nothing is forced."""
        if self._ruled(t):
            return process(logprobs, sequences, self.rules).argmax(dim=-1)
        return logprobs.topk(1, dim=-1).indices[:, 0]

    def _ruled(self, t: int) -> bool:
        """Whether one of generate's processors may change step t's choice."""
        rules = self.rules
        return bool(
            rules.bad_words_ids
            or t + 1 < rules.min_length
            or (rules.forced_eos_token_id is not None and t + 2 == rules.max_length)
            or (rules.forced_bos_token_id is not None and t == 0)
        )

    def _choose(
        self,
        rows: list[Row],
        active: list[int],
        t: int,
        output: Any,
        c: Columns | LayerColumns,
        sequences: torch.Tensor,
    ) -> tuple[torch.Tensor, list[Numbers], int]:
        """A greedy step's choices (B, 1), each active row's numbers, and where in a row's tail the
        chosen token's log-probability is: the top-1, or an extra last column where a prefix forces
        some or generate's processors rule (a banned token, an end held back or forced)."""
        logprobs = torch.log_softmax(output.logits, dim=-1)  # (B, V)
        top_logprobs, top_ids = logprobs.topk(c.k, dim=-1)  # (B, k)
        chosen = top_ids.narrow(1, 0, 1)  # (B, 1) greedy
        forcing = [i for i in active if t < len(rows[i].prefix)]
        ruled = self._ruled(t)
        if ruled:  # the best token the processors leave; the candidates stay the model's own
            chosen = process(logprobs, sequences, self.rules).argmax(dim=-1, keepdim=True)  # (B, 1)
        if forcing:
            chosen = chosen.clone()
            chosen[forcing, 0] = torch.tensor([rows[i].prefix[t][0] for i in forcing], device=self.device)
        if forcing or ruled:  # the chosen words' log-probabilities become an extra, last column
            table = c.numbers(output, top_logprobs, logprobs.gather(1, chosen))  # (B, C + 1)
        else:
            table = c.numbers(output, top_logprobs)  # (B, C)
        top = top_ids.tolist()
        if len(active) < len(rows):
            table = table[torch.tensor(active, device=self.device)]
        return chosen, c.split(table, [top[i] for i in active]), -1 if forcing or ruled else c.top


class DecodingOptions(TypedDict, total=False):
    """:class:`Stepper`'s keywords, for those that hand them on (:func:`load_stepper`, ``dump``)."""

    top_k: int
    vectors: bool
    beam: int | None
    alpha: float
    min_length: int
    max_length: int | None
    n_best: int | None


def load_stepper(checkpoint, *, device: str = "cpu", threads: int = 0, **decoding: Unpack[DecodingOptions]) -> Stepper:
    """A stepper over the checkpoint folder ``checkpoint``, for a process that then decodes for long.

    torch and the model leave ~10^5 long-lived objects, and every full collection would walk them
    again: `dump` allocates millions of tuples (frozen: ~10% faster), and the SSH server's event loop,
    which relays every student's keys, stood still for 0.15-0.2 s at each one. Frozen, after one
    collection so that no garbage is kept with them, the collector skips them. ``device`` and
    ``threads``: where it computes (see :func:`~attnstep.engine.device.use_device`).
    """
    stepper = Stepper(load_any(checkpoint, use_device(device, threads)), **decoding)
    gc.collect()
    gc.freeze()
    return stepper


def _per_head(vectors: torch.Tensor, n: int) -> PerHead:
    """One sentence's (L, h, S, d) keys or values as [layer][head][token] Floats, its n tokens only: one copy."""
    L, h, _, d = vectors.shape
    rows = floats(vectors[:, :, :n].reshape(-1, d))  # (L·h·n) rows of d
    return tuple(tuple(rows[(layer * h + j) * n : (layer * h + j + 1) * n] for j in range(h)) for layer in range(L))
