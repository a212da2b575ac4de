"""Where the voice changes in speech that runs on without a pause: a BIC test on MFCC frames.

A looping microphone, or two people who speak with no pause between them, hands Whisper two
voices in one window, and it decodes them worse together than each alone (the no-gap loops in
docs/BENCHMARKS.md, "Caption accuracy"): it keeps one voice's words, or blends both clips' words
into neither's. Cutting where the voice changes gives it one voice at a time, as offline decoding of
each recording does.

The test is the classic BIC one (Chen & Gopalakrishnan, 1998): at each candidate point, is the
speech up to ``span`` seconds to its left and to its right better described by one Gaussian, or by
one mean per side with a covariance they share? ΔBIC = ½N(log|Σ| − log|Σ_within|) − λ·½d·log N, on
13 MFCCs per 10 ms (c0, the level, among them: a new voice is usually a new level and a new
microphone too). The full-covariance model (a covariance per side) was tried first and could not
tell a new voice from a new sentence of the same one on these clips: 1.5 s of speech is too few
frames for 104 parameters a side; the mean shift is what separates them (docs/BENCHMARKS.md,
"Run-on speech cut where the voice changes"). Only frames the VAD calls speech count, so a breath
or the short gap at a join is not a "voice". A change is a local maximum of ΔBIC above zero with
no higher one within ``span``. Numpy only: about 1.5 ms of CPU per second of audio, still run off
the event loop by the caller.
"""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE

FRAME = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 24
N_MFCC = 13
_STEP = 3  # candidate points every 30 ms


def _mel_filters() -> np.ndarray:
    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(np.array(64.0)), mel(np.array(7600.0)), N_MELS + 2))
    bins = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    low, mid, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - low) / (mid - low)
    falling = (high - bins[None, :]) / (high - mid)
    return np.maximum(0.0, np.minimum(rising, falling))


def _dct_matrix() -> np.ndarray:
    n = np.arange(N_MELS)
    k = np.arange(N_MFCC)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * N_MELS)) * np.sqrt(2.0 / N_MELS)
    basis[0] /= np.sqrt(2.0)
    return basis


_MEL = _mel_filters()
_DCT = _dct_matrix()
_WINDOW = np.hamming(FRAME)


def mfcc(audio: np.ndarray) -> np.ndarray:
    """13 MFCCs (c0 included) per 10 ms frame of 16 kHz audio: shape (frames, 13)."""
    if len(audio) < FRAME:
        return np.zeros((0, N_MFCC))
    x = np.asarray(audio, dtype=np.float64)
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])  # pre-emphasis
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP] * _WINDOW
    power = np.abs(np.fft.rfft(frames, N_FFT)) ** 2
    return np.log(power @ _MEL.T + 1e-10) @ _DCT.T


def _moments(s1: np.ndarray, s2: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the frames [lo, hi) for each pair, from prefix sums of x and x xᵀ."""
    n = (hi - lo).astype(np.float64)[:, None]
    mean = (s1[hi] - s1[lo]) / n
    return mean, (s2[hi] - s2[lo]) / n[:, :, None] - mean[:, :, None] * mean[:, None, :]


def bic_curve(features: np.ndarray, span: int, min_side: int, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """(candidate frame indices, ΔBIC at each): the frames left and right of a candidate are up to
    ``span`` frames each, at least ``min_side``. The two models: one Gaussian for both sides, or
    one per side's mean with a covariance they share."""
    n, d = features.shape
    if n < 2 * min_side:
        return np.zeros(0, np.int64), np.zeros(0)
    s1 = np.concatenate([np.zeros((1, d)), np.cumsum(features, axis=0)])
    outer = features[:, :, None] * features[:, None, :]
    s2 = np.concatenate([np.zeros((1, d, d)), np.cumsum(outer, axis=0)])
    at = np.arange(min_side, n - min_side + 1, _STEP)
    lo, hi = np.maximum(0, at - span), np.minimum(n, at + span)
    n1, n2 = (at - lo).astype(np.float64), (hi - at).astype(np.float64)
    both = n1 + n2
    _, whole = _moments(s1, s2, lo, hi)
    _, left = _moments(s1, s2, lo, at)
    _, right = _moments(s1, s2, at, hi)
    within = (n1[:, None, None] * left + n2[:, None, None] * right) / both[:, None, None]
    ridge = np.eye(d) * 1e-6
    gain = 0.5 * both * (np.linalg.slogdet(whole + ridge)[1] - np.linalg.slogdet(within + ridge)[1])
    return at, gain - penalty * 0.5 * d * np.log(both)


def speaker_changes(
    audio: np.ndarray,
    speech: list[bool] | None = None,
    window: int = 512,
    span: float = 2.5,
    min_side: float = 1.0,
    penalty: float = 6.0,
) -> list[int]:
    """Samples of ``audio`` where the voice changes, earliest first.

    ``speech``: one flag per ``window`` samples (the VAD's), to leave pauses and breaths out of
    the statistics; without it every frame counts. Each side of a change needs ``min_side``
    seconds of speech (a shorter turn is not found), and is compared over up to ``span`` seconds.
    A change inside a gap between speech frames is placed in the middle of the gap.
    """
    features = mfcc(audio)
    if len(features) == 0:
        return []
    centres = np.arange(len(features)) * HOP + FRAME // 2
    if speech is not None:
        flags = np.asarray(speech, dtype=bool)
        chunk = np.minimum(centres // window, len(flags) - 1) if len(flags) else None
        keep = flags[chunk] if chunk is not None else np.zeros(len(features), dtype=bool)
        kept = np.flatnonzero(keep)
    else:
        kept = np.arange(len(features))
    frames_per_s = SAMPLE_RATE / HOP
    at, score = bic_curve(features[kept], int(span * frames_per_s), int(min_side * frames_per_s), penalty)
    changes: list[int] = []
    reach = max(1, int(span * frames_per_s) // _STEP)
    for i in np.flatnonzero(score > 0):
        around = score[max(0, i - reach) : i + reach + 1]
        if score[i] < around.max():
            continue
        k = int(at[i])  # the change is between kept frames k-1 and k
        before, after = int(centres[kept[k - 1]]) + HOP // 2, int(centres[kept[k]]) - HOP // 2
        changes.append((before + after) // 2 if after > before else int(centres[kept[k]]))
    return changes


def change_cuts(audio: np.ndarray, probs: list[float], window: int, speech_threshold: float,
                slack: float = 0.2) -> list[int]:
    """Where to cut ``audio`` (``probs``: one VAD probability per ``window`` samples) at each voice
    change: the index of the window to cut before — the least speech-like within ``slack``
    seconds of the change, so the cut falls in the gap between two voices, not in a word."""
    speech = [p >= speech_threshold for p in probs]
    reach = max(1, int(slack * SAMPLE_RATE / window))
    cuts: list[int] = []
    for change in speaker_changes(audio, speech, window):
        at = round(change / window)
        around = range(max(1, at - reach), min(len(probs), at + reach + 1))
        cut = min(around, key=lambda i: (probs[i], abs(i - at)), default=None)
        if cut is not None and (not cuts or cut > cuts[-1]):
            cuts.append(cut)
    return cuts
