"""A spanned room's half on a node that is killed leaves the other half's participant list
(``ClusterNode``'s watch on heartbeats, ``SpannedPeople.sweep``): the owner in this process, the
relay a real ``unionhub serve`` process killed with SIGKILL, on a real redis-server; and a node
whose heartbeat is missing only briefly (Redis was paused) keeps its people listed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from cluster.people import SpannedPeople, people_key
from core.redis import connect
from sigclient import Client, until
from test_spanning import cluster, free_port, node, page


async def test_the_people_of_a_killed_relay_leave_the_owners_list(tmp_path: Path, redis_url: str) -> None:
    async with node(tmp_path, redis_url, "owner", room_capacity=2) as owner:
        port = free_port()
        relay_url = f"http://127.0.0.1:{port}"
        log = (tmp_path / "relay.log").open("ab")
        relay = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("unionhub")), "serve", "--port", str(port),
            "--data-dir", str(tmp_path / "relay"), "--asr-model", "none", "--no-recordings", "--no-live",
            "--redis", redis_url, "--node-id", "relay", stdout=log, stderr=log,
        )
        ana, bo, cy, eve = Client(owner.url), Client(owner.url), Client(relay_url), Client(owner.url)
        try:
            async with asyncio.timeout(60):
                while await cluster(owner).registry.url_of("relay") is None:
                    await asyncio.sleep(0.1)
            assert (await cluster(owner).leases.claim("big", "owner")).node == "owner"
            await ana.connect()
            await bo.connect()
            await ana.join("big", "Ana")
            await bo.join("big", "Bo")
            assert await page(owner, "big") == (307, f"{relay_url}/r/big")  # full: it spans
            await cy.connect()
            cy_id = (await cy.join("big", "Cy"))["id"]
            await ana.wait_for("participant-joined", lambda p: p["id"] == cy_id)
            # the relay is killed: no leave, no disconnect is ever sent for Cy
            os.kill(relay.pid, signal.SIGKILL)
            await relay.wait()
            # once its heartbeat has expired, Cy leaves the list of the owner's people
            await until(lambda: any(p["id"] == cy_id for p in ana.received("participant-left")), timeout=30)
            assert [p["id"] for p in bo.received("participant-left")] == [cy_id]
            # and whoever joins the owner's half later is not shown Cy either
            await bo.close()
            await until(lambda: len(owner.server.store.room("big").participants) == 1)  # type: ignore[union-attr]
            await eve.connect()
            assert [p["name"] for p in (await eve.join("big", "Eve"))["participants"]] == ["Ana"]
        finally:
            if relay.returncode is None:
                relay.kill()
                await relay.wait()
            log.close()
            for c in (ana, bo, cy, eve):
                await c.close()


async def test_a_node_missing_only_briefly_keeps_its_people(redis_url: str) -> None:
    redis = connect(redis_url, decode_responses=True)
    people = SpannedPeople(redis, "owner", lambda room: True)
    relay = SpannedPeople(redis, "relay", lambda room: True)
    try:
        await people.changed("big", "ana", {"id": "ana", "name": "Ana"})
        await relay.changed("big", "cy", {"id": "cy", "name": "Cy"})
        # the relay's heartbeat is missing (every node's expires when Redis comes back from a
        # pause): within the grace nobody leaves, and the relay beating again resets it
        assert await people.sweep(["big"], {"owner"}, grace=0.3) == []
        await asyncio.sleep(0.3)
        assert await people.sweep(["big"], {"owner", "relay"}, grace=0.3) == []
        assert await people.sweep(["big"], {"owner"}, grace=0.3) == []
        assert set(await people.elsewhere("big")) == {"cy"}
        # missing for the whole grace: its people leave, once; this node's stay
        await asyncio.sleep(0.3)
        assert await people.sweep(["big"], {"owner"}, grace=0.3) == ["cy"]
        assert await people.sweep(["big"], {"owner"}, grace=0.3) == []
        assert set(await redis.hgetall(people_key("big"))) == {"ana"}
    finally:
        await redis.aclose()
