"""VP8 temporal layers on the hub: the TID read from the payload descriptor, the frames a
subscriber is given at a capped layer (still decodable), and the testkit's layered sender.

(The policy, which layer each tile gets, is in ``test_lastn.py``; the hub end to end in
``test_temporal_layers_hub.py``.)"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media_server.forwarding import ALL_LAYERS, EncodedFrame, ForwardedTrack, ReceiverTap, vp8_temporal_id
from media_server.jitter import FrameAssembler
from testkit.layers import L1T3_PATTERN, LayeredVp8Packer, layers_of
from testkit.rtc_client import encode_test_video

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
GOP = 40


@pytest.fixture(scope="module")
def layered() -> list[av.Packet]:
    """Two seconds of VP8 in three temporal layers (L1T3), a keyframe every 40 frames."""
    return encode_test_video(seconds=2, gop=GOP, temporal_layers=True)


def frames_of(packets: list[av.Packet]) -> list[EncodedFrame]:
    layers = layers_of(packets) or [None] * len(packets)
    return [
        EncodedFrame(bytes(p), int(p.pts), p.is_keyframe, "vp8", temporal_id=tid)
        for p, tid in zip(packets, layers, strict=True)
    ]


class Playing:
    """What the packer asks: the TID of the frame being sent (a PreEncodedTrack's ``layer``)."""

    layer: int | None = None


def pack_all(packets: list[av.Packet]) -> list[list[bytes]]:
    """Each packet's RTP payloads as a layered camera sends them."""
    source = Playing()
    packer = LayeredVp8Packer(source)
    out = []
    for packet, tid in zip(packets, layers_of(packets) or [], strict=True):
        source.layer = tid
        out.append(packer.pack(packet)[0])
    return out


def decode(datas: list[bytes]) -> list[np.ndarray]:
    """Decode in order; raises if the decoder finds the stream broken."""
    codec = av.CodecContext.create("vp8", "r")
    out = []
    for data in datas:
        out.extend(f.to_ndarray(format="gray").astype(int) for f in codec.decode(av.Packet(data)))
    return out


# -- reading the TID ------------------------------------------------------------------------------


@pytest.mark.parametrize("picture_id", [5, 300])  # the one- and two-byte picture id forms
@pytest.mark.parametrize("tid", [0, 1, 2, 3])
def test_the_tid_is_read_from_the_descriptor(tid: int, picture_id: int) -> None:
    descriptor = VpxPayloadDescriptor(1, 0, picture_id=picture_id, tl0picidx=7, tid=(tid, 1), keyidx=3)
    assert vp8_temporal_id(bytes(descriptor) + b"\x10\x02\x00") == tid


def test_a_descriptor_without_a_tid_has_none() -> None:
    # what aiortc's encoder (and a browser without temporal layers) sends: a picture id only
    for payload in Vp8Encoder._packetize(b"\x10\x02\x00" * 10, 1234):
        assert vp8_temporal_id(payload) is None
    assert vp8_temporal_id(bytes(VpxPayloadDescriptor(1, 0)) + b"\x10") is None
    assert vp8_temporal_id(b"") is None


def test_a_truncated_descriptor_has_no_tid() -> None:
    full = bytes(VpxPayloadDescriptor(1, 0, picture_id=300, tl0picidx=7, tid=(2, 0)))
    assert vp8_temporal_id(full[:3]) is None  # X, I, L, T set, but the bytes stop in the picture id


def test_the_layered_packer_writes_what_a_browser_sends(layered: list[av.Packet]) -> None:
    descriptors = []
    for payloads, tid in zip(pack_all(layered[:9]), L1T3_PATTERN * 3, strict=False):
        descriptors.append(VpxPayloadDescriptor.parse(payloads[0])[0])
        assert all(vp8_temporal_id(p) == tid for p in payloads)
    assert [d.tid[0] for d in descriptors if d.tid] == [L1T3_PATTERN[i % 4] for i in range(9)]
    ids = [d.picture_id for d in descriptors]
    assert all((b - a) % (1 << 15) == 1 for a, b in itertools.pairwise(ids))
    # TL0PICIDX counts base-layer frames: it moves on at each TID 0 frame only
    tl0 = [d.tl0picidx for d in descriptors]
    assert [tl0[i] - tl0[0] for i in range(9)] == [0, 0, 0, 0, 1, 1, 1, 1, 2]


@pytest.fixture
async def video_receiver() -> AsyncIterator[RTCRtpReceiver]:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    yield transceiver.receiver
    await pc.close()


async def test_the_receiver_tap_gives_each_frame_its_tid(
    video_receiver: RTCRtpReceiver, layered: list[av.Packet]
) -> None:
    """From RTP packets (several per frame, the descriptor on each) to the frames the SFU gets."""
    received: list[EncodedFrame] = []
    tap = ReceiverTap(video_receiver, received.append)
    seq = 0
    for packet, payloads in zip(layered[:8], pack_all(layered[:8]), strict=True):
        timestamp = int(packet.pts)
        for i, payload in enumerate(payloads):
            rtp = RtpPacket(payload_type=96, marker=int(i == len(payloads) - 1), sequence_number=seq,
                            timestamp=timestamp, payload=payload)
            rtp._data = VpxPayloadDescriptor.parse(payload)[1]  # as aiortc's receiver depayloads
            seq += 1
            _, frame = tap.assembler.add(rtp)
            if frame is not None:
                tap.put((VP8, frame))
    assert [f.data for f in received] == [bytes(p) for p in layered[:8]]
    assert [f.temporal_id for f in received] == [0, 2, 1, 2, 0, 2, 1, 2]


def test_audio_and_unlayered_frames_have_no_tid() -> None:
    assembler = FrameAssembler(lambda p: p.payload, is_video=False)
    _, frame = assembler.add(RtpPacket(payload_type=111, sequence_number=1, timestamp=960, payload=b"\xfc\xff"))
    assert frame is not None and frame.head == b""


# -- a capped subscriber ----------------------------------------------------------------------------


def subscriber(layer: int) -> tuple[ForwardedTrack, list[EncodedFrame]]:
    sent: list[EncodedFrame] = []
    track = ForwardedTrack("video", lambda: None, publisher="ana", source="camera")
    track.set_temporal_layer(layer)
    track.attach_sender(lambda frame: sent.append(frame) or True)
    return track, sent


@pytest.mark.parametrize(("layer", "share"), [(0, 4), (1, 2), (ALL_LAYERS, 1)])
def test_a_capped_subscriber_gets_its_share_of_frames_and_decodes_them(
    layered: list[av.Packet], layer: int, share: int
) -> None:
    frames = frames_of(layered)
    track, sent = subscriber(layer)
    for frame in frames:
        track.push(frame)
    assert len(sent) == len(frames) // share
    assert track.thinned_frames == len(frames) - len(frames) // share
    # every frame it got decodes to the same picture as in the full stream
    full = decode([f.data for f in frames])
    index = {f.data: i for i, f in enumerate(frames)}
    thinned = decode([f.data for f in sent])
    assert len(thinned) == len(sent)
    assert max(float(np.abs(full[index[f.data]] - img).mean()) for f, img in zip(sent, thinned, strict=True)) < 0.5


def test_dropping_the_base_layer_instead_would_corrupt_the_picture(layered: list[av.Packet]) -> None:
    """The check above can fail: keep TID 2 frames and drop the base layer (not a keyframe)."""
    frames = frames_of(layered)
    kept = [f for f in frames if f.keyframe or f.temporal_id != 0]
    full = decode([f.data for f in frames])
    index = {f.data: i for i, f in enumerate(frames)}
    try:
        wrong = decode([f.data for f in kept])
    except av.error.InvalidDataError:
        return  # the decoder noticed
    assert max(float(np.abs(full[index[f.data]] - img).mean()) for f, img in zip(kept, wrong, strict=False)) > 5


def test_frames_without_a_tid_are_never_thinned() -> None:
    frames = frames_of(encode_test_video(seconds=0.5, gop=10))
    assert {f.temporal_id for f in frames} == {None}
    track, sent = subscriber(0)
    for frame in frames:
        track.push(frame)
    assert len(sent) == len(frames) and track.thinned_frames == 0


def test_a_cap_lowered_applies_at_once_and_raised_waits_for_a_base_frame(layered: list[av.Packet]) -> None:
    frames = frames_of(layered)
    track, sent = subscriber(ALL_LAYERS)
    for frame in frames[:6]:  # TIDs 0 2 1 2 0 2
        track.push(frame)
    track.set_temporal_layer(0)
    assert track.temporal_layer == 0
    for frame in frames[6:10]:  # 1 2 0 2: only the base frame goes
        track.push(frame)
    assert [f.temporal_id for f in sent] == [0, 2, 1, 2, 0, 2, 0]
    before = len(sent)
    track.set_temporal_layer(ALL_LAYERS)  # right after frame 9 (TID 2)
    assert track.temporal_layer == 0
    for frame in frames[10:17]:  # 1 2 | 0 2 1 2 0: frame 11 may refer to 10, never sent
        track.push(frame)
    assert [f.temporal_id for f in sent[before:]] == [0, 2, 1, 2, 0]
    assert track.temporal_layer == ALL_LAYERS
    # what the subscriber got across both switches decodes to the full stream's pictures
    full = decode([f.data for f in frames[:17]])
    got = decode([f.data for f in sent])
    index = {f.data: i for i, f in enumerate(frames)}
    assert max(float(np.abs(full[index[f.data]] - img).mean()) for f, img in zip(sent, got, strict=True)) < 0.5
