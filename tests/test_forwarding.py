"""media_server/forwarding.py: keyframe detection, the subscriber track, the receiver seam."""

from __future__ import annotations

import asyncio
import fractions
import queue
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media_server.forwarding import (
    AUDIO_QUEUE_FRAMES,
    VIDEO_QUEUE_FRAMES,
    EncodedFrame,
    ForwardedTrack,
    ReceiverTap,
    is_keyframe,
)
from media_server.jitter import AssembledFrame
from testkit.rtc_client import encode_test_video

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


@pytest.fixture(scope="module")
def vp8_packets() -> list[av.Packet]:
    """One second of real VP8 at 30 fps with a keyframe every 10 frames."""
    return encode_test_video(seconds=1, gop=10)


class KeyframeRequests:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def key(ts: int = 0) -> EncodedFrame:
    return EncodedFrame(b"\x00key" + ts.to_bytes(4, "big"), ts, True, "vp8")


def delta(ts: int = 0) -> EncodedFrame:
    return EncodedFrame(b"\x01delta" + ts.to_bytes(4, "big"), ts, False, "vp8")


def opus(ts: int) -> EncodedFrame:
    return EncodedFrame(b"opus" + ts.to_bytes(4, "big"), ts, True, "opus")


async def drain(track: ForwardedTrack) -> list[av.Packet]:
    packets = []
    while track.queued:
        packets.append(await track.recv())
    return packets


# -- is_keyframe ------------------------------------------------------------------------------


def test_vp8_keyframes_match_the_encoder(vp8_packets: list[av.Packet]) -> None:
    flags = [is_keyframe("vp8", bytes(p)) for p in vp8_packets]
    assert flags[0] is True
    assert flags[10] is True  # gop=10: the 11th frame is a keyframe again
    assert flags[1:10] == [False] * 9
    assert flags == [p.is_keyframe for p in vp8_packets]


def test_vp8_empty_frame_is_not_a_keyframe() -> None:
    assert is_keyframe("vp8", b"") is False


def test_vp8_keyframe_needs_its_start_code(vp8_packets: list[av.Packet]) -> None:
    keyframe = bytes(vp8_packets[0])
    assert is_keyframe("vp8", keyframe[:6]) is True  # frame tag + start code
    assert is_keyframe("vp8", keyframe[:5]) is False  # truncated
    assert is_keyframe("vp8", keyframe[:3] + b"\x00\x00\x00" + keyframe[6:]) is False


SPS = b"\x67\x42\xc0\x1f\xda\x01\x40\x16\xe8"
PPS = b"\x68\xce\x3c\x80"
IDR = b"\x65\x88\x84\x00\x33\xff"
NON_IDR = b"\x41\x9a\x02\x04\x10"
AUD = b"\x09\xf0"
SEI = b"\x06\x05\x10\xb0"


@pytest.mark.parametrize(
    ("access_unit", "expected"),
    [
        (b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS + b"\x00\x00\x01" + IDR, True),
        (b"\x00\x00\x00\x01" + IDR, True),
        (b"\x00\x00\x01" + IDR, True),
        (b"\x00\x00\x00\x01" + SPS, True),
        (b"\x00\x00\x00\x01" + AUD + b"\x00\x00\x00\x01" + SEI + b"\x00\x00\x01" + IDR, True),
        (b"\x00\x00\x00\x01" + NON_IDR, False),
        (b"\x00\x00\x01" + NON_IDR, False),
        (b"\x00\x00\x00\x01" + AUD + b"\x00\x00\x00\x01" + NON_IDR, False),
        (b"\x00\x00\x00\x01" + PPS, False),
        (b"", False),
        (b"\x00\x00\x01", False),  # a start code with nothing after it
        (IDR, False),  # no start code: not Annex-B
    ],
)
def test_h264_annex_b_keyframes(access_unit: bytes, expected: bool) -> None:
    assert is_keyframe("h264", access_unit) is expected


def test_audio_frames_always_stand_alone() -> None:
    assert is_keyframe("opus", b"\x01\x02") is True


# -- ForwardedTrack: video ----------------------------------------------------------------------


async def test_new_video_subscriber_requests_a_keyframe_and_waits_for_one() -> None:
    requests = KeyframeRequests()
    track = ForwardedTrack("video", requests)
    assert requests.count == 1

    for ts in range(3):
        track.push(delta(ts))
    assert track.queued == 0 and track.dropped == 3

    track.push(key(3000))
    track.push(delta(6000))
    packets = await drain(track)
    assert [p.pts for p in packets] == [3000, 6000]
    assert requests.count == 1  # no new request once the keyframe came


async def test_recv_returns_the_publishers_bytes_with_video_clock(
    vp8_packets: list[av.Packet],
) -> None:
    track = ForwardedTrack("video", KeyframeRequests())
    frames = [
        EncodedFrame(bytes(p), int(p.pts), is_keyframe("vp8", bytes(p)), "vp8")
        for p in vp8_packets
    ]
    for frame in frames:
        track.push(frame)
    packets = await drain(track)
    assert [bytes(p) for p in packets] == [f.data for f in frames]
    assert [p.pts for p in packets] == [f.timestamp for f in frames]
    assert all(p.time_base == fractions.Fraction(1, 90000) for p in packets)
    assert track.forwarded == len(frames)


async def test_recv_waits_for_the_next_frame() -> None:
    track = ForwardedTrack("video", KeyframeRequests())
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    assert not pending.done()
    track.push(key(90))
    packet = await asyncio.wait_for(pending, 5)
    assert packet.pts == 90


async def test_slow_video_subscriber_skips_to_the_next_keyframe() -> None:
    requests = KeyframeRequests()
    track = ForwardedTrack("video", requests)
    track.push(key(0))
    for ts in range(1, VIDEO_QUEUE_FRAMES):
        track.push(delta(ts))
    assert track.queued == VIDEO_QUEUE_FRAMES and track.dropped == 0

    track.push(delta(VIDEO_QUEUE_FRAMES))  # one too many: the backlog is useless now
    assert track.queued == 0
    assert track.dropped == VIDEO_QUEUE_FRAMES + 1
    assert requests.count == 2  # creation + overflow

    track.push(delta(1000))  # undecodable without the missing frames
    assert track.queued == 0
    track.push(key(2000))
    track.push(delta(2001))
    assert [p.pts for p in await drain(track)] == [2000, 2001]


async def test_keyframe_arriving_on_a_full_queue_is_kept() -> None:
    requests = KeyframeRequests()
    track = ForwardedTrack("video", requests)
    track.push(key(0))
    for ts in range(1, VIDEO_QUEUE_FRAMES):
        track.push(delta(ts))

    track.push(key(5000))
    assert track.queued == 1
    assert requests.count == 1  # no need to ask: we have a keyframe
    assert track.dropped == VIDEO_QUEUE_FRAMES  # the backlog, not the keyframe we kept
    assert [p.pts for p in await drain(track)] == [5000]


async def test_unread_video_subscriber_memory_is_bounded() -> None:
    track = ForwardedTrack("video", KeyframeRequests())
    peak = 0
    for ts in range(2000):
        track.push(key(ts) if ts % 30 == 0 else delta(ts))
        peak = max(peak, track.queued)
    assert peak == VIDEO_QUEUE_FRAMES


# -- ForwardedTrack: audio ----------------------------------------------------------------------


async def test_audio_subscriber_starts_at_once_with_audio_clock() -> None:
    requests = KeyframeRequests()
    track = ForwardedTrack("audio", requests)
    track.push(opus(960))
    packet = await track.recv()
    assert bytes(packet) == opus(960).data
    assert packet.pts == 960
    assert packet.time_base == fractions.Fraction(1, 48000)
    assert requests.count == 0


async def test_slow_audio_subscriber_loses_the_oldest_frames() -> None:
    track = ForwardedTrack("audio", KeyframeRequests())
    total = AUDIO_QUEUE_FRAMES + 10
    for i in range(total):
        track.push(opus(i * 960))
        assert track.queued <= AUDIO_QUEUE_FRAMES
    assert track.dropped == 10
    assert [p.pts for p in await drain(track)] == [i * 960 for i in range(10, total)]


# -- ForwardedTrack: stop ----------------------------------------------------------------------


async def test_stop_ends_a_waiting_recv() -> None:
    track = ForwardedTrack("video", KeyframeRequests())
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(pending, 5)


async def test_stop_discards_queued_frames_and_ignores_new_ones() -> None:
    track = ForwardedTrack("audio", KeyframeRequests())
    track.push(opus(0))
    track.stop()
    track.push(opus(960))
    assert track.queued == 0
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_keyframe_requests_from_the_subscriber_reach_the_publisher() -> None:
    requests = KeyframeRequests()
    track = ForwardedTrack("video", requests, track_id="sub-1")
    track.request_keyframe()
    assert requests.count == 2
    assert track.id == "sub-1"


# -- ReceiverTap --------------------------------------------------------------------------------


@pytest.fixture
async def video_receiver() -> AsyncIterator[RTCRtpReceiver]:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    yield transceiver.receiver
    await pc.close()


def decoder_queue(receiver: RTCRtpReceiver) -> Any:
    return receiver._RTCRtpReceiver__decoder_queue


def drain_queue(q: queue.Queue[Any]) -> list[Any]:
    items = []
    while not q.empty():
        items.append(q.get_nowait())
    return items


async def test_receiver_tap_forwards_every_frame_without_decoding(
    video_receiver: RTCRtpReceiver, vp8_packets: list[av.Packet]
) -> None:
    inner = decoder_queue(video_receiver)
    received: list[EncodedFrame] = []
    tap = ReceiverTap(video_receiver, received.append)
    assert decoder_queue(video_receiver) is tap  # aiortc now puts frames into the tap

    for p in vp8_packets[:12]:
        tap.put((VP8, JitterFrame(bytes(p), int(p.pts))))

    assert [f.data for f in received] == [bytes(p) for p in vp8_packets[:12]]
    assert [f.timestamp for f in received] == [int(p.pts) for p in vp8_packets[:12]]
    assert [f.keyframe for f in received] == [i in (0, 10) for i in range(12)]
    assert {f.codec for f in received} == {"vp8"}
    assert tap.frames == 12
    assert inner.empty()  # video is never decoded


async def test_receiver_tap_takes_over_frame_assembly(video_receiver: RTCRtpReceiver) -> None:
    tap = ReceiverTap(video_receiver, lambda frame: None)
    assert video_receiver._RTCRtpReceiver__jitter_buffer is tap.assembler


async def test_receiver_tap_forwards_each_frame_one_packet_completed(
    video_receiver: RTCRtpReceiver, vp8_packets: list[av.Packet]
) -> None:
    inner = decoder_queue(video_receiver)
    received: list[EncodedFrame] = []
    tap = ReceiverTap(video_receiver, received.append)
    tap.decode = True
    # a retransmission completed three frames at once, after frames before them were lost
    first = AssembledFrame(bytes(vp8_packets[10]), 30000, discontinuity=True)
    first.more = [
        AssembledFrame(bytes(vp8_packets[11]), 33000),
        AssembledFrame(bytes(vp8_packets[12]), 36000),
    ]
    tap.put((VP8, first))

    assert [(f.data, f.timestamp, f.keyframe, f.discontinuity) for f in received] == [
        (bytes(vp8_packets[10]), 30000, True, True),
        (bytes(vp8_packets[11]), 33000, False, False),
        (bytes(vp8_packets[12]), 36000, False, False),
    ]
    decoded = drain_queue(inner)  # aiortc's decoder takes one frame per item
    assert [(codec, frame.timestamp) for codec, frame in decoded] == [
        (VP8, 30000), (VP8, 33000), (VP8, 36000),
    ]
    assert tap.frames == 3


async def test_receiver_tap_feeds_the_decoder_only_when_asked(
    video_receiver: RTCRtpReceiver, vp8_packets: list[av.Packet]
) -> None:
    inner = decoder_queue(video_receiver)
    received: list[EncodedFrame] = []
    tap = ReceiverTap(video_receiver, received.append)
    first = (VP8, JitterFrame(bytes(vp8_packets[0]), 0))
    second = (VP8, JitterFrame(bytes(vp8_packets[1]), 3000))

    tap.put(first)
    tap.decode = True
    tap.put(second)

    assert drain_queue(inner) == [second]
    assert len(received) == 2


async def test_receiver_tap_always_passes_the_end_marker(video_receiver: RTCRtpReceiver) -> None:
    inner = decoder_queue(video_receiver)
    received: list[EncodedFrame] = []
    tap = ReceiverTap(video_receiver, received.append)
    tap.put(None)  # decode is off, yet aiortc's decoder thread must learn the track ended
    assert drain_queue(inner) == [None]
    assert received == []


async def test_receiver_tap_get_reads_the_decoder_queue(video_receiver: RTCRtpReceiver) -> None:
    tap = ReceiverTap(video_receiver, lambda frame: None)
    tap.decode = True
    item = (VP8, JitterFrame(b"\x00abc", 7))
    tap.put(item)
    assert tap.get(timeout=1) == item


async def test_faulty_sink_does_not_break_the_receiver(
    video_receiver: RTCRtpReceiver, vp8_packets: list[av.Packet]
) -> None:
    def broken_sink(frame: EncodedFrame) -> None:
        raise RuntimeError("subscriber bug")

    inner = decoder_queue(video_receiver)
    tap = ReceiverTap(video_receiver, broken_sink)
    tap.decode = True
    item = (VP8, JitterFrame(bytes(vp8_packets[0]), 0))
    tap.put(item)
    assert drain_queue(inner) == [item]


async def test_receiver_tap_passes_each_audio_frames_level_on() -> None:
    pc = RTCPeerConnection()
    receiver = pc.addTransceiver("audio", direction="recvonly").receiver
    received: list[EncodedFrame] = []
    tap = ReceiverTap(receiver, received.append)
    tap.put((OPUS, AssembledFrame(b"talk", 960, audio_level=(True, 30))))
    tap.put((OPUS, AssembledFrame(b"hush", 1920, audio_level=(False, 127))))
    tap.put((OPUS, JitterFrame(b"none", 2880)))  # a publisher that sends no levels
    assert [(f.data, f.audio_level) for f in received] == [
        (b"talk", (True, 30)), (b"hush", (False, 127)), (b"none", None),
    ]
    await pc.close()


def test_only_audio_subscribers_can_have_silence_suppressed() -> None:
    assert ForwardedTrack("audio", KeyframeRequests(), suppress_silence=True).suppress_silence
    assert not ForwardedTrack("audio", KeyframeRequests()).suppress_silence  # recorders, live streams
    assert not ForwardedTrack("video", KeyframeRequests(), suppress_silence=True).suppress_silence


def test_receiver_tap_refuses_an_object_without_decoder_queue() -> None:
    with pytest.raises(RuntimeError):
        ReceiverTap(object(), lambda frame: None)  # type: ignore[arg-type]


async def test_frames_one_late_packet_completes_keep_the_tracks_timeline(vp8_packets: list[av.Packet]) -> None:
    """A retransmitted packet that completes two frames at once: both reach subscribers on the
    timeline aiortc gives the track (0 at its first frame), not the second on the publisher's
    raw RTP clock, which would make every browser's video jump."""
    from aiortc.codecs.vpx import Vp8Encoder
    from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
    from aiortc.rtcrtpreceiver import RemoteStreamTrack
    from aiortc.rtp import RtpPacket

    pc = RTCPeerConnection()
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    receiver._track = RemoteStreamTrack("video")  # as RTCPeerConnection does on the remote offer
    received: list[EncodedFrame] = []
    ReceiverTap(receiver, received.append)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
    try:
        origin, seq = 3_000_000_000, 500  # a browser's random clock start
        frames: list[list[RtpPacket]] = []
        for i, encoded in enumerate(vp8_packets[:3]):
            payloads, _ = Vp8Encoder().pack(encoded)
            packets = [RtpPacket(payload_type=VP8.payloadType, sequence_number=seq + j, timestamp=origin + 3000 * i,
                                 ssrc=1234, payload=p) for j, p in enumerate(payloads)]
            packets[-1].marker = 1
            seq += len(payloads)
            frames.append(packets)
        # frame 1's first packet is lost, frame 2 arrives whole, then the retransmission
        order = [*frames[0], *frames[1][1:], *frames[2], frames[1][0]]
        for packet in order:
            parsed = RtpPacket.parse(packet.serialize())
            await receiver._handle_rtp_packet(parsed, arrival_time_ms=0)

        assert [f.timestamp for f in received] == [0, 3000, 6000]
    finally:
        await receiver.stop()
        await pc.close()


# -- last-N: pause and resume ------------------------------------------------------------------


async def test_a_paused_video_track_sends_nothing_and_resumes_at_a_requested_keyframe() -> None:
    requests = KeyframeRequests()
    track = ForwardedTrack("video", requests, publisher="ana")
    assert track.publisher == "ana" and not track.paused
    sent: list[EncodedFrame] = []
    track.attach_sender(lambda f: sent.append(f) or True)
    track.push(key(0))
    track.push(delta(1))
    assert track.pause() is True and track.pause() is False
    for ts in range(2, 6):
        track.push(delta(ts))
    track.push(key(6))  # even a keyframe is not sent while paused
    assert [f.timestamp for f in sent] == [0, 1]
    assert track.paused_frames == 5
    before = requests.count
    assert track.resume() is True and track.resume() is False
    assert requests.count == before + 1  # asked for at once, not waited for
    track.push(delta(7))  # no reference: not sent
    track.push(key(8))
    track.push(delta(9))
    assert [f.timestamp for f in sent] == [0, 1, 8, 9]
    assert sent[2].keyframe


async def test_pausing_drops_what_was_queued() -> None:
    track = ForwardedTrack("video", KeyframeRequests())
    track.push(key(0))
    track.push(delta(1))
    assert track.queued == 2
    track.pause()
    assert track.queued == 0
    track.push(delta(2))
    assert track.queued == 0
    track.resume()
    track.push(delta(3))
    track.push(key(4))
    assert [p.pts for p in await drain(track)] == [4]


def test_audio_is_never_paused() -> None:
    track = ForwardedTrack("audio", KeyframeRequests())
    assert track.pause() is False and not track.paused
    track.push(opus(0))
    assert track.queued == 1
