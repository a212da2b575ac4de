"""The streaming VAD keeps hearing a quiet speaker after a long stream (real clips)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from captioning.audio import SAMPLE_RATE, read_wav
from captioning.vad import WINDOW, StreamingVad

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "multilingual"


def test_a_quiet_speaker_after_another_clip_is_still_heard_as_speech() -> None:
    first, quiet = SPEECH / "en_mfa-spont_1.wav", SPEECH / "en_mfa-spont_2.wav"  # the second has a cold
    if not first.is_file() or not quiet.is_file():
        pytest.fail(f"speech clips missing in {SPEECH}", pytrace=False)
    pause = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
    second = read_wav(str(quiet))
    audio = np.concatenate([read_wav(str(first)), pause, second])

    probs = StreamingVad().process(audio)
    fresh = StreamingVad().process(np.concatenate([pause, second]))

    start = (len(audio) - len(second)) // WINDOW
    heard = probs[start : start + 10 * SAMPLE_RATE // WINDOW]  # its first 10 s: "so this is the sick corpus…"
    alone = fresh[len(pause) // WINDOW :][: len(heard)]
    assert max(alone) > 0.5  # the voice is speech to a fresh VAD
    assert sum(p >= 0.5 for p in heard) >= 0.8 * sum(p >= 0.5 for p in alone), "the VAD went deaf"
