"""A scheduled session's room on the real hub (Socket.IO clients): it opens 15 minutes early
with the pair's roles — organisers host, members come straight in, strangers wait in the lobby —
and not before; a cancelled session's room stays shut."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from hubtest import RunningHub
from sigclient import Client, Connect
from twinningkit import PAIR, MakeHub, admin, call, security, sign_in, soon


async def scheduled(hub: RunningHub, http: aiohttp.ClientSession, minutes: float) -> tuple[dict[str, Any], dict[str, str]]:
    """A session starting in ``minutes``; the organiser's and the member's own join tokens."""
    organiser = await sign_in(hub, "olu@unison.test", "Olu")
    member = await sign_in(hub, "maria@sindsaude.test", "Maria")
    _, pair = await call(http, hub, "POST", "/api/twinnings", organiser, PAIR)
    await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", organiser,
               {"email": "maria@sindsaude.test", "name": "Maria", "branch": 1})
    status, session = await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/sessions", organiser,
                                 {"title": "Staffing", "start": soon(minutes, "Asia/Kolkata"), "timezone": "Asia/Kolkata"})
    assert status == 201, session
    tokens = {}
    for who, headers in [("organiser", organiser), ("member", member)]:
        _, view = await call(http, hub, "GET", f"/api/twinnings/{pair['id']}/sessions/{session['id']}", headers)
        tokens[who] = parse_qs(urlsplit(view["your_link"]).query)["token"][0]
    return session, tokens


async def join_errors(client: Client, room: str, **extra: Any) -> list[str]:
    errors = await client.send("join", {"room": room, "name": "Stranger", "lang": "en", "audio": False, "video": False,
                                        **extra})
    return [e["code"] for e in errors]


async def test_the_room_opens_early_with_the_pairs_roles(make_hub: MakeHub, connect: Connect) -> None:
    hub = await make_hub(security=security())
    async with aiohttp.ClientSession() as http:
        session, tokens = await scheduled(hub, http, 10)
    room = session["room"]
    stranger = await connect(hub.url)
    assert await join_errors(stranger, room) == ["rejected"]  # nobody is there to let them in yet

    member = await connect(hub.url)
    joined = await member.join(room, "ignored", token=tokens["member"])
    assert (joined["role"], joined["name"], joined["verified"]) == ("speaker", "Maria", True)
    assert joined["settings"]["access"] == "lobby"
    async with aiohttp.ClientSession() as http:
        _, page = await call(http, hub, "GET", f"/api/twinnings/{session['twinning']}", admin())
    assert page["activity"][0]["kind"] == "session-held"
    assert joined["twinning"]["title"] == "Staffing"

    stranger = await connect(hub.url)
    assert await join_errors(stranger, room) == []
    await stranger.wait_for("lobby", lambda d: d["state"] == "waiting")
    assert not stranger.received("joined")

    organiser = await connect(hub.url)
    joined = await organiser.join(room, "ignored", token=tokens["organiser"])
    assert (joined["role"], joined["name"]) == ("host", "Olu")
    knock = joined["lobby"][0] if joined.get("lobby") else await organiser.wait_for("knock")
    assert knock["name"] == "Stranger"
    assert await organiser.send("admit", {"id": knock["id"]}) == []
    await stranger.wait_for("joined")


async def test_the_room_is_shut_before_it_opens_and_once_cancelled(make_hub: MakeHub, connect: Connect) -> None:
    hub = await make_hub(security=security())
    async with aiohttp.ClientSession() as http:
        session, tokens = await scheduled(hub, http, 60)
        member = await connect(hub.url)
        assert await join_errors(member, session["room"], token=tokens["member"]) == ["not-open"]
        await call(http, hub, "DELETE", f"/api/twinnings/{session['twinning']}/sessions/{session['id']}", admin())
        assert await join_errors(member, session["room"], token=tokens["member"]) == ["session-cancelled"]
    stranger = await connect(hub.url)
    assert await join_errors(stranger, "tw-0123456789ab") == ["no-such-session"]
