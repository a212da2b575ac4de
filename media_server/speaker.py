"""Active-speaker detection from each publisher's audio level.

The level comes from the RFC 6464 header extension the publisher's packets carry
(:class:`~media_server.levels.AudioLevels`, nothing decoded) when the publisher sends it, and
only otherwise from its decoded audio (the publication's :class:`AudioTap`). In a call of
browsers, which all send levels, nobody's audio is decoded for this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

import numpy as np
from av import AudioFrame

from .audio_tap import AudioTap
from .levels import AUDIO_CLOCK, AudioLevel, AudioLevels

logger = logging.getLogger(__name__)

#: Below this level (dBov) a participant counts as silent.
SILENCE_DBOV = -50.0
#: A new speaker must be louder than the current one for this long before the highlight moves.
HOLD_SECONDS = 0.6
DECIDE_INTERVAL = 0.25
#: Smoothing works in steps of one 20 ms frame (a longer frame, or a gap, counts as several).
FRAME_TICKS = AUDIO_CLOCK // 50
#: Beyond this many steps (1 s) the smoothed level has followed the new one all the way anyway.
MAX_STEPS = 50


def frame_level_dbov(frame: AudioFrame) -> float:
    """RMS level of a frame in dB relative to full scale (−127 for digital silence)."""
    samples = frame.to_ndarray().astype(np.float32)
    if samples.size == 0:
        return -127.0
    if frame.format.name.startswith("s16"):
        samples /= 32768.0
    rms = float(np.sqrt(np.mean(samples * samples)))
    return max(-127.0, 20.0 * math.log10(rms)) if rms > 0 else -127.0


class LevelSource(Protocol):
    """A published microphone (:class:`~media_server.publication.Publication`): its levels, if
    the publisher sends them, and its decoded audio otherwise."""

    @property
    def levels(self) -> AudioLevels | None: ...

    @property
    def audio(self) -> AudioTap | None: ...


class ActiveSpeakerDetector:
    """Tracks a smoothed level per participant and reports who is speaking, with hysteresis.

    Changes are reported through ``on_change(participant_id | None)``.
    """

    def __init__(self, on_change: Callable[[str | None], None]) -> None:
        self._on_change = on_change
        self._levels: dict[str, float] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._listening: dict[str, Callable[[], None]] = {}  # participant -> stop listening
        self._last: dict[str, AudioLevel] = {}  # the last level heard, by participant
        self._spoke_at: dict[str, float] = {}  # participant -> when last heard speaking (monotonic)
        self._current: str | None = None
        self._candidate: tuple[str, float] | None = None
        self._decider: asyncio.Task[None] | None = None

    @property
    def current(self) -> str | None:
        return self._current

    def recency(self) -> list[str]:
        """Everyone heard speaking so far (and still followed), most recent first.

        "Speaking" is the same test as for the highlight (smoothed level above
        ``SILENCE_DBOV`` at a decision); last-N video forwards these people first.
        """
        return sorted(self._spoke_at, key=lambda p: (-self._spoke_at[p], p != self._current, p))

    def spoke_at(self, participant: str) -> float | None:
        """When ``participant`` was last heard speaking (``time.monotonic()``), if ever."""
        return self._spoke_at.get(participant)

    def add(self, participant: str, source: LevelSource | AudioTap) -> None:
        """Follow ``participant``'s level: a publication's levels if its publisher sends them
        (decoding only if it turns out not to), or the decoded audio of a tap."""
        self.remove(participant)
        if isinstance(source, AudioTap):
            self._decode(participant, source)
        elif source.levels is not None and source.levels.sending is not False:
            self._listening[participant] = source.levels.listen(partial(self._heard, participant, source))
        elif source.audio is not None:
            self._decode(participant, source.audio)
        else:
            return
        if self._decider is None:
            self._decider = asyncio.create_task(self._decide_loop(), name="active-speaker")

    def remove(self, participant: str) -> None:
        task = self._readers.pop(participant, None)
        if task is not None:
            task.cancel()
        stop = self._listening.pop(participant, None)
        if stop is not None:
            stop()
        self._levels.pop(participant, None)
        self._last.pop(participant, None)
        self._spoke_at.pop(participant, None)
        if self._current == participant:
            self._set(None)

    def _feed(self, participant: str, level: float, steps: int = 1) -> None:
        """One level, held for ``steps`` frames of 20 ms."""
        prev = self._levels.get(participant, -127.0)
        # fast attack, slow release: speech onsets show at once, pauses don't flicker
        alpha = 0.5 if level > prev else 0.1
        if steps > 1:
            alpha = 1.0 - (1.0 - alpha) ** min(steps, MAX_STEPS)
        self._levels[participant] = prev + alpha * (level - prev)

    def _heard(self, participant: str, source: LevelSource, level: AudioLevel | None) -> None:
        """One packet of a publication followed by its levels (called on the loop)."""
        if level is None:
            if source.levels is not None and source.levels.sending is False and source.audio is not None:
                # the publisher does not send levels after all: decode its audio instead
                stop = self._listening.pop(participant, None)
                if stop is not None:
                    stop()
                self._decode(participant, source.audio)
            return  # (a stray packet without a level from a publisher that sends them)
        last = self._last.get(participant)
        self._last[participant] = level
        if last is not None:
            # frames the publisher did not send (DTX) continued what the last one had
            elapsed = (level.timestamp - last.timestamp) & 0xFFFFFFFF
            skipped = round(elapsed / FRAME_TICKS) - 1 if elapsed < 0x80000000 else 0
            if skipped > 0:
                self._feed(participant, float(last.dbov), skipped)
        self._feed(participant, float(level.dbov))

    def _decode(self, participant: str, tap: AudioTap) -> None:
        queue = tap.subscribe()
        self._readers[participant] = asyncio.create_task(
            self._read(participant, tap, queue), name=f"speaker-level-{participant}"
        )

    async def _read(self, participant: str, tap: AudioTap, queue: asyncio.Queue[AudioFrame | None]) -> None:
        try:
            while (frame := await queue.get()) is not None:
                steps = round(frame.samples * 50 / frame.sample_rate) if frame.sample_rate else 1
                self._feed(participant, frame_level_dbov(frame), max(1, steps))
        finally:
            tap.unsubscribe(queue)
            if self._readers.get(participant) is asyncio.current_task():
                self._levels.pop(participant, None)

    async def _decide_loop(self) -> None:
        while True:
            await asyncio.sleep(DECIDE_INTERVAL)
            self.decide(time.monotonic())

    def decide(self, now: float) -> None:
        """Pick the loudest non-silent participant, moving the highlight only after a hold."""
        loud = {p: lvl for p, lvl in self._levels.items() if lvl > SILENCE_DBOV}
        for participant in loud:
            self._spoke_at[participant] = now
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
        for stop in self._listening.values():
            stop()
        self._listening.clear()
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
