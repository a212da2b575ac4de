"""VP8 temporal layers in the Python participant: encode ``L1T3`` and say each frame's layer.

Why: a browser asked for ``scalabilityMode: 'L1T3'`` encodes its camera in three temporal
layers and writes each frame's layer (TID) in the RTP payload descriptor; the hub forwards
thumbnails the base layer only (``media_server/lastn.py``). The tests and ``bench/meeting.py``
publish pre-encoded clips, so they need both halves: a clip encoded with libvpx's temporal
layering (:data:`L1T3_OPTIONS`, error-resilient so a frame never depends on the entropy
state of a dropped one) and a packer that writes TID and TL0PICIDX the way Chrome does.

A layered clip is an :class:`EncodedClip`: the packets plus each one's TID (not in
``av.Packet.opaque``: PyAV keys that by ``id()`` of the value, so every packet tagged with the
same small int shares one entry, dropped when any of them is freed). aiortc's sender packs a
pre-encoded packet with its encoder's ``pack`` right after the track's ``recv`` returned it, so
:class:`LayeredVp8Packer` reads the TID of the frame the track just played
(:func:`send_temporal_layers` installs it: aiortc private name, the sender's ``__encoder``,
created lazily on the first frame).
"""

from __future__ import annotations

from typing import Any, Protocol, SupportsIndex, overload

import av
from aiortc import RTCRtpSender
from aiortc.codecs.vpx import PACKET_MAX, Vp8Encoder, VpxPayloadDescriptor
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase

#: libvpx's 3-layer pattern (ffmpeg ``ts_layering_mode=3``): frame i is in layer PATTERN[i % 4].
L1T3_PATTERN = (0, 2, 1, 2)


def l1t3_options(bit_rate: int) -> dict[str, str]:
    """ffmpeg libvpx options for an ``L1T3`` encoding at ``bit_rate`` (bit/s, all layers)."""
    kbps = max(1, bit_rate // 1000)
    rates = ",".join(str(kbps * share // 100) for share in (60, 80, 100))  # cumulative, as WebRTC's split
    return {
        "ts-parameters": f"ts_number_layers=3:ts_target_bitrate={rates}:ts_rate_decimator=4,2,1:"
                         "ts_periodicity=4:ts_layer_id=0,2,1,2:ts_layering_mode=3",
        "error-resilient": "default",
    }


class EncodedClip(list[av.Packet]):
    """Encoded packets; for a clip in temporal layers, :attr:`layers` holds each one's TID."""

    def __init__(self, packets: list[av.Packet], layers: list[int] | None = None) -> None:
        super().__init__(packets)
        if layers is not None and len(layers) != len(packets):
            raise ValueError("one TID per packet")
        self.layers = layers

    @overload
    def __getitem__(self, index: SupportsIndex) -> av.Packet: ...

    @overload
    def __getitem__(self, index: slice) -> EncodedClip: ...

    def __getitem__(self, index: SupportsIndex | slice) -> av.Packet | EncodedClip:
        """A slice of a clip is a clip (with its packets' TIDs)."""
        if isinstance(index, slice):
            layers = self.layers[index] if self.layers is not None else None
            return EncodedClip(list.__getitem__(self, index), layers)
        return list.__getitem__(self, index)


def l1t3_layers(packets: list[av.Packet], fps: int, gop: int) -> list[int]:
    """Each packet's TID in a libvpx ``L1T3`` encoding: frame n is in PATTERN[n % 4] (from its
    pts in 1/90000, so a frame the encoder dropped does not shift the rest). libvpx restarts
    nothing at keyframes: the pattern lines up with them only if the GOP is a multiple of 4."""
    if gop % len(L1T3_PATTERN):
        raise ValueError(f"an L1T3 clip needs a GOP that is a multiple of {len(L1T3_PATTERN)}")
    return [L1T3_PATTERN[round(int(p.pts) * fps / 90000) % len(L1T3_PATTERN)] for p in packets]


def layers_of(packets: list[av.Packet]) -> list[int] | None:
    """The TIDs of a layered :class:`EncodedClip`; None for anything else."""
    return packets.layers if isinstance(packets, EncodedClip) else None


class LayeredSource(Protocol):
    """A track that knows the temporal layer of the frame its ``recv`` returned last."""

    @property
    def layer(self) -> int | None: ...


class LayeredVp8Packer(Vp8Encoder):
    """Packs pre-encoded VP8 with a full payload descriptor: picture id, TL0PICIDX, TID and
    the layer-sync bit (RFC 7741), as a browser sending ``L1T3`` does; the TID is that of the
    frame ``source`` played last. Frames without one are packed as aiortc does (picture id only)."""

    def __init__(self, source: LayeredSource) -> None:
        super().__init__()
        self._source = source
        self._tl0picidx = 0
        self._last_tid = 0

    def pack(self, packet: av.Packet) -> tuple[list[bytes], int]:
        tid = self._source.layer
        timestamp = convert_timebase(packet.pts, packet.time_base, VIDEO_TIME_BASE)
        if tid is None:
            return super().pack(packet)
        if tid == 0:
            self._tl0picidx = (self._tl0picidx + 1) & 0xFF
        # a TID 1 frame, and the TID 2 frame right after the base one, refer to the base only
        sync = 1 if tid > 0 and (tid == 1 or self._last_tid == 0) else 0
        self._last_tid = tid
        descriptor = VpxPayloadDescriptor(1, 0, picture_id=self.picture_id, tl0picidx=self._tl0picidx,
                                          tid=(tid, sync))
        self.picture_id = (self.picture_id + 1) % (1 << 15)
        data = bytes(packet)
        payloads = []
        pos = 0
        while pos < len(data):
            head = bytes(descriptor)
            size = min(len(data) - pos, PACKET_MAX - len(head))
            payloads.append(head + data[pos:pos + size])
            descriptor.partition_start = 0
            pos += size
        return payloads, timestamp


def send_temporal_layers(sender: RTCRtpSender, source: LayeredSource) -> None:
    """Make ``sender`` write the TID of ``source``'s frames (before it sends the first one)."""
    attr = "_RTCRtpSender__encoder"
    if not hasattr(sender, attr):
        raise RuntimeError("unsupported aiortc version: the sender's encoder moved")
    current: Any = getattr(sender, attr)
    if current is None:
        setattr(sender, attr, LayeredVp8Packer(source))
