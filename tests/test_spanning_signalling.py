"""The people of a spanned room (``cluster/spanning.py``): roles, the participant list and host
controls across its two halves — two cluster nodes in this process on a real redis-server, the
owner taking two participants of a room and the relay the rest."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cluster import ClusterConfig, ClusterNode
from hubtest import RunningHub, running_hub
from sigclient import Client, until
from signalling.auth import Security, TokenSigner
from test_spanning import FAST, free_port, page
from unionhub.app import CLUSTER_KEY

SECRET = "spanning-signalling-secret-long-enough-for-hs256"


@contextlib.asynccontextmanager
async def node(tmp_path: Path, redis_url: str, node_id: str, **options: Any) -> AsyncIterator[RunningHub]:
    port = free_port()
    config = ClusterConfig(redis_url, node_id, f"http://127.0.0.1:{port}", **FAST, **options)  # type: ignore[arg-type]
    security = Security(signer=TokenSigner(SECRET))
    async with running_hub(tmp_path / node_id, port=port, cluster=config, recordings=False, live=False,
                           security=security) as hub:
        await until(lambda: hub.app[CLUSTER_KEY].registry.beats > 0)
        yield hub


def cluster(hub: RunningHub) -> ClusterNode:
    return hub.app[CLUSTER_KEY]


@contextlib.asynccontextmanager
async def spanned(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[RunningHub, RunningHub, Client, Client]]:
    """Owner and relay of room "big", spanned: Ana (host, browser "browser-ana") and Bo (browser
    "browser-bo") on the owner, which is full with them; both nodes listen for the other's host
    controls."""
    async with node(tmp_path, redis_url, "owner", room_capacity=2) as owner, node(tmp_path, redis_url, "relay") as relay:
        assert (await cluster(owner).leases.claim("big", "owner")).node == "owner"
        ana = await Client(owner.url).connect()
        bo = await Client(owner.url).connect()
        try:
            assert (await ana.join("big", "Ana", client="browser-ana"))["role"] == "host"
            assert (await bo.join("big", "Bo", client="browser-bo"))["role"] == "speaker"
            assert await page(owner, "big") == (307, f"{relay.url}/r/big")  # full: it spans
            assert cluster(relay).spanning.relays("big")
            await until(lambda: cluster(owner).people.listening and cluster(relay).people.listening)
            yield owner, relay, ana, bo
        finally:
            await ana.close()
            await bo.close()


async def test_nobody_hosts_a_relayed_half_by_walking_into_it(tmp_path: Path, redis_url: str) -> None:
    async with spanned(tmp_path, redis_url) as (_owner, relay, ana, bo):
        cy = await Client(relay.url).connect()
        bo_again = await Client(relay.url).connect()
        fay = await Client(relay.url).connect()
        dee = await Client(relay.url).connect()
        try:
            # the first person on the relay, in an open room without a link: not a host
            assert (await cy.join("big", "Cy", client="browser-cy"))["role"] == "speaker"
            # a host on the owner makes Bo a host; Bo reloads and is sent to the relay: still host
            bo_id = (await bo.wait_for("joined"))["id"]
            assert await ana.send("role", {"id": bo_id, "role": "host"}) == []
            await bo.close()
            assert (await bo_again.join("big", "Bo", client="browser-bo"))["role"] == "host"
            # a host link still makes a host there
            token = TokenSigner(SECRET).create("big", "host", "Fay")
            assert (await fay.join("big", "Fay", token=token))["role"] == "host"
            # the relay's hosts leave: nobody left on the relay is promoted by seniority
            await bo_again.close()
            await fay.close()
            await until(lambda: len(relay.server.store.room("big").participants) == 1)  # type: ignore[union-attr]
            assert [p.role for p in relay.server.store.room("big").participants.values()] == ["speaker"]  # type: ignore[union-attr]
            assert (await dee.join("big", "Dee"))["role"] == "speaker"
        finally:
            for c in (cy, bo_again, fay, dee):
                await c.close()


def names(joined: dict[str, Any]) -> list[str]:
    return sorted(p["name"] for p in joined["participants"])


async def test_everyone_of_a_spanned_room_is_listed_on_both_halves(tmp_path: Path, redis_url: str) -> None:
    async with spanned(tmp_path, redis_url) as (owner, relay, _ana, bo):
        cy = await Client(relay.url).connect()
        eve = await Client(owner.url).connect()
        try:
            # on the relay, the owner's people (there before the room spanned)
            assert names(await cy.join("big", "Cy")) == ["Ana", "Bo"]
            assert await cy.send("hand", {"raised": True}) == []
            # on the owner, the relay's people, as they are now (Cy's hand is up)
            await bo.close()
            await until(lambda: len(owner.server.store.room("big").participants) == 1)  # type: ignore[union-attr]
            joined = await eve.join("big", "Eve")
            assert names(joined) == ["Ana", "Cy"]
            assert [p["hand"] for p in joined["participants"] if p["name"] == "Cy"] == [True]
            # and someone who left is no longer listed on the other half
            dee = await Client(relay.url).connect()
            try:
                assert names(await dee.join("big", "Dee")) == ["Ana", "Cy", "Eve"]
            finally:
                await dee.close()
        finally:
            await cy.close()
            await eve.close()


async def test_host_controls_reach_the_other_half(tmp_path: Path, redis_url: str) -> None:
    async with spanned(tmp_path, redis_url) as (owner, relay, ana, bo):
        cy = await Client(relay.url).connect()
        fay = await Client(relay.url).connect()
        try:
            cy_id = (await cy.join("big", "Cy", audio=True, client="browser-cy"))["id"]
            token = TokenSigner(SECRET).create("big", "host", "Fay")
            assert (await fay.join("big", "Fay", token=token))["role"] == "host"
            bo_id = (await bo.wait_for("joined"))["id"]
            # a host on the owner mutes someone on the relay: the relay mutes them
            assert await ana.send("mute", {"id": cy_id}) == []
            assert (await cy.wait_for("muted"))["name"] == "Ana"
            await ana.wait_for("participant-updated", lambda p: p["id"] == cy_id and p["audio"] is False)
            assert relay.server.store.participant_by_id(cy_id).audio is False  # type: ignore[union-attr]
            # and removes them, banned: their browser cannot come back on the relay
            assert await ana.send("remove", {"id": cy_id, "ban": True}) == []
            assert (await cy.wait_for("removed"))["name"] == "Ana"
            await until(lambda: relay.server.store.participant_by_id(cy_id) is None)
            back = await Client(relay.url).connect()
            try:
                errors = await back.send("join", {"room": "big", "name": "Cy again", "lang": "en", "audio": False,
                                                  "video": False, "client": "browser-cy"})
                assert [e["code"] for e in errors] == ["banned"]
            finally:
                await back.close()
            # a host on the relay mutes everyone: the owner's people too (not the host)
            assert await fay.send("mute", {"all": True}) == []
            assert (await bo.wait_for("muted"))["name"] == "Fay"
            assert (await ana.wait_for("muted"))["name"] == "Fay"
            # and removes someone on the owner
            assert await fay.send("remove", {"id": bo_id}) == []
            assert (await bo.wait_for("removed"))["name"] == "Fay"
            await until(lambda: owner.server.store.participant_by_id(bo_id) is None)
            # nobody by that id on either half: refused as before
            assert [e["code"] for e in await fay.send("mute", {"id": "0123456789ab"})] == ["no-such-participant"]
        finally:
            await cy.close()
            await fay.close()


async def test_a_ban_a_role_and_a_lock_hold_on_both_halves(tmp_path: Path, redis_url: str) -> None:
    async with spanned(tmp_path, redis_url) as (owner, relay, ana, bo):
        cy = await Client(relay.url).connect()
        fay = await Client(relay.url).connect()
        try:
            cy_id = (await cy.join("big", "Cy", client="browser-cy"))["id"]
            await fay.join("big", "Fay", token=TokenSigner(SECRET).create("big", "host", "Fay"))
            # the relay's host bans Cy; then the owner's host makes Bo a host (the owner saves
            # the room's state after the relay did)
            assert await fay.send("remove", {"id": cy_id, "ban": True}) == []
            bo_id = (await bo.wait_for("joined"))["id"]
            assert await ana.send("role", {"id": bo_id, "role": "host"}) == []
            state = await cluster(owner).states.load("big")
            assert state is not None
            assert "browser-cy" in state["banned_clients"] and state["admitted"]["browser-bo"] == "host"
            # Cy's browser is turned away on both halves (the owner has room again once Bo left)
            await bo.close()
            await until(lambda: len(owner.server.store.room("big").participants) == 1)  # type: ignore[union-attr]
            for hub in (owner, relay):
                back = await Client(hub.url).connect()
                try:
                    errors = await back.send("join", {"room": "big", "name": "Cy", "lang": "en", "audio": False,
                                                      "video": False, "client": "browser-cy"})
                    assert [e["code"] for e in errors] == ["banned"], hub.url
                finally:
                    await back.close()
            # the owner's host locks the room: nobody new gets into the relay's half either
            assert await ana.send("settings", {"locked": True}) == []
            late = await Client(relay.url).connect()
            try:
                errors = await late.send("join", {"room": "big", "name": "Gus", "lang": "en", "audio": False,
                                                  "video": False})
                assert [e["code"] for e in errors] == ["room-locked"]
            finally:
                await late.close()
        finally:
            await cy.close()
            await fay.close()


async def test_roles_and_the_end_of_the_meeting_reach_the_other_half(tmp_path: Path, redis_url: str) -> None:
    async with spanned(tmp_path, redis_url) as (owner, relay, ana, bo):
        cy = await Client(relay.url).connect()
        dee = await Client(relay.url).connect()
        try:
            cy_id = (await cy.join("big", "Cy", client="browser-cy"))["id"]
            await dee.join("big", "Dee")
            # the owner's host makes Cy, on the relay, a host: Cy gets the host's view there
            assert await ana.send("role", {"id": cy_id, "role": "host"}) == []
            await ana.wait_for("participant-updated", lambda p: p["id"] == cy_id and p["role"] == "host")
            assert relay.server.store.participant_by_id(cy_id).role == "host"  # type: ignore[union-attr]
            # Cy, a host now, ends the meeting: everyone on both halves is let go
            await cy.sio.emit("end", {})  # (no answer: the server lets Cy go too)
            for client in (ana, bo, dee):
                assert (await client.wait_for("ended"))["name"] == "Cy"
            await until(lambda: owner.server.store.room("big") is None and relay.server.store.room("big") is None)
            # not resumed by reconnecting (once the end is through: its last steps follow the leaves)
            await until(lambda: owner.server.store.find("big") is None)
        finally:
            await cy.close()
            await dee.close()


async def test_a_host_on_the_owner_answers_knocks_on_the_relay(tmp_path: Path, redis_url: str) -> None:
    async with spanned(tmp_path, redis_url) as (_owner, relay, ana, _bo):
        assert await ana.send("settings", {"access": "lobby"}) == []
        gus = await Client(relay.url).connect()
        hal = await Client(relay.url).connect()
        try:
            ask = {"room": "big", "lang": "en", "audio": False, "video": False}
            # nobody is in the relay's half: Gus waits in its lobby all the same, and so does Hal
            assert await gus.send("join", {**ask, "name": "Gus"}) == []
            assert (await gus.wait_for("lobby"))["state"] == "waiting"
            assert await hal.send("join", {**ask, "name": "Hal"}) == []
            knock = await ana.wait_for("knock", lambda k: k["name"] == "Gus")
            assert await ana.send("admit", {"id": knock["id"]}) == []
            assert (await gus.wait_for("joined"))["role"] == "speaker"
            assert [p.name for p in relay.server.store.room("big").participants.values()] == ["Gus"]  # type: ignore[union-attr]
            # Hal is turned away from the owner
            knock = await ana.wait_for("knock", lambda k: k["name"] == "Hal")
            assert await ana.send("reject", {"id": knock["id"]}) == []
            refused = await hal.wait_for("error", lambda e: e.get("event") == "join")
            assert (refused["code"], refused["reason"]) == ("rejected", "turned-away")
            assert not hal.received("joined")
        finally:
            await gus.close()
            await hal.close()
