"""Encoded-media forwarding: the receive seam into aiortc and the send-side track.

aiortc's :class:`~aiortc.RTCRtpReceiver` reassembles RTP into encoded frames and pushes
``(codec, frame)`` onto a thread queue read by its decoder thread. :class:`ReceiverTap`
replaces that queue with a proxy: every encoded frame goes to the SFU instead, and reaches the
decoder only when someone asked for decoded media (audio taps). Video is never decoded.

On the send side, :class:`ForwardedTrack` hands each frame straight to a
:class:`~media_server.fastsend.FastSender` once aiortc starts the subscriber's sender (see
``fastsend.py`` for why); until then, and wherever that path is unavailable, it yields
``av.Packet`` objects, which aiortc's sender packetizes with ``encoder.pack`` instead of encoding.

This module, ``fastsend.py`` and ``feedback.py`` are the only places that touch aiortc's private names. Other
code goes through the small functions at the end of this module (:func:`depayloaded`,
:func:`media_ssrcs`, :func:`send_pli`, :func:`route_keyframe_requests`), so an aiortc upgrade
that renames an internal breaks here and nowhere else.

Temporal layers (VP8 ``L1T3``): a browser's camera encodes frames in three layers, TID 0 at a
quarter of the frame rate, TID 1 adding a quarter, TID 2 the other half; a frame is only ever
predicted from frames of its own layer or lower ones, so a subscriber given only TIDs ≤ k still
decodes every frame it gets. :func:`vp8_temporal_id` reads the TID from the first packet's
payload descriptor (RFC 7741, through aiortc's public ``VpxPayloadDescriptor``) and
:class:`ForwardedTrack` drops frames above its subscriber's layer (the policy: ``lastn.py``).
The re-packetizer numbers picture ids per subscriber and writes no TID, so the browser sees a
plain stream at a lower frame rate, with no gap.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import operator
import queue
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from .jitter import AssembledFrame, FrameAssembler

logger = logging.getLogger(__name__)

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_TIME_BASE = fractions.Fraction(1, 48000)

#: Frames buffered per subscriber before it is considered too slow.
VIDEO_QUEUE_FRAMES = 90
AUDIO_QUEUE_FRAMES = 50
#: The highest temporal layer id a VP8 descriptor can carry (2 bits): "every layer".
ALL_LAYERS = 3


@dataclass(slots=True)
class EncodedFrame:
    """One reassembled, still-encoded media frame as the publisher sent it."""

    data: bytes
    timestamp: int  # RTP clock, starting at 0 for the publisher's first frame
    keyframe: bool
    codec: str  # lower-case codec name: "vp8", "h264", "opus"
    discontinuity: bool = False  # frames before this one were lost on the way in
    #: audio: the RFC 6464 level the publisher's packet carried, ``(voice_activity, level)``
    #: with level 0..127 meaning 0..-127 dBov (see ``levels.py``); None: no such extension
    audio_level: tuple[bool, int] | None = None
    #: video: the temporal layer (TID) the publisher's encoder put the frame in; None: the
    #: stream has no temporal layers (every frame may be a reference: never thinned)
    temporal_id: int | None = None


def vp8_temporal_id(payload: bytes) -> int | None:
    """The TID in a VP8 RTP payload descriptor (RFC 7741 4.2), None if it carries none."""
    # fast path: no extension byte (X bit clear), or an extension without the T bit
    if not payload or not payload[0] & 0x80 or len(payload) < 2 or not payload[1] & 0x20:
        return None
    try:
        descriptor, _ = VpxPayloadDescriptor.parse(payload)
    except ValueError:
        return None
    return descriptor.tid[0] if descriptor.tid is not None else None


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an encoded frame can be decoded on its own (a subscriber may start here)."""
    if codec == "vp8":
        # RFC 6386 9.1: bit 0 of the frame tag is 0 for key frames, which carry a start code.
        return len(data) >= 6 and (data[0] & 0x01) == 0 and data[3:6] == b"\x9d\x01\x2a"
    if codec == "h264":
        return _h264_has_idr(data)
    return True  # audio: every frame stands alone


def _h264_has_idr(data: bytes) -> bool:
    """Scan an Annex-B access unit for an IDR slice (type 5) or SPS (type 7)."""
    i = 0
    n = len(data)
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= n:
            return False
        nal_type = data[i + 3] & 0x1F
        if nal_type in (5, 7):
            return True
        i += 3


FrameSink = Callable[[EncodedFrame], None]


class ByteMeter:
    """Media bytes sent to one subscriber over all its tracks (the congestion policy compares
    its rate with what the subscriber's browser estimates; see ``congestion.py``)."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


class ReceiverTap:
    """Stands in for ``RTCRtpReceiver``'s decoder queue (the seam into aiortc's receiver).

    aiortc calls ``put((codec, jitter_frame))`` on the event loop for each complete frame and
    ``put(None)`` when the receiver stops; its decoder thread calls ``get()``. We forward every
    frame to ``sink`` and pass it on to the decoder only while ``decode`` is set. The
    receiver's jitter buffer is swapped for a :class:`FrameAssembler`, which releases frames
    as soon as they are complete.
    """

    def __init__(self, receiver: RTCRtpReceiver, sink: FrameSink) -> None:
        attr = "_RTCRtpReceiver__decoder_queue"
        inner = getattr(receiver, attr, None)
        kind = getattr(receiver, "_RTCRtpReceiver__kind", None)
        if not isinstance(inner, queue.Queue) or kind not in ("audio", "video") or not hasattr(
            receiver, "_RTCRtpReceiver__jitter_buffer"
        ):
            raise RuntimeError("unsupported aiortc version: receiver internals changed")
        self._inner: queue.Queue[Any] = inner
        self._sink = sink
        self.decode = False
        self.frames = 0
        self.assembler = FrameAssembler(depayloaded, is_video=kind == "video")
        receiver._RTCRtpReceiver__jitter_buffer = self.assembler  # aiortc private (mypy knows mangled names)
        setattr(receiver, attr, self)

    # called by aiortc on the event loop
    def put(self, item: Any) -> None:
        if item is None:
            self._inner.put(None)  # lets the decoder thread end the remote track
            return
        codec, jitter_frame = item
        name = codec.name.lower()
        frames = [jitter_frame]
        if isinstance(jitter_frame, AssembledFrame):
            # aiortc rebased the first frame's timestamp onto the track's timeline (0 at its first
            # frame); the frames the same packet completed follow it, or subscribers would see
            # them jump to the publisher's raw RTP clock
            for more in jitter_frame.more:
                more.timestamp = jitter_frame.timestamp + ((more.rtp_timestamp - jitter_frame.rtp_timestamp) & 0xFFFFFFFF)
                frames.append(more)
            jitter_frame.more = []
        for f in frames:
            self.frames += 1
            discontinuity = getattr(f, "discontinuity", False)
            level = getattr(f, "audio_level", None)
            tid = vp8_temporal_id(f.head) if name == "vp8" and isinstance(f, AssembledFrame) else None
            try:
                self._sink(EncodedFrame(f.data, f.timestamp, is_keyframe(name, f.data), name, discontinuity, level, tid))
            except Exception:  # a faulty subscriber must not kill the publisher's receiver
                logger.exception("forwarding sink failed")
            if self.decode:
                self._inner.put((codec, f))

    # called by aiortc's decoder thread
    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return self._inner.get(block, timeout)


class ForwardedTrack(MediaStreamTrack):
    """A subscriber's copy of one published track, carrying encoded frames.

    The queue is bounded: a subscriber that falls behind drops video up to the next keyframe
    (and asks for one) and drops the oldest audio, so memory never grows with a slow peer.
    A new subscriber sees nothing until a keyframe. Once a sender is attached
    (:meth:`attach_sender`, see ``fastsend.py``) frames bypass the queue and go out as they
    arrive; a frame the sender refuses (socket buffer full, sender inactive) is dropped, and
    video then waits for the next keyframe the same way.

    ``suppress_silence``: the subscriber is a participant's browser, which gets a publisher's
    audio only while they speak (the publication decides, see ``silence.py``); recorders and
    live streams leave it False and get every frame.

    Last-N video (``lastn.py``): a video track can be paused (:meth:`pause`) without
    renegotiation — frames are dropped, nothing is sent, the browser's track simply gets no
    frames — and resumed (:meth:`resume`): it waits for a keyframe and asks the publisher for
    one at once (PLIs are merged per publication).
    ``publisher``: the participant whose track this is (how the SFU finds what to pause);
    ``source``: which of its tracks (``"camera"``, ``"screen"``, ``"mic"``).

    Temporal layers: :meth:`set_temporal_layer` caps the TIDs forwarded (a thumbnail gets the
    base layer, a quarter of the frames); frames without a TID are always forwarded. Lowering
    the cap takes effect at once (higher layers are never references for lower ones); raising
    it waits for the next base-layer frame, since a TID 2 frame may be predicted from the TID 1
    frame before it, which this subscriber never got.
    """

    def __init__(
        self,
        kind: str,
        request_keyframe: Callable[[], None],
        track_id: str | None = None,
        suppress_silence: bool = False,
        publisher: str | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.publisher = publisher
        self.source = source
        self.suppress_silence = suppress_silence and kind == "audio"
        if track_id is not None:
            self._id = track_id
        self._request_keyframe = request_keyframe
        self._maxlen = VIDEO_QUEUE_FRAMES if kind == "video" else AUDIO_QUEUE_FRAMES
        self._frames: deque[EncodedFrame] = deque()
        self._wakeup = asyncio.Event()
        self._waiting_keyframe = kind == "video"
        self._time_base = VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE
        self._direct: Callable[[EncodedFrame], bool] | None = None
        self._ended = asyncio.Event()
        self.forwarded = 0
        self.dropped = 0
        self._paused = False
        self.paused_frames = 0  # frames not sent while paused (last-N)
        self._layer = ALL_LAYERS  # the highest TID forwarded now
        self._layer_wanted = ALL_LAYERS  # ... and from the next base-layer frame on
        self.thinned_frames = 0  # frames of layers above the cap, not sent
        #: counts the bytes sent (set by the subscriber's peer)
        self.meter: ByteMeter | None = None
        #: the fraction lost (0..1) the subscriber last reported for this track, and when
        #: (``time.monotonic()``); ``feedback.py`` fills it in
        self.reported_loss = 0.0
        self.reported_at = float("-inf")
        if self._waiting_keyframe:
            request_keyframe()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> bool:
        """Stop sending (last-N: this video is not selected); False if already paused."""
        if self._paused or self.kind != "video":
            return False
        self._paused = True
        self._frames.clear()
        return True

    def resume(self) -> bool:
        """Send again from the next keyframe, which is requested now; False if not paused."""
        if not self._paused:
            return False
        self._paused = False
        self._waiting_keyframe = True
        self._request_keyframe()
        return True

    @property
    def temporal_layer(self) -> int:
        """The highest temporal layer this subscriber is sent (:data:`ALL_LAYERS`: every frame)."""
        return self._layer

    def set_temporal_layer(self, layer: int) -> None:
        """Forward frames of temporal layers up to ``layer`` only (frames without one: all)."""
        layer = max(0, min(ALL_LAYERS, layer))
        self._layer_wanted = layer
        if layer < self._layer:
            self._layer = layer

    def push(self, frame: EncodedFrame) -> None:
        """Queue one frame for this subscriber (called by the publication, on the loop)."""
        if self.readyState != "live":
            return
        if self._paused:
            self.paused_frames += 1
            return
        tid = frame.temporal_id
        if tid is not None:
            if tid == 0:
                self._layer = self._layer_wanted
            if tid > self._layer:
                self.thinned_frames += 1
                return
        if self._waiting_keyframe:
            if not frame.keyframe:
                self.dropped += 1
                return
            self._waiting_keyframe = False
        if self._direct is not None:
            self._send_now(frame)
            return
        if len(self._frames) >= self._maxlen:
            if self.kind == "video":
                self.dropped += len(self._frames) + (0 if frame.keyframe else 1)
                self._frames.clear()
                if not frame.keyframe:
                    self._waiting_keyframe = True
                    self._request_keyframe()
                    return
            else:
                self._frames.popleft()
                self.dropped += 1
        self._frames.append(frame)
        self._wakeup.set()

    def _send_now(self, frame: EncodedFrame) -> None:
        assert self._direct is not None
        if self._direct(frame):
            self.forwarded += 1
            if self.meter is not None:
                self.meter.bytes += len(frame.data)
            return
        self.dropped += 1
        if self.kind == "video" and not frame.keyframe and not self._waiting_keyframe:
            # the subscriber's decoder now misses a reference: resume at the next keyframe
            self._waiting_keyframe = True
            self._request_keyframe()

    def attach_sender(self, send: Callable[[EncodedFrame], bool]) -> None:
        """Send frames synchronously through ``send`` from now on (frames queued so far first)."""
        self._direct = send
        while self._frames and self._direct is not None:
            frame = self._frames.popleft()
            if not self._waiting_keyframe or frame.keyframe:
                self._waiting_keyframe = False
                self._send_now(frame)

    def detach_sender(self) -> None:
        self._direct = None

    async def wait_ended(self) -> None:
        """Until :meth:`stop` (the sender's task waits on this while frames go out directly)."""
        await self._ended.wait()

    def request_keyframe(self) -> None:
        """A PLI/FIR from this subscriber's browser: pass it on to the publisher."""
        self._request_keyframe()

    @property
    def queued(self) -> int:
        return len(self._frames)

    async def recv(self) -> av.Packet[Any]:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._wakeup.clear()
            await self._wakeup.wait()
        frame = self._frames.popleft()
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = self._time_base
        self.forwarded += 1
        if self.meter is not None:
            self.meter.bytes += len(frame.data)
        return packet

    def stop(self) -> None:
        super().stop()
        self._direct = None
        self._frames.clear()
        self._wakeup.set()
        self._ended.set()


class KeyframeSource(Protocol):
    """Whatever can produce a keyframe on request: a forwarded track, a pre-encoded test clip."""

    def request_keyframe(self) -> None: ...


def route_keyframe_requests(sender: RTCRtpSender, track: KeyframeSource) -> None:
    """Make the sender's PLI/FIR handling ask ``track`` instead of a local encoder.

    aiortc's sender reacts to PLI/FIR by calling ``_send_keyframe()``, which only flags its
    own encoder; with forwarded (or pre-encoded) packets there is no encoder, so we redirect it.
    """
    sender._send_keyframe = track.request_keyframe  # type: ignore[method-assign]  # aiortc private


#: The depayloaded media bytes of a received RTP packet (codec payload descriptor removed).
#: aiortc's receiver stores them on the packet as the private ``_data`` before handing the
#: packet to its jitter buffer (ours: :class:`~media_server.jitter.FrameAssembler`).
depayloaded: Callable[[RtpPacket], bytes] = operator.attrgetter("_data")


def media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    """The SSRCs a publisher's receiver gets media on, leaving out RTX retransmission streams."""
    rtx: dict[int, int] = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
    return [s.source for s in receiver.getSynchronizationSources() if s.source not in rtx]


def send_pli(receiver: RTCRtpReceiver, ssrc: int) -> Coroutine[Any, Any, None]:
    """Send a Picture Loss Indication for ``ssrc`` to the publisher behind ``receiver``."""
    return receiver._send_rtcp_pli(ssrc)
