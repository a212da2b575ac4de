"""Streaming voice activity detection with the Silero model shipped inside faster-whisper.

faster-whisper's ``SileroVADModel`` resets the model's recurrent state on every call, which is
right for whole files; a live stream keeps the state (and the 64-sample context) across windows —
but not forever: carried over a long stream, the state can settle where it no longer hears a
quieter voice at all (measured: 11 s of a speaker with a cold scored under 0.35 after another
clip, 0.4–0.9 from a fresh state). So after ``reset_after`` seconds without speech the state
starts afresh, as it would for a new file; silence loses nothing by it.
"""

from __future__ import annotations

import os

import numpy as np

WINDOW = 512  # samples at 16 kHz = 32 ms, the model's native step
CONTEXT = 64
QUIET = 0.2  # a window under this probability is not speech for the purpose of resetting


def silero_model_path() -> str:
    from faster_whisper.utils import get_assets_path

    return os.path.join(get_assets_path(), "silero_vad_v6.onnx")


class StreamingVad:
    """Speech probability per 32 ms window of a continuous 16 kHz stream."""

    def __init__(self, path: str | None = None, reset_after: float = 1.0) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            path or silero_model_path(), providers=["CPUExecutionProvider"], sess_options=opts
        )
        self._reset_windows = max(1, int(reset_after * 16000 / WINDOW))
        self.resets = 0
        self.reset()

    def reset(self) -> None:
        self._reset_state()
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def _reset_state(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._quiet = 0

    def process(self, audio: np.ndarray) -> list[float]:
        """Feed samples; returns one probability per completed 512-sample window."""
        buf = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        n = len(buf) // WINDOW
        probs: list[float] = []
        for i in range(n):
            window = buf[i * WINDOW : (i + 1) * WINDOW]
            x = np.concatenate([self._context, window])[None, :]
            out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
            self._context = window[-CONTEXT:]
            prob = float(np.asarray(out).reshape(-1)[0])
            probs.append(prob)
            self._quiet = self._quiet + 1 if prob < QUIET else 0
            if self._quiet >= self._reset_windows:
                self._reset_state()
                self.resets += 1
        self._pending = buf[n * WINDOW :]
        return probs
