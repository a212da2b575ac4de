"""Audio-only ("data saver") mode: no video in, no video out, and video back at a keyframe.

Participants are real aiortc clients (testkit's ``HubClient``: pre-encoded VP8/Opus, received
frames counted without decoding) or plain Socket.IO clients (``sigclient``) for the protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest

from hubtest import RunningHub as Hub
from sigclient import Connect, until
from signalling import validation
from signalling.errors import SignallingError
from testkit.rtc_client import HubClient, PreEncodedTrack, encode_test_audio, encode_test_video


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=30)


@pytest.fixture(scope="module")
def sparse_video() -> list[av.Packet]:
    """One keyframe per 4 s loop: a subscriber that starts at a keyframe must have asked for it."""
    return encode_test_video(seconds=4, gop=1000)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)


class AudioOnlyClient(HubClient):
    """A HubClient whose ``join`` asks for audio-only mode."""

    async def join(self, timeout: float = 10.0) -> None:
        await self.sio.connect(self.url, transports=["websocket"])
        await self.sio.emit("join", {
            "room": self.room, "name": self.name, "lang": self.lang, "audioOnly": True,
            "audio": "mic" in self.tracks, "video": "camera" in self.tracks,
        })
        await asyncio.wait_for(self.joined.wait(), timeout)


def frames(client: HubClient, publisher: HubClient, kind: str) -> int:
    assert publisher.id is not None
    return sum(len(r.frames) for r in client.received_from(publisher.id, kind))


def video_frames_ever(client: HubClient) -> int:
    """Video frames received on any slot, current or removed."""
    return sum(len(r.frames) for r in client.received.values() if r.kind == "video")


def slot_kinds(client: HubClient) -> list[str]:
    return sorted(s["kind"] for s in client.active_slots().values())


async def video_packets_received(client: HubClient) -> int:
    """RTP packets that arrived on the client's video transceivers (0 if it has none)."""
    total = 0
    for transceiver in client.pc.getTransceivers():
        if transceiver.kind != "video":
            continue
        for stats in (await transceiver.receiver.getStats()).values():
            if stats.type == "inbound-rtp":
                total += stats.packetsReceived
    return total


async def switch(client: HubClient, on: bool) -> None:
    """Send ``audio-only {on}`` and wait for the server's answer."""
    since = len(client.events)
    await client.sio.emit("audio-only", {"on": on})
    await until(lambda: ("audio-only", {"on": on}) in client.events[since:])


def sources(hub: Hub, client: HubClient) -> set[str]:
    assert client.id is not None
    return set(hub.server.sfu.sources_of(client.id))


# -- receiving ---------------------------------------------------------------------------------


async def test_an_audio_only_subscriber_gets_no_video_while_another_subscriber_does(
    hub: Hub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    pub = HubClient(hub.url, "saver", "Ana", video=video, audio=audio)
    full = HubClient(hub.url, "saver", "Bo")
    saver = AudioOnlyClient(hub.url, "saver", "Cai")
    try:
        for c in (pub, full, saver):
            await c.join()
        await until(lambda: frames(full, pub, "video") >= 60 and frames(saver, pub, "audio") >= 100)
        assert frames(full, pub, "audio") > 0
        assert slot_kinds(full) == ["audio", "video"]
        assert slot_kinds(saver) == ["audio"]
        # never offered a video slot: no video transceiver, no video packet
        assert [t for t in saver.pc.getTransceivers() if t.kind == "video"] == []
        assert video_frames_ever(saver) == 0
        assert await video_packets_received(saver) == 0
        assert await video_packets_received(full) > 0
        peer = hub.server.sfu.peer(saver.id)  # type: ignore[arg-type]
        assert peer is not None and [t.kind for t in peer.subscribed_tracks()] == ["audio"]
        assert not hub.server.sfu.receives_video(saver.id)  # type: ignore[arg-type]
        assert hub.server.sfu.receives_video(full.id)  # type: ignore[arg-type]
    finally:
        for c in (pub, full, saver):
            await c.close()


async def test_switching_on_stops_video_and_off_brings_it_back_starting_at_a_keyframe(
    hub: Hub, sparse_video: list[av.Packet], audio: list[av.Packet]
) -> None:
    pub = HubClient(hub.url, "switch", "Ana", video=sparse_video, audio=audio)
    sub = HubClient(hub.url, "switch", "Bo")
    other = HubClient(hub.url, "switch", "Cai")
    camera = pub.tracks["camera"]
    assert isinstance(camera, PreEncodedTrack)
    try:
        for c in (pub, sub, other):
            await c.join()
        await until(lambda: frames(sub, pub, "video") >= 30 and frames(other, pub, "video") >= 30)

        await switch(sub, True)
        await until(lambda: slot_kinds(sub) == ["audio"])
        stopped_at = video_frames_ever(sub)
        other_at = frames(other, pub, "video")
        audio_at = frames(sub, pub, "audio")
        # a second of audio later, still no new video for the saver — the other one still gets it
        await until(lambda: frames(sub, pub, "audio") >= audio_at + 50 and frames(other, pub, "video") > other_at + 15)
        assert video_frames_ever(sub) <= stopped_at + 2  # (at most what was in flight)
        assert slot_kinds(other) == ["audio", "video"]
        assert not hub.server.sfu.receives_video(sub.id)  # type: ignore[arg-type]

        requests = camera.keyframe_requests
        await switch(sub, False)
        await until(lambda: slot_kinds(sub) == ["audio", "video"])
        await until(lambda: frames(sub, pub, "video") >= 10, timeout=30)
        first = sub.received_from(pub.id, "video")[0].frames[0]  # type: ignore[arg-type]
        assert first.keyframe
        assert first.data == camera.sent_payloads[0]  # the clip's only keyframe
        assert camera.keyframe_requests > requests  # asked for, not waited for
        assert hub.server.sfu.receives_video(sub.id)  # type: ignore[arg-type]
    finally:
        for c in (pub, sub, other):
            await c.close()


async def test_video_published_while_audio_only_is_not_offered(
    hub: Hub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    saver = AudioOnlyClient(hub.url, "later", "Cai")
    pub = HubClient(hub.url, "later", "Ana", video=video, audio=audio)
    try:
        await saver.join()
        await pub.join()
        await until(lambda: frames(saver, pub, "audio") >= 50)
        assert slot_kinds(saver) == ["audio"]
        assert video_frames_ever(saver) == 0
    finally:
        await saver.close()
        await pub.close()


# -- publishing --------------------------------------------------------------------------------


async def test_an_audio_only_participant_publishes_no_camera_until_it_switches_off(
    hub: Hub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    saver = AudioOnlyClient(hub.url, "nocam", "Cai", video=video, audio=audio)
    watcher = HubClient(hub.url, "nocam", "Bo")
    try:
        await saver.join()
        await watcher.join()
        await until(lambda: frames(watcher, saver, "audio") >= 50)
        assert sources(hub, saver) == {"mic"}
        assert [s["source"] for s in saver._slots.values() if s["role"] == "publish"] == ["mic"]
        assert slot_kinds(watcher) == ["audio"]
        joined = next(d for e, d in watcher.events if e == "joined")
        assert [p["video"] for p in joined["participants"]] == [False]

        saver.tracks["camera"] = PreEncodedTrack("video", video, 90000)  # as a browser captures anew
        await switch(saver, False)
        await until(lambda: sources(hub, saver) == {"mic", "camera"})
        await until(lambda: frames(watcher, saver, "video") >= 10)
        assert watcher.received_from(saver.id, "video")[0].frames[0].keyframe  # type: ignore[arg-type]

        await switch(saver, True)
        await until(lambda: sources(hub, saver) == {"mic"})
        await until(lambda: slot_kinds(watcher) == ["audio"])
        update = next(d for e, d in reversed(watcher.events) if e == "participant-updated")
        assert update["id"] == saver.id and update["video"] is False
    finally:
        await saver.close()
        await watcher.close()


async def test_switching_on_ends_a_screen_share_and_refuses_a_new_one(
    hub: Hub, video: list[av.Packet]
) -> None:
    pub = HubClient(hub.url, "share", "Ana", video=video)
    sub = HubClient(hub.url, "share", "Bo")
    try:
        await pub.join()
        await sub.join()
        pub.tracks["screen"] = PreEncodedTrack("video", video, 90000)
        await pub.sio.emit("publish", {"source": "screen"})
        await until(lambda: sorted(s["source"] for s in sub.active_slots().values()) == ["camera", "screen"])

        await switch(pub, True)
        await until(lambda: sources(hub, pub) == set())
        await until(lambda: sub.active_slots() == {})
        assert any(e == "participant-updated" and d["id"] == pub.id and not d["screen"] for e, d in sub.events)

        await pub.sio.emit("publish", {"source": "screen"})
        await until(lambda: bool(pub.errors))
        assert [(e["code"], e["event"]) for e in pub.errors] == [("audio-only", "publish")]
        assert sources(hub, pub) == set()
    finally:
        await pub.close()
        await sub.close()


# -- the protocol ------------------------------------------------------------------------------


async def test_join_option_and_switch_over_signalling(hub: Hub, connect: Connect) -> None:
    ana, bo = await connect(hub.url), await connect(hub.url)
    ana_joined = await ana.join("dockers", "Ana", audio=True, video=True, audioOnly=True)
    await bo.join("dockers", "Bo", audio=True, video=True)
    ana_id = ana_joined["id"]
    participant = hub.server.store.participant_by_id(ana_id)
    assert participant is not None and participant.audio_only
    peer = hub.server.sfu.peer(ana_id)
    assert peer is not None and peer.has_publish_slot("mic") and not peer.has_publish_slot("camera")
    # others see a tile without video; the mode itself is not part of Participant
    bo_view = next(p for p in (await bo.wait_for("joined"))["participants"] if p["id"] == ana_id)
    assert bo_view["video"] is False and "audioOnly" not in bo_view

    assert await ana.send("audio-only", {"on": True}) == []  # already on: answered, no change
    assert ana.received("audio-only") == [{"on": True}]
    assert await ana.send("audio-only", {"on": False}) == []
    assert ana.received("audio-only")[-1] == {"on": False}
    assert not participant.audio_only
    assert peer.has_publish_slot("camera")  # the camera comes back in the next offer
    assert hub.server.sfu.receives_video(ana_id)


async def test_switching_off_opens_no_camera_for_someone_who_joined_without_one(
    hub: Hub, connect: Connect
) -> None:
    ana = await connect(hub.url)
    ana_id = (await ana.join("dockers", "Ana", audio=True, video=False, audioOnly=True))["id"]
    assert await ana.send("audio-only", {"on": False}) == []
    peer = hub.server.sfu.peer(ana_id)
    assert peer is not None and not peer.has_publish_slot("camera")


async def test_a_viewer_switching_off_gets_no_camera(hub: Hub, connect: Connect) -> None:
    host, ana = await connect(hub.url), await connect(hub.url)
    await host.join("dockers", "Host", audio=True, video=True)
    ana_id = (await ana.join("dockers", "Ana", audio=True, video=True))["id"]
    assert await host.send("role", {"id": ana_id, "role": "viewer"}) == []
    assert await ana.send("audio-only", {"on": True}) == []
    assert await ana.send("audio-only", {"on": False}) == []
    peer = hub.server.sfu.peer(ana_id)
    assert peer is not None and not peer.has_publish_slot("camera")
    assert hub.server.sfu.sources_of(ana_id) == set()


@pytest.mark.parametrize(
    "payload", [None, "on", True, [True], {}, {"on": "yes"}, {"on": 1}, {"on": None}, {"off": True}]
)
async def test_bad_audio_only_payloads_are_refused_and_change_nothing(
    hub: Hub, connect: Connect, payload: Any
) -> None:
    ana = await connect(hub.url)
    ana_id = (await ana.join("dockers", "Ana", audio=True, video=True))["id"]
    errors = await ana.send("audio-only", payload)
    assert [(e["code"], e["event"]) for e in errors] == [("bad-request", "audio-only")]
    assert ana.received("audio-only") == []
    participant = hub.server.store.participant_by_id(ana_id)
    assert participant is not None and not participant.audio_only
    assert hub.server.sfu.receives_video(ana_id)
    peer = hub.server.sfu.peer(ana_id)
    assert peer is not None and peer.has_publish_slot("camera")


async def test_audio_only_before_joining_is_not_joined(hub: Hub, connect: Connect) -> None:
    ana = await connect(hub.url)
    errors = await ana.send("audio-only", {"on": True})
    assert [(e["code"], e["event"]) for e in errors] == [("not-joined", "audio-only")]


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
async def test_a_join_with_a_bad_audio_only_is_refused(hub: Hub, connect: Connect, value: Any) -> None:
    ana = await connect(hub.url)
    errors = await ana.send("join", {"room": "dockers", "name": "Ana", "audioOnly": value})
    assert [(e["code"], e["event"]) for e in errors] == [("bad-request", "join")]
    assert hub.server.store.rooms == {}


# -- validation --------------------------------------------------------------------------------


def test_join_parses_audio_only_and_defaults_to_off() -> None:
    assert validation.join({"room": "r", "name": "Ana"}).audio_only is False
    assert validation.join({"room": "r", "name": "Ana", "audioOnly": True}).audio_only is True
    assert validation.join({"room": "r", "name": "Ana", "audioOnly": False}).audio_only is False


@pytest.mark.parametrize("payload", [{"on": True}, {"on": False}])
def test_audio_only_event_parses(payload: dict[str, bool]) -> None:
    assert validation.audio_only(payload) is payload["on"]


@pytest.mark.parametrize("payload", [None, [], "x", {}, {"on": 0}, {"on": "true"}])
def test_audio_only_event_rejects(payload: Any) -> None:
    with pytest.raises(SignallingError) as info:
        validation.audio_only(payload)
    assert info.value.code == "bad-request"
