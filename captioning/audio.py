"""Decoded WebRTC audio (48 kHz, stereo s16) to the 16 kHz mono float32 that Whisper wants."""

from __future__ import annotations

import av
import numpy as np

SAMPLE_RATE = 16000


class PcmConverter:
    """Resamples a publisher's audio frames; keeps resampler state across frames."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def convert(self, frame: av.AudioFrame) -> np.ndarray:
        frame.pts = None  # aiortc's timestamps may jump; the resampler only needs samples
        chunks = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        if not chunks:
            return np.zeros(0, np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)


def read_wav(path: str) -> np.ndarray:
    """A 16 kHz mono WAV file as float32 in [-1, 1] (for tests and benchmarks)."""
    import wave

    with wave.open(path) as w:
        if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit PCM")
        data = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    return data.astype(np.float32) / 32768.0
