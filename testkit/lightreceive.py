"""A cheap receive path for load generators: count what a peer connection receives, decode nothing.

Why: a meeting of N participants receives N × (videos each) RTP streams. aiortc's receive path
(datagram → aioice queue → DTLS transport task → ``RtpPacket.parse`` → receiver, jitter buffer,
NACK generator, statistics) costs on the order of 100 µs of Python per packet on the project's
2-vCPU machine (``sfu_forwarding.py``'s load generator used ~75 % of a core for ~7,000
packets/s), so Python participants receiving a 40-person meeting (~10,000-25,000 packets/s)
would need more CPU than the machine has, and the hub under test would be measured starving.

How: once aiortc has set up ICE and DTLS, :class:`LightReceiver` takes each incoming datagram
straight from the ICE connection (it replaces ``data_received`` on that one aioice
``Connection`` *instance*). SRTP packets are unprotected with the DTLS transport's own SRTP
session (libsrtp, C) and read with a few slices: SSRC, sequence number (loss, as RFC 3550
counts it), RTP timestamp (video frames missing between two received ones), marker bit, VP8
payload descriptor; a frame's depayloaded bytes are reassembled only to name it
(:func:`frame_key`, which the senders use too) for send → arrival delay. Everything else —
DTLS, SRTCP (sender reports), anything before DTLS completes — goes on to aiortc as before.
aiortc's receivers therefore never see media: no NACKs, PLIs or receiver reports are sent,
and no frame is decoded.

Test and bench code only (aiortc and aioice internals are read here, never in shipped code).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pylibsrtp
from aiortc import RTCPeerConnection
from aiortc.sdp import SessionDescription

logger = logging.getLogger(__name__)

#: RTP ticks between two video frames at 30 fps (the 90 kHz video clock).
VIDEO_FRAME_TICKS = 90000 // 30
#: A gap in a video stream's timestamps longer than this (ticks) is a pause (last-N), not loss.
MAX_GAP_TICKS = 90000


def frame_key(data: bytes) -> int:
    """A name for an encoded frame that any process computes the same way (length and CRC-32)."""
    return (len(data) << 32) | zlib.crc32(data)


@dataclass(slots=True)
class StreamCounters:
    """What one RTP stream (one SSRC) delivered so far."""

    packets: int = 0
    bytes: int = 0  # SRTP datagram bytes (RTP header, payload, auth tag; not IP/UDP)
    payload: int = 0  # RTP payload bytes (what a browser's inbound-rtp bytesReceived counts)
    expected: int = 0  # highest extended sequence number - first + 1 (RFC 3550)
    frames: int = 0
    missing_frames: int = 0  # video: frames absent between two received ones (not pauses)


class RtpStream:
    """One received SSRC: loss, frame and byte counters, and the frame being reassembled."""

    __slots__ = ("base_seq", "bytes", "frames", "kind", "last_arrival", "last_ts", "max_seq", "missing_frames",
                 "packets", "parts", "payload", "publisher", "ssrc", "video")

    def __init__(self, ssrc: int, kind: str, publisher: str) -> None:
        self.ssrc = ssrc
        self.kind = kind
        self.video = kind == "video"
        self.publisher = publisher
        self.packets = 0
        self.bytes = 0
        self.payload = 0
        self.base_seq = -1
        self.max_seq = -1  # extended (counts 16-bit wraps)
        self.frames = 0
        self.missing_frames = 0
        self.last_ts: int | None = None
        self.last_arrival = 0.0
        self.parts: list[bytes] = []

    def counters(self) -> StreamCounters:
        expected = self.max_seq - self.base_seq + 1 if self.base_seq >= 0 else 0
        return StreamCounters(self.packets, self.bytes, self.payload, expected, self.frames, self.missing_frames)


def _vp8_descriptor_length(packet: bytes, offset: int) -> int:
    """Bytes of the VP8 payload descriptor (RFC 7741 4.2) starting at ``offset``."""
    first = packet[offset]
    if not first & 0x80:
        return 1
    ext = packet[offset + 1]
    n = 2
    if ext & 0x80:  # I: picture id, 7 or 15 bits
        n += 2 if packet[offset + n] & 0x80 else 1
    if ext & 0x40:  # L: TL0PICIDX
        n += 1
    if ext & 0x30:  # T or K: TID/Y/KEYIDX
        n += 1
    return n


#: ``(publisher, kind, frame key, arrival time)`` for each completed frame.
Arrival = tuple[str, str, int, float]


class LightReceiver:
    """Counts the media one peer connection receives, bypassing aiortc's receivers.

    Call :meth:`describe` with every remote offer (which SSRC carries whose ``kind``), and
    :meth:`install` once the connection's transceivers exist. ``record``: keep an
    :data:`Arrival` per completed frame in :attr:`arrivals` (for delay matching).
    """

    def __init__(self, pc: RTCPeerConnection, video_frame_ticks: int = VIDEO_FRAME_TICKS) -> None:
        self.pc = pc
        self.streams: dict[int, RtpStream] = {}
        self.arrivals: list[Arrival] = []
        self.record = False
        self.rtcp_bytes = 0  # SRTCP from the server (sender reports), also downloaded
        self.unknown_packets = 0  # RTP on an SSRC no offer described
        self.errors = 0  # SRTP packets that failed to unprotect
        self._ticks = video_frame_ticks
        self._owners: dict[int, tuple[str, str]] = {}  # ssrc -> (publisher, kind)
        self._taken: dict[int, tuple[Any, Callable[[bytes, int], None]]] = {}  # id -> (connection, original)

    def describe(self, sdp: str, publishers: dict[str, str]) -> None:
        """Learn the SSRCs of a remote description; ``publishers``: mid -> whose media it carries."""
        for media in SessionDescription.parse(sdp).media:
            mid = media.rtp.muxId
            if mid is None or mid not in publishers:
                continue
            for info in media.ssrc:
                self._owners[info.ssrc] = (publishers[mid], media.kind)
                stream = self.streams.get(info.ssrc)
                if stream is not None and stream.publisher == "?":
                    stream.publisher, stream.kind, stream.video = publishers[mid], media.kind, media.kind == "video"

    def install(self) -> int:
        """Take over incoming media on the connection's transports (one, when bundled), those
        not taken yet; returns how many are taken. Call again after renegotiation."""
        for transceiver in self.pc.getTransceivers():
            dtls = transceiver.receiver.transport
            connection = getattr(dtls.transport, "_connection", None)  # aioice.Connection
            if connection is None or not hasattr(connection, "data_received") or not hasattr(dtls, "_rx_srtp"):
                raise RuntimeError("unsupported aiortc/aioice version: transport internals changed")
            if id(connection) not in self._taken:
                original = connection.data_received
                connection.data_received = self._hook(dtls, original)  # this instance only
                self._taken[id(connection)] = (connection, original)
        return len(self._taken)

    def uninstall(self) -> None:
        for connection, original in self._taken.values():
            connection.data_received = original
        self._taken.clear()

    # -- the hot path: one call per datagram, on the event loop ---------------------------------

    def _hook(self, dtls: Any, forward: Callable[[bytes, int], None]) -> Callable[[bytes, int], None]:
        def data_received(data: bytes, component: int) -> None:
            if len(data) >= 12 and 127 < data[0] < 192:
                srtp = dtls._rx_srtp
                if srtp is not None:
                    if 191 < data[1] < 209:  # RTCP (aiortc's is_rtcp): sender reports, to aiortc
                        self.rtcp_bytes += len(data)
                    else:
                        try:
                            packet = srtp.unprotect(data)
                        except pylibsrtp.Error:
                            self.errors += 1
                            return
                        self._rtp(packet, len(data), time.monotonic())
                        return
            forward(data, component)

        return data_received

    def _rtp(self, packet: bytes, wire: int, now: float) -> None:
        ssrc = int.from_bytes(packet[8:12], "big")
        stream = self.streams.get(ssrc)
        if stream is None:
            publisher, kind = self._owners.get(ssrc, ("?", "video" if packet[1] & 0x7F != 111 else "audio"))
            if publisher == "?":
                self.unknown_packets += 1
            stream = self.streams[ssrc] = RtpStream(ssrc, kind, publisher)
        first = packet[0]
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # header extension
            offset += 4 + 4 * int.from_bytes(packet[offset + 2:offset + 4], "big")
        end = len(packet) - (packet[-1] if first & 0x20 else 0)
        if offset >= end:
            return
        stream.packets += 1
        stream.bytes += wire
        stream.payload += end - offset
        seq = (packet[2] << 8) | packet[3]
        if stream.base_seq < 0:
            stream.base_seq = stream.max_seq = seq
        else:
            delta = (seq - stream.max_seq) & 0xFFFF
            if 0 < delta < 0x8000:
                stream.max_seq += delta
        if stream.video:
            head = packet[offset]
            if head & 0x10 and not head & 0x07:  # S bit, partition 0: a frame starts here
                stream.parts = []
            stream.parts.append(packet[offset + _vp8_descriptor_length(packet, offset):end])
            if not packet[1] & 0x80:  # marker: the frame's last packet
                return
            frame = b"".join(stream.parts)
            stream.parts = []
            ts = int.from_bytes(packet[4:8], "big")
            if stream.last_ts is not None:
                gap = (ts - stream.last_ts) & 0xFFFFFFFF
                if gap < MAX_GAP_TICKS:
                    steps = (gap + self._ticks // 2) // self._ticks
                    if steps > 1:
                        stream.missing_frames += steps - 1
            stream.last_ts = ts
        else:
            frame = packet[offset:end]
        stream.frames += 1
        stream.last_arrival = now
        if self.record:
            self.arrivals.append((stream.publisher, stream.kind, frame_key(frame), now))

    # -- reading -------------------------------------------------------------------------------

    def counters(self) -> dict[int, tuple[str, str, StreamCounters]]:
        """Per SSRC: (publisher, kind, counters so far)."""
        return {s.ssrc: (s.publisher, s.kind, s.counters()) for s in self.streams.values()}

    def flowing(self, kind: str, within: float = 2.0) -> set[str]:
        """Publishers of ``kind`` media a frame arrived from in the last ``within`` seconds."""
        since = time.monotonic() - within
        return {s.publisher for s in self.streams.values() if s.kind == kind and s.last_arrival >= since}
