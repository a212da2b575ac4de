"""Last-N video (issue #12): each participant receives at most N others' video, chosen by
screen share, pins, speaking recency and visibility; the rest is paused without renegotiation
and resumes at a keyframe. Audio is unaffected.

Participants are real aiortc clients (testkit's ``HubClient``: pre-encoded VP8/Opus, received
frames counted without decoding) or plain Socket.IO clients (``sigclient``) for the protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest

from hubtest import RunningHub as Hub
from media_server.sfu import VideoPrefs
from sigclient import Connect, until
from signalling import validation
from signalling.errors import SignallingError
from testkit.rtc_client import HubClient, PreEncodedTrack, encode_test_audio, encode_test_video


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=30)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)


def frames(client: HubClient, publisher: HubClient, kind: str) -> int:
    assert publisher.id is not None
    return sum(len(r.frames) for r in client.received_from(publisher.id, kind))


def forwarded(client: HubClient) -> set[str] | None:
    """Whose video the server last said ``client`` receives (``forwarding``, else ``joined``)."""
    for event, data in reversed(client.events):
        if event == "forwarding":
            return set(data["video"])
        if event == "joined":
            return set(data["forwarding"]["video"])
    return None


def ids(*clients: HubClient) -> set[str]:
    return {c.id for c in clients if c.id is not None}


async def video_receivers(client: HubClient, publishers: list[HubClient], more: int = 30) -> set[str]:
    """The publishers whose video reaches ``client`` while ``more`` frames of one arrive."""
    start = {p.id: frames(client, p, "video") for p in publishers}
    await until(lambda: any(frames(client, p, "video") >= start[p.id] + more for p in publishers))
    await asyncio.sleep(0.5)  # every flowing stream gets ~15 more frames
    return {p.id for p in publishers if p.id is not None and frames(client, p, "video") > start[p.id] + 3}


async def send(client: HubClient, event: str, data: Any) -> None:
    await client.sio.call(event, data, timeout=10)


async def join_all(clients: list[HubClient]) -> None:
    for c in clients:
        await c.join()


async def close_all(clients: list[HubClient]) -> None:
    for c in clients:
        await c.close()


# -- receiving ---------------------------------------------------------------------------------


async def test_a_listener_with_last_n_2_gets_video_from_exactly_2_and_a_pin_moves_it(
    hub: Hub, video: list[av.Packet]
) -> None:
    listener = HubClient(hub.url, "lastn", "Lee")
    pubs = [HubClient(hub.url, "lastn", name, video=video) for name in ("Ana", "Bo", "Cy", "Di")]
    try:
        await listener.join()
        await send(listener, "video-prefs", {"lastN": 2})
        await join_all(pubs)
        ana, bo, cy, di = pubs
        # nobody has spoken: the first two to join
        await until(lambda: forwarded(listener) == ids(ana, bo))
        await until(lambda: frames(listener, ana, "video") >= 30 and frames(listener, bo, "video") >= 30)
        assert await video_receivers(listener, pubs) == ids(ana, bo)
        assert frames(listener, cy, "video") == frames(listener, di, "video") == 0
        # no renegotiation: every publisher still has its slot, the others are paused
        assert sorted(s["participant"] for s in listener.active_slots().values()) == sorted(ids(*pubs))
        stats = hub.server.sfu.stats()
        assert stats["video_paused"] == 2 and stats["video_pauses"] >= 2
        # a publisher (room N 8) gets everyone's video
        assert await video_receivers(di, [ana, bo, cy]) == ids(ana, bo, cy)

        camera = cy.tracks["camera"]
        assert isinstance(camera, PreEncodedTrack)
        requests = camera.keyframe_requests
        resumes = stats["video_resumes"]
        offers = listener.offers
        await send(listener, "video-prefs", {"pinned": [cy.id]})
        await until(lambda: forwarded(listener) == ids(cy, ana))  # the pin, then join order
        await until(lambda: frames(listener, cy, "video") >= 10)
        assert listener.received_from(cy.id, "video")[0].frames[0].keyframe  # type: ignore[arg-type]
        assert camera.keyframe_requests > requests  # asked for at once, not waited for
        assert await video_receivers(listener, pubs) == ids(cy, ana)
        assert hub.server.sfu.stats()["video_resumes"] > resumes
        assert listener.offers == offers  # paused and resumed, never renegotiated

        await send(listener, "video-prefs", {"lastN": None, "pinned": []})  # the room's N again: 8
        await until(lambda: forwarded(listener) == ids(*pubs))
        assert await video_receivers(listener, pubs) == ids(*pubs)
    finally:
        await close_all([listener, *pubs])


async def test_the_room_setting_changes_n_for_everyone(hub: Hub, video: list[av.Packet]) -> None:
    host = HubClient(hub.url, "room-n", "Host")
    other = HubClient(hub.url, "room-n", "Oz")
    pubs = [HubClient(hub.url, "room-n", name, video=video) for name in ("Ana", "Bo", "Cy")]
    try:
        await join_all([host, other, *pubs])
        for c in (host, other):
            await until(lambda c=c: forwarded(c) == ids(*pubs))  # type: ignore[misc]
        await send(host, "settings", {"lastN": 2})
        for c in (host, other):
            await until(lambda c=c: any(e == "settings" and d["lastN"] == 2 for e, d in c.events))  # type: ignore[misc]
            await until(lambda c=c: forwarded(c) is not None and len(forwarded(c) or ()) == 2)  # type: ignore[misc]
        assert forwarded(other) == ids(pubs[0], pubs[1])
        assert await video_receivers(other, pubs) == ids(pubs[0], pubs[1])
        assert await video_receivers(host, pubs) == ids(pubs[0], pubs[1])
        # publishers too: Ana receives Bo and Cy (2 others)
        assert forwarded(pubs[0]) == ids(pubs[1], pubs[2])
        # a participant may lower it for itself, not raise it
        await send(other, "video-prefs", {"lastN": 1})
        await until(lambda: forwarded(other) == ids(pubs[0]))
        await send(other, "video-prefs", {"lastN": 25})
        await until(lambda: forwarded(other) == ids(pubs[0], pubs[1]))
        await send(host, "settings", {"lastN": 3})
        await until(lambda: forwarded(host) == ids(*pubs))
        await until(lambda: forwarded(other) == ids(*pubs))
    finally:
        await close_all([host, other, *pubs])


async def test_the_one_speaking_is_seen_even_if_they_joined_last(
    hub: Hub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    listener = HubClient(hub.url, "speaks-n", "Lee")
    quiet = [HubClient(hub.url, "speaks-n", name, video=video) for name in ("Ana", "Bo")]
    talker = HubClient(hub.url, "speaks-n", "Cy", video=video, audio=audio)
    try:
        await listener.join()
        await send(listener, "video-prefs", {"lastN": 1})
        await join_all(quiet)
        await until(lambda: forwarded(listener) == ids(quiet[0]))
        await talker.join()
        await until(lambda: ("active-speaker", {"id": talker.id}) in listener.events)
        await until(lambda: forwarded(listener) == ids(talker))
        await until(lambda: frames(listener, talker, "video") >= 10)
        assert listener.received_from(talker.id, "video")[0].frames[0].keyframe  # type: ignore[arg-type]
        assert await video_receivers(listener, [*quiet, talker]) == ids(talker)
        # a pin still comes first
        await send(listener, "video-prefs", {"pinned": [quiet[1].id]})
        await until(lambda: forwarded(listener) == ids(quiet[1]))
    finally:
        await close_all([listener, *quiet, talker])


async def test_a_camera_switched_off_gives_its_place_to_another(hub: Hub, video: list[av.Packet]) -> None:
    listener = HubClient(hub.url, "camoff-n", "Lee")
    pubs = [HubClient(hub.url, "camoff-n", name, video=video) for name in ("Ana", "Bo")]
    try:
        await listener.join()
        await send(listener, "video-prefs", {"lastN": 1})
        await join_all(pubs)
        await until(lambda: forwarded(listener) == ids(pubs[0]))
        await send(pubs[0], "media-state", {"video": False})
        await until(lambda: forwarded(listener) == ids(pubs[1]))
        await until(lambda: frames(listener, pubs[1], "video") >= 10)
        assert listener.received_from(pubs[1].id, "video")[0].frames[0].keyframe  # type: ignore[arg-type]
        await send(pubs[0], "media-state", {"video": True})
        await until(lambda: forwarded(listener) == ids(pubs[0]))
        # a host's stop-camera too (the listener joined first: it hosts)
        await send(listener, "stop-camera", {"id": pubs[0].id})
        await until(lambda: forwarded(listener) == ids(pubs[1]))
    finally:
        await close_all([listener, *pubs])


async def test_audio_from_everyone_still_arrives(
    hub: Hub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    listener = HubClient(hub.url, "audio-n", "Lee")
    pubs = [HubClient(hub.url, "audio-n", name, video=video, audio=audio) for name in ("Ana", "Bo", "Cy")]
    try:
        await listener.join()
        await send(listener, "video-prefs", {"lastN": 1})
        await join_all(pubs)
        await until(lambda: all(frames(listener, p, "audio") >= 100 for p in pubs))
        chosen = forwarded(listener)
        assert chosen is not None and len(chosen) == 1
        peer = hub.server.sfu.peer(listener.id)  # type: ignore[arg-type]
        assert peer is not None
        assert sorted(t.kind for t in peer.subscribed_tracks()) == ["audio"] * 3 + ["video"] * 3
        paused = [t for t in peer.subscribed_tracks() if getattr(t, "paused", False)]
        assert len(paused) == 2 and {t.kind for t in paused} == {"video"}
    finally:
        await close_all([listener, *pubs])


async def test_a_screen_share_is_always_forwarded(hub: Hub, video: list[av.Packet]) -> None:
    listener = HubClient(hub.url, "screen-n", "Lee")
    pubs = [HubClient(hub.url, "screen-n", name, video=video) for name in ("Ana", "Bo")]
    try:
        await listener.join()
        await send(listener, "video-prefs", {"lastN": 1})
        await join_all(pubs)
        await until(lambda: forwarded(listener) == ids(pubs[0]))
        pubs[1].tracks["screen"] = PreEncodedTrack("video", video, 90000)
        await pubs[1].sio.emit("publish", {"source": "screen"})
        await until(lambda: forwarded(listener) == ids(pubs[1]))
        bo = pubs[1].id
        assert bo is not None
        await until(lambda: sum(len(r.frames) for r in listener.received_from(bo, "video")) >= 20)
        shared = [r for r in listener.received_from(bo, "video") if r.source == "screen"]
        assert shared and shared[0].frames and shared[0].frames[0].keyframe
    finally:
        await close_all([listener, *pubs])


async def test_an_audio_only_participant_is_told_it_receives_no_video(hub: Hub, video: list[av.Packet]) -> None:
    listener = HubClient(hub.url, "saver-n", "Lee")
    pub = HubClient(hub.url, "saver-n", "Ana", video=video)
    try:
        await join_all([listener, pub])
        await until(lambda: forwarded(listener) == ids(pub))
        await send(listener, "audio-only", {"on": True})
        await until(lambda: forwarded(listener) == set())
        await send(listener, "audio-only", {"on": False})
        await until(lambda: forwarded(listener) == ids(pub))
    finally:
        await close_all([listener, pub])


# -- the protocol ------------------------------------------------------------------------------


async def test_joined_carries_the_setting_and_the_forwarding(hub: Hub, connect: Connect) -> None:
    ana = await connect(hub.url)
    joined = await ana.join("dockers", "Ana", audio=True, video=True)
    assert joined["settings"]["lastN"] == 8
    assert joined["forwarding"] == {"video": [], "congested": False}


async def test_only_hosts_set_the_room_n_and_it_is_broadcast(hub: Hub, connect: Connect) -> None:
    host, ana = await connect(hub.url), await connect(hub.url)
    await host.join("dockers", "Host")
    await ana.join("dockers", "Ana")
    assert [e["code"] for e in await ana.send("settings", {"lastN": 3})] == ["forbidden"]
    assert await host.send("settings", {"lastN": 3}) == []
    assert (await ana.wait_for("settings", lambda d: d["lastN"] == 3))["record"] == "hosts"
    media = hub.server.sfu.room("dockers")
    assert media is not None and media.last_n == 3
    late = await connect(hub.url)
    assert (await late.join("dockers", "Late"))["settings"]["lastN"] == 3


async def test_video_prefs_are_kept_per_participant(hub: Hub, connect: Connect) -> None:
    ana, bo = await connect(hub.url), await connect(hub.url)
    ana_id = (await ana.join("dockers", "Ana"))["id"]
    bo_id = (await bo.join("dockers", "Bo"))["id"]
    assert await ana.send("video-prefs", {"lastN": 3, "pinned": [bo_id, bo_id], "visible": [bo_id]}) == []
    assert hub.server.sfu.video_prefs(ana_id) == VideoPrefs(3, (bo_id,), frozenset({bo_id}))
    assert await ana.send("video-prefs", {"visible": None}) == []  # other fields are kept
    assert hub.server.sfu.video_prefs(ana_id) == VideoPrefs(3, (bo_id,), None)
    assert hub.server.sfu.video_prefs(bo_id) == VideoPrefs()
    # an id of someone who is not (or no longer) here is harmless
    assert await ana.send("video-prefs", {"pinned": ["0" * 12]}) == []


@pytest.mark.parametrize(
    "payload",
    [
        None, [], "x", {}, {"lastN": 0}, {"lastN": 26}, {"lastN": "3"}, {"lastN": True}, {"lastN": 2.5},
        {"pinned": "abc"}, {"pinned": ["nope"]}, {"pinned": [1]}, {"pinned": None}, {"visible": "all"},
        {"visible": [None]}, {"other": 1}, {"lastN": 2, "pinned": ["0" * 12], "x": 1},
    ],
)
async def test_bad_video_prefs_are_refused_and_change_nothing(hub: Hub, connect: Connect, payload: Any) -> None:
    ana = await connect(hub.url)
    ana_id = (await ana.join("dockers", "Ana"))["id"]
    errors = await ana.send("video-prefs", payload)
    assert [(e["code"], e["event"]) for e in errors] == [("bad-request", "video-prefs")]
    assert hub.server.sfu.video_prefs(ana_id) == VideoPrefs()


async def test_too_many_pins_are_too_large(hub: Hub, connect: Connect) -> None:
    ana = await connect(hub.url)
    await ana.join("dockers", "Ana")
    errors = await ana.send("video-prefs", {"pinned": [f"{i:012x}" for i in range(26)]})
    assert [(e["code"], e["event"]) for e in errors] == [("too-large", "video-prefs")]


@pytest.mark.parametrize("value", [0, 26, -1, "8", None, True, 3.0])
async def test_a_bad_room_n_is_refused(hub: Hub, connect: Connect, value: Any) -> None:
    host = await connect(hub.url)
    await host.join("dockers", "Host")
    errors = await host.send("settings", {"lastN": value})
    assert [(e["code"], e["event"]) for e in errors] == [("bad-request", "settings")]
    assert hub.server.store.room("dockers").settings.last_n == 8  # type: ignore[union-attr]


async def test_video_prefs_before_joining_is_not_joined(hub: Hub, connect: Connect) -> None:
    ana = await connect(hub.url)
    errors = await ana.send("video-prefs", {"lastN": 2})
    assert [(e["code"], e["event"]) for e in errors] == [("not-joined", "video-prefs")]


# -- validation --------------------------------------------------------------------------------


def test_video_prefs_parse() -> None:
    a, b = "0123456789ab", "ba9876543210"
    assert validation.video_prefs({"lastN": 4}) == {"last_n": 4}
    assert validation.video_prefs({"lastN": None}) == {"last_n": None}
    assert validation.video_prefs({"pinned": [a, b, a]}) == {"pinned": (a, b)}
    assert validation.video_prefs({"visible": [a], "pinned": []}) == {"visible": frozenset({a}), "pinned": ()}
    assert validation.video_prefs({"visible": None}) == {"visible": None}


def test_settings_parse_last_n() -> None:
    assert validation.settings({"lastN": 1}) == {"last_n": 1}
    assert validation.settings({"lastN": 25, "locked": True}) == {"last_n": 25, "locked": True}
    with pytest.raises(SignallingError) as info:
        validation.settings({"lastN": 100})
    assert info.value.code == "bad-request"
