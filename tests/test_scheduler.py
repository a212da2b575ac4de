"""The transcription queue: a worker kept for finals, and where each job's time went."""

from __future__ import annotations

import asyncio

import numpy as np

from captioning.asr import Transcript
from captioning.audio import SAMPLE_RATE
from captioning.scheduler import AsrScheduler, JobKind, TranscribeFn

AUDIO = np.zeros(SAMPLE_RATE, np.float32)


class GatedAsr:
    """A fake worker pool: each call waits for its own gate; records the order calls start in."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    async def __call__(self, audio: np.ndarray, language: object, prompt: str | None) -> Transcript:
        name = prompt or ""
        self.started.append(name)
        gate = self.gates.setdefault(name, asyncio.Event())
        await gate.wait()
        return Transcript(name, "en", 1.0)

    def release(self, name: str) -> None:
        self.gates.setdefault(name, asyncio.Event()).set()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_final_starts_on_the_worker_kept_for_finals_while_a_partial_decodes() -> None:
    asr = GatedAsr()
    scheduler = AsrScheduler(asr, slots=2, partial_slots=1)
    first = asyncio.ensure_future(scheduler.partial(AUDIO, "en", "partial-1"))
    second = asyncio.ensure_future(scheduler.partial(AUDIO, "en", "partial-2"))
    await settle()
    assert asr.started == ["partial-1"]  # the second worker is not given to a partial
    final = asyncio.ensure_future(scheduler.final(AUDIO, "en", "final"))
    await settle()
    assert asr.started == ["partial-1", "final"]  # not behind the running partial
    asr.release("final")
    assert (await final).text == "final"  # type: ignore[union-attr]
    await settle()
    assert asr.started == ["partial-1", "final"]  # still one partial at a time
    asr.release("partial-1")
    asr.release("partial-2")
    assert (await first).text == "partial-1"  # type: ignore[union-attr]
    assert (await second).text == "partial-2"  # type: ignore[union-attr]
    assert asr.started == ["partial-1", "final", "partial-2"]
    await scheduler.close()


async def test_without_a_kept_worker_partials_use_every_worker() -> None:
    asr = GatedAsr()
    scheduler = AsrScheduler(asr, slots=2)
    jobs = [asyncio.ensure_future(scheduler.partial(AUDIO, "en", f"partial-{i}")) for i in (1, 2)]
    await settle()
    assert asr.started == ["partial-1", "partial-2"]
    for name in ("partial-1", "partial-2"):
        asr.release(name)
    assert [(await j).text for j in jobs] == ["partial-1", "partial-2"]  # type: ignore[union-attr]
    await scheduler.close()


async def test_stats_say_how_long_jobs_queued_and_decoded() -> None:
    asr = GatedAsr()
    scheduler = AsrScheduler(asr, slots=1)
    running = asyncio.ensure_future(scheduler.partial(AUDIO, "en", "partial"))
    await settle()
    final = asyncio.ensure_future(scheduler.final(AUDIO, "en", "final"))
    await asyncio.sleep(0.05)  # the final waits for the partial's worker
    asr.release("partial")
    await running
    await asyncio.sleep(0.05)
    asr.release("final")
    await final
    kinds = [j.kind for j in scheduler.history]
    assert kinds == [JobKind.PARTIAL, JobKind.FINAL]
    partial, final_job = scheduler.history
    assert final_job.queued >= 0.04 and final_job.decode >= 0.04 and partial.decode >= 0.04
    assert final_job.audio_seconds == 1.0
    stats = scheduler.stats()
    assert stats["final_queued_p50"] >= 0.04 and stats["partial_queued_p50"] < final_job.queued
    assert stats["final_calls"] == 1 and stats["partial_calls"] == 1
    await scheduler.close()


async def test_partials_are_decoded_as_drafts_and_finals_in_full() -> None:
    calls: list[tuple[str, str]] = []

    def decoder(kind: str) -> TranscribeFn:
        async def transcribe(audio: np.ndarray, language: object, prompt: str | None) -> Transcript:
            calls.append((kind, prompt or ""))
            return Transcript(kind, "en", 1.0)

        return transcribe

    scheduler = AsrScheduler(decoder("full"), draft=decoder("draft"))
    assert (await scheduler.partial(AUDIO, "en", "p")).text == "draft"  # type: ignore[union-attr]
    assert (await scheduler.final(AUDIO, "en", "f")).text == "full"  # type: ignore[union-attr]
    assert calls == [("draft", "p"), ("full", "f")]
    await scheduler.close()


async def test_under_load_a_partial_gives_way_and_a_final_does_not() -> None:
    """With ``max_busy``, a partial asked while the workers have been busy decoding is shed (its
    caller gets nothing and asks again later); a final asked at the same moment is decoded."""
    asr = GatedAsr()
    scheduler = AsrScheduler(asr, slots=2, max_busy=0.4, busy_window=0.2)
    long_final = asyncio.ensure_future(scheduler.final(AUDIO, "en", "final-1"))
    await asyncio.sleep(0.35)  # one of two workers busy for the whole window: 50 % > 40 %
    assert scheduler.busy_fraction() > 0.4
    assert await scheduler.partial(AUDIO, "en", "partial") is None
    second = asyncio.ensure_future(scheduler.final(AUDIO, "en", "final-2"))
    await settle()
    assert asr.started == ["final-1", "final-2"]  # the partial never reached a worker
    assert scheduler.partials_shed == 1 and scheduler.stats()["partials_shed"] == 1
    asr.release("final-1")
    asr.release("final-2")
    assert [(await f).text for f in (long_final, second)] == ["final-1", "final-2"]  # type: ignore[union-attr]
    await scheduler.close()


async def test_an_idle_worker_decodes_partials_whatever_the_limit() -> None:
    asr = GatedAsr()
    scheduler = AsrScheduler(asr, slots=1, max_busy=0.4, busy_window=0.2)
    asr.release("partial-1")
    assert (await scheduler.partial(AUDIO, "en", "partial-1")).text == "partial-1"  # type: ignore[union-attr]
    await asyncio.sleep(0.25)  # that decode has left the window
    asr.release("partial-2")
    assert (await scheduler.partial(AUDIO, "en", "partial-2")).text == "partial-2"  # type: ignore[union-attr]
    assert scheduler.partials_shed == 0 and asr.started == ["partial-1", "partial-2"]
    await scheduler.close()


async def test_without_a_limit_partials_are_never_shed() -> None:
    asr = GatedAsr()
    scheduler = AsrScheduler(asr, slots=2, busy_window=0.2)
    running = asyncio.ensure_future(scheduler.final(AUDIO, "en", "final"))
    await asyncio.sleep(0.25)
    asr.release("partial")
    assert (await scheduler.partial(AUDIO, "en", "partial")).text == "partial"  # type: ignore[union-attr]
    asr.release("final")
    await running
    assert scheduler.partials_shed == 0
    await scheduler.close()
