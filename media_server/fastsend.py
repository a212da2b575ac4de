"""A lean send path for forwarded media: a frame goes out in one synchronous call.

Why: profiling the hub while it forwards one publisher to 16 subscribers showed most of the
event loop's time in aiortc's per-subscriber ``RTCRtpSender._run_rtp`` task, and about half of
that was Python around the two things that must happen per packet (SRTP ``protect`` and the
``sendto`` system call): one task wake-up per subscriber per frame, an ``av.Packet`` per frame,
``Encoder.pack`` with ``Fraction`` time-base conversion, an ``RtpPacket`` serialized through
the generic header-extension code, the NTP clock via ``datetime``, and four nested coroutines
per packet down to ``transport.sendto``. A forwarded frame is already encoded and its RTP
timestamp is already in the codec clock, so none of that is needed.

The seam (aiortc internals, isolated here): :func:`install` sets ``_run_rtp`` on one sender
*instance*. aiortc's ``RTCRtpSender.send()`` starts that coroutine as its RTP task once DTLS is
connected; ours hands the :class:`~media_server.forwarding.ForwardedTrack` a
:class:`FastSender` and then only waits for the track to end. :class:`FastSender` keeps the
sender's RTCP sender-report counters and the DTLS transport's byte counters, writes the same RTP
header and extensions (mid, abs-send-time) aiortc would, and answers NACKs itself (the sender's
``_retransmit``, with RTX when negotiated) from a history of the packets' bytes.

Why its own history: aiortc keeps an ``RtpPacket`` object (with its header-extension object and
CSRC list) for each of a sender's last 128 packets. A meeting of N has 2·N·(N−1) senders, so at
N = 20 that was ~290,000 objects the garbage collector had to walk — most of the heap — and they
lived just long enough to be promoted to the oldest generation, so full collections kept coming:
they stopped the event loop for hundreds of milliseconds (every forwarded packet late at once).
Bytes are not tracked by the collector, and a NACK (rare) parses them again. If any internal it relies on is missing
(another aiortc version), it falls back to aiortc's own ``_run_rtp`` and logs a warning.

The same sender's RTCP loop (``_run_rtcp``) is replaced too, by :func:`quiet_reports`: aiortc
sends a sender report every ~1 s from every sender, but a meeting's subscriber has a sender per
publisher's track, most of them sending nothing (last-N paused videos, silent speakers' audio)
— N² reports a second about nothing, which profiling a 30-person meeting showed as a cost that
forwarding less did not shrink. A report goes out only when its sender sent since the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import (
    RtcpByePacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    wrap_rtx,
)

if TYPE_CHECKING:
    from .forwarding import EncodedFrame, ForwardedTrack

logger = logging.getLogger(__name__)

#: Seconds between 1900 (NTP epoch) and 1970 (Unix epoch).
NTP_OFFSET = 2208988800
#: Packets kept per sender for NACK retransmissions (as many as aiortc keeps).
RTP_HISTORY_SIZE = 128
#: A subscriber whose socket buffer holds more than this is not keeping up: drop frames.
MAX_WRITE_BUFFER = 512 * 1024

_HEADER = struct.Struct("!BBHII")


def ntp_now() -> int:
    """64-bit NTP time of now (what ``aiortc.clock.current_ntp_time`` returns, without datetime)."""
    return int((time.time() + NTP_OFFSET) * (1 << 32))


def _extension_block(ids: Any, mid: str | None) -> tuple[bytes, bytes] | None:
    """(bytes before, bytes after) the 3-byte abs-send-time value in a one-byte-header block.

    Returns None when the negotiated ids do not fit the one-byte form (aiortc would then use
    the two-byte form; we let it, by not installing).
    """
    elements: list[tuple[int, bytes | None]] = []
    if mid is not None and ids.mid:
        elements.append((ids.mid, mid.encode("utf8")))
    if ids.abs_send_time:
        elements.append((ids.abs_send_time, None))  # filled per frame
    if not elements:
        return b"", b""
    for x_id, value in elements:
        if x_id > 14 or (value is not None and not 1 <= len(value) <= 16):
            return None
    body = b""
    before = b""
    for x_id, value in elements:
        if value is None:
            body += bytes([(x_id << 4) | 2])
            before, body = body, b""
        else:
            body += bytes([(x_id << 4) | (len(value) - 1)]) + value
    length = len(before) + len(body) + (3 if ids.abs_send_time else 0)
    padding = b"\x00" * (-length % 4)
    head = struct.pack("!HH", 0xBEDE, (length + len(padding)) // 4)
    if not ids.abs_send_time:
        return head + body + padding, b""
    return head + before, body + padding


class FastSender:
    """Sends one subscriber's forwarded frames for one aiortc sender, synchronously."""

    def __init__(self, sender: RTCRtpSender, codec: Any) -> None:
        self._sender = sender
        self._codec = codec.name.lower()
        self._payload_type: int = codec.payloadType
        self._ssrc: int = sender._ssrc
        ids = sender._RTCRtpSender__rtp_header_extensions_map._HeaderExtensionsMap__ids  # type: ignore[attr-defined]
        mid = sender._RTCRtpSender__mid  # type: ignore[attr-defined]
        block = _extension_block(ids, mid)
        if block is None:
            raise RuntimeError("header extension ids need the two-byte form")
        self._ext_before, self._ext_after = block
        self._has_ext = bool(self._ext_before or self._ext_after)
        self._abs = bool(ids.abs_send_time)
        #: the last packets sent, unencrypted, by sequence number modulo the size (see the module doc)
        self._history: list[bytes | None] = [None] * RTP_HISTORY_SIZE
        self._extensions_map = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtx_sequence_number  # type: ignore[attr-defined]  # noqa: B018
        self._dtls = sender.transport
        # fail now (aiortc's own path takes over), not per packet, if the internals moved
        for name in ("_tx_srtp", "_state", "_RTCDtlsTransport__tx_bytes", "_RTCDtlsTransport__tx_packets"):
            getattr(self._dtls, name)
        sender._enabled  # noqa: B018
        self._ice = self._dtls.transport._connection
        self._ice._nominated  # noqa: B018
        # as aiortc: start in the lower half, so early losses never make a receiver guess the
        # SRTP rollover counter wrong
        self._seq = random.randint(0, 0x7FFF)
        self._ts_origin = random.getrandbits(32)
        self._picture_id = random.randint(0, (1 << 15) - 1)
        self._h264 = H264Encoder() if self._codec == "h264" else None
        self._relayed: set[asyncio.Future[Any]] = set()
        self.sent_packets = 0
        self.errors = 0

    def _payloads(self, data: bytes) -> list[bytes]:
        if self._codec == "vp8":
            payloads = Vp8Encoder._packetize(data, self._picture_id)
            self._picture_id = (self._picture_id + 1) & 0x7FFF
            return payloads
        if self._h264 is not None:
            return self._h264._packetize(self._h264._split_bitstream(data))
        return [data]  # opus (and any codec sent as one payload per frame)

    def send(self, frame: EncodedFrame) -> bool:
        """Packetize, protect and send one frame now; False if it could not go out."""
        try:
            if not self._sender._enabled:
                return False
            dtls = self._dtls
            pair = self._ice._nominated.get(1)
            if dtls._state is not DtlsState.CONNECTED or pair is None:
                return False
            # typed DatagramTransport by aioice, but a TURN-relayed pair's is its TurnTransport
            # (no write buffer of its own to ask), and unset until the socket is up
            transport: Any = getattr(pair.protocol, "transport", None)
            buffered = getattr(transport, "get_write_buffer_size", lambda: 0)
            if transport is None or buffered() > MAX_WRITE_BUFFER:
                return False
            return self._send(frame, dtls, pair, transport)
        except Exception:  # one subscriber's failure must not stop the others
            self.errors += 1
            if self.errors == 1:
                logger.exception("fast send failed (ssrc %s)", self._ssrc)
            return False

    def _send(self, frame: EncodedFrame, dtls: Any, pair: Any, transport: Any) -> bool:
        payloads = self._payloads(frame.data)
        if not payloads:
            return False
        ntp = ntp_now()
        if self._has_ext:
            ext = self._ext_before + (((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big") if self._abs else b"") \
                + self._ext_after
            first = 0x90
        else:
            ext = b""
            first = 0x80
        timestamp = (self._ts_origin + frame.timestamp) & 0xFFFFFFFF
        protect = dtls._tx_srtp.protect
        addr = pair.remote_addr
        direct = type(pair.protocol).__name__ == "StunProtocol"  # TURN wraps data: use its coroutine
        sendto = transport.sendto
        pack = _HEADER.pack
        history = self._history
        pt, ssrc, seq = self._payload_type, self._ssrc, self._seq
        last = len(payloads) - 1
        octets = sent_bytes = 0
        for i, payload in enumerate(payloads):
            marker = 1 if i == last else 0
            plain = pack(first, (marker << 7) | pt, seq, timestamp, ssrc) + ext + payload
            history[seq % RTP_HISTORY_SIZE] = plain
            data = protect(plain)
            if direct:
                sendto(data, addr)
            else:
                relayed = asyncio.ensure_future(pair.protocol.send_data(data, addr))
                self._relayed.add(relayed)  # (the loop keeps only weak references to tasks)
                relayed.add_done_callback(self._relayed.discard)
            octets += len(payload)
            sent_bytes += len(data)
            seq = (seq + 1) & 0xFFFF
        self._seq = seq
        n = len(payloads)
        self.sent_packets += n
        # RTCP sender reports and getStats() read these
        sender = self._sender
        sender._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = timestamp  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count += octets  # type: ignore[attr-defined]
        sender._RTCRtpSender__packet_count += n  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__tx_bytes += sent_bytes
        dtls._RTCDtlsTransport__tx_packets += n
        return True

    async def retransmit(self, sequence_number: int) -> None:
        """Send a packet the subscriber reported lost (NACK) again, over RTX when negotiated —
        what aiortc's ``_retransmit`` does, from this sender's history."""
        plain = self._history[sequence_number % RTP_HISTORY_SIZE]
        if plain is None or _HEADER.unpack_from(plain)[2] != sequence_number:
            return  # older than the history: overwritten
        sender = self._sender
        rtx_payload_type: int | None = sender._RTCRtpSender__rtx_payload_type  # type: ignore[attr-defined]
        if rtx_payload_type is not None:
            rtx_seq: int = sender._RTCRtpSender__rtx_sequence_number  # type: ignore[attr-defined]
            packet = wrap_rtx(RtpPacket.parse(plain, self._extensions_map), payload_type=rtx_payload_type,
                              sequence_number=rtx_seq, ssrc=sender._rtx_ssrc)
            sender._RTCRtpSender__rtx_sequence_number = (rtx_seq + 1) & 0xFFFF  # type: ignore[attr-defined]
            plain = packet.serialize(self._extensions_map)
        await self._dtls._send_rtp(plain)


_REQUIRED = (
    "_RTCRtpSender__rtp_started", "_RTCRtpSender__rtp_exited", "_RTCRtpSender__rtx_payload_type",
    "_RTCRtpSender__rtx_sequence_number",
    "_RTCRtpSender__rtp_header_extensions_map", "_RTCRtpSender__mid", "_RTCRtpSender__track",
    "_RTCRtpSender__ntp_timestamp", "_RTCRtpSender__octet_count", "_RTCRtpSender__packet_count",
    "_RTCRtpSender__rtp_timestamp", "_RTCRtpSender__rtcp_started", "_RTCRtpSender__lsr",
    "_RTCRtpSender__lsr_time", "_RTCRtpSender__cname", "_RTCRtpSender__rtcp_exited",
)


def quiet_reports(sender: RTCRtpSender) -> Callable[[], Awaitable[None]]:
    """aiortc's RTCP loop for ``sender`` (a sender report and the CNAME every 0.5–1.5 s, a BYE
    when it stops), except that a sender which sent no packet since its last report sends none:
    there is nothing to report, and nothing to synchronise."""

    async def run_rtcp() -> None:
        sender._RTCRtpSender__rtcp_started.set()  # type: ignore[attr-defined]
        reported = 0  # packets sent by the last report
        try:
            with contextlib.suppress(asyncio.CancelledError):  # stop() cancels us: then the BYE
                while True:
                    await asyncio.sleep(0.5 + random.random())
                    count: int = sender._RTCRtpSender__packet_count  # type: ignore[attr-defined]
                    if count == reported:
                        continue
                    reported = count
                    ntp: int = sender._RTCRtpSender__ntp_timestamp  # type: ignore[attr-defined]
                    info = RtcpSenderInfo(
                        ntp_timestamp=ntp,
                        rtp_timestamp=sender._RTCRtpSender__rtp_timestamp,  # type: ignore[attr-defined]
                        packet_count=count & 0xFFFFFFFF,
                        octet_count=sender._RTCRtpSender__octet_count & 0xFFFFFFFF,  # type: ignore[attr-defined]
                    )
                    packets: list[Any] = [RtcpSrPacket(ssrc=sender._ssrc, sender_info=info)]
                    # what aiortc keeps to read the round trip from the receiver's next report
                    sender._RTCRtpSender__lsr = (ntp >> 16) & 0xFFFFFFFF  # type: ignore[attr-defined]
                    sender._RTCRtpSender__lsr_time = time.time()  # type: ignore[attr-defined]
                    cname: str | None = sender._RTCRtpSender__cname  # type: ignore[attr-defined]
                    if cname is not None:
                        packets.append(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=sender._ssrc, items=[(1, cname.encode())])]))
                    await sender._send_rtcp(packets)
        except Exception:  # no more reports, but stop() must not wait forever
            logger.exception("sender reports failed (ssrc %s)", sender._ssrc)
        try:
            await sender._send_rtcp([RtcpByePacket(sources=[sender._ssrc])])
        finally:
            sender._RTCRtpSender__rtcp_exited.set()  # type: ignore[attr-defined]  # stop() waits for it

    return run_rtcp


#: aiortc's bitrate estimator of a video receiver (REMB), with its thousand 1-ms bucket objects
_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"


def rest_receiver(receiver: RTCRtpReceiver) -> None:
    """A subscription's transceiver is send-only, but aiortc gives it a receiver too, and a video
    receiver a REMB bitrate estimator holding 1,000 one-millisecond buckets — each an object. In a
    meeting of N that is N·(N−1) estimators that never see a packet: at N = 20, 380,000 objects,
    60 % of the hub's heap, which every full garbage collection walked (seconds on a busy machine,
    the event loop stopped). Drop it; aiortc skips estimation for a receiver without one."""
    if hasattr(receiver, _ESTIMATOR):
        setattr(receiver, _ESTIMATOR, None)


def install(sender: RTCRtpSender, track: ForwardedTrack) -> bool:
    """Make ``sender`` send ``track``'s frames through a :class:`FastSender`.

    Must be called before aiortc starts the sender (i.e. before negotiation completes).
    Returns False (and leaves aiortc's path in place) if this aiortc lacks the internals used.
    """
    if not all(hasattr(sender, name) for name in _REQUIRED):
        logger.warning("aiortc internals changed: forwarded media uses aiortc's own send path")
        return False
    stock: Callable[[Any], Awaitable[None]] = sender._run_rtp  # bound method: aiortc's loop

    async def run_rtp(codec: Any) -> None:
        started: asyncio.Event = sender._RTCRtpSender__rtp_started  # type: ignore[attr-defined]
        exited: asyncio.Event = sender._RTCRtpSender__rtp_exited  # type: ignore[attr-defined]
        if sender.track is not track:
            await stock(codec)
            return
        try:
            fast = FastSender(sender, codec)
        except (AttributeError, RuntimeError) as exc:
            logger.warning("fast send path unavailable (%s): using aiortc's", exc)
            await stock(codec)
            return
        started.set()
        sender._retransmit = fast.retransmit  # type: ignore[method-assign]  # NACKs: our history
        track.attach_sender(fast.send)
        try:
            await track.wait_ended()
        except asyncio.CancelledError:
            pass
        finally:
            track.detach_sender()
            track.stop()  # as aiortc's _run_rtp does when it exits
            sender._RTCRtpSender__track = None  # type: ignore[attr-defined]
            exited.set()

    sender._run_rtp = run_rtp  # type: ignore[method-assign]
    sender._run_rtcp = quiet_reports(sender)  # type: ignore[method-assign, assignment]
    return True

