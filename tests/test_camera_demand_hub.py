"""Cameras nobody receives (issue #12, ``media_server/demand.py``): the hub asks their
publishers to stop sending them (``camera-wanted {wanted: false}``) and asks again at once when
someone should receive them; the first frame then is a keyframe. A recording keeps a camera
wanted. Participants are real aiortc clients (testkit's ``HubClient`` stops its camera's
frames on ``camera-wanted``, as the web client stops its encoder).
"""

from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest

from hubtest import RunningHub as Hub
from media_server.publication import Publication
from sigclient import until
from testkit.rtc_client import HubClient, PreEncodedTrack, encode_test_video


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=30)


def camera(client: HubClient) -> PreEncodedTrack:
    track = client.tracks["camera"]
    assert isinstance(track, PreEncodedTrack)
    return track


def wanted_events(client: HubClient) -> list[bool]:
    return [data["wanted"] for event, data in client.events if event == "camera-wanted"]


def publication(hub: Hub, room: str, owner: HubClient) -> Publication:
    media = hub.server.sfu.room(room)
    assert media is not None
    found = [p for p in media.publications.values() if p.owner == owner.id and p.source == "camera"]
    assert len(found) == 1
    return found[0]


def frames_from(client: HubClient, publisher: HubClient) -> int:
    assert publisher.id is not None
    return sum(len(r.frames) for r in client.received_from(publisher.id, "video"))


async def send(client: HubClient, event: str, data: Any) -> None:
    await client.sio.call(event, data, timeout=10)


async def test_a_camera_in_nobodys_last_n_stops_and_comes_back_on_a_keyframe(
    hub: Hub, video: list[av.Packet]
) -> None:
    ana, bo, cy = (HubClient(hub.url, "unseen", name, video=video) for name in ("Ana", "Bo", "Cy"))
    clients = [ana, bo, cy]
    try:
        for c in clients:
            await c.join()
        await send(ana, "settings", {"lastN": 1})  # Ana hosts: everyone gets one video
        # nobody spoke: Ana gets Bo's (joined first of the others), Bo and Cy get Ana's
        await until(lambda: frames_from(ana, bo) >= 10 and frames_from(cy, ana) >= 10)
        await until(lambda: wanted_events(cy) == [False], timeout=10)
        assert not camera(cy).active
        assert wanted_events(ana) == wanted_events(bo) == []
        # the hub gets nothing from Cy's camera any more, and still Ana's and Bo's
        cy_pub, ana_pub = publication(hub, "unseen", cy), publication(hub, "unseen", ana)
        before = cy_pub.frames, ana_pub.frames
        await asyncio.sleep(1.0)
        assert cy_pub.frames - before[0] <= 1  # (a frame already on its way)
        assert ana_pub.frames - before[1] >= 15
        stats = hub.server.sfu.stats()
        assert stats["cameras_released"] == 1 and stats["camera_releases"] == 1

        # Ana pins Cy: asked for at once, and her first frame of Cy is a keyframe
        received = frames_from(ana, cy)
        await send(ana, "video-prefs", {"pinned": [cy.id]})
        await until(lambda: wanted_events(cy) == [False, True], timeout=5)
        assert camera(cy).active
        await until(lambda: frames_from(ana, cy) >= received + 10)
        assert cy.id is not None
        first = [f for r in ana.received_from(cy.id, "video") for f in r.frames][received]
        assert first.keyframe
        # now Bo's camera reaches nobody (Ana was its only viewer): released in turn
        await until(lambda: wanted_events(bo) == [False], timeout=10)
        assert hub.server.sfu.stats()["camera_recalls"] == 1
    finally:
        for c in clients:
            await c.close()


async def test_a_recording_keeps_a_camera_wanted(hub: Hub, video: list[av.Packet]) -> None:
    """A feature that takes a camera (a recorder, a live stream) subscribes to the publication
    directly; the camera it takes is asked for again although no participant receives it."""
    ana = HubClient(hub.url, "alone", "Ana", video=video)
    listener = HubClient(hub.url, "alone", "Lee")
    try:
        await ana.join()
        await listener.join()
        await send(listener, "audio-only", {"on": True})  # nobody takes Ana's video
        await until(lambda: wanted_events(ana) == [False], timeout=10)
        pub = publication(hub, "alone", ana)
        recorder = pub.subscribe()
        try:
            await until(lambda: wanted_events(ana) == [False, True], timeout=5)
            frames = pub.frames
            await until(lambda: pub.frames >= frames + 15)
        finally:
            pub.unsubscribe(recorder)
        await until(lambda: wanted_events(ana) == [False, True, False], timeout=10)
    finally:
        await ana.close()
        await listener.close()
