"""An English reader of a Spanish speaker, on a hub with no Argos model from Spanish into English,
reads Whisper's own translation of the speech — and the caption says so ("Whisper's speech
translation (original: Spanish)"). Real speech on the speaker's fake microphone, the packaged
multilingual ``base`` model on the hub."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from e2e_helpers import WAIT_MS, join, normalise, transcript, unique_room, wait_captions_ready, wait_finals

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

SPEECH = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech" / "multilingual"
#: "fue tanta la cantidad de gente que se concentró que no todos pudieron acceder al funeral en la
#: plaza de san pedro" — Whisper base translates it "… people … the funeral in the San Pedro Square."
CLIP = SPEECH / "es_fleurs_3.wav"


def microphone(tmp_path: Path) -> Path:
    """The clip with 2 s of silence after it (the fake microphone loops: one utterance a turn)."""
    with wave.open(str(CLIP)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        frames = w.readframes(w.getnframes())
    silence = np.zeros(2 * rate * channels, np.int16 if width == 2 else np.int8).tobytes()
    path = tmp_path / "spanish.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(frames + silence)
    return path


def test_english_reader_gets_whispers_translation_of_spanish_marked_as_such(
    hub_factory, launch_browser, new_page, tmp_path
):
    if not CLIP.exists():
        pytest.fail(f"the speech clip {CLIP} is missing", pytrace=False)
    hub = hub_factory("--asr-model", "base")  # no Argos model at all on this hub
    status = wait_captions_ready(hub, timeout=180)
    assert not status["translation"], status
    speaking = launch_browser(f"--use-file-for-fake-audio-capture={microphone(tmp_path)}")
    room = unique_room("whisper-en")
    bo = join(new_page(), hub.url, room, "Bo", lang="en", video=False, audio=False)
    join(new_page(on=speaking), hub.url, room, "Lucía", lang="es", video=False)

    finals = wait_finals(bo, lambda f: "people" in transcript(f).split())
    assert all(f["lang"] == "en" for f in finals if "people" in normalise(f["text"]).split()), finals
    caption = bo.locator('[data-testid="caption"][data-final="true"]', has_text="people").first
    expect(caption.get_by_test_id("caption-engine")).to_have_text(
        "Whisper's speech translation (original: Spanish)", timeout=WAIT_MS)
    # the notice about a missing translation is for readers who get the original: not Bo
    expect(bo.get_by_test_id("captions-notice")).to_be_hidden()
