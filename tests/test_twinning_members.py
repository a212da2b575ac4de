"""An organiser removes a member: the pair page, its documents and its e-mails are no longer
theirs, their personal join links stop letting them in (they can still knock like a guest and
wait in the lobby), and a pair always keeps an organiser. The activity log says who left."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import pytest

from hubtest import RunningHub, running_hub
from sigclient import Client, Connect, until
from signinkit import SmtpServer, smtp_server
from twinningkit import AGREEMENT, PAIR, MakeHub, admin, call, security, sign_in, smtp, soon
from unionhub.app import TWINNING_KEY

OLU, MARIA = "olu@unison.test", "maria@sindsaude.test"


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def pair_of_two(hub: RunningHub, http: aiohttp.ClientSession) -> tuple[str, dict[str, dict[str, str]]]:
    """A pair whose organiser (Olu, signed in) created it, with Maria as a member."""
    people = {"olu": await sign_in(hub, OLU, "Olu"), "maria": await sign_in(hub, MARIA, "Maria")}
    status, pair = await call(http, hub, "POST", "/api/twinnings", people["olu"], PAIR)
    assert status == 201, pair
    status, _ = await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", people["olu"],
                           {"email": MARIA, "name": "Maria", "branch": 1})
    assert status == 201
    return pair["id"], people


def member_path(pair_id: str, email: str) -> str:
    return f"/api/twinnings/{pair_id}/members/{quote(email)}"


async def upload(http: aiohttp.ClientSession, hub: RunningHub, pair_id: str) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", AGREEMENT, filename="agreement.pdf", content_type="application/pdf")
    async with http.post(f"{hub.url}/api/twinnings/{pair_id}/documents", data=form, headers=admin()) as response:
        assert response.status == 201
        return dict(await response.json())


async def test_a_removed_member_loses_the_page_the_documents_and_is_logged(make_hub: MakeHub,
                                                                          http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    pair_id, people = await pair_of_two(hub, http)
    doc = await upload(http, hub, pair_id)
    status, _ = await call(http, hub, "GET", f"/api/twinnings/{pair_id}", people["maria"])
    assert status == 200  # (before)

    status, body = await call(http, hub, "DELETE", member_path(pair_id, "Maria@SindSaude.test"), people["olu"])
    assert status == 200 and body["email"] == MARIA

    for path in (f"/api/twinnings/{pair_id}", f"/api/twinnings/{pair_id}/documents",
                 f"/api/twinnings/{pair_id}/documents/{doc['id']}/file"):
        status, body = await call(http, hub, "GET", path, people["maria"])
        assert (status, body["error"]["code"]) == (403, "not-a-member"), path
    _, listed = await call(http, hub, "GET", "/api/twinnings", people["maria"])
    assert listed["twinnings"] == []

    _, page = await call(http, hub, "GET", f"/api/twinnings/{pair_id}", people["olu"])
    assert [m["email"] for m in page["members"]] == [OLU]
    latest = page["activity"][0]
    assert (latest["kind"], latest["fields"], latest["text"]) == (
        "member-removed", {"name": "Maria"}, "Maria was removed from the pair")
    status, body = await call(http, hub, "DELETE", member_path(pair_id, MARIA), people["olu"])
    assert (status, body["error"]["code"]) == (404, "no-such-member")


async def test_who_may_remove_and_the_last_organiser_stays(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    pair_id, people = await pair_of_two(hub, http)
    status, body = await call(http, hub, "DELETE", member_path(pair_id, OLU), people["maria"])
    assert (status, body["error"]["code"]) == (403, "organisers-only")
    status, body = await call(http, hub, "DELETE", member_path(pair_id, MARIA))  # signed out
    assert (status, body["error"]["code"]) == (401, "sign-in-required")
    no_csrf = {"Cookie": people["olu"]["Cookie"]}
    status, body = await call(http, hub, "DELETE", member_path(pair_id, MARIA), no_csrf)
    assert (status, body["error"]["code"]) == (403, "csrf-failed")

    status, body = await call(http, hub, "DELETE", member_path(pair_id, OLU), people["olu"])
    assert (status, body["error"]["code"]) == (409, "last-organiser")
    status, body = await call(http, hub, "DELETE", member_path(pair_id, OLU), admin())  # the API key neither
    assert (status, body["error"]["code"]) == (409, "last-organiser")

    await call(http, hub, "POST", f"/api/twinnings/{pair_id}/members", admin(), {"email": MARIA, "role": "organiser"})
    status, _ = await call(http, hub, "DELETE", member_path(pair_id, OLU), people["olu"])  # another organiser now
    assert status == 200
    _, page = await call(http, hub, "GET", f"/api/twinnings/{pair_id}", people["maria"])
    assert [(m["email"], m["role"]) for m in page["members"]] == [(MARIA, "organiser")]


async def tokens(hub: RunningHub, http: aiohttp.ClientSession, pair_id: str, people: dict[str, dict[str, str]],
                 minutes: float) -> tuple[str, dict[str, str]]:
    """A session open in ``minutes``' time: its room and each person's own join token."""
    _, session = await call(http, hub, "POST", f"/api/twinnings/{pair_id}/sessions", people["olu"],
                            {"title": "Staffing", "start": soon(minutes), "timezone": "Africa/Johannesburg"})
    found = {}
    for who, headers in people.items():
        _, view = await call(http, hub, "GET", f"/api/twinnings/{pair_id}/sessions/{session['id']}", headers)
        found[who] = parse_qs(urlsplit(view["your_link"]).query)["token"][0]
    return session["room"], found


async def refused(client: Client, room: str, token: str) -> list[str]:
    errors = await client.send("join", {"room": room, "name": "Maria", "lang": "pt", "audio": False, "video": False,
                                        "token": token})
    return [e["code"] for e in errors]


async def knocks(client: Client, host: Client, room: str) -> None:
    """Without a link, like any guest: into the lobby, where a host sees them knock."""
    assert await client.send("join", {"room": room, "name": "Maria", "lang": "pt", "audio": False, "video": False}) == []
    await client.wait_for("lobby", lambda d: d["state"] == "waiting")
    assert (await host.wait_for("knock"))["name"] == "Maria"
    assert not client.received("joined")


async def test_a_removed_member_s_link_no_longer_lets_them_in(make_hub: MakeHub, connect: Connect,
                                                              http: aiohttp.ClientSession) -> None:
    """Removed before the room opens (the link is refused when it opens), and while it is open."""
    hub = await make_hub(security=security())
    pair_id, people = await pair_of_two(hub, http)
    room, links = await tokens(hub, http, pair_id, people, 10)
    await call(http, hub, "DELETE", member_path(pair_id, MARIA), people["olu"])
    olu = await connect(hub.url)
    assert (await olu.join(room, "ignored", token=links["olu"]))["role"] == "host"
    maria = await connect(hub.url)
    assert await refused(maria, room, links["maria"]) == ["rejected"]
    await knocks(await connect(hub.url), olu, room)

    # back in the pair, with a new link; then removed while the next session's room is open
    await call(http, hub, "POST", f"/api/twinnings/{pair_id}/members", people["olu"], {"email": MARIA, "name": "Maria"})
    room, links = await tokens(hub, http, pair_id, people, 12)
    olu = await connect(hub.url)
    await olu.join(room, "ignored", token=links["olu"])
    await call(http, hub, "DELETE", member_path(pair_id, MARIA), people["olu"])
    assert await refused(await connect(hub.url), room, links["maria"]) == ["rejected"]
    await knocks(await connect(hub.url), olu, room)


async def test_a_kept_member_s_link_still_works(make_hub: MakeHub, connect: Connect,
                                                http: aiohttp.ClientSession) -> None:
    """(The refusal above is the removal's: another member's link is untouched by it.)"""
    hub = await make_hub(security=security())
    pair_id, people = await pair_of_two(hub, http)
    people["ana"] = await sign_in(hub, "ana@sindsaude.test", "Ana")
    await call(http, hub, "POST", f"/api/twinnings/{pair_id}/members", people["olu"], {"email": "ana@sindsaude.test"})
    room, links = await tokens(hub, http, pair_id, people, 10)
    await call(http, hub, "DELETE", member_path(pair_id, MARIA), people["olu"])
    ana = await connect(hub.url)
    assert (await ana.join(room, "ignored", token=links["ana"]))["role"] == "speaker"


@pytest.fixture
def relay() -> Any:
    with smtp_server() as server:
        yield server


def to(box: list[EmailMessage], email: str) -> list[str]:
    return [str(m["Subject"]) for m in box if m["To"] == email]


async def test_a_removed_member_gets_no_more_reminders(tmp_path: Path, relay: SmtpServer) -> None:
    box = relay.mailbox.messages
    async with running_hub(tmp_path / "hub", security=security(), signin=smtp(relay.port)) as hub, \
            aiohttp.ClientSession() as http:
        _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
        for email, role in [(OLU, "organiser"), (MARIA, "member")]:
            await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", admin(), {"email": email, "role": role})
        _, session = await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/sessions", admin(),
                                {"title": "Tomorrow", "start": soon(23 * 60), "timezone": "Africa/Johannesburg"})
        await until(lambda: len(box) == 6)  # each: welcome, invitation, the 24 h reminder
        assert len(to(box, MARIA)) == 3
        status, _ = await call(http, hub, "DELETE", member_path(pair["id"], MARIA), admin())
        assert status == 200
        notifier = hub.app[TWINNING_KEY].notifier
        start = datetime.fromisoformat(session["next"]["start"].replace("Z", "+00:00"))
        notifier.now = lambda: start - timedelta(minutes=10)  # the 15-minute reminder is due
        assert await notifier.run_once() == 1
        assert to(box, OLU)[-1] == "Reminder: “Tomorrow” in 15 minutes"
        assert len(to(box, MARIA)) == 3
