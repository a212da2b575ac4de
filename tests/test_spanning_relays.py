"""A room that fills its relay spans onto a second one (issue #13 item 4, ``cluster/spanning.py``):
three nodes of a cluster in this process on a real redis-server, ``--room-capacity 1``. The owner
takes the first participant, its first relay the second, a second relay the third; media reaches
every half byte-identical through the owner (the hub of the star), and the people lists and page
routing span all three."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest

from cluster.spanning import relay_key, requests_key
from hubtest import RunningHub
from media_server.forwarding import EncodedFrame, ForwardedTrack
from media_server.publication import Publication
from sigclient import until
from test_spanning import cluster, frames, node, page
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video


@pytest.fixture(scope="module")
def videos() -> list[list[av.Packet]]:
    """One clip per publisher, each its own bytes: a frame cannot pass for another's."""
    return [encode_test_video(seconds=4, gop=30, bit_rate=rate) for rate in (300_000, 200_000, 150_000)]


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)


def names(client: HubClient) -> list[str]:
    joined: dict[str, Any] = next(data for name, data in client.events if name == "joined")
    return sorted(p["name"] for p in joined["participants"])


def sent(publisher: HubClient, source: str) -> set[bytes]:
    """Every frame ``publisher`` sent of its ``source``."""
    return set(publisher.tracks[source].sent_payloads)  # type: ignore[attr-defined]


def forwards(hub: RunningHub, subscriber: HubClient, *publishers: HubClient) -> bool:
    """Whether ``hub`` forwards each of ``publishers``' cameras to ``subscriber``."""
    assert subscriber.id is not None
    return all(p.id in hub.server.sfu.video_from(subscriber.id) for p in publishers)


async def tap(hub: RunningHub, publisher: HubClient, source: str) -> list[bytes]:
    """The frames of ``publisher``'s ``source`` as ``hub`` forwards them to its browsers, from now
    on (a subscription like a recorder's: every frame), once it is published there."""

    def find() -> Publication | None:
        return next((p for p in hub.server.sfu.rooms["big"].publications.values()
                     if p.owner == publisher.id and p.source == source), None)

    await until(lambda: find() is not None)
    publication = find()
    assert publication is not None
    track = publication.subscribe()
    assert isinstance(track, ForwardedTrack)
    got: list[bytes] = []

    def take(frame: EncodedFrame) -> bool:
        got.append(frame.data)
        return True

    track.attach_sender(take)
    return got


async def test_a_full_relay_makes_the_room_span_onto_a_second_relay_and_media_crosses_the_star(
    tmp_path: Path, redis_url: str, videos: list[list[av.Packet]], audio: list[av.Packet]
) -> None:
    async with (
        node(tmp_path, redis_url, "owner", room_capacity=1) as owner,
        node(tmp_path, redis_url, "n1", room_capacity=1) as n1,
        node(tmp_path, redis_url, "n2", room_capacity=1) as n2,
    ):
        hubs = {"owner": owner, "n1": n1, "n2": n2}
        assert (await cluster(owner).leases.claim("big", "owner")).node == "owner"
        ana = HubClient(owner.url, "big", "Ana", video=videos[0], audio=audio)
        await ana.join()
        # the owner is full: the room spans onto the less loaded other node
        status, location = await page(owner, "big")
        assert status == 307
        first_id = next(i for i, h in hubs.items() if location == f"{h.url}/r/big")
        second_id = "n2" if first_id == "n1" else "n1"
        first, second = hubs[first_id], hubs[second_id]
        bo = HubClient(first.url, "big", "Bo", video=videos[1], audio=audio)
        cy = HubClient(second.url, "big", "Cy")
        dee = HubClient(second.url, "big", "Dee", video=videos[2], audio=audio)
        try:
            await bo.join()
            # the first relay is full too: the owner spans the room onto the node left, and the
            # full first relay sends a page load to the owner, which places it there
            assert await page(owner, "big") == (307, f"{second.url}/r/big")
            assert cluster(owner).spanning.relays_of("big") == [first_id, second_id]
            assert await page(first, "big") == (307, f"{owner.url}/r/big")
            await cy.join()
            assert cluster(second).spanning.relays("big")
            # no further node: the latest relay takes everyone new, past its capacity
            assert await page(second, "big") == (200, "")
            assert await page(owner, "big") == (307, f"{second.url}/r/big")
            assert await cluster(owner).redis.get(relay_key("big")) == second_id
            await dee.join()
            # everyone is listed on every half
            assert names(bo) == ["Ana"] and names(cy) == ["Ana", "Bo"] and names(dee) == ["Ana", "Bo", "Cy"]
            # media crosses the star byte-identical: the owner's and the first relay's publishers
            # reach the second relay, its publisher the owner and the first relay (relay → owner →
            # relay: two pipes). Checked as each node forwards them to its people: the aiortc test
            # client does not always route the RTP of a camera piped in before it joined (its SSRC
            # never enters the client's RTP router) and may credit it to another track of the same
            # payload type (not so in Chromium: tests/e2e/test_spanning_browser.py)
            crossing = [(second, ana), (second, bo), (owner, bo), (owner, dee), (first, dee)]
            taps = {(cluster(hub).node_id, publisher.name): (await tap(hub, publisher, "camera"),
                                                              await tap(hub, publisher, "mic"))
                    for hub, publisher in crossing}
            await until(lambda: all(len(v) >= 30 and len(a) >= 25 for v, a in taps.values()), timeout=40)
            for hub, publisher in crossing:
                where = (cluster(hub).node_id, publisher.name)
                video_got, audio_got = taps[where]
                assert set(video_got) <= sent(publisher, "camera"), where
                assert set(audio_got) <= sent(publisher, "mic"), where
            # ... and each node forwards them to its people
            await until(lambda: forwards(second, cy, ana, bo) and forwards(owner, ana, bo, dee) and forwards(first, bo, dee))
            await until(lambda: len(frames(cy, ana, "audio")) > 0 and len(frames(ana, dee, "video")) > 0)
            # never piped back where it came from: each relay's own publisher is local there
            for hub, local in ((first, bo), (second, dee)):
                publications = hub.server.sfu.rooms["big"].publications.values()
                assert {p.owner for p in publications if not p.is_piped} == {local.id}
            assert cluster(owner).stats()["relays"] == 2
        finally:
            for c in (ana, bo, cy, dee):
                await c.close()
        # the room ended on its owner: both relays let their halves go, Redis forgets the span
        await until(lambda: not cluster(first).spanning.relays("big") and not cluster(second).spanning.relays("big"))
        assert await cluster(owner).redis.get(relay_key("big")) is None
        for relay in (first_id, second_id):
            assert await cluster(owner).redis.hgetall(requests_key(relay)) == {}
