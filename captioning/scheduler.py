"""The transcription queue shared by every speaker of a room: finals first, stale partials skipped.

One ASR worker pool serves all speakers; this decides the order. A final settles a caption that
listeners are reading, so it never waits behind a partial; a partial that waited too long is
already out of date and is skipped; pending final audio is capped so that an overloaded hub lags
a bounded amount and says so (``finals_dropped``) instead of falling further behind for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from .asr import Transcript
from .audio import SAMPLE_RATE
from .language import SpokenLanguage
from .workers import WorkerCrashed

logger = logging.getLogger(__name__)

TranscribeFn = Callable[[np.ndarray, SpokenLanguage, str | None], Awaitable[Transcript]]


@dataclass(order=True)
class _Job:
    priority: int
    order: int
    created: float = field(compare=False)
    audio: np.ndarray = field(compare=False, repr=False)
    language: SpokenLanguage = field(compare=False)
    prompt: str | None = field(compare=False)
    future: asyncio.Future[Transcript | None] = field(compare=False, repr=False)


class AsrScheduler:
    """Runs transcription jobs on ``slots`` workers: finals first, stale partials dropped.

    Pending final audio is capped at ``max_pending_seconds``; past it the oldest final is
    dropped (and counted) rather than letting memory and lag grow without bound.
    """

    def __init__(
        self,
        transcribe: TranscribeFn,
        slots: int = 1,
        max_partial_age: float = 1.5,
        max_pending_seconds: float = 90.0,
    ) -> None:
        self._transcribe = transcribe
        self._slots = slots
        self._max_partial_age = max_partial_age
        self._max_pending = int(max_pending_seconds * SAMPLE_RATE)
        self._heap: list[_Job] = []
        self._order = itertools.count()
        self._wakeup = asyncio.Event()
        self._runners: list[asyncio.Task[None]] = []
        self.partials_skipped = 0
        self.finals_dropped = 0
        self.crashes = 0
        self.final_lag: deque[float] = deque(maxlen=100)
        self.busy = 0
        self.calls = {"partial": 0, "final": 0}
        self.compute_seconds = 0.0

    def start(self) -> None:
        if not self._runners:
            self._runners = [asyncio.create_task(self._run(), name=f"asr-runner-{i}") for i in range(self._slots)]

    async def close(self) -> None:
        for task in self._runners:
            task.cancel()
        for task in self._runners:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._runners = []
        for job in self._heap:
            if not job.future.done():
                job.future.set_result(None)
        self._heap.clear()

    @property
    def pending(self) -> int:
        return len(self._heap)

    def stats(self) -> dict[str, float | int]:
        lag = sorted(self.final_lag)
        return {
            "pending": len(self._heap),
            "busy": self.busy,
            "partials_skipped": self.partials_skipped,
            "finals_dropped": self.finals_dropped,
            "crashes": self.crashes,
            "final_lag_p50": round(lag[len(lag) // 2], 3) if lag else 0.0,
            "partial_calls": self.calls["partial"],
            "final_calls": self.calls["final"],
            "compute_seconds": round(self.compute_seconds, 3),
        }

    def _submit(
        self, priority: int, audio: np.ndarray, language: SpokenLanguage, prompt: str | None
    ) -> asyncio.Future[Transcript | None]:
        self.start()
        future: asyncio.Future[Transcript | None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, _Job(priority, next(self._order), time.monotonic(), audio, language, prompt, future))
        self._enforce_cap()
        self._wakeup.set()
        return future

    def _enforce_cap(self) -> None:
        finals = sorted((j for j in self._heap if j.priority == 0), key=lambda j: j.order)
        pending = sum(len(j.audio) for j in finals)
        while finals and pending > self._max_pending:
            job = finals.pop(0)
            pending -= len(job.audio)
            self._heap.remove(job)
            job.future.set_result(None)
            self.finals_dropped += 1
            logger.warning("captions are lagging: dropped a %.1f s utterance", len(job.audio) / SAMPLE_RATE)
        heapq.heapify(self._heap)

    async def final(self, audio: np.ndarray, language: SpokenLanguage, prompt: str | None) -> Transcript | None:
        return await self._submit(0, audio, language, prompt)

    async def partial(self, audio: np.ndarray, language: SpokenLanguage, prompt: str | None) -> Transcript | None:
        return await self._submit(1, audio, language, prompt)

    async def _run(self) -> None:
        while True:
            while not self._heap:
                self._wakeup.clear()
                await self._wakeup.wait()
            job = heapq.heappop(self._heap)
            if job.future.done():
                continue
            age = time.monotonic() - job.created
            if job.priority == 1 and age > self._max_partial_age:
                self.partials_skipped += 1
                job.future.set_result(None)
                continue
            self.busy += 1
            started = time.monotonic()
            try:
                result = await self._call(job)
            finally:
                self.busy -= 1
                self.calls["final" if job.priority == 0 else "partial"] += 1
                self.compute_seconds += time.monotonic() - started
            if job.priority == 0:
                self.final_lag.append(time.monotonic() - job.created)
            if not job.future.done():
                job.future.set_result(result)

    async def _call(self, job: _Job) -> Transcript | None:
        attempts = 2 if job.priority == 0 else 1  # a final is retried once after a crash
        for _ in range(attempts):
            try:
                return await self._transcribe(job.audio, job.language, job.prompt)
            except WorkerCrashed:
                self.crashes += 1
            except Exception:
                logger.exception("transcription failed")
                return None
        return None
