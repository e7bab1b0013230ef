"""The one model of the class: a :class:`~attnstep.engine.stepper.Stepper` loaded once, decoding in one thread.

Every session's translate/force/unforce ends here as a request; torch work runs in a single
executor thread, so requests queue instead of competing for the two cores that the session
processes need to draw their screens. Answers are trace JSON bytes, made in that same thread.
Requests are bounded in length (the codec's 100 words or 200 pieces; a prefix no longer than decoding
could be) and in rate (:class:`RateLimit`, per session).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from attnstep.errors import AttnstepError
from attnstep.trace.edits import edit_from_json
from attnstep.trace.records import Edit, SourceToken
from attnstep.trace.writer import dumps_wire


class RateLimit:
    """A token bucket: ``burst`` requests at once, then ``per_second``."""

    def __init__(self, per_second: float = 2.0, burst: int = 10, clock=time.monotonic):
        self.per_second, self.burst, self.clock = per_second, burst, clock
        self.tokens = float(burst)
        self.last = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


ANSWERS_KEPT_BYTES = 32 * 1024 * 1024  # recent answers kept for students who ask the same (~100 fr-en sentences)


class ModelService:
    def __init__(self, stepper):
        self.stepper = stepper
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attnstep-model")
        # A class translates the same sentences: the lecture's, the sentence box's examples. Each
        # answer is decoded once; students asking while it is decoded wait for that decoding.
        self._answers: OrderedDict[tuple, asyncio.Future[bytes]] = OrderedDict()

    @classmethod
    def load(
        cls, checkpoint, top_k: int, beam: int | None = None, device: str = "cpu", threads: int = 0
    ) -> ModelService:
        from attnstep.engine.stepper import load_stepper

        # One thread unless told (``threads``): a sentence is a batch of one, too small for intra-op
        # threads to pay off, and the other core is needed by the session processes.
        return cls(load_stepper(checkpoint, top_k=top_k, beam=beam, device=device, threads=threads or 1))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def answer(self, request: dict[str, Any]) -> bytes:
        """Trace JSON for a ``translate`` or ``decode`` request (see :mod:`attnstep.serve.wire`)."""
        op = request.get("op")
        if op == "translate":
            sentence = request.get("sentence")
            if not isinstance(sentence, str):
                raise AttnstepError("a translate request needs a sentence")
            key: tuple = (op, sentence)
            compute = lambda: self.stepper.translate(sentence)  # noqa: E731
        elif op == "decode":
            source, prefix = self._decode_arguments(request)
            edits = self._edits(request, len(source))
            key = (op, tuple(source), tuple(prefix), tuple(sorted(edits.items())))
            compute = lambda: self.stepper.decode(source, prefix, edits)  # noqa: E731
        else:
            raise AttnstepError(f"unknown request {str(op)[:40]!r}")
        answer = self._answers.get(key)
        if answer is None:
            answer = asyncio.get_running_loop().run_in_executor(self.executor, lambda: dumps_wire(compute()))
            self._answers[key] = answer
            answer.add_done_callback(lambda done: self._keep(key, done))
        else:
            self._answers.move_to_end(key)
        return await asyncio.shield(answer)  # a student who leaves does not cancel it for the others

    def _keep(self, key: tuple, done: asyncio.Future) -> None:
        """Forget a failed answer; keep the most recent ones, within ANSWERS_KEPT_BYTES."""
        if done.cancelled() or done.exception() is not None:
            if self._answers.get(key) is done:
                del self._answers[key]
            return
        kept = 0
        for old in reversed(list(self._answers)):
            future = self._answers[old]
            kept += len(future.result()) if future.done() else 0
            if kept > ANSWERS_KEPT_BYTES and old != key:
                del self._answers[old]

    def _edits(self, request: dict[str, Any], source_length: int) -> dict[int, Edit]:
        """A decode request's attention edits, [{"step": t, operation…}, …] (none: []), each of a step
        a decoding of this source can have and fitting it (the stepper checks the rest)."""
        items = request.get("edits", [])
        limit = self.stepper.limit(source_length)
        if not isinstance(items, list) or len(items) > limit:
            raise AttnstepError("a decode request's edits are a list, one per step at most")
        edits = {}
        for item in items:
            step = item.get("step") if isinstance(item, dict) else None
            if not (isinstance(step, int) and not isinstance(step, bool) and 0 <= step < limit) or step in edits:
                raise AttnstepError("an edit of the request is not of one step of this decoding")
            edits[step] = edit_from_json(item)
        return edits

    def _decode_arguments(self, request: dict[str, Any]):
        """Check a decode request against the vocabularies: ids in range, tokens that match them.
        Returns the source and the prefix, the forced word's pieces (if any) at its end."""
        src, tgt = self.stepper.checkpoint.src_vocab, self.stepper.checkpoint.tgt_vocab
        raw_source, raw_prefix, word = request.get("source"), request.get("prefix"), request.get("word")
        limit = self.stepper.codec.max_source_tokens  # 100 words, or 200 subword pieces
        if not isinstance(raw_source, list) or not 0 < len(raw_source) <= limit:
            raise AttnstepError(f"a decode request needs 1 to {limit} source tokens")
        source = []
        for item in raw_source:
            if not (
                isinstance(item, list)
                and len(item) == 3
                and isinstance(item[0], str)
                and len(item[0]) <= 200
                and isinstance(item[2], int)
                and 0 <= item[2] < len(src)
                and item[1] == src.tokens[item[2]]
            ):
                raise AttnstepError("a source token of the request does not match the model's vocabulary")
            source.append(SourceToken(*item))
        if not isinstance(raw_prefix, list) or len(raw_prefix) >= self.stepper.limit(len(source)):
            raise AttnstepError("the request's prefix is longer than a decoding of this source can be")
        prefix = []
        for item in raw_prefix:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and isinstance(item[0], int)
                and 0 <= item[0] < len(tgt)
                and isinstance(item[1], bool)
            ):
                raise AttnstepError("a prefix choice of the request is not a target id and a forced flag")
            prefix.append((item[0], item[1]))
        if word is not None:
            if not (isinstance(word, str) and len(word) <= 200):
                raise AttnstepError("the forced word must be a short string")
            prefix += [(i, True) for i in self.stepper.target_ids(word)]  # a word of several pieces: each in turn
            if len(prefix) > self.stepper.limit(len(source)):
                raise AttnstepError("the forced word does not fit in a decoding of this source")
        return tuple(source), tuple(prefix)
