"""The SFU with real aiortc participants: forwarding is byte-exact, keyframes are requested."""

from __future__ import annotations

import asyncio
import fractions
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import av
import numpy as np
import pytest
from aiortc import AudioStreamTrack
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.stats import RTCInboundRtpStreamStats

from hubtest import RunningHub as Hub
from media_server import SFU, ForwardedTrack, MediaRoom, Publication
from media_server.peer import Peer
from media_server.publication import Source
from media_server.silence import HANGOVER, PREROLL_FRAMES
from sigclient import until
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=30)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)


HANGOVER_FRAMES = HANGOVER // 960


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
            steps = [(b - a) % len(sent_video) for a, b in itertools.pairwise(positions)]
            assert all(s == 1 for s in steps), "frames lost or reordered on loopback"
            assert sub.received_from(pub.id, "video")[0].frames[0].keyframe  # type: ignore[arg-type]
            assert all(g in sent_audio for g in frames(sub, pub, "audio"))
        # the server never decoded video
        room = hub.server.sfu.rooms["bytes"]
        for publication in room.publications.values():
            if publication.kind == "video":
                assert publication.decoding is False
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

    pub = HubClient(hub.url, "tap", "Ana", audio=audio)
    listeners = [HubClient(hub.url, "tap", f"L{i}") for i in range(3)]
    try:
        await pub.join()
        for listener in listeners:
            await listener.join()
        sfu = hub.server.sfu
        await until(lambda: (room := sfu.room("tap")) is not None and bool(room.publications))
        # a feature started mid-meeting (like captions switched on late) still gets the mic
        unwatch = sfu.watch(hook)
        assert len(taps) == 1
        unwatch()
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


class Microphone(AudioStreamTrack):
    """A participant's microphone: silence, and a tone while asked to speak, in real time.

    aiortc's sender encodes it and, as a browser does, puts each frame's level (RFC 6464) in
    its packets: the hub sees who speaks without decoding anything.
    """

    def __init__(self) -> None:
        super().__init__()
        self.produced = 0
        self.talked = 0  # tone frames produced
        self._talk = 0
        self._t0 = 0.0

    def say(self, frames: int) -> None:
        self._talk = frames

    async def recv(self) -> av.AudioFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self.produced == 0:
            self._t0 = time.monotonic()
        else:
            await asyncio.sleep(self._t0 + self.produced * 0.02 - time.monotonic())
        pcm = np.zeros(960, np.int16)
        if self._talk > 0:
            self._talk -= 1
            self.talked += 1
            pcm = (0.3 * 32767 * np.sin(2 * np.pi * 440 * (np.arange(960) + self.produced * 960) / 48000)).astype(
                np.int16
            )
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.produced * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self.produced += 1
        return frame


async def test_browsers_get_a_publishers_audio_only_while_they_speak(hub: Hub) -> None:
    mic = Microphone()
    sub = HubClient(hub.url, "quiet", "Bo")
    pub = HubClient(hub.url, "quiet", "Ana")
    pub.tracks["mic"] = mic  # an ordinary aiortc audio track, encoded by aiortc's sender
    sfu = hub.server.sfu
    try:
        await sub.join()
        await pub.join()
        await until(lambda: (room := sfu.room("quiet")) is not None and bool(room.publications))
        room = sfu.room("quiet")
        assert room is not None
        publication = next(iter(room.publications.values()))
        assert sub.id is not None
        peer = sfu.peer(sub.id)
        assert peer is not None
        [to_sub] = [t for t in peer.subscribed_tracks() if isinstance(t, ForwardedTrack)]

        def sent_to_sub() -> int:
            return to_sub.forwarded + to_sub.queued

        # Ana's microphone is on but she says nothing: Bo gets none of it
        await until(lambda: publication.frames >= 100)
        assert publication.levels is not None and publication.levels.sending is True
        assert sent_to_sub() == 0
        assert sfu.stats()["audio_frames_suppressed"] >= 90

        async def speak(frames: int) -> int:
            """Ana says something, then is silent; what Bo was sent for it."""
            before = sent_to_sub()
            mic.say(frames)
            await until(lambda: mic.talked >= frames and mic._talk == 0)
            end = mic.produced
            await until(lambda: publication.frames >= end + HANGOVER_FRAMES + 30)
            spurt = sent_to_sub() - before
            await until(lambda: publication.frames >= end + HANGOVER_FRAMES + 60)
            assert sent_to_sub() - before == spurt  # silent since: nothing more
            return spurt

        first = await speak(25)
        second = await speak(25)
        for spurt in (first, second):
            # the words, the 60 ms before them and the second after them; not the long silence
            assert 25 <= spurt <= 25 + PREROLL_FRAMES + HANGOVER_FRAMES + 2  # (+2: encoder delay)
        assert publication.frames - first - second >= 200  # what was not sent

        # Bo's browser sees two talk spurts and silence between them, as with DTX: timestamps jump
        # over the silence, sequence numbers do not (nothing lost)
        await until(lambda: len(frames(sub, pub, "audio")) == first + second)
        [received] = sub.received_from(pub.id, "audio")  # type: ignore[arg-type]
        steps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(received.frames)]
        assert [i for i, step in enumerate(steps) if step != 960] == [first - 1]
        assert steps[first - 1] > 50 * 960  # (more than a second of silence not sent)
        stats = await sub.pc.getStats()
        inbound = [s for s in stats.values() if isinstance(s, RTCInboundRtpStreamStats) and s.kind == "audio"]
        assert [s.packetsLost for s in inbound] == [0]

        # she is the active speaker, and nobody's audio was decoded to find out
        await until(lambda: sfu.active_speaker("quiet") == pub.id)
        assert publication.audio is not None and publication.audio.consumers == 0
        assert publication.decoding is False
    finally:
        for c in (pub, sub):
            await c.close()


# -- SFU.watch: features see every publication, including those made before they attached ------


async def _no_offer(participant: str, offer: dict[str, Any]) -> None:
    """Offers go nowhere: these tests drive the SFU without clients to answer them."""


@pytest.fixture
async def sfu() -> AsyncIterator[SFU]:
    sfu = SFU(_no_offer)
    yield sfu
    await sfu.close()


def publish(sfu: SFU, peer: Peer, source: Source) -> Publication:
    """Play the part of aiortc delivering the publisher's track on its publish slot."""
    kind = "audio" if source == "mic" else "video"
    sfu.publish(peer.participant, source)
    transceiver = peer.pc.getTransceivers()[-1]
    assert transceiver.kind == kind
    sfu._handle_track(peer, source, transceiver.receiver, RemoteStreamTrack(kind))
    room = sfu.room(sfu._room_of[peer.participant])
    assert room is not None
    return list(room.publications.values())[-1]


Seen = list[tuple[str, str, str]]  # (room, owner, source)


def recorder(seen: Seen) -> Callable[[MediaRoom, Publication], None]:
    def hook(room: MediaRoom, publication: Publication) -> None:
        assert room.publications[publication.id] is publication
        seen.append((room.name, publication.owner, publication.source))

    return hook


async def test_watch_replays_what_is_published_then_reports_new_publications(sfu: SFU) -> None:
    early: Seen = []
    sfu.watch(recorder(early))
    ana = sfu.join("docks", "ana", [])
    bo = sfu.join("rail", "bo", [])
    publish(sfu, ana, "camera")
    publish(sfu, bo, "screen")
    publish(sfu, ana, "mic")

    late: Seen = []
    sfu.watch(recorder(late))
    # replayed at once, room by room, each room's publications in the order they started
    assert late == [("docks", "ana", "camera"), ("docks", "ana", "mic"), ("rail", "bo", "screen")]

    publish(sfu, bo, "camera")
    assert late[-1] == ("rail", "bo", "camera")
    assert early == [
        ("docks", "ana", "camera"), ("rail", "bo", "screen"), ("docks", "ana", "mic"), ("rail", "bo", "camera"),
    ]


async def test_unwatch_stops_reports_and_is_idempotent(sfu: SFU) -> None:
    ana = sfu.join("docks", "ana", [])
    publish(sfu, ana, "camera")
    kept: Seen = []
    dropped: Seen = []
    sfu.watch(recorder(kept))
    unwatch = sfu.watch(recorder(dropped))
    assert dropped == [("docks", "ana", "camera")]
    unwatch()
    unwatch()
    publish(sfu, ana, "screen")
    assert dropped == [("docks", "ana", "camera")]
    assert kept == [("docks", "ana", "camera"), ("docks", "ana", "screen")]
    # the same hook may be watched twice; each unwatch removes one registration
    twice: Seen = []
    hook = recorder(twice)
    first = sfu.watch(hook)
    sfu.watch(hook)
    first()
    twice.clear()
    publish(sfu, ana, "mic")
    assert twice == [("docks", "ana", "mic")]


async def test_watch_on_an_idle_sfu_replays_nothing(sfu: SFU) -> None:
    seen: Seen = []
    sfu.watch(recorder(seen))
    sfu.join("docks", "ana", [])  # joined, nothing published
    assert seen == []


async def test_a_failing_hook_neither_stops_publishing_nor_other_watchers(
    sfu: SFU, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(room: MediaRoom, publication: Publication) -> None:
        raise RuntimeError("feature bug")

    ana = sfu.join("docks", "ana", [])
    publish(sfu, ana, "camera")
    seen: Seen = []
    sfu.watch(broken)  # fails on the replay: logged, still registered
    sfu.watch(recorder(seen))
    publish(sfu, ana, "screen")
    assert seen == [("docks", "ana", "camera"), ("docks", "ana", "screen")]
    assert sfu.sources_of("ana") == {"camera", "screen"}
    assert sum("feature bug" in (r.exc_text or "") for r in caplog.records) == 2


async def test_deprecated_publication_hooks_still_reports_new_publications(sfu: SFU) -> None:
    seen: Seen = []
    ana = sfu.join("docks", "ana", [])
    publish(sfu, ana, "camera")
    with pytest.deprecated_call():
        sfu.publication_hooks.append(recorder(seen))
    publish(sfu, ana, "screen")
    assert seen == [("docks", "ana", "screen")]  # (no replay: that is what watch adds)


async def test_room_and_active_speaker_lookups(sfu: SFU) -> None:
    assert sfu.room("docks") is None
    assert sfu.active_speaker("docks") is None
    sfu.join("docks", "ana", [])
    room = sfu.room("docks")
    assert room is not None and room.name == "docks" and list(room.peers) == ["ana"]
    assert sfu.active_speaker("docks") is None  # no detector without on_active_speaker

    changes: list[tuple[str, str | None]] = []
    speaking = SFU(_no_offer, on_active_speaker=lambda r, p: changes.append((r, p)))
    try:
        speaking.join("docks", "ana", [])
        detector = speaking.room("docks").speaker  # type: ignore[union-attr]
        assert detector is not None and speaking.active_speaker("docks") is None
        detector._set("ana")
        assert speaking.active_speaker("docks") == "ana"
        assert changes == [("docks", "ana")]
    finally:
        await speaking.close()
