"""What Whisper's encoder was asked to do: its cost is the point of drafts and packed finals."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper import WhisperModel


def count_encoder_passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on (until ``monkeypatch`` undoes it), the number of mel frames each of
    faster-whisper's encoder passes is given, in order."""
    passes: list[int] = []
    encode = WhisperModel.encode

    def counting(self: WhisperModel, features: np.ndarray) -> object:
        passes.append(int(features.shape[-1]))
        return encode(self, features)

    monkeypatch.setattr(WhisperModel, "encode", counting)
    return passes
