"""Recording as the pair decided: a pair that records its sessions has its session room record
from its first participant on (the usual ``recording`` indicator, the recording in the pair's
past sessions); a pair that does not, does not — and an organiser can change the choice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from hubtest import RunningHub
from sigclient import until
from testkit.rtc_client import HubClient, encode_test_audio
from twinningkit import PAIR, MakeHub, admin, call, security, sign_in, soon
from unionhub.app import ARCHIVE_KEY, RECORDINGS_KEY, TWINNING_KEY


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def session_link(hub: RunningHub, http: aiohttp.ClientSession, record: bool | None) -> tuple[dict[str, Any], str]:
    """A pair (``record_sessions`` as given; absent with None) with a session open now, and the
    member's own join token."""
    member = await sign_in(hub, "maria@sindsaude.test", "Maria")
    body = PAIR if record is None else {**PAIR, "record_sessions": record}
    status, pair = await call(http, hub, "POST", "/api/twinnings", admin(), body)
    assert status == 201, pair
    assert pair["record_sessions"] is bool(record)
    await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", admin(),
               {"email": "maria@sindsaude.test", "name": "Maria", "branch": 1})
    _, session = await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/sessions", admin(),
                            {"title": "Staffing", "start": soon(5), "timezone": "Africa/Johannesburg",
                             "duration_minutes": 30})
    _, view = await call(http, hub, "GET", f"/api/twinnings/{pair['id']}/sessions/{session['id']}", member)
    return session, parse_qs(urlsplit(view["your_link"]).query)["token"][0]


async def join_with_a_mic(hub: RunningHub, room: str, token: str) -> HubClient:
    """The member comes in with their link, publishing a tone (an aiortc peer)."""
    client = HubClient(hub.url, room, "ignored", audio=encode_test_audio(seconds=4.0))
    await client.sio.connect(hub.url, transports=["websocket"])
    await client.sio.emit("join", {"room": room, "name": "ignored", "lang": "pt", "audio": True, "video": False,
                                   "token": token})
    await asyncio.wait_for(client.joined.wait(), 10)
    return client


async def held(hub: RunningHub, http: aiohttp.ClientSession, pair_id: str) -> None:
    """Until the room logged the session as held: its first participant was handled (the choice to
    record is made just before)."""
    async def logged() -> bool:
        _, page = await call(http, hub, "GET", f"/api/twinnings/{pair_id}", admin())
        return any(a["kind"] == "session-held" for a in page["activity"])

    async with asyncio.timeout(10):
        while not await logged():
            await asyncio.sleep(0.05)


async def test_a_pair_that_records_has_its_session_recorded_into_its_past_sessions(
        make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    session, token = await session_link(hub, http, record=True)
    room = session["room"]
    member = await join_with_a_mic(hub, room, token)
    try:
        await held(hub, http, session["twinning"])
        assert hub.app[RECORDINGS_KEY].manager.state(room)["on"] is True
        # what the call page shows its indicator from (sent in the background)
        await until(lambda: any(e == "recording" and d["on"] for e, d in member.events), 10)
        indicator = next(d for e, d in member.events if e == "recording" and d["on"])
        recording_id = indicator["id"]
        tracks = hub.app[RECORDINGS_KEY].manager.root / recording_id / "tracks"
        await until(lambda: tracks.is_dir() and any(f.stat().st_size > 2000 for f in tracks.iterdir()), 20)  # the tone is in it
    finally:
        await member.close()  # the room empties: the recording stops and is composed
    archive = hub.app[ARCHIVE_KEY]
    async with asyncio.timeout(60):
        while (rec := await archive.get(recording_id)) is None or rec.status not in ("ready", "failed"):
            await asyncio.sleep(0.2)
    assert rec.status == "ready", rec

    stored = await hub.app[TWINNING_KEY].twinnings.store.session(session["id"])
    assert stored is not None
    first = stored.schedule.start
    hub.app[TWINNING_KEY].twinnings.now = lambda: first + timedelta(hours=2)  # the session is over
    _, page = await call(http, hub, "GET", f"/api/twinnings/{session['twinning']}", admin())
    assert [r["id"] for p in page["past"] for r in p["recordings"]] == [recording_id]


async def test_a_pair_that_does_not_record_is_not_recorded_until_an_organiser_says_so(
        make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    session, token = await session_link(hub, http, record=None)  # the default: not recorded
    room, pair_id = session["room"], session["twinning"]
    recordings = hub.app[RECORDINGS_KEY].manager
    member = await join_with_a_mic(hub, room, token)
    try:
        await held(hub, http, pair_id)
        assert recordings.state(room)["on"] is False
        assert not [d for e, d in member.events if e == "recording" and d["on"]]
    finally:
        await member.close()

    organiser = await sign_in(hub, "olu@unison.test", "Olu")
    await call(http, hub, "POST", f"/api/twinnings/{pair_id}/members", admin(),
               {"email": "olu@unison.test", "role": "organiser", "branch": 0})
    maria = await sign_in(hub, "maria@sindsaude.test", "Maria")
    status, body = await call(http, hub, "PATCH", f"/api/twinnings/{pair_id}", maria, {"record_sessions": True})
    assert (status, body["error"]["code"]) == (403, "organisers-only")
    status, body = await call(http, hub, "PATCH", f"/api/twinnings/{pair_id}", organiser, {"record_sessions": "yes"})
    assert (status, body["error"]["code"]) == (400, "bad-record_sessions")
    status, page = await call(http, hub, "PATCH", f"/api/twinnings/{pair_id}", organiser, {"record_sessions": True})
    assert status == 200 and page["record_sessions"] is True
    assert page["activity"][0]["kind"] == "recording-on"

    await until(lambda: hub.server.store.room(room) is None, 5)
    member = await join_with_a_mic(hub, room, token)  # the room opens again: recorded now
    try:
        await until(lambda: any(e == "recording" and d["on"] for e, d in member.events), 10)
        assert recordings.state(room)["on"] is True
    finally:
        await member.close()
