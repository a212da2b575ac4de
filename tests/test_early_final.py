"""The hub's final caption starts decoding 0.25 s into the pause that ends an utterance (it was
0.4 s) and is the same final as one decoded after the whole pause (docs/BENCHMARKS.md, "Live
captions: finals sooner")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from captioning.asr import Transcript
from captioning.audio import SAMPLE_RATE
from captioning.language import SpokenLanguage
from captioning.scheduler import AsrScheduler
from captioning.stream import CaptionEvent, SpeakerStream
from captioning.vad import WINDOW

CHUNK = 320  # 20 ms, as the hub feeds a stream


def vad_script(probs: list[float]) -> Callable[[np.ndarray], Awaitable[list[float]]]:
    position = 0

    async def vad(block: np.ndarray) -> list[float]:
        nonlocal position
        n = len(block) // WINDOW
        position += n
        return probs[position - n : position]

    return vad


async def speak(**options: Any) -> tuple[list[float], list[np.ndarray], list[CaptionEvent]]:
    """2 s of speech from 1.0 s, then a pause; returns where in the audio (seconds fed) each
    decode was asked, the audio of each decode, and the captions."""
    per_s = SAMPLE_RATE / WINDOW
    probs = [0.9 if 1.0 * per_s <= i < 3.0 * per_s else 0.0 for i in range(int(6 * per_s))]
    audio = np.arange(len(probs) * WINDOW, dtype=np.float32)
    fed = 0
    asked: list[float] = []
    heard: list[np.ndarray] = []
    events: list[CaptionEvent] = []

    async def transcribe(x: np.ndarray, language: SpokenLanguage, prompt: str | None) -> Transcript:
        asked.append(fed / SAMPLE_RATE)
        heard.append(x.copy())
        return Transcript(f"words {int(x[0])}-{int(x[-1])}", "en", 1.0)

    async def on_caption(event: CaptionEvent) -> None:
        events.append(event)

    scheduler = AsrScheduler(transcribe)
    stream = SpeakerStream(scheduler, vad_script(probs), on_caption, language="en", partial_interval=1000,
                           level_speech=False, **options)
    for i in range(0, len(audio), CHUNK):
        fed = i + CHUNK
        await stream.feed(audio[i:fed])
        await asyncio.sleep(0)
    await stream.close()
    await scheduler.close()
    return asked, heard, events


async def test_the_final_starts_a_quarter_second_into_the_pause_and_is_the_same_final() -> None:
    asked, heard, events = await speak()  # the hub's defaults
    late_asked, late_heard, late = await speak(early_final=None)
    before_asked, _, before = await speak(early_final=0.4)

    assert len(asked) == 1, "the final did not reuse the decode started in the pause"
    # asked 0.25 s into the pause (counted in 32 ms VAD windows): 0.15 s sooner than before,
    # and more than half a second before a final that waits for the whole pause
    assert 3.25 <= asked[0] <= 3.25 + 3 * WINDOW / SAMPLE_RATE, asked
    assert before_asked[0] >= asked[0] + 0.14 and late_asked[0] >= asked[0] + 0.7
    # the same audio, so the same final text and times
    assert np.array_equal(heard[0], late_heard[0])

    def finals(evs: list[CaptionEvent]) -> list[tuple[str, float, float]]:
        return [(e.text, e.start, e.end) for e in evs if e.final]

    assert finals(events) == finals(late) == finals(before) and len(finals(events)) == 1
