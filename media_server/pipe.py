"""A plain-RTP pipe between two hub processes: how a room spans more than one process.

When a room outgrows its owner, another hub process (a *relay*) serves some of its people. A
:class:`Pipe` joins the room's two halves, one at each end, both ways: each end subscribes to
every publication of the room it has, like a recorder does (every frame, never paused by last-N
or silence suppression), except those its own pipe brought in, and sends their frames to the
other end, which makes each piped track a local
:meth:`~media_server.publication.Publication.piped` publication: that SFU forwards it to its
browsers exactly as a local publisher's, with the same last-N, temporal layers and silence
suppression (the audio levels travel with the frames). Keyframe requests travel back, merged by
the piped publication and then at most one per :data:`KEYFRAME_INTERVAL` per track, as
mediasoup's ``PipeTransport`` and Jitsi's bridge relays do. With several relays the owner is
the hub of a star: what one relay pipes in, the owner pipes on to the others, never back.

The wire: one UDP socket each end, no DTLS or SRTP — loopback or a private network only. Each
end accepts datagrams only from the address it was told is the other end (:meth:`Pipe.connect`).

* media: RTP (RFC 3550). One SSRC per piped track, consecutive sequence numbers, the frame's
  timestamp, the marker on a frame's last packet. The payload is the *frame as the hub forwards
  it* (already depayloaded: the hub re-packetizes per subscriber, ``fastsend.py``), in fragments
  of at most :data:`FRAGMENT` bytes behind a 4-byte pipe header: flags (start of frame, keyframe,
  discontinuity, level present, TID present), the RFC 6464 audio level, the VP8 temporal layer.
  A lost packet drops its frame and marks the next one as a discontinuity: the relay's
  publication then holds video at the next keyframe, which it asks for.
* control: RTCP. PLI (RFC 4585) for one SSRC, from the end that receives it; an APP packet
  ``UHPA`` from each end every :data:`ANNOUNCE_INTERVAL` (and at each change) that lists the
  tracks it sends (SSRC, publisher, source, kind, codec) and the room. The other end adds and
  removes piped publications to match the latest list, and ends them all when it has heard
  nothing for :data:`PEER_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .forwarding import EncodedFrame, ForwardedTrack
from .publication import Publication, is_source
from .sfu import SFU, MediaRoom

logger = logging.getLogger(__name__)

#: Media bytes per RTP packet on the pipe (a loopback or LAN MTU leaves room for headers).
FRAGMENT = 1200
#: Seconds between two announcements of the piped tracks (also the relay's sign of life).
ANNOUNCE_INTERVAL = 1.0
#: An end that has heard nothing from the other this long ends the tracks piped in.
PEER_TIMEOUT = 5.0
#: At most one keyframe request per piped track per this many seconds travels back.
KEYFRAME_INTERVAL = 1.0

PAYLOAD_TYPES = {"vp8": 96, "h264": 102, "opus": 111}
RTCP_APP = 204
RTCP_PSFB = 206
APP_NAME = b"UHPA"
_RTP = struct.Struct("!BBHII")
_PIPE = struct.Struct("!BBBx")
_RTCP = struct.Struct("!BBHI")

F_START = 0x01
F_KEYFRAME = 0x02
F_DISCONTINUITY = 0x04
F_LEVEL = 0x08
F_TID = 0x10

Address = tuple[str, int]


def packetize(frame: EncodedFrame, ssrc: int, payload_type: int, seq: int) -> list[bytes]:
    """``frame`` as RTP packets numbered from ``seq`` (the caller advances it by the count)."""
    flags = (F_KEYFRAME if frame.keyframe else 0) | (F_DISCONTINUITY if frame.discontinuity else 0)
    level = 0
    if frame.audio_level is not None:
        flags |= F_LEVEL
        voice, dbov = frame.audio_level
        level = (0x80 if voice else 0) | (dbov & 0x7F)
    tid = 0
    if frame.temporal_id is not None:
        flags |= F_TID
        tid = frame.temporal_id
    data = frame.data
    chunks = [data[i:i + FRAGMENT] for i in range(0, len(data), FRAGMENT)] or [b""]
    timestamp = frame.timestamp & 0xFFFFFFFF
    packets = []
    for i, chunk in enumerate(chunks):
        marker = 0x80 if i == len(chunks) - 1 else 0
        header = _RTP.pack(0x80, marker | payload_type, (seq + i) & 0xFFFF, timestamp, ssrc)
        packets.append(header + _PIPE.pack(flags | (F_START if i == 0 else 0), level, tid) + chunk)
    return packets


def pli(ssrc: int) -> bytes:
    """An RTCP Picture Loss Indication (RFC 4585 6.3.1) for the piped track ``ssrc``."""
    return _RTCP.pack(0x81, RTCP_PSFB, 2, 0) + struct.pack("!I", ssrc)


def app(body: dict[str, Any]) -> bytes:
    """An RTCP APP packet named ``UHPA`` carrying ``body`` as JSON (padded to 32-bit words)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    data += b" " * (-len(data) % 4)
    return _RTCP.pack(0x80, RTCP_APP, (len(data) + 8) // 4, 0) + APP_NAME + data


def is_rtcp(datagram: bytes) -> bool:
    """RTP and RTCP share the pipe's socket (RFC 5761 4: RTCP packet types are 200-206)."""
    return len(datagram) >= 8 and 200 <= datagram[1] <= 206


@dataclass(frozen=True)
class TrackInfo:
    """What the relay needs to know of one piped track (announced in ``UHPA``)."""

    ssrc: int
    owner: str
    source: str
    kind: str
    codec: str


# -- one end of a pipe -----------------------------------------------------------------------


@dataclass
class _Outgoing:
    info: TrackInfo
    publication: Publication
    track: ForwardedTrack
    seq: int = field(default_factory=lambda: random.randrange(1 << 16))


@dataclass
class _Incoming:
    info: TrackInfo
    publication: Publication
    expected: int | None = None  # the next sequence number
    parts: list[bytes] | None = None  # fragments of the frame being assembled
    timestamp: int = 0
    flags: int = 0
    level: int = 0
    tid: int = 0
    lost: bool = False  # packets were lost since the last frame delivered
    frames: int = 0
    last_keyframe_request: float = float("-inf")
    pending: asyncio.TimerHandle | None = None


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self._on_datagram(data, (addr[0], addr[1]))
        except Exception:  # a malformed datagram must not end the pipe
            logger.exception("pipe: datagram from %s dropped", addr)


class Pipe:
    """One end of the pipe of ``room`` between ``sfu`` and another hub process's SFU.

    :meth:`open` binds the socket on ``host`` (loopback or a private address) and returns its
    address, which the other end is told; :meth:`connect` is given the other end's address and
    starts piping. Both ends are alike: each pipes its room's publications out (but not those it
    piped in: no loops) and turns what arrives into piped publications of its SFU.
    """

    def __init__(self, sfu: SFU, room: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sfu = sfu
        self.room = room
        self.address: Address = (host, port)
        self.peer: Address | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._out: dict[int, _Outgoing] = {}
        self._out_by_publication: dict[str, int] = {}
        self._in: dict[int, _Incoming] = {}
        self._unwatch: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._changes = asyncio.Lock()
        self._heard = time.monotonic()
        self.packets_sent = 0
        self.bytes_sent = 0
        self.frames_received = 0
        self.lost_packets = 0
        self.keyframe_requests_sent = 0  # PLIs sent to the other end
        self.keyframe_requests_received = 0  # PLIs the other end sent

    async def open(self) -> Address:
        """Bind the pipe's socket; its address, for the other end."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._on_datagram), local_addr=self.address
        )
        self._transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self.address = (host, port)
        return self.address

    def connect(self, peer: Address) -> None:
        """Pipe to and from ``peer`` (the other end's :meth:`open`) from now on."""
        if self.peer is not None:
            raise RuntimeError("this pipe is connected already")
        self.peer = peer
        self._heard = time.monotonic()
        self._unwatch = self.sfu.watch(self._on_publication)
        self._spawn(self._announce_loop())
        self._announce()

    @property
    def silent_for(self) -> float:
        """Seconds since the other end was last heard (it announces every second)."""
        return time.monotonic() - self._heard

    @property
    def sending(self) -> list[TrackInfo]:
        """The tracks piped out."""
        return [t.info for t in self._out.values()]

    @property
    def publications(self) -> list[Publication]:
        """The publications piped in."""
        return [t.publication for t in self._in.values()]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send_datagram(self, data: bytes) -> bool:
        if self._transport is None or self._transport.is_closing() or self.peer is None:
            return False
        self._transport.sendto(data, self.peer)
        return True

    # -- out ------------------------------------------------------------------------------------

    def _on_publication(self, room: MediaRoom, publication: Publication) -> None:
        if room.name != self.room or publication.id in self._out_by_publication:
            return
        if any(t.publication is publication for t in self._in.values()):
            return  # came through this pipe: never sent back
        ssrc = random.randrange(1, 1 << 32)
        while ssrc in self._out:
            ssrc = random.randrange(1, 1 << 32)
        codec = "opus" if publication.kind == "audio" else room.codec
        info = TrackInfo(ssrc, publication.owner, publication.source, publication.kind, codec)
        track = publication.subscribe()  # every frame: the other end suppresses silence itself
        if not isinstance(track, ForwardedTrack):  # (the decode-and-re-encode baseline mode)
            publication.unsubscribe(track)
            return
        out = _Outgoing(info, publication, track)
        self._out[ssrc] = out
        self._out_by_publication[publication.id] = ssrc
        track.on("ended", lambda: self._ended(ssrc))
        track.attach_sender(lambda frame: self._send_frame(out, frame))
        self._announce()

    def _ended(self, ssrc: int) -> None:
        out = self._out.pop(ssrc, None)
        if out is not None:
            self._out_by_publication.pop(out.publication.id, None)
            self._announce()

    def _send_frame(self, out: _Outgoing, frame: EncodedFrame) -> bool:
        if self._transport is None or self._transport.is_closing() or self.peer is None:
            return False
        packets = packetize(frame, out.info.ssrc, PAYLOAD_TYPES.get(out.info.codec, 96), out.seq)
        out.seq = (out.seq + len(packets)) & 0xFFFF
        for packet in packets:
            self._transport.sendto(packet, self.peer)
            self.bytes_sent += len(packet)
        self.packets_sent += len(packets)
        return True

    def _announce(self) -> None:
        tracks = [
            {"ssrc": t.ssrc, "owner": t.owner, "source": t.source, "kind": t.kind, "codec": t.codec}
            for t in self.sending
        ]
        self._send_datagram(app({"room": self.room, "tracks": tracks}))

    async def _announce_loop(self) -> None:
        while True:
            await asyncio.sleep(ANNOUNCE_INTERVAL)
            self._announce()
            if self._in and time.monotonic() - self._heard > PEER_TIMEOUT:
                logger.warning("pipe %s: nothing heard from %s for %.0f s; its tracks end", self.room, self.peer,
                               PEER_TIMEOUT)
                await self._reconcile({})

    # -- in -------------------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, addr: Address) -> None:
        if addr != self.peer:
            return  # only the other end, as we were told (loopback or a private network)
        if not is_rtcp(data):
            if len(data) >= _RTP.size + _PIPE.size:
                self._on_rtp(data)
            return
        if data[1] == RTCP_APP and data[8:12] == APP_NAME:
            self._on_announce(json.loads(data[12:]))
        elif data[1] == RTCP_PSFB and data[0] & 0x1F == 1 and len(data) >= 12:
            (ssrc,) = struct.unpack_from("!I", data, 8)
            out = self._out.get(ssrc)
            if out is not None:
                self.keyframe_requests_received += 1
                out.track.request_keyframe()

    def _on_announce(self, body: dict[str, Any]) -> None:
        if body.get("room") != self.room:
            return
        self._heard = time.monotonic()
        wanted = {}
        for t in body.get("tracks", []):
            info = TrackInfo(int(t["ssrc"]), str(t["owner"]), str(t["source"]), str(t["kind"]), str(t["codec"]))
            if is_source(info.source) and info.kind in ("audio", "video"):
                wanted[info.ssrc] = info
        if wanted.keys() != self._in.keys() or any(self._in[s].info != i for s, i in wanted.items()):
            self._spawn(self._reconcile(wanted))

    async def _reconcile(self, wanted: dict[int, TrackInfo]) -> None:
        async with self._changes:
            for ssrc in [s for s, t in self._in.items() if wanted.get(s) != t.info]:
                gone = self._in.pop(ssrc)
                if gone.pending is not None:
                    gone.pending.cancel()
                await self.sfu.remove_publication(self.room, gone.publication)
            for ssrc, info in wanted.items():
                if ssrc in self._in or not is_source(info.source):
                    continue
                publication = Publication.piped(info.owner, info.source, info.kind, partial(self._request_keyframe, ssrc))
                self._in[ssrc] = _Incoming(info, publication)
                self.sfu.add_publication(self.room, publication)
                logger.info("pipe %s: %s's %s piped in", self.room, info.owner, info.source)

    def _on_rtp(self, data: bytes) -> None:
        _, mpt, seq, timestamp, ssrc = _RTP.unpack_from(data)
        track = self._in.get(ssrc)
        if track is None:
            return
        flags, level, tid = _PIPE.unpack_from(data, _RTP.size)
        chunk = data[_RTP.size + _PIPE.size:]
        if track.expected is not None and seq != track.expected:
            self.lost_packets += (seq - track.expected) & 0xFFFF
            track.lost = True
            track.parts = None
        track.expected = (seq + 1) & 0xFFFF
        if flags & F_START:
            if track.parts is not None:
                track.lost = True  # the previous frame never ended
            track.parts = [chunk]
            track.timestamp, track.flags, track.level, track.tid = timestamp, flags, level, tid
        elif track.parts is None or timestamp != track.timestamp:
            track.lost = True
            track.parts = None
            return
        else:
            track.parts.append(chunk)
        if not mpt & 0x80:
            return
        parts, track.parts = track.parts, None
        f = track.flags
        frame = EncodedFrame(
            b"".join(parts),
            track.timestamp,
            bool(f & F_KEYFRAME),
            track.info.codec,
            discontinuity=bool(f & F_DISCONTINUITY) or track.lost,
            audio_level=(bool(track.level & 0x80), track.level & 0x7F) if f & F_LEVEL else None,
            temporal_id=track.tid if f & F_TID else None,
        )
        track.lost = False
        track.frames += 1
        self.frames_received += 1
        track.publication.push(frame)

    def _request_keyframe(self, ssrc: int) -> None:
        """From a piped publication (already merged): a PLI to the other end, at most one per
        :data:`KEYFRAME_INTERVAL`; one asked inside the window goes when it ends."""
        track = self._in.get(ssrc)
        if track is None or track.pending is not None:
            return
        wait = track.last_keyframe_request + KEYFRAME_INTERVAL - time.monotonic()
        if wait <= 0:
            self._send_pli(ssrc)
        else:
            track.pending = asyncio.get_running_loop().call_later(wait, self._send_pli, ssrc)

    def _send_pli(self, ssrc: int) -> None:
        track = self._in.get(ssrc)
        if track is None:
            return
        track.pending = None
        track.last_keyframe_request = time.monotonic()
        if self._send_datagram(pli(ssrc)):
            self.keyframe_requests_sent += 1

    # -- lifecycle --------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop piping: the other end hears an empty track list and ends what it piped in; the
        tracks piped in here end too."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for out in list(self._out.values()):
            out.publication.unsubscribe(out.track)  # its "ended" drops it and re-announces
        self._out.clear()
        self._announce()
        await self._reconcile({})
        if self._transport is not None:
            self._transport.close()
            self._transport = None
