"""Finals packed only while the worker is behind: a meeting it keeps up with keeps its exact words."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from argos_model import argos_env
from captioning.asr import AsrSpec, FasterWhisperBackend, Transcript
from captioning.audio import SAMPLE_RATE, read_wav
from captioning.models import ModelDirs, resolve_asr_model
from captioning.packing import transcribe_packed
from captioning.scheduler import AsrScheduler, PackFinals
from captioning.service import CaptionConfig, CaptionService
from whisperkit import count_encoder_passes

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
HOLD = "hold the worker"  # the prompt of a final the test keeps decoding until it lets it go


class Clock:
    """The scheduler's time, moved by the test: how long a final waited is what the test says."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SteppedAsr:
    """Fake decodes that each finish when the test allows one more (``step``); records every
    call as ("alone", seconds) or ("packed", [seconds, ...])."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._permits = asyncio.Semaphore(0)

    async def transcribe(self, audio: np.ndarray, language: Any, prompt: str | None) -> Transcript:
        self.calls.append(("alone", len(audio) / SAMPLE_RATE))
        await self._permits.acquire()
        return Transcript(f"alone {len(audio) / SAMPLE_RATE:g}", "en", 1.0)

    async def pack(self, audios: list[np.ndarray], language: str) -> list[Transcript]:
        self.calls.append(("packed", [len(a) / SAMPLE_RATE for a in audios]))
        await self._permits.acquire()
        return [Transcript(f"packed {len(a) / SAMPLE_RATE:g}", language, 1.0) for a in audios]

    async def step(self) -> None:
        """Let the running decode finish and the worker take the next job."""
        self._permits.release()
        await settle()


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def seconds(s: float) -> np.ndarray:
    return np.zeros(int(s * SAMPLE_RATE), np.float32)


def submit(scheduler: AsrScheduler, *lengths: float) -> list[asyncio.Future[Transcript | None]]:
    return [asyncio.ensure_future(scheduler.final(seconds(s), "en", None)) for s in lengths]


async def test_finals_that_wait_less_than_the_threshold_are_decoded_alone() -> None:
    asr, clock = SteppedAsr(), Clock()
    scheduler = AsrScheduler(asr.transcribe, pack=asr.pack, pack_behind=2.0, clock=clock)
    assert scheduler.packing is PackFinals.BEHIND
    hold = asyncio.ensure_future(scheduler.final(seconds(1), "en", HOLD))
    waiting = submit(scheduler, 5, 4, 3)
    await settle()
    clock.now += 1.9  # they wait together behind a decode, but not for long
    for _ in range(4):
        await asyncio.sleep(0)
        await asr.step()
    assert asr.calls == [("alone", 1), ("alone", 5), ("alone", 4), ("alone", 3)]
    assert [r.text for r in await asyncio.gather(*waiting)] == ["alone 5", "alone 4", "alone 3"]  # type: ignore[union-attr]
    await hold
    stats = scheduler.stats()
    assert stats["finals_packed"] == 0 and stats["behind_spells"] == 0 and stats["behind"] == 0
    await scheduler.close()


async def test_behind_it_packs_until_a_final_waited_less_than_half_the_threshold() -> None:
    asr, clock = SteppedAsr(), Clock()
    scheduler = AsrScheduler(asr.transcribe, pack=asr.pack, pack_behind=2.0, clock=clock)
    hold = asyncio.ensure_future(scheduler.final(seconds(1), "en", HOLD))
    first = submit(scheduler, 5, 4)
    await settle()
    clock.now += 3.0  # the oldest waiting final has waited 3 s: behind
    await asr.step()
    assert asr.calls[-1] == ("packed", [5, 4]) and scheduler.behind
    second = submit(scheduler, 3, 2)
    await settle()
    clock.now += 1.5  # under the threshold, but not caught up: still packed (hysteresis)
    await asr.step()
    assert asr.calls[-1] == ("packed", [3, 2])
    third = submit(scheduler, 6, 7)
    await settle()
    clock.now += 0.5  # caught up: the next finals decode alone again
    await asr.step()
    await asr.step()
    await asr.step()
    assert asr.calls == [("alone", 1), ("packed", [5, 4]), ("packed", [3, 2]), ("alone", 6), ("alone", 7)]
    texts = [r.text for r in await asyncio.gather(*first, *second, *third)]  # type: ignore[union-attr]
    assert texts == ["packed 5", "packed 4", "packed 3", "packed 2", "alone 6", "alone 7"]
    await hold
    assert not scheduler.behind
    stats = scheduler.stats()
    assert stats["behind_spells"] == 1 and stats["finals_packed"] == 4 and stats["packed_calls"] == 2
    await scheduler.close()


async def test_without_a_threshold_finals_waiting_together_are_always_packed() -> None:
    asr, clock = SteppedAsr(), Clock()
    scheduler = AsrScheduler(asr.transcribe, pack=asr.pack, clock=clock)
    assert scheduler.packing is PackFinals.ALWAYS
    assert AsrScheduler(asr.transcribe).packing is PackFinals.OFF
    hold = asyncio.ensure_future(scheduler.final(seconds(1), "en", HOLD))
    waiting = submit(scheduler, 5, 4)
    await settle()
    await asr.step()
    await asr.step()
    assert asr.calls == [("alone", 1), ("packed", [5, 4])]
    await asyncio.gather(hold, *waiting)
    await scheduler.close()


async def test_a_final_nobody_waits_for_any_more_is_not_dropped_in_a_real_ones_place() -> None:
    """An early final cancelled (speech resumed) while queued neither counts against the cap nor
    breaks the next final's submission (it did, behind at four speakers: InvalidStateError)."""
    asr, clock = SteppedAsr(), Clock()
    scheduler = AsrScheduler(asr.transcribe, max_pending_seconds=10.0, clock=clock)
    hold = asyncio.ensure_future(scheduler.final(seconds(1), "en", HOLD))
    early = asyncio.ensure_future(scheduler.final(seconds(6), "en", None))
    await settle()
    early.cancel()
    await settle()
    later = asyncio.ensure_future(scheduler.final(seconds(6), "en", None))
    await settle()
    await asr.step()
    await asr.step()
    assert (await later).text == "alone 6"  # type: ignore[union-attr]
    assert asr.calls == [("alone", 1), ("alone", 6)] and scheduler.finals_dropped == 0
    await hold
    await scheduler.close()


# -- the real model: the same words, bit for bit, while the worker keeps up -----------------------


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> FasterWhisperBackend:
    path = resolve_asr_model("base", ModelDirs(tmp_path_factory.mktemp("models")))
    assert path is not None, "the bundled multilingual base model is a test dependency"
    return FasterWhisperBackend(AsrSpec("faster-whisper", str(path), device="cpu", threads=2))


async def test_two_speakers_finals_decode_as_alone_until_they_wait_too_long(
    backend: FasterWhisperBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder_passes = count_encoder_passes(monkeypatch)
    jfk = read_wav(str(SPEECH / "jfk.wav"))
    wizard = read_wav(str(SPEECH / "two_speakers_left.wav"))
    alone = [backend.transcribe(a, "en", None) for a in (jfk, wizard)]
    encoder_passes.clear()
    hold = asyncio.Event()

    async def transcribe(audio: np.ndarray, language: Any, prompt: str | None) -> Transcript:
        if prompt == HOLD:
            await hold.wait()
            return Transcript("", "en", 1.0)
        return await asyncio.to_thread(backend.transcribe, audio, language, prompt)

    def packed(audios: list[np.ndarray], language: str) -> Awaitable[list[Transcript]]:
        return asyncio.to_thread(transcribe_packed, backend, audios, language)

    clock = Clock()
    scheduler = AsrScheduler(transcribe, pack=packed, pack_behind=2.0, clock=clock)

    async def together(wait: float) -> list[Transcript | None]:
        """Both speakers' finals queued behind a held decode for ``wait`` s (on the clock)."""
        held = asyncio.ensure_future(scheduler.final(seconds(1), "en", HOLD))
        finals = [asyncio.ensure_future(scheduler.final(a, "en", None)) for a in (jfk, wizard)]
        await settle()
        clock.now += wait
        hold.set()
        await held
        hold.clear()
        return list(await asyncio.gather(*finals))

    assert await together(1.0) == alone  # waiting together, but the worker keeps up: exact words
    assert encoder_passes == [3000, 3000] and scheduler.finals_packed == 0
    encoder_passes.clear()
    first, second = await together(2.5)  # fell behind: one window for both
    await scheduler.close()
    assert len(encoder_passes) == 1 and scheduler.finals_packed == 2 and scheduler.behind_spells == 1
    assert first is not None and "country" in first.text and "wizard" not in first.text
    assert second is not None and "wizard" in second.text and "country" not in second.text


# -- the hub's setting ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(PackFinals))
async def test_the_hub_packs_finals_as_its_config_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      mode: PackFinals) -> None:
    models = tmp_path / "models"
    for key, value in argos_env(ModelDirs(models).argos, tmp_path / "home").items():
        monkeypatch.setenv(key, value)  # (worker processes import argostranslate, which writes under HOME)
    config = CaptionConfig(models_dir=models, asr_model="tiny.en", asr_threads=1, pack_finals=mode)
    service = CaptionService(config, emit=_ignore, participant=lambda _pid: None, room_languages=lambda _room: set())
    service.start()
    try:
        await service.ready()
        assert service.available, service.message
        assert service.stats()["pack_finals"] == mode
    finally:
        await service.close()


async def _ignore(room: str, language: str, caption: dict[str, Any]) -> None:
    return None
