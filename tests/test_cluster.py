"""Hubs as nodes of a Redis cluster (issue #13, cluster/), two nodes in this process on a real
redis-server: nodes announce themselves and expire, a room gets one owner whichever node is
asked, the page of a room on another node redirects there, a join on the wrong node is refused
with ``moved``, the lease goes when the room ends, and python-socketio's Redis manager carries
emits between the nodes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cluster import ClusterConfig
from cluster.leases import owner_key
from hubtest import RunningHub, running_hub
from redistest import RedisServer
from sigclient import Client, until
from signalling.meeting import room_key
from unionhub.app import CLUSTER_KEY, SIGNALLING_KEY

FAST = {"heartbeat": 0.2, "node_ttl": 1.0, "lease_ttl": 1.5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def node(tmp_path: Path, redis_url: str, node_id: str) -> AsyncIterator[RunningHub]:
    port = free_port()
    config = ClusterConfig(redis_url, node_id, f"http://127.0.0.1:{port}", **FAST)  # type: ignore[arg-type]
    cm = running_hub(tmp_path / node_id, port=port, cluster=config, recordings=False, live=False)
    hub = await cm.__aenter__()
    await until(lambda: hub.app[CLUSTER_KEY].registry.beats > 0)
    try:
        yield hub
    finally:
        # (about one run in fifteen, a node's shutdown here has not finished within a minute, not
        # reproduced under observation: on such a hang, say where every task is, then move on)
        closing = asyncio.ensure_future(cm.__aexit__(None, None, None))
        done, _ = await asyncio.wait({closing}, timeout=20)
        if not done:
            stacks = io.StringIO()
            for task in asyncio.all_tasks():
                task.print_stack(file=stacks)
            closing.cancel()
            warnings.warn(f"node {node_id} did not shut down within 20 s; its tasks:\n{stacks.getvalue()}",
                          stacklevel=1)


@pytest.fixture
async def nodes(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[RunningHub, RunningHub]]:
    async with node(tmp_path, redis_url, "n1") as n1, node(tmp_path, redis_url, "n2") as n2:
        yield n1, n2


async def page(hub: RunningHub, room: str, query: str = "") -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{hub.url}/r/{room}{query}", allow_redirects=False) as r:
        return r.status, r.headers.get("Location", "")


async def joined(hub: RunningHub, room: str, name: str) -> tuple[Client, list[dict[str, Any]]]:
    client = await Client(hub.url).connect()
    errors = await client.send("join", {"room": room, "name": name, "lang": "en", "audio": False, "video": False})
    return client, errors


async def test_nodes_announce_themselves_with_their_load_and_leave(nodes: tuple[RunningHub, RunningHub]) -> None:
    n1, n2 = nodes
    live = await n1.app[CLUSTER_KEY].registry.live()
    assert {(n.id, n.url) for n in live} == {("n1", n1.url), ("n2", n2.url)}
    assert (await n1.app[CLUSTER_KEY].leases.claim("busy", "n1")).node == "n1"
    client, errors = await joined(n1, "busy", "Ana")
    assert errors == []
    registry = n2.app[CLUSTER_KEY].registry
    for _ in range(50):  # the next heartbeats carry it
        by_id = {n.id: n for n in await registry.live()}
        if by_id["n1"].load.rooms == 1:
            break
        await asyncio.sleep(0.1)
    assert by_id["n1"].load.rooms == 1 and by_id["n1"].load.peers == 1
    assert by_id["n2"].load.rooms == 0
    await client.close()
    # a node that shuts down leaves at once
    await n2.app[CLUSTER_KEY].close()
    assert [n.id for n in await n1.app[CLUSTER_KEY].registry.live()] == ["n1"]


async def test_every_node_sends_a_room_s_people_to_its_one_owner(nodes: tuple[RunningHub, RunningHub]) -> None:
    n1, n2 = nodes
    owners = set()
    for i in range(8):  # rooms are placed on both nodes, and each room on one only
        room = f"branch-{i}"
        status1, location1 = await page(n1, room, "?name=Ana")
        status2, location2 = await page(n2, room)
        if status1 == 200:
            owner = n1
            assert (status2, location2) == (307, f"{n1.url}/r/{room}")
        else:
            owner = n2
            assert (status1, location1) == (307, f"{n2.url}/r/{room}?name=Ana")  # the query goes along
            assert status2 == 200
        owners.add(owner.url)
        other = n2 if owner is n1 else n1
        # a join on the other node is refused; on the owner it works
        stray, errors = await joined(other, room, "Bo")
        assert [e["code"] for e in errors] == ["moved"]
        ana, errors = await joined(owner, room, "Ana")
        assert errors == []
        await ana.close()
        await stray.close()
    assert owners == {n1.url, n2.url}, "two choices spread rooms over both nodes"


async def test_the_lease_goes_when_the_room_ends(nodes: tuple[RunningHub, RunningHub]) -> None:
    n1, _ = nodes
    cluster = n1.app[CLUSTER_KEY]
    lease = await cluster.leases.claim("short", "n1")
    assert lease.node == "n1"
    ana, errors = await joined(n1, "short", "Ana")
    assert errors == []
    await asyncio.sleep(2 * FAST["lease_ttl"])  # renewed while the room lives
    assert await cluster.redis.get(owner_key("short")) == lease.value
    await ana.close()
    await until(lambda: "short" not in cluster.leases.held)
    assert await cluster.redis.get(owner_key("short")) is None


async def test_a_room_whose_owner_stopped_beating_is_taken_over(nodes: tuple[RunningHub, RunningHub]) -> None:
    n1, n2 = nodes
    cluster = n1.app[CLUSTER_KEY]
    # a lease held by a node that no longer beats (killed): its heartbeat key is gone
    await cluster.redis.set(owner_key("orphan"), "n9 7", px=60_000)
    status, _ = await page(n2, "orphan")
    assert status == 200 or (await page(n1, "orphan"))[0] == 200
    owner = await cluster.leases.owner("orphan")
    assert owner is not None and owner.node in ("n1", "n2")
    assert owner.epoch > 7, "the new owner's fencing epoch is above the dead one's"


async def test_python_socketio_emits_cross_nodes_through_redis(nodes: tuple[RunningHub, RunningHub]) -> None:
    n1, n2 = nodes
    status, _ = await page(n1, "bridge")
    owner, other = (n1, n2) if status == 200 else (n2, n1)
    ana, errors = await joined(owner, "bridge", "Ana")
    assert errors == []
    # the other node's Socket.IO server emits to the room: Redis carries it to Ana's node
    await other.server.sio.emit("notice", {"text": "hello from the other node"}, room=room_key("bridge"))
    await until(lambda: ("notice", {"text": "hello from the other node"}) in ana.events)
    await ana.close()


async def test_a_meeting_carries_on_while_redis_is_paused(nodes: tuple[RunningHub, RunningHub], redis: RedisServer) -> None:
    n1, n2 = nodes
    cluster = n1.app[CLUSTER_KEY]
    await cluster.leases.claim("steady", "n1")
    ana, errors = await joined(n1, "steady", "Ana")
    bo, more = await joined(n1, "steady", "Bo")
    assert errors == more == []
    os.kill(redis.pid, signal.SIGSTOP)  # longer than a lease and a node's heartbeat live
    try:
        started = time.monotonic()
        assert await ana.send("chat", {"text": "still here"}) == []
        await until(lambda: any(e == "chat" and d["text"] == "still here" for e, d in bo.events), timeout=5)
        assert time.monotonic() - started < 2.0, "an emit does not wait for Redis"
        # a new room cannot be placed: the page says so, with a time to retry
        async with aiohttp.ClientSession() as http, http.get(f"{n2.url}/r/newroom", allow_redirects=False) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "5"
        # ...and a join into it is refused with a reason, while the meeting in progress takes one
        cai, errors = await joined(n2, "newroom", "Cai")
        assert [e["code"] for e in errors] == ["unavailable"]
        await cai.close()
        await asyncio.sleep(3 * FAST["lease_ttl"])
    finally:
        os.kill(redis.pid, signal.SIGCONT)
    # Redis is back: n1 still owns its room (its lease expired while nobody could take it)
    await until(lambda: cluster.registry.healthy and "steady" in cluster.leases.held, timeout=10)
    for _ in range(50):
        owner = await cluster.leases.owner("steady")
        if owner is not None:
            break
        await asyncio.sleep(0.1)
    assert owner is not None and owner.node == "n1"
    assert (await page(n2, "steady"))[1] == f"{n1.url}/r/steady"
    assert (await page(n2, "newroom"))[0] in (200, 307)
    await ana.close()
    await bo.close()


async def test_a_room_placed_again_keeps_its_passcode_bans_and_hosts(nodes: tuple[RunningHub, RunningHub]) -> None:
    n1, n2 = nodes
    one, two = n1.app[CLUSTER_KEY], n2.app[CLUSTER_KEY]
    await one.leases.claim("kept", "n1")
    host = await Client(n1.url).connect()
    assert (await host.join("kept", "Hana", client="a" * 32))["role"] == "host"
    bo, errors = await joined(n1, "kept", "Bo")
    assert errors == []
    bo_id = next(p["id"] for p in host.received("participant-joined") if p["name"] == "Bo")
    assert await host.send("remove", {"id": bo_id, "ban": True}) == []
    assert await host.send("settings", {"access": "passcode", "passcode": "solidarity-1"}) == []
    saved = await one.redis.get("uh:room:kept:state")
    assert saved is not None and "solidarity-1" not in saved, "the passcode is kept hashed only"
    await host.close()
    await bo.close()
    # the owner goes away (its leases and heartbeat with it); the room is placed on n2
    await one.close()
    assert (await page(n2, "kept"))[0] == 200
    guest, errors = await joined(n2, "kept", "Cai")
    assert [e["code"] for e in errors] == ["passcode-required"]
    errors = await guest.send("join", {"room": "kept", "name": "Cai", "lang": "en", "passcode": "wrong-one"})
    assert [e["code"] for e in errors] == ["bad-passcode"]
    again, errors = await joined(n2, "kept", "Bo")
    assert [e["code"] for e in errors] == ["banned"]
    # the host's browser is still the host, and needs no passcode (as on the node it left)
    host = await Client(n2.url).connect()
    joined_again = await host.join("kept", "Hana", client="a" * 32)
    assert joined_again["role"] == "host"
    assert joined_again["settings"]["access"] == "passcode"
    assert two.restored == 1
    for c in (guest, again, host):
        await c.close()


async def test_a_draining_node_hands_its_rooms_to_another_and_sends_their_people_there(
    nodes: tuple[RunningHub, RunningHub],
) -> None:
    n1, n2 = nodes
    one, two = n1.app[CLUSTER_KEY], n2.app[CLUSTER_KEY]
    before = await one.leases.claim("congress", "n1")
    host = await Client(n1.url).connect()
    assert (await host.join("congress", "Hana", client="b" * 32))["role"] == "host"
    assert await host.send("settings", {"access": "lobby"}) == []
    waiting = await Client(n1.url).connect()
    assert await waiting.send("join", {"room": "congress", "name": "Wen", "lang": "en"}) == []
    await waiting.wait_for("lobby")
    await one.drain()  # what SIGTERM runs before the server closes
    moved = await host.wait_for("moved")
    assert moved["url"] == f"{n2.url}/r/congress" and moved["message"]
    assert (await waiting.wait_for("moved"))["url"] == f"{n2.url}/r/congress", "the lobby is told too"
    after = await one.leases.owner("congress")
    assert after is not None and after.node == "n2" and after.epoch > before.epoch
    assert "congress" not in one.leases.held and one.stats()["moved"] == 1
    # the drained node places nothing more on itself, and sends a new room's people elsewhere
    assert [n.id for n in await two.registry.live()] == ["n2"]
    assert await page(n1, "new-room") == (307, f"{n2.url}/r/new-room")
    # on the new owner the room is as it was: the host's browser hosts it, with its lobby
    back = await Client(n2.url).connect()
    joined_again = await back.join("congress", "Hana", client="b" * 32)
    assert joined_again["role"] == "host" and joined_again["settings"]["access"] == "lobby"
    for c in (host, waiting, back):
        await c.close()


async def test_a_node_that_lost_a_room_s_lease_sends_its_people_to_the_new_owner(
    nodes: tuple[RunningHub, RunningHub],
) -> None:
    n1, n2 = nodes
    one = n1.app[CLUSTER_KEY]
    lease = await one.leases.claim("split", "n1")
    ana = await Client(n1.url).connect()
    await ana.join("split", "Ana")
    # n1 was cut off from Redis longer than a lease, and n2 placed the room meanwhile
    await one.redis.set(owner_key("split"), f"n2 {lease.epoch + 1}", px=60_000)
    moved = await ana.wait_for("moved")
    assert moved["url"] == f"{n2.url}/r/split"
    await until(lambda: n1.app[SIGNALLING_KEY].store.room("split") is None)
    assert await one.redis.get(owner_key("split")) == f"n2 {lease.epoch + 1}", "n1 left the new owner's lease alone"
    await ana.close()


async def test_behind_a_front_proxy_the_page_names_the_owner_node(tmp_path: Path, redis_url: str) -> None:
    front = "http://front.example:8080"
    hubs = []
    async with contextlib.AsyncExitStack() as stack:
        for node_id in ("f1", "f2"):
            config = ClusterConfig(redis_url, node_id, front, front=True, **FAST)  # type: ignore[arg-type]
            hub = await stack.enter_async_context(running_hub(tmp_path / node_id, port=free_port(), cluster=config,
                                                              recordings=False, live=True))
            await until(lambda hub=hub: hub.app[CLUSTER_KEY].registry.beats > 0)
            hubs.append(hub)
        f1, f2 = hubs
        await f1.app[CLUSTER_KEY].leases.claim("hall", "f1")
        # whichever node the proxy picked, the page is sent to the same origin, naming the owner
        assert await page(f2, "hall", "?name=Ana") == (307, "/r/hall?name=Ana&node=f1")
        assert await page(f1, "hall", "?name=Ana") == (307, "/r/hall?name=Ana&node=f1")
        assert await page(f1, "hall", "?name=Ana&node=f1") == (200, "")
        # a stale name (the node that owned it before) is corrected, not served
        assert await page(f2, "hall", "?node=f2") == (307, "/r/hall?node=f1")
        # a live stream's page names the owner too (its HLS is there), with a cookie for the
        # playlists' relative URLs; a room nobody owns is not placed by a viewer
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{f2.url}/live/hall", allow_redirects=False) as r:
                assert (r.status, r.headers.get("Location")) == (307, "/live/hall?node=f1")
            async with http.get(f"{f1.url}/live/hall?node=f1", allow_redirects=False) as r:
                assert r.status == 200
                cookie = r.cookies["uh_node"]
                assert cookie.value == "f1" and cookie["path"] == "/live/hall/"
            async with http.get(f"{f2.url}/live/nobody-here", allow_redirects=False) as r:
                assert r.status == 200
        assert await f1.app[CLUSTER_KEY].leases.owner("nobody-here") is None
        # a draining owner hands the room on and names the new owner on the same origin
        ana = await Client(f1.url).connect()
        await ana.join("hall", "Ana")
        await f1.app[CLUSTER_KEY].drain()
        assert (await ana.wait_for("moved"))["url"] == "/r/hall?node=f2"
        await ana.close()


async def test_a_room_placed_but_never_joined_lets_its_lease_go(nodes: tuple[RunningHub, RunningHub]) -> None:
    n1, _ = nodes
    one = n1.app[CLUSTER_KEY]
    await one.leases.claim("opened-only", "n1")
    await one.leases.claim("in-use", "n1")
    ana = await Client(n1.url).connect()
    await ana.join("in-use", "Ana")
    assert await one.release_unused(after=0.2) == []  # first seen empty now
    await asyncio.sleep(0.3)
    assert await one.release_unused(after=0.2) == ["opened-only"]
    assert await one.redis.get(owner_key("opened-only")) is None
    assert set(one.leases.held) == {"in-use"}, "a room someone is in keeps its lease"
    await ana.close()


async def test_an_interpreter_made_by_a_host_is_one_again_on_the_room_s_next_node(
    nodes: tuple[RunningHub, RunningHub],
) -> None:
    """The interpreters' browsers are part of the room's durable state: when the room moves,
    Lucía's voice must not reach the floor on the new node."""
    n1, n2 = nodes
    await n1.app[CLUSTER_KEY].leases.claim("booth", "n1")
    host = await Client(n1.url).connect()
    await host.join("booth", "Hana", client="h" * 32)
    lucia = await Client(n1.url).connect()
    joined = await lucia.join("booth", "Lucía", audio=True, client="l" * 32)
    assert await host.send("interpreter", {"id": joined["id"], "lang": "es"}) == []
    saved = await n1.app[CLUSTER_KEY].redis.get("uh:room:booth:state")
    assert saved is not None and '"interpreting": {"' + "l" * 32 + '": "es"}' in saved
    await n1.app[CLUSTER_KEY].drain()
    for c in (host, lucia):
        await c.wait_for("moved")
        await c.close()
    back = await Client(n2.url).connect()
    again = await back.join("booth", "Lucía", audio=True, client="l" * 32)
    channels = again["interpretation"]["channels"]
    assert [c["lang"] for c in channels] == ["es"], "she is in the Spanish booth again, not on the floor"
    await back.close()
