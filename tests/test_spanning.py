"""A room bigger than one process (issue #13 item 4, ``cluster/spanning.py``): two nodes of a
cluster in this process on a real redis-server; the owner takes two participants of a room, the
third is sent to a relay node, and media crosses the pipe both ways byte-identical."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from cluster import ClusterConfig, ClusterNode, spanning
from cluster.spanning import pipe_key, relay_key, requests_key
from hubtest import RunningHub, running_hub
from sigclient import Client, until
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video
from unionhub.app import CLUSTER_KEY
from unionhub.cli import main

FAST = {"heartbeat": 0.2, "node_ttl": 1.0, "lease_ttl": 1.5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def node(tmp_path: Path, redis_url: str, node_id: str, **options: Any) -> AsyncIterator[RunningHub]:
    port = free_port()
    config = ClusterConfig(redis_url, node_id, f"http://127.0.0.1:{port}", **FAST, **options)  # type: ignore[arg-type]
    async with running_hub(tmp_path / node_id, port=port, cluster=config, recordings=False, live=False) as hub:
        await until(lambda: hub.app[CLUSTER_KEY].registry.beats > 0)
        yield hub


def cluster(hub: RunningHub) -> ClusterNode:
    return hub.app[CLUSTER_KEY]


async def page(hub: RunningHub, room: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{hub.url}/r/{room}", allow_redirects=False) as r:
        return r.status, r.headers.get("Location", "")


def frames(client: HubClient, publisher: HubClient, kind: str) -> list[bytes]:
    assert publisher.id is not None
    return [f.data for r in client.received_from(publisher.id, kind) for f in r.frames]


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=30)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)


async def test_past_capacity_a_room_spans_and_media_crosses_both_ways_byte_identical(
    tmp_path: Path, redis_url: str, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    async with node(tmp_path, redis_url, "owner", room_capacity=2) as owner, node(tmp_path, redis_url, "relay") as relay:
        assert (await cluster(owner).leases.claim("big", "owner")).node == "owner"
        ana = HubClient(owner.url, "big", "Ana", video=video, audio=audio)
        bo = HubClient(owner.url, "big", "Bo")
        cy = HubClient(relay.url, "big", "Cy")
        dee = HubClient(relay.url, "big", "Dee", video=video)
        stray: Client | None = None
        try:
            await ana.join()
            assert await page(owner, "big") == (200, "")  # room for one more
            await bo.join()
            # full: the page and a join on the owner now send people to the relay
            assert await page(owner, "big") == (307, f"{relay.url}/r/big")
            assert await page(relay, "big") == (200, "")
            assert await cluster(owner).redis.get(relay_key("big")) == "relay"
            stray = await Client(owner.url).connect()
            errors = await stray.send("join", {"room": "big", "name": "Eve", "lang": "en", "audio": False,
                                               "video": False})
            assert [e["code"] for e in errors] == ["moved"]
            await cy.join()
            await dee.join()
            # the owner's publisher, on the relay
            await until(lambda: len(frames(cy, ana, "video")) >= 60, timeout=30)
            await until(lambda: len(frames(cy, ana, "audio")) >= 50)
            sent_video = ana.tracks["camera"].sent_payloads  # type: ignore[attr-defined]
            index = {data: i for i, data in enumerate(sent_video)}
            got = frames(cy, ana, "video")
            assert all(g in index for g in got), "a relayed frame differs from what the publisher sent"
            assert cy.received_from(ana.id, "video")[0].frames[0].keyframe  # type: ignore[arg-type]
            assert set(frames(cy, ana, "audio")) <= set(ana.tracks["mic"].sent_payloads)  # type: ignore[attr-defined]
            # the relay's publisher, on the owner
            await until(lambda: len(frames(bo, dee, "video")) >= 60, timeout=30)
            assert set(frames(bo, dee, "video")) <= set(dee.tracks["camera"].sent_payloads)  # type: ignore[attr-defined]
            owner_room = owner.server.sfu.rooms["big"]
            assert [p.is_piped for p in owner_room.publications.values() if p.owner == dee.id] == [True]
            assert not any(p.is_piped for p in owner_room.publications.values() if p.owner == ana.id)
            assert [p.name for p in relay.server.store.room("big").participants.values()] == ["Cy", "Dee"]  # type: ignore[union-attr]
            assert cluster(owner).stats()["spanning"] == 1 and cluster(relay).stats()["relaying"] == 1
        finally:
            if stray is not None:
                await stray.close()
            for c in (ana, bo, cy, dee):
                await c.close()
        # the room ended on its owner: the relay lets its half go, Redis forgets the span
        await until(lambda: not cluster(relay).spanning.relays("big"))
        assert await cluster(owner).redis.get(relay_key("big")) is None
        assert await cluster(owner).redis.hgetall(requests_key("relay")) == {}


async def test_a_full_room_with_no_other_node_stays_on_its_owner(tmp_path: Path, redis_url: str) -> None:
    async with node(tmp_path, redis_url, "alone", room_capacity=1) as alone:
        assert (await cluster(alone).leases.claim("small", "alone")).node == "alone"
        ana = await Client(alone.url).connect()
        bo = await Client(alone.url).connect()
        try:
            join = {"room": "small", "lang": "en", "audio": False, "video": False}
            assert await ana.send("join", {**join, "name": "Ana"}) == []
            assert await page(alone, "small") == (200, "")  # past capacity, but nowhere to go
            assert await bo.send("join", {**join, "name": "Bo"}) == []
            assert cluster(alone).stats()["spanning"] == 0
        finally:
            await ana.close()
            await bo.close()


async def test_a_relay_lets_a_room_go_when_its_owner_falls_silent(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spanning, "OWNER_SILENT_S", 0.5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead_owner:  # asks, then never speaks
        dead_owner.bind(("127.0.0.1", 0))
        async with node(tmp_path, redis_url, "relay") as relay:
            redis = cluster(relay).redis
            await redis.hset(requests_key("relay"), "quiet", f"127.0.0.1:{dead_owner.getsockname()[1]}")
            await until(lambda: cluster(relay).spanning.relays("quiet"))
            assert await redis.get(pipe_key("quiet", "relay")) is not None  # the relay answered
            await until(lambda: not cluster(relay).spanning.relays("quiet"))
            assert await redis.hgetall(requests_key("relay")) == {}
            assert await redis.get(pipe_key("quiet", "relay")) is None


def test_room_capacity_is_a_cluster_option_of_at_least_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--data-dir", str(tmp_path), "--room-capacity", "2"]) == 2
    assert "--room-capacity need --redis" in capsys.readouterr().err
    redis = ["--redis", "redis://127.0.0.1:1/0"]
    assert main(["serve", "--data-dir", str(tmp_path), *redis, "--room-capacity", "0"]) == 2
    assert "--room-capacity must be at least 1" in capsys.readouterr().err


async def test_a_last_n_set_on_the_owner_applies_at_once_on_the_relay(
    tmp_path: Path, redis_url: str, video: list[av.Packet]
) -> None:
    async with node(tmp_path, redis_url, "owner", room_capacity=2) as owner, node(tmp_path, redis_url, "relay") as relay:
        assert (await cluster(owner).leases.claim("big", "owner")).node == "owner"
        ana = HubClient(owner.url, "big", "Ana", video=video)
        bo = HubClient(owner.url, "big", "Bo", video=video)
        cy = HubClient(relay.url, "big", "Cy")
        try:
            await ana.join()
            await bo.join()
            assert await page(owner, "big") == (307, f"{relay.url}/r/big")
            await cy.join()
            await until(lambda: cluster(owner).people.listening and cluster(relay).people.listening)
            # Cy, on the relay, gets both cameras of the owner's half
            await until(lambda: len(frames(cy, ana, "video")) >= 10 and len(frames(cy, bo, "video")) >= 10, timeout=30)
            # Ana, host on the owner, lets each participant receive one camera only: at once on
            # the relay too, with nobody joining there
            since = len(cy.events)
            await ana.sio.emit("settings", {"lastN": 1})

            def forwarded() -> list[list[str]]:
                return [data["video"] for name, data in cy.events[since:] if name == "forwarding"]

            await until(lambda: any(len(video) == 1 for video in forwarded()))
            assert forwarded()[-1] in ([ana.id], [bo.id])
            assert relay.server.sfu.video_from(cy.id) == forwarded()[-1]  # type: ignore[arg-type]
            assert relay.server.store.room("big").settings.last_n == 1  # type: ignore[union-attr]
        finally:
            for c in (ana, bo, cy):
                await c.close()
