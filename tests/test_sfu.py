"""The SFU with real aiortc participants: forwarding is byte-exact, keyframes are requested."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import av
import pytest

from aiortc.codecs.h264 import H264Encoder

from media_server import MediaRoom, Publication
from media_server.client import HubClient, encode_test_audio, encode_test_video
from hubtest import RunningHub as Hub


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=30)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def frames(client: HubClient, publisher: HubClient, kind: str) -> list[bytes]:
    assert publisher.id is not None
    received = client.received_from(publisher.id, kind)
    return [f.data for r in received for f in r.frames]


async def test_two_subscribers_receive_the_publishers_frames_byte_identical(
    hub: Hub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    pub = HubClient(hub.url, "bytes", "Ana", video=video, audio=audio)
    subs = [HubClient(hub.url, "bytes", f"Sub{i}") for i in range(2)]
    try:
        for c in (pub, *subs):
            await c.join()
        await until(lambda: all(len(frames(s, pub, "video")) >= 90 for s in subs))
        await until(lambda: all(len(frames(s, pub, "audio")) >= 100 for s in subs))
        sent_video = pub.tracks["camera"].sent_payloads  # type: ignore[attr-defined]
        sent_audio = set(pub.tracks["mic"].sent_payloads)  # type: ignore[attr-defined]
        index = {data: i for i, data in enumerate(sent_video)}
        for sub in subs:
            got = frames(sub, pub, "video")
            # every frame is exactly one the publisher encoded: nothing was transcoded
            assert all(g in index for g in got)
            # in the publisher's order (the clip loops, so order is cyclic)
            positions = [index[g] for g in got]
            steps = [(b - a) % len(sent_video) for a, b in zip(positions, positions[1:])]
            assert all(s == 1 for s in steps), "frames lost or reordered on loopback"
            assert sub.received_from(pub.id, "video")[0].frames[0].keyframe  # type: ignore[arg-type]
            assert all(g in sent_audio for g in frames(sub, pub, "audio"))
        # the server never decoded video
        room = hub.server.sfu.rooms["bytes"]
        for publication in room.publications.values():
            if publication.kind == "video":
                assert publication._receiver_tap is not None
                assert publication._receiver_tap.decode is False
    finally:
        for c in (pub, *subs):
            await c.close()


async def test_late_subscriber_requests_a_keyframe_and_starts_on_one(
    hub: Hub, audio: list[av.Packet]
) -> None:
    # one keyframe per 4 s loop: a late joiner must ask, and must wait for it
    sparse = encode_test_video(seconds=4, gop=1000)
    pub = HubClient(hub.url, "late", "Ana", video=sparse)
    early = HubClient(hub.url, "late", "Early")
    late = HubClient(hub.url, "late", "Late")
    try:
        await pub.join()
        await early.join()
        await until(lambda: len(frames(early, pub, "video")) >= 45)
        requests_before = pub.tracks["camera"].keyframe_requests  # type: ignore[attr-defined]
        await late.join()
        await until(lambda: pub.tracks["camera"].keyframe_requests > requests_before)  # type: ignore[attr-defined]
        await until(lambda: len(frames(late, pub, "video")) >= 10, timeout=30)
        first = late.received_from(pub.id, "video")[0].frames[0]  # type: ignore[arg-type]
        assert first.keyframe
        assert first.data == pub.tracks["camera"].sent_payloads[0]  # type: ignore[attr-defined]
    finally:
        for c in (pub, early, late):
            await c.close()


async def test_subscriber_pli_reaches_publisher_throttled(hub: Hub, video: list[av.Packet]) -> None:
    pub = HubClient(hub.url, "pli", "Ana", video=video)
    sub = HubClient(hub.url, "pli", "Bo")
    try:
        await pub.join()
        await sub.join()
        await until(lambda: len(frames(sub, pub, "video")) >= 30)
        camera = pub.tracks["camera"]
        before = camera.keyframe_requests  # type: ignore[attr-defined]
        transceiver = next(t for t in sub.pc.getTransceivers() if t.kind == "video")
        ssrc = transceiver.receiver.getSynchronizationSources()[0].source
        for _ in range(20):  # a burst of picture-loss reports from the browser
            await transceiver.receiver._send_rtcp_pli(ssrc)
        await until(lambda: camera.keyframe_requests > before)  # type: ignore[attr-defined]
        await asyncio.sleep(1.0)
        # merged into at most a few PLIs to the publisher, not twenty
        assert camera.keyframe_requests - before <= 3  # type: ignore[attr-defined]
    finally:
        await pub.close()
        await sub.close()


async def test_publisher_leaving_removes_its_media_everywhere(
    hub: Hub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    pub = HubClient(hub.url, "leave", "Ana", video=video, audio=audio)
    sub = HubClient(hub.url, "leave", "Bo")
    try:
        await pub.join()
        await sub.join()
        await until(lambda: len(sub.active_slots()) == 2)
        await until(lambda: len(frames(sub, pub, "video")) > 0)
        await pub.close()
        await until(lambda: len(sub.active_slots()) == 0)
        room = hub.server.sfu.rooms["leave"]
        assert room.publications == {}
        assert list(room.peers) == [sub.id]
    finally:
        await sub.close()
    await until(lambda: hub.server.sfu.rooms == {})


async def test_audio_tap_gives_decoded_pcm_once_per_publisher(
    hub: Hub, audio: list[av.Packet]
) -> None:
    taps: list[asyncio.Queue[av.AudioFrame | None]] = []

    def hook(room: MediaRoom, publication: Publication) -> None:
        if publication.audio is not None:
            taps.append(publication.audio.subscribe())

    hub.server.sfu.publication_hooks.append(hook)
    pub = HubClient(hub.url, "tap", "Ana", audio=audio)
    listeners = [HubClient(hub.url, "tap", f"L{i}") for i in range(3)]
    try:
        await pub.join()
        for listener in listeners:
            await listener.join()
        await until(lambda: len(taps) == 1)
        frame = await asyncio.wait_for(taps[0].get(), 10)
        assert frame is not None
        assert frame.sample_rate == 48000
        level = max(abs(int(x)) for x in frame.to_ndarray().ravel())
        assert level > 1000  # the 440 Hz tone, not silence
        publication = next(iter(hub.server.sfu.rooms["tap"].publications.values()))
        # one decoder for the publisher: the tap (captions) and the speaker detector share it
        assert publication.audio is not None and publication.audio.consumers == 2
    finally:
        for c in (pub, *listeners):
            await c.close()


async def test_screen_share_is_a_second_video_publication(
    hub: Hub, video: list[av.Packet]
) -> None:
    pub = HubClient(hub.url, "screen", "Ana", video=video)
    sub = HubClient(hub.url, "screen", "Bo")
    try:
        await pub.join()
        await sub.join()
        await until(lambda: len(sub.active_slots()) == 1)
        pub.tracks["screen"] = type(pub.tracks["camera"])("video", video, 90000)  # type: ignore[call-arg]
        await pub.sio.emit("publish", {"source": "screen"})
        await until(lambda: sorted(s["source"] for s in sub.active_slots().values()) == ["camera", "screen"])
        await until(lambda: any(r.source == "screen" and r.frames for r in sub.received.values()))
        assert any(e == "participant-updated" and d["screen"] for e, d in sub.events)
        await pub.sio.emit("unpublish", {"source": "screen"})
        await until(lambda: [s["source"] for s in sub.active_slots().values()] == ["camera"])
    finally:
        await pub.close()
        await sub.close()


async def test_h264_room_forwards_the_publishers_access_units_unchanged(make_hub) -> None:
    hub = await make_hub(sfu_options={"codec": "h264"})
    h264 = encode_test_video(seconds=2, gop=15, codec_name="h264")
    pub = HubClient(hub.url, "h264", "Ana", video=h264)
    sub = HubClient(hub.url, "h264", "Bo")
    try:
        await pub.join()
        await sub.join()
        joined = next(d for e, d in sub.events if e == "joined")
        assert joined["codec"] == "h264"
        await until(lambda: len(frames(sub, pub, "video")) >= 40)
        got = frames(sub, pub, "video")
        sent = pub.tracks["camera"].sent_payloads  # type: ignore[attr-defined]
        # start codes may be rewritten in RTP packing; the NAL units themselves are untouched
        def nals(data: bytes) -> list[bytes]:
            return list(H264Encoder._split_bitstream(data))

        sent_nals = {tuple(nals(p)) for p in sent}
        assert all(tuple(nals(g)) in sent_nals for g in got)
        assert sub.received_from(pub.id, "video")[0].frames[0].keyframe  # type: ignore[arg-type]
    finally:
        await pub.close()
        await sub.close()
