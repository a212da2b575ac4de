"""Roles, access modes and host controls on the real hub (Socket.IO clients, real media for mute).

The authorization matrix runs each action as host, speaker and viewer in one room and checks
what the server answers; the other tests follow one user story each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt
import pytest

from hubtest import RunningHub
from sigclient import TIMEOUT, Client, Connect, eventually
from signalling.auth import IceConfig, IceServer, Security, TokenSigner
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video

SECRET = "moderation-test-secret-long-enough-for-hs256"
API_KEY = "integration-api-key-0123456789"
MakeHub = Callable[..., Awaitable[RunningHub]]


def security(token_only: bool = False) -> Security:
    return Security(
        signer=TokenSigner(SECRET), token_only=token_only, api_key=API_KEY,
        ice=IceConfig([IceServer.parse("stun:stun.example.org:3478"), IceServer.parse("turn:turn.example.org:3478")],
                      turn_secret="turn-shared-secret"),
    )


def link(room: str, role: str, name: str, ttl: float = 600) -> str:
    return TokenSigner(SECRET).create(room, role, name, ttl)


def codes(errors: list[dict[str, Any]]) -> list[str]:
    return [e["code"] for e in errors]


async def join_error(client: Client, payload: dict[str, Any]) -> dict[str, Any]:
    errors = await client.send("join", {"lang": "en", "audio": False, "video": False, **payload})
    assert len(errors) == 1, errors
    assert errors[0]["message"] and errors[0]["event"] == "join", errors
    assert not client.received("joined")
    return errors[0]


# -- the authorization matrix ------------------------------------------------------------------------

HOST_ONLY: dict[str, Any] = {
    "settings": {"locked": False},
    "mute": {"all": True},
    "record": {"on": False},
    "live-push": {"url": None},
    "end": None,  # run last: it ends the meeting
}


async def test_each_role_may_do_what_its_role_allows(make_hub: MakeHub, connect: Connect) -> None:
    hub = await make_hub(security=security())
    host, speaker, viewer = await connect(hub.url), await connect(hub.url), await connect(hub.url)
    h = await host.join("matrix", "", token=link("matrix", "host", "Hana"))
    s = await speaker.join("matrix", "Sam")
    v = await viewer.join("matrix", "", audio=True, video=True, token=link("matrix", "viewer", "Vic"))
    assert (h["role"], s["role"], v["role"]) == ("host", "speaker", "viewer")
    assert (h["verified"], s["verified"]) == (True, False)
    assert h["name"] == "Hana" and v["name"] == "Vic"
    # A viewer publishes nothing, whatever its join asked for, and may not start to.
    participant_v = await speaker.wait_for("participant-joined", lambda d: d["id"] == v["id"])
    assert participant_v["role"] == "viewer" and participant_v["audio"] is False and participant_v["video"] is False
    assert hub.server.sfu.peer(v["id"]) is not None and hub.server.sfu.sources_of(v["id"]) == set()
    assert codes(await viewer.send("publish", {"source": "screen"})) == ["forbidden"]

    # Everyone may talk, raise a hand and choose a caption language.
    for client in (host, speaker, viewer):
        assert await client.send("chat", {"text": "solidarity"}) == []
        assert await client.send("hand", {"raised": True}) == []
        assert await client.send("caption-language", {"lang": "es"}) == []

    # Host-only controls: speakers and viewers are refused and nothing changes.
    for client in (speaker, viewer):
        for event, payload in HOST_ONLY.items():
            assert codes(await client.send(event, payload)) == ["forbidden"], (event, payload)
        for event in ("mute", "stop-camera", "role", "remove", "admit", "reject"):
            payload = {"id": h["id"], "role": "viewer", "ban": True}
            if event != "role":
                payload.pop("role")
            assert codes(await client.send(event, payload)) == ["forbidden"], event
        assert codes(await client.send("live", {"on": True})) == ["forbidden"]
    assert hub.server.store.rooms["matrix"].settings.public()["locked"] is False
    assert len(hub.server.store.rooms["matrix"].participants) == 3

    # The host may: settings, mute, record, push (refused only because the room is not live).
    assert await host.send("settings", {"locked": True}) == []
    assert (await viewer.wait_for("settings", lambda d: d["locked"]))["locked"] is True
    assert await host.send("mute", {"all": True}) == []
    assert (await speaker.wait_for("muted"))["kind"] == "audio"
    assert codes(await host.send("live-push", {"url": None})) == ["not-live"]
    assert await host.send("record", {"on": True}) == []
    await speaker.wait_for("recording", lambda d: d["on"])
    assert await host.send("record", {"on": False}) == []
    assert codes(await host.send("mute", {"id": "0123456789ab"})) == ["no-such-participant"]

    # Host lets everyone record: now a speaker may, a viewer too (they are in the meeting).
    assert await host.send("settings", {"record": "everyone"}) == []
    await speaker.wait_for("settings", lambda d: d["record"] == "everyone")
    assert await speaker.send("record", {"on": True}) == []
    await host.wait_for("recording", lambda d: d["on"])
    assert await viewer.send("record", {"on": False}) == []

    # Ending the meeting disconnects everyone.
    await host.sio.emit("end", {})  # (no ack: the host is disconnected too)
    for client in (host, speaker, viewer):
        assert (await client.wait_for("ended"))["name"] == "Hana"
    assert await eventually(lambda: "matrix" not in hub.server.store.rooms)
    assert hub.server.store.find("matrix") is None  # an ended meeting is not resumed
    assert await eventually(lambda: not any(c.sio.connected for c in (host, speaker, viewer)))


# -- access modes -----------------------------------------------------------------------------------

async def test_signed_links_expired_forged_or_for_another_room_are_refused(make_hub: MakeHub, connect: Connect) -> None:
    hub = await make_hub(security=security(token_only=True))
    client = await connect(hub.url)
    assert (await join_error(client, {"room": "sec", "name": "Mallory"}))["code"] == "auth-required"
    assert (await join_error(client, {"room": "sec", "token": link("other", "host", "M")}))["code"] == "bad-token"
    forged = TokenSigner("x" * 40).create("sec", "host", "M")
    assert (await join_error(client, {"room": "sec", "token": forged}))["code"] == "bad-token"
    old = jwt.encode({"room": "sec", "role": "host", "name": "M", "exp": int(time.time()) - 120}, SECRET, algorithm="HS256")
    error = await join_error(client, {"room": "sec", "token": old})
    assert error["code"] == "bad-token" and "expired" in error["message"]
    assert "sec" not in hub.server.store.rooms  # nothing was created by the refusals
    joined = await client.join("sec", "ignored", token=link("sec", "host", "M"))
    assert joined["name"] == "M" and joined["role"] == "host"  # the link's name, not the typed one
    # In token mode roles come from links only: TURN credentials are minted per participant.
    stun, turn = joined["iceServers"]
    assert stun == {"urls": "stun:stun.example.org:3478"}
    assert turn["urls"] == "turn:turn.example.org:3478" and turn["username"].endswith(":" + joined["id"])


async def test_passcode_room(hub: RunningHub, connect: Connect) -> None:
    host, guest = await connect(hub.url), await connect(hub.url)
    await host.join("pass", "Ana")
    assert codes(await host.send("settings", {"access": "passcode"})) == ["passcode-required"]
    assert codes(await host.send("settings", {"access": "passcode", "passcode": "ab"})) == ["bad-passcode"]
    assert await host.send("settings", {"access": "passcode", "passcode": "union-42"}) == []
    broadcast = await host.wait_for("settings")
    assert broadcast["access"] == "passcode" and "passcode" not in broadcast  # never sent out
    assert (await join_error(guest, {"room": "pass", "name": "Bo"}))["code"] == "passcode-required"
    assert (await join_error(guest, {"room": "pass", "name": "Bo", "passcode": "union-41"}))["code"] == "bad-passcode"
    joined = await guest.join("pass", "Bo", passcode="union-42")
    assert joined["role"] == "speaker" and joined["settings"]["access"] == "passcode"


async def test_lobby_admit_reject_and_a_knocker_sees_nothing_of_the_room(hub: RunningHub, connect: Connect) -> None:
    host, bo, cy = await connect(hub.url), await connect(hub.url), await connect(hub.url)
    h = await host.join("lobby", "Ana")
    assert h["lobby"] == []
    assert await host.send("settings", {"access": "lobby"}) == []
    assert await bo.send("join", {"room": "lobby", "name": "Bo", "lang": "en", "audio": False, "video": False}) == []
    assert (await bo.wait_for("lobby"))["state"] == "waiting"
    knock = await host.wait_for("knock")
    assert knock["name"] == "Bo" and knock["verified"] is False
    # While waiting, Bo gets none of the room: no chat, no participants, no media offer.
    assert await host.send("chat", {"text": "private branch business"}) == []
    await bo.sync()
    assert {name for name, _ in bo.events} <= {"lobby", "error"}
    assert codes(await bo.send("chat", {"text": "let me in"})) == ["not-joined"]
    assert len(hub.server.store.rooms["lobby"].participants) == 1
    # A late host-promoted participant also learns of knockers: cy knocks, host admits Bo first.
    assert await host.send("admit", {"id": knock["id"]}) == []
    joined = await bo.wait_for("joined")
    assert joined["role"] == "speaker" and [p["name"] for p in joined["participants"]] == ["Ana"]
    assert await cy.send("join", {"room": "lobby", "name": "Cy", "lang": "en", "audio": False, "video": False}) == []
    knock_cy = await host.wait_for("knock", lambda d: d["name"] == "Cy")
    assert await host.send("reject", {"id": knock_cy["id"]}) == []
    rejected = await cy.wait_for("error")
    assert rejected["code"] == "rejected" and rejected["event"] == "join"
    assert not cy.received("joined")
    assert sorted(p.name for p in hub.server.store.rooms["lobby"].participants.values()) == ["Ana", "Bo"]
    assert codes(await host.send("admit", {"id": knock_cy["id"]})) == ["no-such-participant"]
    # A knocker who gives up is taken off the host's list.
    dee = await connect(hub.url)
    await dee.send("join", {"room": "lobby", "name": "Dee", "lang": "en", "audio": False, "video": False})
    knock_dee = await host.wait_for("knock", lambda d: d["name"] == "Dee")
    await dee.close()
    assert (await host.wait_for("knock-left", lambda d: d["id"] == knock_dee["id"]))["id"] == knock_dee["id"]
    assert hub.server.store.rooms["lobby"].lobby == {}


async def test_lock_remove_ban_and_revoked_links(make_hub: MakeHub, connect: Connect) -> None:
    hub = await make_hub(security=security())
    host, troll = await connect(hub.url), await connect(hub.url)
    await host.join("ban", "Ana")
    troll_link = link("ban", "speaker", "Troll")
    t = await troll.join("ban", "", token=troll_link)
    assert await host.send("remove", {"id": t["id"], "ban": False}) == []
    assert (await troll.wait_for("removed"))["ban"] is False
    assert await eventually(lambda: not troll.sio.connected)
    assert await eventually(lambda: len(hub.server.store.rooms["ban"].participants) == 1)
    # The same signed link no longer works; another link may come back (a removal is not a ban).
    again = await connect(hub.url)
    assert (await join_error(again, {"room": "ban", "token": troll_link}))["code"] == "rejected"
    second_link = link("ban", "speaker", "Troll")
    back = await again.join("ban", "", token=second_link)
    assert await host.send("remove", {"id": back["id"], "ban": True}) == []
    await again.wait_for("removed")
    third = await connect(hub.url)
    assert (await join_error(third, {"room": "ban", "token": second_link}))["code"] == "rejected"
    # Banned: the same browser (client id) and the same name are refused for the session.
    fourth = await connect(hub.url)
    assert (await join_error(fourth, {"room": "ban", "name": "troll"}))["code"] == "banned"
    mallory = await connect(hub.url)
    m = await mallory.join("ban", "Mallory", client="browser-abcdef12")
    assert await host.send("remove", {"id": m["id"], "ban": True}) == []
    await mallory.wait_for("removed")
    fifth = await connect(hub.url)
    assert (await join_error(fifth, {"room": "ban", "name": "Someone Else", "client": "browser-abcdef12"}))["code"] == "banned"
    # Locked: nobody new, except a host's link.
    assert await host.send("settings", {"locked": True}) == []
    sixth = await connect(hub.url)
    assert (await join_error(sixth, {"room": "ban", "name": "Late"}))["code"] == "room-locked"
    assert (await join_error(sixth, {"room": "ban", "token": link("ban", "speaker", "Late")}))["code"] == "room-locked"
    cohost = await sixth.join("ban", "", token=link("ban", "host", "Co-host"))
    assert cohost["role"] == "host" and cohost["verified"] is True
    host_id = next(p["id"] for p in cohost["participants"] if p["name"] == "Ana")
    assert codes(await host.send("remove", {"id": host_id})) == ["forbidden"]  # not yourself


async def test_roles_promote_demote_and_a_host_always_remains(hub: RunningHub, connect: Connect) -> None:
    host, bo, cy = await connect(hub.url), await connect(hub.url), await connect(hub.url)
    h = await host.join("roles", "Ana")
    b = await bo.join("roles", "Bo")
    await host.send("settings", {"access": "lobby"})
    await cy.send("join", {"room": "roles", "name": "Cy", "lang": "en", "audio": False, "video": False})
    await host.wait_for("knock")
    assert codes(await host.send("role", {"id": h["id"], "role": "speaker"})) == ["forbidden"]  # last host
    assert await host.send("role", {"id": b["id"], "role": "host"}) == []
    assert (await bo.wait_for("participant-updated", lambda d: d["id"] == b["id"]))["role"] == "host"
    assert (await bo.wait_for("knock"))["name"] == "Cy"  # a new host sees who is waiting
    assert await bo.send("role", {"id": h["id"], "role": "viewer"}) == []
    update = await host.wait_for("participant-updated", lambda d: d["id"] == h["id"] and d["role"] == "viewer")
    assert update["audio"] is False
    assert codes(await host.send("publish", {"source": "screen"})) == ["forbidden"]
    assert codes(await host.send("settings", {"locked": True})) == ["forbidden"]
    # The last host leaves: the longest-present speaker takes over (Ana is a viewer now: not her).
    dee = await connect(hub.url)
    await bo.send("settings", {"access": "open"})  # opening the lobby lets Cy in
    assert (await cy.wait_for("joined"))["role"] == "speaker"
    d = await dee.join("roles", "Dee")
    await bo.close()
    update = await cy.wait_for("participant-updated", lambda u: u["role"] == "host")
    assert update["name"] == "Cy" and update["id"] != d["id"]


async def test_a_muted_microphone_is_no_longer_forwarded(hub: RunningHub, connect: Connect) -> None:
    host = await connect(hub.url)
    await host.join("mute", "Host")
    ana = HubClient(hub.url, "mute", "Ana", audio=encode_test_audio(seconds=2), video=encode_test_video(seconds=2))
    cy = HubClient(hub.url, "mute", "Cy")
    try:
        await ana.join()
        await cy.join()

        def frames(kind: str) -> int:
            return sum(len(r.frames) for r in cy.received_from(ana.id or "", kind))

        assert await eventually(lambda: frames("audio") > 20 and frames("video") > 5)
        assert await host.send("mute", {"id": ana.id}) == []
        assert await eventually(lambda: any(e == "muted" for e, _ in ana.events))
        await asyncio.sleep(0.3)
        audio_before, video_before = frames("audio"), frames("video")
        await asyncio.sleep(1.0)
        assert frames("audio") == audio_before  # nothing forwarded, though Ana's client keeps sending
        assert frames("video") > video_before + 3  # only the microphone
        assert await host.send("stop-camera", {"id": ana.id}) == []
        await asyncio.sleep(0.3)
        video_before = frames("video")
        await asyncio.sleep(1.0)
        assert frames("video") == video_before
        # Ana unmutes herself: forwarding resumes (video at a keyframe).
        await ana.sio.emit("media-state", {"audio": True, "video": True})
        assert await eventually(lambda: frames("audio") > audio_before + 10 and frames("video") > video_before + 3)
        assert cy.received_from(ana.id or "", "video")[0].frames[video_before].keyframe
    finally:
        await ana.close()
        await cy.close()


# -- limits and REST ---------------------------------------------------------------------------------

async def test_an_event_flood_is_rate_limited_and_the_socket_recovers(hub: RunningHub, connect: Connect) -> None:
    client = await connect(hub.url)
    await client.join("flood", "Ana")
    results = await asyncio.gather(*(client.sio.call("hand", {"raised": True}, timeout=TIMEOUT) for _ in range(120)))
    assert len(results) == 120
    limited = [e for e in client.received("error") if e["code"] == "rate-limited"]
    assert 40 <= len(limited) <= 90 and limited[0]["message"], len(limited)
    await asyncio.sleep(1.5)
    assert await client.send("chat", {"text": "still here"}) == []


async def test_tokens_endpoint(make_hub: MakeHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    hub = await make_hub(security=security())
    url = f"{hub.url}/api/tokens"
    body = {"room": "rally", "role": "viewer", "name": "Press", "ttl": 300}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
        async with http.post(url, json=body, headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        auth = {"Authorization": f"Bearer {API_KEY}"}
        for bad, code in (({**body, "role": "admin"}, "bad-request"), ({**body, "room": "no spaces"}, "bad-room"),
                          ({**body, "ttl": -5}, "bad-request"), ([1, 2], "bad-request"), ({**body, "name": ""}, "bad-name")):
            async with http.post(url, json=bad, headers=auth) as r:
                assert r.status == 400 and (await r.json())["error"]["code"] == code, bad
        async with http.post(url, data=b"x" * 10_000, headers=auth) as r:
            assert r.status == 413
        async with http.post(url, json=body, headers=auth) as r:
            assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
            made = await r.json()
    grant = TokenSigner(SECRET).verify(made["token"], "rally")
    assert (grant.role, grant.name) == ("viewer", "Press")
    assert made["url"].startswith(hub.url + "/?room=rally&token=")
    for secret in (SECRET, API_KEY, "turn-shared-secret"):
        assert secret not in caplog.text  # secrets never reach the logs


async def test_tokens_endpoint_is_off_without_secrets(hub: RunningHub) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{hub.url}/api/tokens", json={}) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not-available"


async def test_a_server_without_a_configured_secret_signs_with_its_own_and_refuses_others(
    hub: RunningHub, connect: Connect,
) -> None:
    """Without UNIONHUB_JWT_SECRET the hub signs join links with a secret of its own, kept in its
    database (scheduled sessions e-mail links that must survive a restart: meetings/service.py);
    a link signed with any other secret is refused."""
    client, host = await connect(hub.url), await connect(hub.url)
    error = await join_error(client, {"room": "r", "token": link("r", "host", "A")})
    assert error["code"] == "bad-token"
    signer = hub.server.security.signer
    assert signer is not None
    joined = await host.join("r", "Ana", token=signer.create("r", "host", "Ana"))
    assert joined["role"] == "host"
    assert codes(await host.send("settings", {"access": "token"})) == []


async def test_on_a_token_hub_only_hosts_manage_the_archive(make_hub: MakeHub) -> None:
    hub = await make_hub(security=security(token_only=True))

    async def can_manage(http: aiohttp.ClientSession, headers: dict[str, str] | None = None) -> bool:
        async with http.get(f"{hub.url}/api/recordings", headers=headers or {}) as r:
            assert r.status == 200
            return bool((await r.json())["can_manage"])

    async with aiohttp.ClientSession() as http:
        assert not await can_manage(http)
        assert not await can_manage(http, {"Authorization": "Bearer " + link("r", "speaker", "Sam")})
        assert not await can_manage(http, {"Authorization": "Bearer " + TokenSigner("y" * 40).create("r", "host", "M")})
        assert await can_manage(http, {"Authorization": "Bearer " + link("r", "host", "Hana")})
        assert await can_manage(http, {"Authorization": f"Bearer {API_KEY}"})
        async with http.delete(f"{hub.url}/api/recordings/0123456789abcdef") as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
    # A host who opens their link in a browser manages the archive from that browser.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:  # (an IP host)
        async with browser.get(f"{hub.url}/?room=r&token={link('r', 'speaker', 'Sam')}") as r:
            assert r.status == 200 and "unionhub_token" not in r.cookies
        assert not await can_manage(browser)
        async with browser.get(f"{hub.url}/?room=r&token={link('r', 'host', 'Hana')}") as r:
            assert r.status == 200 and r.cookies["unionhub_token"]["httponly"]
        assert await can_manage(browser)


async def test_a_dropped_connection_resumes_its_role_without_the_lobby(hub: RunningHub, connect: Connect) -> None:
    """A shaky office network: the host's connection drops and comes back (same browser id): still
    host, no lobby, no lock. A knocker is not let in by reconnecting, and a removed browser is a
    stranger again."""
    host, bo = await connect(hub.url), await connect(hub.url)
    await host.join("shaky", "Ana", client="browser-ana-0001")
    b = await bo.join("shaky", "Bo", client="browser-bo-00001")
    assert await host.send("settings", {"access": "lobby", "locked": True}) == []
    await host.close()  # the host's Wi-Fi drops: Bo becomes host meanwhile
    assert (await bo.wait_for("participant-updated", lambda d: d["id"] == b["id"]))["role"] == "host"
    again = await connect(hub.url)
    back = await again.join("shaky", "Ana", client="browser-ana-0001")
    assert back["role"] == "host" and back["settings"]["locked"] is True
    stranger = await connect(hub.url)
    assert (await join_error(stranger, {"room": "shaky", "name": "Eve", "client": "browser-eve-0001"}))["code"] == "room-locked"

    # Everyone drops at once: the room's settings survive a short gap, and the first one back
    # resumes as host; a stranger meets the same lobby (nobody can let them in yet).
    await again.close()
    await bo.close()
    assert await eventually(lambda: "shaky" not in hub.server.store.rooms)
    late = await connect(hub.url)
    assert (await join_error(late, {"room": "shaky", "name": "Eve"}))["code"] == "room-locked"
    bo_again = await connect(hub.url)
    resumed = await bo_again.join("shaky", "Bo", client="browser-bo-00001")
    assert resumed["role"] == "host" and resumed["settings"]["access"] == "lobby"
    assert await bo_again.send("settings", {"locked": False}) == []
    # A knocker who reconnects knocks again: reconnecting is no way past the lobby.
    cy = await connect(hub.url)
    await cy.send("join", {"room": "shaky", "name": "Cy", "lang": "en", "audio": False, "video": False,
                           "client": "browser-cy-00001"})
    await bo_again.wait_for("knock", lambda d: d["name"] == "Cy")
    await cy.close()
    cy_again = await connect(hub.url)
    await cy_again.send("join", {"room": "shaky", "name": "Cy", "lang": "en", "audio": False, "video": False,
                                 "client": "browser-cy-00001"})
    assert (await cy_again.wait_for("lobby"))["state"] == "waiting" and not cy_again.received("joined")
    # A removed browser is a stranger again: back to the lobby.
    dee = await connect(hub.url)
    await dee.send("join", {"room": "shaky", "name": "Dee", "lang": "en", "audio": False, "video": False,
                            "client": "browser-dee-0001"})
    knock = await bo_again.wait_for("knock", lambda d: d["name"] == "Dee")
    assert await bo_again.send("admit", {"id": knock["id"]}) == []
    d = await dee.wait_for("joined")
    assert await bo_again.send("remove", {"id": d["id"]}) == []
    dee_again = await connect(hub.url)
    await dee_again.send("join", {"room": "shaky", "name": "Dee", "lang": "en", "audio": False, "video": False,
                                  "client": "browser-dee-0001"})
    assert (await dee_again.wait_for("lobby"))["state"] == "waiting" and not dee_again.received("joined")
