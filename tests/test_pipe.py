"""The plain-RTP pipe between two hub processes (``media_server/pipe.py``): a room that spans.

Real hubs in the test's loop (signalling, SFU, aiortc peers): a publisher on hub A, the room
piped to hub B, subscribers on B — and the other way, and on through A to a third hub.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import av
import pytest

from hubtest import RunningHub
from media_server import SFU, EncodedFrame, ForwardedTrack
from media_server.pipe import APP_NAME, Pipe, app, is_rtcp, packetize, pli
from sigclient import until
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=30)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)


def frames(client: HubClient, publisher: HubClient, kind: str) -> list[bytes]:
    assert publisher.id is not None
    return [f.data for r in client.received_from(publisher.id, kind) for f in r.frames]


async def _no_offer(participant: str, offer: dict[str, Any]) -> None:
    return None


@pytest.fixture
async def relay_sfu() -> AsyncIterator[SFU]:
    sfu = SFU(_no_offer)
    yield sfu
    await sfu.close()


class FakeOwner:
    """A bare UDP socket speaking the pipe's wire format, as an owner would."""

    def __init__(self, to: tuple[str, int]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()
        self.to = to
        self.seq: dict[int, int] = {}  # per SSRC, as RTP numbers them

    def announce(self, tracks: list[dict[str, Any]], room: str = "span") -> None:
        self.sock.sendto(app({"room": room, "tracks": tracks}), self.to)

    def send(self, frame: EncodedFrame, ssrc: int, skip: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        seq = self.seq.get(ssrc, 100)
        packets = packetize(frame, ssrc, 96, seq)
        self.seq[ssrc] = seq + len(packets)
        for i, packet in enumerate(packets):
            if i not in skip:
                self.sock.sendto(packet, self.to)

    def received(self) -> list[bytes]:
        got = []
        while True:
            try:
                got.append(self.sock.recv(2048))
            except BlockingIOError:
                return got


def collect(sink: list[EncodedFrame]) -> Callable[[EncodedFrame], bool]:
    def send(frame: EncodedFrame) -> bool:
        sink.append(frame)
        return True

    return send


CAMERA = {"ssrc": 1234, "owner": "ana", "source": "camera", "kind": "video", "codec": "vp8"}
MIC = {"ssrc": 99, "owner": "ana", "source": "mic", "kind": "audio", "codec": "opus"}


async def test_relay_reassembles_fragmented_frames_and_marks_a_loss_as_discontinuity(relay_sfu: SFU) -> None:
    receiver = Pipe(relay_sfu, "span")
    owner = FakeOwner(await receiver.open())
    receiver.connect(owner.address)
    try:
        owner.announce([CAMERA, MIC])
        await until(lambda: len(receiver.publications) == 2)
        room = relay_sfu.rooms["span"]
        camera = next(p for p in room.publications.values() if p.kind == "video")
        mic = next(p for p in room.publications.values() if p.kind == "audio")
        assert (camera.owner, camera.source, camera.is_piped) == ("ana", "camera", True)
        got: list[EncodedFrame] = []
        heard: list[EncodedFrame] = []
        for publication, sink in ((camera, got), (mic, heard)):
            track = publication.subscribe()
            assert isinstance(track, ForwardedTrack)
            track.attach_sender(collect(sink))
        key = EncodedFrame(b"\x10\x02\x00\x9d\x01\x2a" + bytes(range(256)) * 20, 3000, True, "vp8")
        delta = EncodedFrame(b"\x11" + b"d" * 3000, 6000, False, "vp8", temporal_id=2)
        owner.send(key, 1234)
        owner.send(delta, 1234)
        owner.send(EncodedFrame(b"opus", 960, True, "opus", audio_level=(True, 30)), 99)
        await until(lambda: len(got) == 2 and len(heard) == 1)
        assert [(f.data, f.timestamp, f.keyframe, f.temporal_id) for f in got] == [
            (key.data, 3000, True, None), (delta.data, 6000, False, 2)
        ]
        assert heard[0].audio_level == (True, 30) and heard[0].data == b"opus"
        # a packet lost in the middle of a frame: the frame is dropped, video waits for a
        # keyframe (the relay's publication asks the owner for one over the pipe)
        owner.received()
        owner.send(EncodedFrame(b"\x11" + b"x" * 3000, 9000, False, "vp8"), 1234, skip={1})
        owner.send(EncodedFrame(b"\x11" + b"y" * 100, 12000, False, "vp8"), 1234)
        await until(lambda: any(p == pli(1234) for p in owner.received()))
        owner.send(EncodedFrame(key.data, 15000, True, "vp8"), 1234)
        await until(lambda: len(got) == 3)
        assert got[2].timestamp == 15000 and got[2].keyframe
        assert receiver.lost_packets == 1
        # the owner stops piping the camera: the relay's publication ends
        owner.announce([MIC])
        await until(lambda: len(relay_sfu.rooms["span"].publications) == 1)
    finally:
        owner.sock.close()
        await receiver.close()
    assert "span" not in relay_sfu.rooms  # no peer, no track: the room is gone


async def test_a_pipe_hears_only_the_other_end_it_was_told(relay_sfu: SFU) -> None:
    receiver = Pipe(relay_sfu, "span")
    address = await receiver.open()
    stranger = FakeOwner(address)
    owner = FakeOwner(address)
    receiver.connect(owner.address)
    try:
        stranger.announce([CAMERA])
        owner.announce([MIC], room="another-room")
        owner.announce([])  # a valid, empty announcement: nothing to add
        await asyncio.sleep(0.2)  # (datagrams on loopback: long enough to be handled)
        assert receiver.publications == [] and "span" not in relay_sfu.rooms
        owner.announce([CAMERA])
        await until(lambda: len(receiver.publications) == 1)
        # media for the announced track from anyone but the other end is dropped
        stranger.send(EncodedFrame(b"x", 0, True, "vp8"), 1234)
        owner.send(EncodedFrame(b"y", 0, True, "vp8"), 1234)
        await until(lambda: receiver.frames_received == 1)
        await asyncio.sleep(0.1)
        assert receiver.frames_received == 1
    finally:
        stranger.sock.close()
        owner.sock.close()
        await receiver.close()


def test_control_packets_are_rtcp_and_media_is_not() -> None:
    assert is_rtcp(pli(7)) and is_rtcp(app({"a": 1}))
    assert app({"a": 1})[8:12] == APP_NAME and len(app({"a": 1})) % 4 == 0
    marker = packetize(EncodedFrame(b"x" * 10, 0, True, "opus"), 5, 111, 0)[0]
    assert not is_rtcp(marker)


async def _spanned(a: RunningHub, b: RunningHub, room: str) -> tuple[Pipe, Pipe]:
    """The pipe of ``room`` between hubs ``a`` and ``b``: (a's end, b's end)."""
    a_end, b_end = Pipe(a.server.sfu, room), Pipe(b.server.sfu, room)
    a_address, b_address = await a_end.open(), await b_end.open()
    a_end.connect(b_address)
    b_end.connect(a_address)
    return a_end, b_end


async def test_subscribers_on_the_relay_receive_the_owners_publisher_byte_identical(
    make_hub: Callable[..., Awaitable[RunningHub]], video: list[av.Packet], audio: list[av.Packet]
) -> None:
    a, b = await make_hub(), await make_hub()
    pub = HubClient(a.url, "span", "Ana", video=video, audio=audio)
    local = HubClient(a.url, "span", "Local")
    subs = [HubClient(b.url, "span", f"Relayed{i}") for i in range(2)]
    sender, receiver = await _spanned(a, b, "span")
    try:
        await pub.join()
        await local.join()
        for sub in subs:
            await sub.join()
        await until(lambda: all(len(frames(s, pub, "video")) >= 90 for s in (*subs, local)), timeout=30)
        await until(lambda: all(len(frames(s, pub, "audio")) >= 100 for s in subs))
        sent_video = pub.tracks["camera"].sent_payloads  # type: ignore[attr-defined]
        sent_audio = set(pub.tracks["mic"].sent_payloads)  # type: ignore[attr-defined]
        index = {data: i for i, data in enumerate(sent_video)}
        for sub in subs:
            got = frames(sub, pub, "video")
            assert all(g in index for g in got), "a relayed frame differs from what the publisher sent"
            steps = [(index[y] - index[x]) % len(sent_video) for x, y in itertools.pairwise(got)]
            assert all(s == 1 for s in steps), "frames lost or reordered through the pipe"
            assert sub.received_from(pub.id, "video")[0].frames[0].keyframe  # type: ignore[arg-type]
            assert all(g in sent_audio for g in frames(sub, pub, "audio"))
        # the relay never had the publisher as a peer, and decodes nothing but what it would of a
        # local publisher: the voice of one that sends no audio levels, for the active speaker
        relay_room = b.server.sfu.rooms["span"]
        assert pub.id not in relay_room.peers
        assert all(p.is_piped for p in relay_room.publications.values())
        assert all(not p.decoding or (p.levels is not None and p.levels.sending is False)
                   for p in relay_room.publications.values())
        assert {t.source for t in sender.sending} == {"camera", "mic"}
        # the publisher leaves: the relay's subscribers lose its tracks
        await pub.close()
        await until(lambda: not b.server.sfu.rooms["span"].publications)
    finally:
        for c in (pub, local, *subs):
            await c.close()
        await sender.close()
        await receiver.close()


async def test_a_late_subscriber_on_the_relay_gets_a_keyframe_asked_over_the_pipe(
    make_hub: Callable[..., Awaitable[RunningHub]],
) -> None:
    # one keyframe per 4 s loop: the late joiner starts only if its request crosses the pipe
    sparse = encode_test_video(seconds=4, gop=1000)
    a, b = await make_hub(), await make_hub()
    pub = HubClient(a.url, "late", "Ana", video=sparse)
    early = HubClient(b.url, "late", "Early")
    late = HubClient(b.url, "late", "Late")
    sender, receiver = await _spanned(a, b, "late")
    try:
        await pub.join()
        await early.join()
        await until(lambda: len(frames(early, pub, "video")) >= 45, timeout=20)
        camera = pub.tracks["camera"]
        before = camera.keyframe_requests  # type: ignore[attr-defined]
        piped_before = sender.keyframe_requests_received
        await late.join()
        await until(lambda: sender.keyframe_requests_received > piped_before)
        await until(lambda: camera.keyframe_requests > before)  # type: ignore[attr-defined]
        await until(lambda: len(frames(late, pub, "video")) >= 10, timeout=30)
        first = late.received_from(pub.id, "video")[0].frames[0]  # type: ignore[arg-type]
        assert first.keyframe and first.data == camera.sent_payloads[0]  # type: ignore[attr-defined]
    finally:
        for c in (pub, early, late):
            await c.close()
        await sender.close()
        await receiver.close()


async def test_keyframe_requests_cross_the_pipe_at_most_once_a_second(relay_sfu: SFU) -> None:
    receiver = Pipe(relay_sfu, "span")
    owner = FakeOwner(await receiver.open())
    receiver.connect(owner.address)
    try:
        owner.announce([CAMERA])
        await until(lambda: len(receiver.publications) == 1)
        camera = receiver.publications[0]
        owner.send(EncodedFrame(b"k", 0, True, "vp8"), 1234)
        await until(lambda: receiver.frames_received == 1)
        owner.received()
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < 1.5:  # a storm of keyframe requests on the relay
            camera.request_keyframe()
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        plis = [p for p in owner.received() if p == pli(1234)]
        assert 1 <= len(plis) <= 2
    finally:
        owner.sock.close()
        await receiver.close()


async def test_a_publisher_on_a_relay_reaches_the_owner_and_through_it_another_relay(
    make_hub: Callable[..., Awaitable[RunningHub]], video: list[av.Packet], audio: list[av.Packet]
) -> None:
    owner, relay1, relay2 = await make_hub(), await make_hub(), await make_hub()
    pub = HubClient(relay1.url, "star", "Ana", video=video, audio=audio)
    on_owner = HubClient(owner.url, "star", "Bo")
    on_relay2 = HubClient(relay2.url, "star", "Cy")
    pipes = [*await _spanned(owner, relay1, "star"), *await _spanned(owner, relay2, "star")]
    try:
        for c in (pub, on_owner, on_relay2):
            await c.join()
        await until(lambda: all(len(frames(s, pub, "video")) >= 60 for s in (on_owner, on_relay2)), timeout=30)
        await until(lambda: all(len(frames(s, pub, "audio")) >= 50 for s in (on_owner, on_relay2)))
        sent_video = set(pub.tracks["camera"].sent_payloads)  # type: ignore[attr-defined]
        sent_audio = set(pub.tracks["mic"].sent_payloads)  # type: ignore[attr-defined]
        for sub in (on_owner, on_relay2):
            assert all(g in sent_video for g in frames(sub, pub, "video"))
            assert all(g in sent_audio for g in frames(sub, pub, "audio"))
        # two hops (relay 1 → owner → relay 2), and never back to where it came from
        assert all(p.is_piped for p in relay2.server.sfu.rooms["star"].publications.values())
        assert not any(p.is_piped for p in relay1.server.sfu.rooms["star"].publications.values())
    finally:
        for c in (pub, on_owner, on_relay2):
            await c.close()
        for pipe in pipes:
            await pipe.close()
