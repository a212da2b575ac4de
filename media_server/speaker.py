"""Active-speaker detection from each publisher's decoded audio level."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

import numpy as np
from av import AudioFrame

from .audio_tap import AudioTap

logger = logging.getLogger(__name__)

#: Below this level (dBov) a participant counts as silent.
SILENCE_DBOV = -50.0
#: A new speaker must be louder than the current one for this long before the highlight moves.
HOLD_SECONDS = 0.6
DECIDE_INTERVAL = 0.25


def frame_level_dbov(frame: AudioFrame) -> float:
    """RMS level of a frame in dB relative to full scale (−127 for digital silence)."""
    samples = frame.to_ndarray().astype(np.float32)
    if samples.size == 0:
        return -127.0
    if frame.format.name.startswith("s16"):
        samples /= 32768.0
    rms = float(np.sqrt(np.mean(samples * samples)))
    return max(-127.0, 20.0 * math.log10(rms)) if rms > 0 else -127.0


class ActiveSpeakerDetector:
    """Tracks a smoothed level per participant and reports who is speaking, with hysteresis.

    Changes are reported through ``on_change(participant_id | None)``.
    """

    def __init__(self, on_change: Callable[[str | None], None]) -> None:
        self._on_change = on_change
        self._levels: dict[str, float] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._current: str | None = None
        self._candidate: tuple[str, float] | None = None
        self._decider: asyncio.Task[None] | None = None

    @property
    def current(self) -> str | None:
        return self._current

    def add(self, participant: str, tap: AudioTap) -> None:
        self.remove(participant)
        queue = tap.subscribe()
        self._readers[participant] = asyncio.create_task(
            self._read(participant, tap, queue), name=f"speaker-level-{participant}"
        )
        if self._decider is None:
            self._decider = asyncio.create_task(self._decide_loop(), name="active-speaker")

    def remove(self, participant: str) -> None:
        task = self._readers.pop(participant, None)
        if task is not None:
            task.cancel()
        self._levels.pop(participant, None)
        if self._current == participant:
            self._set(None)

    async def _read(self, participant: str, tap: AudioTap, queue: asyncio.Queue[AudioFrame | None]) -> None:
        try:
            while (frame := await queue.get()) is not None:
                level = frame_level_dbov(frame)
                prev = self._levels.get(participant, -127.0)
                # fast attack, slow release: speech onsets show at once, pauses don't flicker
                alpha = 0.5 if level > prev else 0.1
                self._levels[participant] = prev + alpha * (level - prev)
        finally:
            tap.unsubscribe(queue)
            self._levels.pop(participant, None)

    async def _decide_loop(self) -> None:
        while True:
            await asyncio.sleep(DECIDE_INTERVAL)
            self.decide(time.monotonic())

    def decide(self, now: float) -> None:
        """Pick the loudest non-silent participant, moving the highlight only after a hold."""
        loud = {p: lvl for p, lvl in self._levels.items() if lvl > SILENCE_DBOV}
        if not loud:
            self._candidate = None
            return  # keep the last speaker highlighted through pauses, as Meet does
        best = max(loud, key=loud.__getitem__)
        if best == self._current:
            self._candidate = None
            return
        if self._current not in loud:
            self._set(best)
            return
        if self._candidate is None or self._candidate[0] != best:
            self._candidate = (best, now)
        elif now - self._candidate[1] >= HOLD_SECONDS:
            self._set(best)

    def _set(self, participant: str | None) -> None:
        self._candidate = None
        if participant != self._current:
            self._current = participant
            self._on_change(participant)

    async def close(self) -> None:
        tasks = list(self._readers.values())
        if self._decider is not None:
            tasks.append(self._decider)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._readers.clear()
        self._decider = None
