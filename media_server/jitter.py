"""Frame assembly for forwarding: emit each frame the moment its last packet arrives.

aiortc's ``JitterBuffer`` is built for a local decoder: it releases a video frame only when a
packet of the *next* frame arrives (one frame period late) and holds four audio packets
(80 ms) before releasing the first. Forwarded media is buffered again by every subscriber's
browser, so those delays only add latency. :class:`FrameAssembler` keeps aiortc's ``add()``
contract but completes a video frame on its marker bit and passes audio straight through.

Loss: if the oldest frame is still incomplete when newer media is ``max_wait`` seconds ahead
(time for NACK/RTX to repair it), it is dropped, the next emitted frame is flagged as a
discontinuity (so the SFU holds subscribers until a keyframe) and a PLI is requested.

Audio levels: an audio frame keeps the RFC 6464 level its packet carried (``audio_level``, as
aiortc's receiver parsed the header extension), so the SFU knows who speaks without decoding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

logger = logging.getLogger(__name__)


class AssembledFrame(JitterFrame):
    """A complete frame; ``discontinuity`` means frames before it were lost.

    ``audio_level`` is an audio packet's ssrc-audio-level extension as aiortc parses it,
    ``(voice_activity, level)`` with level 0..127 meaning 0..-127 dBov; None when absent.
    ``rtp_timestamp`` keeps the publisher's RTP timestamp: aiortc rebases ``timestamp`` of the
    frame it is handed onto the track's timeline, and ``more`` frames follow it from this.
    ``head`` is the RTP payload of the frame's first packet with its codec descriptor still on
    (a VP8 frame's temporal layer is read from it, see ``forwarding.py``); empty for audio.
    """

    def __init__(
        self,
        data: bytes,
        timestamp: int,
        discontinuity: bool = False,
        audio_level: tuple[bool, int] | None = None,
        head: bytes = b"",
    ) -> None:
        super().__init__(data, timestamp)
        self.head = head
        self.rtp_timestamp = timestamp
        self.discontinuity = discontinuity
        self.audio_level = audio_level
        self.more: list[AssembledFrame] = []  # further frames completed by the same packet


def _seq_delta(a: int, b: int) -> int:
    """Signed distance a - b in 16-bit sequence space."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


def _ts_delta(a: int, b: int) -> int:
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


class FrameAssembler:
    """Drop-in replacement for ``aiortc.jitterbuffer.JitterBuffer`` on a forwarding receiver.

    ``payload`` reads a packet's depayloaded media bytes: :func:`media_server.forwarding.depayloaded`,
    the seam to where aiortc's receiver keeps them (passed in, as ``forwarding`` imports this module).
    """

    def __init__(
        self,
        payload: Callable[[RtpPacket], bytes],
        capacity: int = 512,
        is_video: bool = True,
        clock_rate: int = 90000,
        max_wait: float = 0.15,
    ) -> None:
        self._payload = payload
        self._capacity = capacity
        self._is_video = is_video
        self._max_wait_ticks = int(max_wait * clock_rate)
        self._packets: dict[int, RtpPacket] = {}
        self._next: int | None = None  # first sequence number of the next frame to emit
        self._newest_ts: int | None = None
        self._discontinuity = False
        self.frames = 0
        self.frames_lost = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def add(self, packet: RtpPacket) -> tuple[bool, AssembledFrame | None]:
        seq = packet.sequence_number
        if self._next is not None and _seq_delta(seq, self._next) < 0:
            if self._is_video and not self.frames and packet.timestamp == self._head_ts():
                self._next = seq  # reordering at the very start of the stream
            else:
                return False, None  # duplicate, or a frame already given up on
        if not self._is_video:
            self._next = (seq + 1) & 0xFFFF
            self.frames += 1
            level = packet.extensions.audio_level
            return False, AssembledFrame(self._payload(packet), packet.timestamp, audio_level=level)
        if self._next is None:
            self._next = seq
        self._packets[seq] = packet
        if self._newest_ts is None or _ts_delta(packet.timestamp, self._newest_ts) > 0:
            self._newest_ts = packet.timestamp
        return self._drain()

    def _head_ts(self) -> int | None:
        assert self._next is not None
        head = self._packets.get(self._next)
        return head.timestamp if head is not None else None

    def _complete_head(self) -> int | None:
        """Sequence number of the head frame's last packet, if the head frame is complete."""
        assert self._next is not None
        seq = self._next
        first = self._packets.get(seq)
        if first is None:
            return None
        for _ in range(self._capacity):
            packet = self._packets.get(seq)
            if packet is None or packet.timestamp != first.timestamp:
                return None
            if packet.marker:
                return seq
            seq = (seq + 1) & 0xFFFF
        return None

    def _drain(self) -> tuple[bool, AssembledFrame | None]:
        assert self._next is not None
        pli = False
        emitted: list[AssembledFrame] = []
        while self._packets:
            end = self._complete_head()
            if end is not None:
                emitted.append(self._pop_frame(end))
                continue
            if not self._give_up_due():
                break
            self._drop_head()
            pli = True
        if not emitted:
            return pli, None
        first = emitted[0]
        first.more = emitted[1:]
        return pli, first

    def _pop_frame(self, end: int) -> AssembledFrame:
        assert self._next is not None
        parts: list[bytes] = []
        seq = self._next
        head = self._packets[seq]
        timestamp = head.timestamp
        payload = self._payload
        while True:
            parts.append(payload(self._packets.pop(seq)))
            if seq == end:
                break
            seq = (seq + 1) & 0xFFFF
        self._next = (end + 1) & 0xFFFF
        frame = AssembledFrame(b"".join(parts), timestamp, self._discontinuity, head=head.payload)
        self._discontinuity = False
        self.frames += 1
        return frame

    def _give_up_due(self) -> bool:
        if len(self._packets) >= self._capacity:
            return True
        head_ts = self._head_ts()
        if head_ts is None:
            oldest = min(self._packets.values(), key=lambda p: _seq_delta(p.sequence_number, self._next or 0))
            head_ts = oldest.timestamp
        assert self._newest_ts is not None
        return _ts_delta(self._newest_ts, head_ts) > self._max_wait_ticks

    def _drop_head(self) -> None:
        """Discard the oldest (incomplete) frame and restart at the next frame boundary."""
        assert self._next is not None
        base = self._next
        ordered = sorted(self._packets, key=lambda s: _seq_delta(s, base))
        head_ts = self._packets[ordered[0]].timestamp
        restart: int | None = None
        for seq in ordered:
            packet = self._packets[seq]
            if packet.timestamp == head_ts:
                continue
            prev = self._packets.get((seq - 1) & 0xFFFF)
            if prev is not None and prev.marker:
                restart = seq
                break
            if restart is None:
                restart = seq  # boundary unknown: best guess is the first newer packet
        if restart is None:
            self._packets.clear()
            self._next = (ordered[-1] + 1) & 0xFFFF
        else:
            for seq in ordered:
                if seq == restart:
                    break
                del self._packets[seq]
            self._next = restart
        self.frames_lost += 1
        self._discontinuity = True
        logger.debug("frame at ts %d lost; restarting at seq %d", head_ts, self._next)
