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
from enum import StrEnum

import numpy as np

from .asr import Transcript
from .audio import SAMPLE_RATE
from .language import SpokenLanguage
from .packing import MAX_PACKED_SECONDS, fits
from .workers import WorkerCrashed

logger = logging.getLogger(__name__)

TranscribeFn = Callable[[np.ndarray, SpokenLanguage, str | None], Awaitable[Transcript]]
#: finals of one language decoded in one window: a transcript per utterance (``packing``)
PackFn = Callable[[list[np.ndarray], str], Awaitable[list[Transcript]]]


class JobKind(StrEnum):
    FINAL = "final"
    PARTIAL = "partial"


class PackFinals(StrEnum):
    """When finals waiting together are decoded in one window (``AsrScheduler(pack=...)``)."""

    OFF = "off"  # never: every final decoded alone
    BEHIND = "behind"  # only while the worker is behind (``pack_behind``)
    ALWAYS = "always"  # whenever two or more wait together


#: a final that waited this long (s) for a worker puts the scheduler behind (``pack_behind``):
#: with a final's decode (0.7 s quiet, 1.2-1.6 s at load 1-4) it is about to miss the 3 s a
#: caption may trail its utterance; a worker keeping up leaves a final queued 0.3 s p50
#: (docs/BENCHMARKS.md, "Packing only when behind")
PACK_BEHIND_SECONDS = 2.0
#: behind, the scheduler packs until a final it takes waited less than this share of
#: ``pack_behind``: caught up, not just between two bursts of finals
CAUGHT_UP_SHARE = 0.5


@dataclass(frozen=True)
class JobTiming:
    """Where one transcription's time went: waiting for a worker, then decoding (monotonic s)."""

    kind: JobKind
    audio_seconds: float
    created: float
    started: float
    ended: float

    @property
    def queued(self) -> float:
        return self.started - self.created

    @property
    def decode(self) -> float:
        return self.ended - self.started


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

    Partials go to ``draft`` when given: a cheaper decode (the ASR backend's draft mode), as a
    partial is shown for a second or two and then replaced by its final.

    At most ``partial_slots`` workers decode partials at once (default: all of them). A running
    decode cannot be interrupted, so a final that arrives while every worker is busy with a
    partial waits for one to finish: the profile found that wait in most finals (the partials
    keep coming during the pause that ends an utterance). With more than one worker,
    ``partial_slots=slots - 1`` keeps one for finals: measured, no final queued then, but on
    2 cores two one-thread workers decoded finals slower than one two-thread worker, so it is
    not the default (docs/BENCHMARKS.md, "Live captions").

    Under load partials can give way (``max_busy``): a partial is shed, not started, while the
    workers spent more than ``max_busy`` of the last ``busy_window`` seconds decoding, so each
    speaker gets fewer partials when several speak and a final finds a free worker sooner.
    Finals are never shed and their decode is never changed (the profile found finals alone
    fill the worker from three speakers of ``base`` on, and a shorter window for finals cost
    WER). Off by default: measured at two speakers on a loaded machine, finals queued less but
    partials came later, and one run per setting could not say the trade pays
    (docs/BENCHMARKS.md, "Live captions: finals sooner").

    With ``pack``, finals waiting together are decoded in one call: when a worker takes a final,
    the other finals waiting in the same fixed language (no prompt: one speaker's context is not
    another's) join it as long as their audio fits one Whisper window (``max_packed_seconds``),
    oldest first — one encoder pass for them all instead of one each
    (:mod:`captioning.packing`). A final waiting alone decodes exactly as without ``pack``.
    Measured, four speakers on a loaded machine got their finals 3 s after an utterance (p50)
    instead of 13 s, but a packed final's words change (2.6 WER points more on average;
    docs/BENCHMARKS.md, "Finals packed into one Whisper window").

    So with ``pack_behind`` (seconds; the hub's default, ``CaptionConfig.pack_finals``) finals
    are packed only while the worker is behind: from when the final a worker takes has waited
    ``pack_behind`` or longer, until one it takes waited less than ``CAUGHT_UP_SHARE`` of that
    (hysteresis: a burst of finals that one packed call clears does not end it, so a worker
    behind for minutes packs all along instead of every other call). A meeting the worker keeps
    up with is never packed, so its words are exactly the unpacked ones; an overloaded one trades
    some words for captions seconds behind instead of minutes, and none dropped
    (``behind_spells`` counts the times it fell behind; docs/BENCHMARKS.md, "Packing only when
    behind"). ``clock`` is the time source (monotonic seconds; tests drive it).
    """

    def __init__(
        self,
        transcribe: TranscribeFn,
        slots: int = 1,
        max_partial_age: float = 1.5,
        max_pending_seconds: float = 90.0,
        history: int = 200,
        partial_slots: int | None = None,
        draft: TranscribeFn | None = None,
        max_busy: float | None = None,
        busy_window: float = 5.0,
        pack: PackFn | None = None,
        max_packed_seconds: float = MAX_PACKED_SECONDS,
        pack_behind: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transcribe = transcribe
        self._pack = pack
        self._max_packed = max_packed_seconds
        self._pack_behind = pack_behind
        self._clock = clock
        self.behind = False  # packing because finals waited too long (``pack_behind``)
        self.behind_spells = 0
        self._draft = draft or transcribe
        self._slots = slots
        self._partial_slots = max(1, min(slots, partial_slots)) if partial_slots is not None else slots
        self._partials_running = 0
        self._max_partial_age = max_partial_age
        self._max_pending = int(max_pending_seconds * SAMPLE_RATE)
        self._heap: list[_Job] = []
        self._order = itertools.count()
        self._wakeup = asyncio.Event()
        self._runners: list[asyncio.Task[None]] = []
        self._max_busy = max_busy
        self._busy_window = busy_window
        self._decodes: deque[tuple[float, float]] = deque()  # (started, ended) of recent decodes
        self._running: dict[int, float] = {}  # job order -> started, for decodes in progress
        self.partials_skipped = 0
        self.partials_shed = 0
        self.finals_dropped = 0
        self.finals_packed = 0  # finals decoded in a call with others (``pack``)
        self.packed_calls = 0
        self.crashes = 0
        self.final_lag: deque[float] = deque(maxlen=100)
        self.busy = 0
        self.calls = {str(JobKind.PARTIAL): 0, str(JobKind.FINAL): 0}
        self.compute_seconds = 0.0
        #: the latest decoded jobs' timings: how long they queued and decoded (the latency profile)
        self.history: deque[JobTiming] = deque(maxlen=history)

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
    def packing(self) -> PackFinals:
        """When this scheduler packs finals (``pack``, ``pack_behind``)."""
        if self._pack is None:
            return PackFinals.OFF
        return PackFinals.ALWAYS if self._pack_behind is None else PackFinals.BEHIND

    @property
    def pending(self) -> int:
        return len(self._heap)

    def busy_fraction(self, now: float | None = None) -> float:
        """The share of the workers' time spent decoding over the last ``busy_window`` seconds
        (decodes still running count up to now)."""
        now = self._clock() if now is None else now
        since = self._forget_decodes(now)
        spans = [*self._decodes, *((started, now) for started in self._running.values())]
        busy = sum(min(end, now) - max(start, since) for start, end in spans if end > since)
        return busy / (self._busy_window * self._slots)

    def _forget_decodes(self, now: float) -> float:
        """Drop decodes that ended before the busy window; returns where the window starts."""
        since = now - self._busy_window
        while self._decodes and self._decodes[0][1] <= since:
            self._decodes.popleft()
        return since

    def stats(self) -> dict[str, float | int]:
        lag = sorted(self.final_lag)

        def p50(kind: JobKind, what: str) -> float:
            xs = sorted(getattr(j, what) for j in self.history if j.kind is kind)
            return round(xs[len(xs) // 2], 3) if xs else 0.0

        return {
            "pending": len(self._heap),
            "busy": self.busy,
            "partials_skipped": self.partials_skipped,
            "partials_shed": self.partials_shed,
            "busy_fraction": round(self.busy_fraction(), 3),
            "finals_dropped": self.finals_dropped,
            "finals_packed": self.finals_packed,
            "packed_calls": self.packed_calls,
            "behind": int(self.behind),
            "behind_spells": self.behind_spells,
            "crashes": self.crashes,
            "final_lag_p50": round(lag[len(lag) // 2], 3) if lag else 0.0,
            "partial_calls": self.calls["partial"],
            "final_calls": self.calls["final"],
            "compute_seconds": round(self.compute_seconds, 3),
            **{f"{kind}_{what}_p50": p50(kind, what) for kind in JobKind for what in ("queued", "decode")},
        }

    def _submit(
        self, priority: int, audio: np.ndarray, language: SpokenLanguage, prompt: str | None
    ) -> asyncio.Future[Transcript | None]:
        self.start()
        future: asyncio.Future[Transcript | None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, _Job(priority, next(self._order), self._clock(), audio, language, prompt, future))
        self._enforce_cap()
        self._wakeup.set()
        return future

    def _enforce_cap(self) -> None:
        # (a job whose caller stopped waiting — an early final cancelled when speech resumed — is
        # no pending audio: it would be dropped in a real final's place, and its future is done)
        self._heap = [j for j in self._heap if not j.future.done()]
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

    def _next(self) -> _Job | None:
        """The job this runner may start now: the first in line, unless it is a partial and
        ``partial_slots`` workers are decoding partials already (finals are always first in line)."""
        if not self._heap:
            return None
        if self._heap[0].priority == 1 and self._partials_running >= self._partial_slots:
            return None
        return heapq.heappop(self._heap)

    @staticmethod
    def _packable(job: _Job) -> bool:
        return job.priority == 0 and isinstance(job.language, str) and job.prompt is None and not job.future.done()

    def _packing(self, job: _Job) -> bool:
        """Whether finals are packed with ``job``, the final a worker takes (the oldest waiting):
        always with ``pack``, or only while behind with ``pack_behind``."""
        if self._pack is None:
            return False
        if self._pack_behind is None:
            return True
        waited = self._clock() - job.created
        if not self.behind and waited >= self._pack_behind:
            self.behind = True
            self.behind_spells += 1
            logger.info("captions are behind (a final waited %.1f s): packing finals", waited)
        elif self.behind and waited < self._pack_behind * CAUGHT_UP_SHARE:
            self.behind = False
            logger.info("captions caught up: finals decoded alone again")
        return self.behind

    def _companions(self, job: _Job) -> list[_Job]:
        """The finals waiting that go into ``job``'s window (taken out of the queue), oldest first."""
        if job.priority != 0 or not self._packing(job) or not self._packable(job):
            return []
        lengths = [len(job.audio)]
        chosen: list[_Job] = []
        for other in sorted((j for j in self._heap if self._packable(j) and j.language == job.language),
                            key=lambda j: j.order):
            if fits([*lengths, len(other.audio)], self._max_packed):
                lengths.append(len(other.audio))
                chosen.append(other)
        if chosen:
            taken = {id(j) for j in chosen}
            self._heap = [j for j in self._heap if id(j) not in taken]
            heapq.heapify(self._heap)
        return chosen

    async def _run(self) -> None:
        while True:
            while (job := self._next()) is None:
                self._wakeup.clear()
                await self._wakeup.wait()
            if job.future.done():
                continue
            age = self._clock() - job.created
            if job.priority == 1 and age > self._max_partial_age:
                self.partials_skipped += 1
                job.future.set_result(None)
                continue
            if job.priority == 1 and self._max_busy is not None and self.busy_fraction() > self._max_busy:
                self.partials_shed += 1  # (the speaker asks again after the next partial interval)
                job.future.set_result(None)
                continue
            group = [job, *self._companions(job)]
            self.busy += 1
            started = self._clock()
            kind = JobKind.FINAL if job.priority == 0 else JobKind.PARTIAL
            self._partials_running += kind is JobKind.PARTIAL
            self._running[job.order] = started
            try:
                results = await self._call_packed(group) if len(group) > 1 else [await self._call(job)]
            except asyncio.CancelledError:  # (closing: nobody waits for ever on a job taken from the queue)
                for member in group:
                    if not member.future.done():
                        member.future.set_result(None)
                raise
            finally:
                self.busy -= 1
                self._partials_running -= kind is JobKind.PARTIAL
                self._wakeup.set()  # a partial's slot is free: a runner waiting for one may go on
                ended = self._clock()
                del self._running[job.order]
                self._decodes.append((started, ended))
                self._forget_decodes(ended)
                self.calls[str(kind)] += 1
                self.compute_seconds += ended - started
                for member in group:
                    self.history.append(JobTiming(kind, len(member.audio) / SAMPLE_RATE, member.created, started, ended))
                if len(group) > 1:
                    self.packed_calls += 1
                    self.finals_packed += len(group)
            for member, result in zip(group, results, strict=True):
                if member.priority == 0:
                    self.final_lag.append(self._clock() - member.created)
                if not member.future.done():
                    member.future.set_result(result)

    async def _call_packed(self, group: list[_Job]) -> list[Transcript | None]:
        """Finals of one language in one window; retried once after a crash, as a final is."""
        assert self._pack is not None and isinstance(group[0].language, str)
        for _ in range(2):
            try:
                return list(await self._pack([j.audio for j in group], group[0].language))
            except WorkerCrashed:
                self.crashes += 1
            except Exception:
                logger.exception("packed transcription failed")
                break
        return [None] * len(group)

    async def _call(self, job: _Job) -> Transcript | None:
        attempts = 2 if job.priority == 0 else 1  # a final is retried once after a crash
        transcribe = self._transcribe if job.priority == 0 else self._draft
        for _ in range(attempts):
            try:
                return await transcribe(job.audio, job.language, job.prompt)
            except WorkerCrashed:
                self.crashes += 1
            except Exception:
                logger.exception("transcription failed")
                return None
        return None
