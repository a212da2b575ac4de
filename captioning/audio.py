"""Decoded WebRTC audio (48 kHz, stereo s16) to the 16 kHz mono float32 that Whisper wants, and
quiet speech next to loud speech raised before Whisper hears it."""

from __future__ import annotations

import warnings

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


def level_quiet_speech(
    audio: np.ndarray,
    speech: list[bool],
    window: int,
    threshold_db: float = 25.0,
    headroom_db: float = 6.0,
    span: float = 1.5,
    min_stretch: float = 1.0,
) -> np.ndarray:
    """Raise stretches of speech more than ``threshold_db`` quieter than the loudest in ``audio``
    to ``headroom_db`` under it; ``audio`` itself (the same array) when nothing is that quiet.

    Whisper transcribes the dominant voice: given a window in which a speaker at -64 dBFS is
    followed by one at -20 dBFS (a room microphone, a speaker far from it), it dropped the quiet
    one whole — decoded alone, or raised by 12 dB or more, every word came back. A window's level
    is the median over the windows of speech (``speech``: one flag per ``window``, from the VAD)
    within ``span`` seconds of it: a speaker's level, not a syllable's; only stretches of at least
    ``min_stretch`` seconds are raised, and never background noise far from speech. Smaller
    differences are left alone, bit for bit: any change to the audio moves which words Whisper
    gets right (20 dB over half-second spans touched soft words in every language, and moved
    Portuguese by +3.6 WER points).
    """
    n = min(len(speech), len(audio) // window)
    if n == 0:
        return audio
    frames = audio[: n * window].reshape(n, window).astype(np.float64)
    rms = np.sqrt((frames**2).mean(axis=1)) + 1e-9
    voiced = np.asarray(speech[:n], dtype=bool)
    if not voiced.any():
        return audio
    reach = max(1, int(span * SAMPLE_RATE / window))
    db = 20 * np.log10(rms)
    padded = np.pad(np.where(voiced, db, np.nan), reach, constant_values=np.nan)
    with warnings.catch_warnings():  # (no speech near a window: its level is NaN, and stays as it is)
        warnings.simplefilter("ignore", RuntimeWarning)
        local = np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1), axis=1)
    loudest = np.nanmax(local)
    deficit = loudest - local
    quiet = np.nan_to_num(deficit, nan=0.0) > threshold_db
    shortest = int(min_stretch * SAMPLE_RATE / window)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < shortest:
            quiet[start:stop] = False  # a soft word, not a quiet speaker
    gain_db = np.where(quiet, np.nan_to_num(deficit, nan=0.0) - headroom_db, 0.0)
    if not gain_db.any():
        return audio
    # ramps, not steps (a click is a syllable to Whisper), that never reach into the loud speech
    ramp = max(1, int(0.25 * SAMPLE_RATE / window))
    smooth = np.convolve(np.pad(gain_db, ramp, mode="edge"), np.ones(2 * ramp + 1) / (2 * ramp + 1), "valid")
    gain_db = np.minimum(gain_db, smooth)
    per_sample = np.interp(np.arange(len(audio)), np.arange(n) * window + window / 2, 10 ** (gain_db / 20))
    return np.clip(audio * per_sample, -1.0, 1.0).astype(np.float32)
