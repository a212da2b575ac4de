"""Where the voice changes in speech without a pause: real clips of two speakers, back to back."""

from __future__ import annotations

import numpy as np
import pytest

from bench.captions_accuracy import SPEECH, load_manifest, trim_silence
from captioning.audio import SAMPLE_RATE
from captioning.speaker_change import change_cuts, speaker_changes
from captioning.stream import SPEECH_OFF
from captioning.vad import WINDOW, StreamingVad

FIRST, SECOND = "en_fleurs_1.wav", "en_fleurs_2.wav"  # two FLEURS readers, different voices


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    if not (SPEECH / "MANIFEST.tsv").is_file():
        pytest.fail(f"the multilingual speech clips are missing ({SPEECH})", pytrace=False)
    return {c.name: trim_silence(c.audio) for c in load_manifest(names=[FIRST, SECOND, "fr_fleurs_1.wav"])}


def speech_of(audio: np.ndarray) -> list[float]:
    return StreamingVad().process(audio)


def test_a_new_voice_with_no_pause_before_it_is_found_at_the_join(clips: dict[str, np.ndarray]) -> None:
    audio = np.concatenate([clips[FIRST], clips[SECOND]])
    join = len(clips[FIRST]) / SAMPLE_RATE
    probs = speech_of(audio)

    changes = [c / SAMPLE_RATE for c in speaker_changes(audio, [p >= SPEECH_OFF for p in probs], WINDOW)]

    assert len(changes) == 1, f"changes at {changes} s; the voice changes once, at {join:.2f} s"
    assert abs(changes[0] - join) <= 0.3
    cuts = change_cuts(audio, probs, WINDOW, SPEECH_OFF)  # the stream's cut: a window boundary
    assert len(cuts) == 1 and abs(cuts[0] * WINDOW / SAMPLE_RATE - join) <= 0.3


@pytest.mark.parametrize("name", [FIRST, SECOND, "fr_fleurs_1.wav"])
def test_one_voice_reading_sentences_is_not_a_change(clips: dict[str, np.ndarray], name: str) -> None:
    audio = clips[name]
    changes = speaker_changes(audio, [p >= SPEECH_OFF for p in speech_of(audio)], WINDOW)

    assert changes == [], f"{name}: a change found at {[round(c / SAMPLE_RATE, 2) for c in changes]} s"


def test_a_change_needs_a_second_of_speech_on_each_side(clips: dict[str, np.ndarray]) -> None:
    short = clips[SECOND][: int(0.6 * SAMPLE_RATE)]  # a word of someone else's at the end
    audio = np.concatenate([clips[FIRST], short])

    assert speaker_changes(audio, [p >= SPEECH_OFF for p in speech_of(audio)], WINDOW) == []
