"""The lobby of a spanned room is one lobby (``cluster/people.py``, ``signalling/moderation.py``):
a host opening it lets in the knockers of both halves, a host who joins or is made host later is
shown the knockers of both halves, and a knocker on the relay keeps waiting when the relay's
half empties — two cluster nodes in this process on a real redis-server; and,
on one hub, the knockers of a room that empties are told so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubtest import RunningHub
from sigclient import Client, Connect, until
from signalling.auth import TokenSigner
from test_spanning_signalling import SECRET, spanned

ASK = {"room": "big", "lang": "en", "audio": False, "video": False}


async def knock(client: Client, name: str, room: str = "big") -> None:
    assert await client.send("join", {**ASK, "room": room, "name": name}) == []
    assert (await client.wait_for("lobby"))["state"] == "waiting"


def names(joined: dict[str, Any]) -> list[str]:
    return sorted(p["name"] for p in joined["participants"])


async def test_a_host_opening_the_lobby_lets_in_the_other_halfs_knockers(tmp_path: Path, redis_url: str) -> None:
    async with spanned(tmp_path, redis_url) as (_owner, relay, ana, _bo):
        assert await ana.send("settings", {"access": "lobby"}) == []
        gus = await Client(relay.url).connect()
        try:
            await knock(gus, "Gus")  # on the relay, whose half nobody is in yet
            shown = await ana.wait_for("knock", lambda k: k["name"] == "Gus")
            # the owner's host opens the room: Gus, waiting on the other half, is let in
            assert await ana.send("settings", {"access": "open"}) == []
            joined = await gus.wait_for("joined")
            assert joined["role"] == "speaker" and names(joined) == ["Ana", "Bo"]
            assert joined["settings"]["access"] == "open"
            await ana.wait_for("knock-left", lambda k: k["id"] == shown["id"])  # off the host's list
            assert [p.name for p in relay.server.store.room("big").participants.values()] == ["Gus"]  # type: ignore[union-attr]
        finally:
            await gus.close()


async def test_a_later_host_is_shown_the_other_halfs_knockers(tmp_path: Path, redis_url: str) -> None:
    async with spanned(tmp_path, redis_url) as (owner, relay, ana, bo):
        assert await ana.send("settings", {"access": "lobby"}) == []
        gus, hal, eve = (await Client(relay.url).connect(), await Client(relay.url).connect(),
                         await Client(owner.url).connect())
        try:
            await knock(gus, "Gus")
            await knock(hal, "Hal")
            shown = await ana.wait_for("knock", lambda k: k["name"] == "Gus")
            await ana.wait_for("knock", lambda k: k["name"] == "Hal")
            await hal.close()  # Hal gives up
            await ana.wait_for("knock-left", lambda k: k["id"] != shown["id"])
            # Bo, made a host on the owner, is shown Gus, knocking on the relay
            bo_id = (await bo.wait_for("joined"))["id"]
            assert await ana.send("role", {"id": bo_id, "role": "host"}) == []
            assert (await bo.wait_for("knock"))["name"] == "Gus"
            assert [k["name"] for k in bo.received("knock")] == ["Gus"]
            # Eve, a host joining the owner later, finds Gus in her lobby
            await bo.close()
            await until(lambda: len(owner.server.store.room("big").participants) == 1)  # type: ignore[union-attr]
            joined = await eve.join("big", "Eve", token=TokenSigner(SECRET).create("big", "host", "Eve"))
            assert joined["role"] == "host" and [k["name"] for k in joined["lobby"]] == ["Gus"]
            # and lets Gus in from there
            assert await eve.send("admit", {"id": joined["lobby"][0]["id"]}) == []
            assert (await gus.wait_for("joined"))["role"] == "speaker"
        finally:
            for c in (gus, hal, eve):
                await c.close()


async def test_a_knocker_on_the_relay_keeps_waiting_when_its_half_empties(tmp_path: Path, redis_url: str) -> None:
    async with spanned(tmp_path, redis_url) as (_owner, relay, ana, _bo):
        cy = await Client(relay.url).connect()
        gus = await Client(relay.url).connect()
        try:
            await cy.join("big", "Cy")
            assert await ana.send("settings", {"access": "lobby"}) == []
            await knock(gus, "Gus")
            shown = await ana.wait_for("knock", lambda k: k["name"] == "Gus")
            # the last person of the relay's half leaves: the meeting goes on on the owner
            await cy.close()
            await until(lambda: relay.server.store.room("big") is None)
            await gus.sync()
            assert gus.received("error") == [] and gus.sio.connected
            # and the owner's host can still let Gus in
            assert await ana.send("admit", {"id": shown["id"]}) == []
            joined = await gus.wait_for("joined")
            assert names(joined) == ["Ana", "Bo"]
        finally:
            await cy.close()
            await gus.close()


async def test_knockers_are_told_when_the_last_person_leaves(hub: RunningHub, connect: Connect) -> None:
    ana, gus = await connect(hub.url), await connect(hub.url)
    await ana.join("small", "Ana")
    assert await ana.send("settings", {"access": "lobby"}) == []
    await knock(gus, "Gus", "small")
    await ana.wait_for("knock", lambda k: k["name"] == "Gus")
    await ana.close()  # the only one who could let Gus in
    refused = await gus.wait_for("error", lambda e: e.get("event") == "join")
    assert (refused["code"], refused["reason"]) == ("rejected", "ended-before-admitted")
    assert not gus.received("joined")
