"""A run's traces as NumPy arrays in one ``.npz`` file (``attnstep dump --format npz``).

The JSON form spells every number out, 0.8–1.1 MB a sentence with its vectors; here each kind of
number of every sentence is one array, the sentences' rows concatenated in input order along the
first axis, and offset arrays say whose rows are which (ragged data: a sentence's tokens and
steps, a step's weights). It holds only numbers, fixed-width strings and one JSON string, so
``numpy.load(path, allow_pickle=False)`` reads it without attnstep.

Layout (``layout_version`` 1). N sentences (one per input line, a blank line one with no tokens
and no steps), S source tokens, T steps, R = Σ_t n_t weights (n_t: the step's source tokens; 0
without attention)::

    meta (1,) str: JSON {layout, layout_version, checkpoint{…, architecture}, vectors, beam{width, alpha, normalization}?,
                         view{layer, head}?, sentences, steps}
    sentence_token_offsets (N+1,), sentence_step_offsets (N+1,), sentence_word_offsets (N+1,),
    sentence_output_word_offsets (N+1,), step_weight_offsets (T+1,)        int64
    lines (N,) int64 (the input line), translations, references (N,) str ("" where none), finished (N,) bool
    source_ids (S,) int32, source_tokens, source_surfaces (S,) str, source_words (S,) int32 (word index)
    word_texts (W,) str, word_starts, word_ends (W,) int32 (token spans [start, end) in the sentence)
    output_word_texts, output_word_starts, output_word_ends: the same over the steps
    input_ids, chosen_ids (T,) int32, input_tokens, chosen_tokens (T,) str, chosen_logprobs (T,) float64,
    forced (T,) bool, candidate_ids (T, k) int32, candidate_tokens (T, k) str, candidate_probs (T, k) float64
    scores, weights (R,) float64: step t's are [step_weight_offsets[t], step_weight_offsets[t+1])
    with vectors, float32: encoder_states (S, M), keys (S, K)?, v_a (A,)? (the model's, once),
                           hidden, context, concat, attentional (T, ·), query (T, A)?;
                           a toolkit's RNN: cells (T, H)? (an LSTM's c_t), layer_states (T, L, H)?
                           and layer_cells (T, L, H)? (a stacked RNN's every layer, bottom first)

A Transformer's trace adds, L layers of h heads of d numbers (D = h·d)::

    step_self_offsets (T+1,) int64; head_scores, head_weights (R, L, h) float64: every head's cross-attention;
    self_weights (Σ_t (t+1), L, h) float64: step t's [step_self_offsets[t], step_self_offsets[t+1])
    with vectors, float32: head_queries, head_contexts (T, L, h, d); layer_inputs, self_outputs, joined,
    cross_outputs, layer_outputs (T, L, D); embeddings, positions (T, D); cross_keys, cross_values (S, L, h, d)

A beam search's trace is its best hypothesis's steps; the beam's other hypotheses and n-best
lists are left out (the JSON form has them).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import numpy as np

from attnstep.trace.records import Floats, Trace, Word
from attnstep.trace.writer import checkpoint_dict

LAYOUT = "attnstep.npz"
LAYOUT_VERSION = 1
# A numbers array's rows wait in memory up to this size, then in an unlinked temporary file, so a
# run's vectors (~250 KB a sentence) never all sit in memory.
SPOOL_BYTES = 8 * 1024 * 1024
_COPY_BYTES = 1 << 20
# (Step attribute, array) of each per-step vector
_STEP_VECTORS = (
    ("hidden", "hidden"),
    ("context", "context"),
    ("concat", "concat"),
    ("attentional", "attentional"),
    ("query", "query"),
    ("embedding", "embeddings"),
    ("position", "positions"),
    ("cell", "cells"),
)
_COUNTS = ("step_weight_counts", "step_self_counts")  # per step: how many weights, how many self-attention weights


@dataclass
class _Spool:
    """One numbers array's rows as they came (sentences in any order), and each sentence's span of them."""

    dtype: np.dtype
    row: tuple[int, ...]  # the shape of one row
    # closed by ArrayWriter.write, or with the writer if the run fails
    file: IO[bytes] = field(default_factory=lambda: tempfile.SpooledTemporaryFile(SPOOL_BYTES))  # noqa: SIM115
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)  # line → (byte offset, bytes)

    def add(self, line: int, rows: np.ndarray) -> None:
        if rows.dtype != self.dtype or rows.shape[1:] != self.row:
            raise ValueError(f"rows of {rows.dtype} {rows.shape[1:]} among rows of {self.dtype} {self.row}")
        data = rows.tobytes()
        self.spans[line] = (self.file.tell(), len(data))
        self.file.write(data)

    def write(self, entry: IO[bytes], lines: Sequence[int]) -> None:
        """The .npy form of the rows of ``lines``, in that order."""
        row_bytes = self.dtype.itemsize * int(np.prod(self.row, dtype=np.int64))
        size = sum(self.spans[line][1] for line in lines if line in self.spans)
        shape = (size // row_bytes if row_bytes else 0, *self.row)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(entry, header)
        for line in lines:
            offset, left = self.spans.get(line, (0, 0))
            self.file.seek(offset)
            while left:
                block = self.file.read(min(left, _COPY_BYTES))
                entry.write(block)
                left -= len(block)


class _Counted(io.RawIOBase):
    """A write-only stream that counts what goes through it: zipfile, finding it cannot seek, streams
    into it as into a pipe (the output may be one)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # any bytes-like object, as RawIOBase takes
        self._handle.write(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._handle.flush()


class ArrayWriter:
    """Gathers a run's traces, given in any order with their input line numbers, and writes them as
    one .npz archive, in line order (:meth:`write`)."""

    def __init__(self) -> None:
        self._spools: dict[str, _Spool] = {}
        # String arrays (tokens are short) and the per-step counts the offsets are made of stay in memory.
        self._small: dict[str, dict[int, np.ndarray]] = {}
        self._counts: dict[int, tuple[int, int, int, int]] = {}  # line → tokens, steps, words, output words
        self._sentences: dict[int, tuple[str, str, bool]] = {}  # line → translation, reference, finished
        self._first: Trace | None = None
        self._keys: frozenset[str] | None = None

    def add(self, line: int, trace: Trace | None) -> None:
        """Input line ``line``'s trace; None for a blank line (a sentence with no tokens and no steps)."""
        if line in self._counts:
            raise ValueError(f"line {line} was added twice")
        if trace is None:
            self._counts[line] = (0, 0, 0, 0)
            self._sentences[line] = ("", "", False)
            return
        arrays = trace_arrays(trace)
        if self._first is None:
            self._first, self._keys = trace, frozenset(arrays)
        elif frozenset(arrays) != self._keys:
            raise ValueError("the run's traces do not all have the same parts")
        for key, rows in arrays.items():
            if rows.dtype.kind == "U" or key in _COUNTS:
                self._small.setdefault(key, {})[line] = rows
            else:
                if key not in self._spools:  # not setdefault: each _Spool opens a temporary file
                    self._spools[key] = _Spool(rows.dtype, rows.shape[1:])
                self._spools[key].add(line, rows)
        self._counts[line] = (len(trace.source), len(trace.steps), len(trace.source_words), len(trace.target_words))
        self._sentences[line] = (trace.translation, trace.reference or "", trace.finished)

    def write(self, handle: IO[bytes]) -> int:
        """The archive, into ``handle``; how many bytes it is."""
        lines = sorted(self._counts)
        counted = _Counted(handle)
        try:
            with zipfile.ZipFile(counted, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                for key, array in self._index(lines).items():
                    with archive.open(f"{key}.npy", "w", force_zip64=True) as entry:
                        np.lib.format.write_array(entry, array, allow_pickle=False)
                for key, spool in self._spools.items():
                    with archive.open(f"{key}.npy", "w", force_zip64=True) as entry:
                        spool.write(entry, lines)
                for key, parts in self._small.items():
                    if key in _COUNTS:
                        continue
                    with archive.open(f"{key}.npy", "w", force_zip64=True) as entry:
                        text = np.concatenate([parts[line] for line in lines if line in parts])
                        np.lib.format.write_array(entry, text, allow_pickle=False)
        finally:
            for spool in self._spools.values():
                spool.file.close()
        return counted.size

    def _index(self, lines: Sequence[int]) -> dict[str, np.ndarray]:
        """The metadata, the offsets and the per-sentence arrays."""
        counts = np.array([self._counts[line] for line in lines], np.int64).reshape(-1, 4)
        sentences = [self._sentences[line] for line in lines]
        out = {"meta": np.array([json.dumps(self._meta(len(lines), int(counts[:, 1].sum())), ensure_ascii=False)])}
        for column, name in enumerate(("token", "step", "word", "output_word")):
            out[f"sentence_{name}_offsets"] = _offsets(counts[:, column])
        for key in _COUNTS:
            parts = self._small.get(key, {})
            steps = [parts[line] for line in lines if line in parts]
            if steps or key == "step_weight_counts":  # self-attention counts: a Transformer's only
                out[key.replace("_counts", "_offsets")] = _offsets(np.concatenate([np.zeros(0, np.int64), *steps]))
        out["lines"] = np.array(lines, np.int64)
        out["translations"] = _text([s[0] for s in sentences])
        out["references"] = _text([s[1] for s in sentences])
        out["finished"] = np.array([s[2] for s in sentences], np.bool_)
        if self._first is not None and self._first.v_a is not None:
            out["v_a"] = _floats([self._first.v_a])[0]
        return out

    def _meta(self, sentences: int, steps: int) -> dict[str, Any]:
        first = self._first
        meta: dict[str, Any] = {
            "layout": LAYOUT,
            "layout_version": LAYOUT_VERSION,
            "checkpoint": None if first is None else checkpoint_dict(first),
            "vectors": first is not None and first.has_vectors,
            "sentences": sentences,
            "steps": steps,
        }
        if first is not None and first.beam is not None:
            meta["beam"] = {
                "width": first.beam.width,
                "alpha": first.beam.alpha,
                "normalization": first.beam.normalization,  # what alpha is: GNMT's or generate's exponent
            }
        if first is not None and first.view is not None:
            meta["view"] = asdict(first.view)
        return meta


def trace_arrays(trace: Trace) -> dict[str, np.ndarray]:
    """One trace's rows of each array the archive has (and the per-step counts its offsets are made of)."""
    source, steps = trace.source, trace.steps
    out: dict[str, np.ndarray] = {
        "source_ids": np.array([t.id for t in source], np.int32),
        "source_tokens": _text([t.token for t in source]),
        "source_surfaces": _text([t.surface for t in source]),
        "source_words": np.array([t.word for t in source], np.int32),
        **_words("word", trace.source_words),
        **_words("output_word", trace.target_words),
        "input_ids": np.array([s.input_id for s in steps], np.int32),
        "input_tokens": _text([s.input_token for s in steps]),
        "chosen_ids": np.array([s.chosen_id for s in steps], np.int32),
        "chosen_tokens": _text([s.chosen_token for s in steps]),
        "chosen_logprobs": np.array([s.chosen_logprob for s in steps], np.float64),
        "forced": np.array([s.forced for s in steps], np.bool_),
        "candidate_ids": np.array([[c.id for c in s.candidates] for s in steps], np.int32),  # (T, k)
        "candidate_tokens": _text([[c.token for c in s.candidates] for s in steps]),  # (T, k)
        "candidate_probs": np.array([[c.prob for c in s.candidates] for s in steps], np.float64),  # (T, k)
        "scores": np.array([x for s in steps for x in s.scores], np.float64),  # (Σ n_t,)
        "weights": np.array([x for s in steps for x in s.weights], np.float64),  # (Σ n_t,)
        "step_weight_counts": np.array([len(s.weights) for s in steps], np.int64),
    }
    if trace.encoder_states is not None:
        out["encoder_states"] = _floats(trace.encoder_states)  # (n, M)
    if trace.keys is not None:
        out["keys"] = _floats(trace.keys)  # (n, K)
    for name, key in _STEP_VECTORS:
        vectors = [getattr(s, name) for s in steps]
        if vectors and vectors[0] is not None:
            out[key] = _floats(vectors)  # (T, ·)
    for name in ("layer_states", "layer_cells"):
        if steps and getattr(steps[0], name):
            stacked = [v for s in steps for v in getattr(s, name)]
            out[name] = _floats(stacked).reshape(len(steps), len(getattr(steps[0], name)), -1)  # (T, L, H)
    if steps and steps[0].layers:
        out.update(_layer_arrays(trace))
    return out


def _layer_arrays(trace: Trace) -> dict[str, np.ndarray]:
    """A Transformer's per-layer, per-head numbers, each row (a step's source token, a step or a
    source token) holding every layer's heads, (L, h, …)."""
    steps = trace.steps
    out = {
        # per step (L, h, n) → (n, L, h): the ragged axis first, as for the view's weights
        "head_scores": np.concatenate(
            [
                np.array([[h.scores for h in layer.cross] for layer in s.layers], np.float64).transpose(2, 0, 1)
                for s in steps
            ]
        ),
        "head_weights": np.concatenate(
            [
                np.array([[h.weights for h in layer.cross] for layer in s.layers], np.float64).transpose(2, 0, 1)
                for s in steps
            ]
        ),
        # per step (L, h, t + 1) → (t + 1, L, h)
        "self_weights": np.concatenate(
            [np.array([layer.self_weights for layer in s.layers], np.float64).transpose(2, 0, 1) for s in steps]
        ),
        "step_self_counts": np.array([len(s.layers[0].self_weights[0]) for s in steps], np.int64),
    }
    layers, heads = len(steps[0].layers), len(steps[0].layers[0].cross)
    for name, key in (("query", "head_queries"), ("context", "head_contexts")):
        if getattr(steps[0].layers[0].cross[0], name) is not None:
            vectors = [getattr(h, name) for s in steps for layer in s.layers for h in layer.cross]
            out[key] = _floats(vectors).reshape(len(steps), layers, heads, -1)  # (T, L, h, d)
    for name, key in (
        ("input", "layer_inputs"),
        ("self_output", "self_outputs"),
        ("joined", "joined"),
        ("cross_output", "cross_outputs"),
        ("output", "layer_outputs"),
    ):
        if getattr(steps[0].layers[0], name) is not None:
            vectors = [getattr(layer, name) for s in steps for layer in s.layers]
            out[key] = _floats(vectors).reshape(len(steps), layers, -1)  # (T, L, D)
    for name, per_head in (("cross_keys", trace.cross_keys), ("cross_values", trace.cross_values)):
        if per_head is not None:
            vectors = [v for layer in per_head for head in layer for v in head]
            # [layer][head][token] (L, h, n, d) → (n, L, h, d)
            out[name] = np.ascontiguousarray(
                _floats(vectors).reshape(layers, heads, len(trace.source), -1).transpose(2, 0, 1, 3)
            )
    return out


def _words(prefix: str, words: Sequence[Word]) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_texts": _text([w.text for w in words]),
        f"{prefix}_starts": np.array([w.start for w in words], np.int32),
        f"{prefix}_ends": np.array([w.end for w in words], np.int32),
    }


def _floats(vectors: Sequence[Floats | None]) -> np.ndarray:
    """Equal-length float32 vectors as the rows of one array, their bytes copied once: (len, size)."""
    present = [v for v in vectors if v is not None]  # `is`, not `in`: Floats compare by value
    if len(present) != len(vectors) or len({len(v) for v in present}) > 1:
        raise ValueError("vectors missing from some rows, or of different lengths")
    return np.frombuffer(b"".join(v.tobytes() for v in present), np.float32).reshape(len(vectors), -1)


def _text(values: Iterable[Any]) -> np.ndarray:
    """Strings (or rows of strings) as a fixed-width str array; an empty one is still str."""
    array = np.array(list(values), dtype=np.str_)
    return array if array.size else array.astype("<U1")


def _offsets(counts: np.ndarray) -> np.ndarray:
    """Where each item's rows start, and the end: (len(counts) + 1,) int64."""
    return np.concatenate([np.zeros(1, np.int64), np.cumsum(counts, dtype=np.int64)])
