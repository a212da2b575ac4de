"""Decoded audio of one publisher, decoded once and shared by every consumer.

Captions, recordings' audio mix and the active-speaker detector all want PCM. Decoding per
consumer (or per listener) would multiply Opus decoding; instead the publisher's receiver
decodes once (aiortc's own decoder thread) and :class:`AudioTap` fans the frames out to
bounded per-consumer queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

logger = logging.getLogger(__name__)

#: ~2 s of 20 ms frames: a consumer slower than that loses the oldest audio, never memory.
TAP_QUEUE_FRAMES = 100
#: Holes in the RTP timeline up to this long (48 kHz samples) are filled with silence: Opus DTX
#: (a silent microphone sends one frame every ~400 ms) and lost packets. Consumers that count
#: samples (captions' voice detection, which ends an utterance after a pause) then hear the pause.
#: Longer holes are a publisher that stopped and came back, not silence to replay.
MAX_GAP_SAMPLES = 48000 * 5
#: Filled silence goes out in frames of at most this many samples (0.5 s): few frames, small ones.
GAP_FRAME_SAMPLES = 24000


class Decoder(Protocol):
    """What decodes the publisher's audio only once asked to (``forwarding.ReceiverTap`` for a
    local publisher, ``piped_audio.PipedAudio`` for a piped one)."""

    decode: bool


class AudioTap:
    """Fan-out of one publisher's decoded audio frames (48 kHz, as aiortc decodes Opus)."""

    def __init__(self, track: MediaStreamTrack, decoder: Decoder | None) -> None:
        self._track = track
        self._decoder = decoder
        self._queues: set[asyncio.Queue[AudioFrame | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        #: Muted by a host: consumers (captions, recordings, speaker detection) get silence, so
        #: their timelines stay continuous but nothing the muted person says is used.
        self.muted = False
        #: Samples of silence put in for DTX and lost packets.
        self.filled = 0
        self._next_pts: int | None = None

    def subscribe(self, maxsize: int = TAP_QUEUE_FRAMES) -> asyncio.Queue[AudioFrame | None]:
        """A queue receiving every decoded frame from now on; ``None`` marks the end."""
        q: asyncio.Queue[AudioFrame | None] = asyncio.Queue(maxsize)
        self._queues.add(q)
        if self._task is not None and self._task.done():
            q.put_nowait(None)
            return q
        if self._task is None:
            if self._decoder is not None:
                self._decoder.decode = True
            self._task = asyncio.create_task(self._run(), name="audio-tap")
        return q

    def unsubscribe(self, q: asyncio.Queue[AudioFrame | None]) -> None:
        self._queues.discard(q)

    @property
    def consumers(self) -> int:
        return len(self._queues)

    async def _run(self) -> None:
        try:
            while True:
                frame = await self._track.recv()
                if not isinstance(frame, AudioFrame):  # a receiver's audio track decodes: never
                    logger.warning("audio tap got %s, not decoded audio", type(frame).__name__)
                    continue
                if self.muted:
                    frame = _silence(frame)
                for out in (*self._fill_gap(frame), frame):
                    self._offer(out)
        except MediaStreamError:
            pass
        finally:
            self._offer(None)

    def _offer(self, item: AudioFrame | None) -> None:
        """Give ``item`` to every consumer; a full queue gives up its oldest frame for it."""
        for q in tuple(self._queues):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
                self.dropped += 1
            q.put_nowait(item)

    def _fill_gap(self, frame: AudioFrame) -> list[AudioFrame]:
        """Silent frames covering the hole between the previous frame and ``frame``."""
        expected, pts = self._next_pts, frame.pts
        self._next_pts = None if pts is None else (pts + frame.samples) & 0xFFFFFFFF
        if expected is None or pts is None:
            return []
        gap = (pts - expected) & 0xFFFFFFFF  # RTP timestamps wrap at 2**32
        if not 0 < gap <= MAX_GAP_SAMPLES:
            return []
        out = []
        while gap > 0:
            samples = min(gap, GAP_FRAME_SAMPLES)
            out.append(_silence(frame, samples, expected))
            expected = (expected + samples) & 0xFFFFFFFF
            gap -= samples
            self.filled += samples
        return out

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _silence(frame: AudioFrame, samples: int | None = None, pts: int | None = None) -> AudioFrame:
    """A frame like ``frame`` (format, layout, timing) with all samples zero; ``samples`` and
    ``pts`` give another length and start."""
    out = AudioFrame(format=frame.format.name, layout=frame.layout.name, samples=samples or frame.samples)
    for plane in out.planes:
        plane.update(bytes(plane.buffer_size))
    out.pts = frame.pts if pts is None else pts
    out.sample_rate = frame.sample_rate
    if frame.time_base is not None:
        out.time_base = frame.time_base
    return out
