"""The decoded audio of a piped publication (a publisher on another hub process, ``pipe.py``).

A local publisher's voice is decoded by its aiortc receiver, in aiortc's decoder thread, only
while an :class:`~media_server.audio_tap.AudioTap` has consumers (``ReceiverTap.decode``). A
piped voice has no receiver here: its Opus frames arrive through ``Publication.push``. So that
captions of a spanned room hear the speakers on the other half exactly like the local ones,
:class:`PipedAudio` is the same thing for them: a track the tap reads, fed the piped frames only
once a consumer asked (:attr:`PipedAudio.decode`), decoded with PyAV's Opus decoder in a thread
of its own (never on the event loop that forwards media), into the frames aiortc's decoder
makes (48 kHz stereo s16, ``pts`` the RTP timestamp), so consumers cannot tell the two apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import queue
import threading

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame
from av.frame import Frame

from .forwarding import EncodedFrame

logger = logging.getLogger(__name__)

#: Decoded frames waiting for the tap (~2 s of 20 ms frames): a stalled reader loses the oldest.
DECODED_QUEUE_FRAMES = 100
#: Encoded frames waiting for the decoder thread (~2 s): past that the oldest are dropped, so a
#: starved thread costs audio, never memory.
ENCODED_QUEUE_FRAMES = 100
SAMPLE_RATE = 48000
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


class PipedAudio(MediaStreamTrack):
    """A piped voice as decoded audio frames; decodes nothing until :attr:`decode` is set."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        #: Set by the tap when its first consumer subscribes (as ``ReceiverTap.decode``).
        self.decode = False
        self._frames: asyncio.Queue[AudioFrame | None] = asyncio.Queue(DECODED_QUEUE_FRAMES)
        self._encoded: queue.Queue[EncodedFrame | None] = queue.Queue(ENCODED_QUEUE_FRAMES)
        self._thread: threading.Thread | None = None
        self.decoded = 0  # frames decoded
        self.undecodable = 0  # frames the decoder refused (damaged on the way)
        self.dropped = 0  # frames dropped because the decoder or the reader fell behind

    def push(self, frame: EncodedFrame) -> None:
        """One Opus frame of the piped publication (a no-op until someone wants it decoded)."""
        if not self.decode or self.readyState != "live":
            return
        if self._thread is None:
            loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._decode_loop, args=(loop,), name="piped-audio-decoder",
                                            daemon=True)
            self._thread.start()
        try:
            self._encoded.put_nowait(frame)
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                self._encoded.get_nowait()
            self.dropped += 1
            with contextlib.suppress(queue.Full):
                self._encoded.put_nowait(frame)

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._frames.get()
        if frame is None:
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        """End the track: the decoder thread finishes and the reader gets the end."""
        if self.readyState == "live":
            super().stop()
            self._end_thread()
            self._deliver(None)

    def _end_thread(self) -> None:
        while True:
            try:
                self._encoded.put_nowait(None)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._encoded.get_nowait()

    # -- the decoder thread -------------------------------------------------------------------

    def _decode_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        codec = av.CodecContext.create("opus", "r")
        codec.sample_rate = SAMPLE_RATE
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=SAMPLE_RATE)
        while (encoded := self._encoded.get()) is not None:
            try:
                decoded = codec.decode(av.Packet(encoded.data))
                out = [f for d in decoded for f in resampler.resample(d)]
            except av.FFmpegError:
                self.undecodable += 1
                continue
            pts = encoded.timestamp  # the RTP timestamp, as aiortc's decoder sets it
            for frame in out:
                frame.pts = pts & 0xFFFFFFFF
                frame.time_base = _TIME_BASE
                frame.sample_rate = SAMPLE_RATE
                pts += frame.samples
                self.decoded += 1
                try:
                    loop.call_soon_threadsafe(self._deliver, frame)
                except RuntimeError:  # the event loop closed under us: nobody is listening
                    return

    def _deliver(self, frame: AudioFrame | None) -> None:
        """On the event loop: hand a decoded frame (None: the end) to the tap."""
        if frame is not None and self.readyState != "live":
            return  # decoded while the track ended
        if self._frames.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._frames.get_nowait()
            self.dropped += 1
        self._frames.put_nowait(frame)
