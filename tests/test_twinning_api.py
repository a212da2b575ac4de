"""The twinning API on the real hub: pairs, members, sessions, the errors portals get, and who
may do what (organiser / member / signed-in stranger / signed out / API key)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import icalendar
import pytest

from core.database import Database
from core.migrations import MIGRATIONS
from hubtest import RunningHub
from meetings.activity import entry
from meetings.pairs import PairStore
from meetings.vocabulary import Activity
from twinningkit import PAIR, admin, call, security, sign_in, soon
from twinningkit import MakeHub as MakeHub
from unionhub.app import ARCHIVE_KEY, TWINNING_KEY

SESSION = {"title": "Staffing levels", "start": "2027-03-01T14:00", "timezone": "Europe/London",
           "duration_minutes": 60, "rrule": "FREQ=WEEKLY;COUNT=10"}


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def pair_with_people(hub: RunningHub, http: aiohttp.ClientSession) -> tuple[str, dict[str, dict[str, str]]]:
    """A pair created by a signed-in organiser, with a member; everyone's headers."""
    people = {
        "organiser": await sign_in(hub, "olu@unison.test", "Olu"),
        "member": await sign_in(hub, "maria@sindsaude.test", "Maria"),
        "guest": await sign_in(hub, "someone@else.test", "Someone"),
        "signed-out": {},
        "api-key": admin(),
    }
    status, pair = await call(http, hub, "POST", "/api/twinnings", people["organiser"], PAIR)
    assert status == 201, pair
    status, body = await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", people["organiser"],
                              {"email": "maria@sindsaude.test", "name": "Maria", "role": "member", "branch": 1})
    assert status == 201, body
    return pair["id"], people


async def test_a_portal_creates_a_pair_and_a_session_with_the_api_key(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    status, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
    assert status == 201, pair
    assert pair["id"] and pair["url"] == f"/t/{pair['id']}"
    assert [b["timezone"] for b in pair["branches"]] == ["Europe/London", "America/Sao_Paulo"]
    assert pair["branches"][1] == PAIR["branches"][1]
    status, session = await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/sessions", admin(), SESSION)
    assert status == 201, session
    assert session["join_url"] == f"{hub.url}/r/tw-{session['id']}"
    assert session["ics_url"] == f"{hub.url}/api/twinnings/{pair['id']}/sessions/{session['id']}/invite.ics"
    assert session["sequence"] == 0 and session["status"] == "scheduled"
    first = session["next"]
    assert first["start"] == "2027-03-01T14:00:00Z"
    assert [(p["branch"], p["start"]) for p in first["local"]] == [
        ("Leeds Teaching Hospitals", "2027-03-01T14:00"), ("Hospital das Clínicas", "2027-03-01T11:00")]
    status, data = await call(http, hub, "GET", session["ics_url"].removeprefix(hub.url), admin())
    assert status == 200
    event = icalendar.Calendar.from_ical(data).walk("VEVENT")[0]
    assert event["SEQUENCE"] == 0 and event["RRULE"]["COUNT"] == [10]

    status, pairs = await call(http, hub, "GET", "/api/twinnings", admin())
    assert [p["id"] for p in pairs["twinnings"]] == [pair["id"]]
    status, page = await call(http, hub, "GET", f"/api/twinnings/{pair['id']}", admin())
    assert page["next"]["id"] == session["id"]
    assert [a["kind"] for a in page["activity"]] == ["session-scheduled", "created"]


async def test_changes_raise_the_sequence_and_a_cancelled_session_stays_cancelled(
    make_hub: MakeHub, http: aiohttp.ClientSession
) -> None:
    hub = await make_hub(security=security())
    _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
    base = f"/api/twinnings/{pair['id']}/sessions"
    _, session = await call(http, hub, "POST", base, admin(), SESSION)
    status, moved = await call(http, hub, "PATCH", f"{base}/{session['id']}", admin(), {"start": "2027-03-02T09:00"})
    assert status == 200, moved
    assert (moved["sequence"], moved["start"], moved["rrule"]) == (1, "2027-03-02T09:00", "FREQ=WEEKLY;COUNT=10")
    assert moved["next"]["local"][1]["start"] == "2027-03-02T06:00"
    status, once = await call(http, hub, "PATCH", f"{base}/{session['id']}", admin(), {"rrule": None, "title": "One-off"})
    assert (status, once["sequence"], once["rrule"], once["title"]) == (200, 2, None, "One-off")
    status, cancelled = await call(http, hub, "DELETE", f"{base}/{session['id']}", admin())
    assert (status, cancelled["status"], cancelled["sequence"], cancelled["next"]) == (200, "cancelled", 3, None)
    _, data = await call(http, hub, "GET", f"{base}/{session['id']}/invite.ics", admin())
    cal = icalendar.Calendar.from_ical(data)
    assert cal["METHOD"] == "CANCEL" and cal.walk("VEVENT")[0]["SEQUENCE"] == 3
    status, body = await call(http, hub, "PATCH", f"{base}/{session['id']}", admin(), {"title": "Back"})
    assert (status, body["error"]["code"]) == (409, "cancelled")


@pytest.mark.parametrize(("body", "code"), [
    ({**SESSION, "timezone": "Europe/Londres"}, "bad-timezone"),
    ({**SESSION, "start": "2027-03-28T01:30", "rrule": None}, "nonexistent-time"),
    ({**SESSION, "rrule": "FREQ=FORTNIGHTLY"}, "bad-rrule"),
    ({**SESSION, "rrule": "FREQ=WEEKLY;COUNT=abc"}, "bad-rrule"),
    ({**SESSION, "start": "3 March, 2pm"}, "bad-start"),
    ({**SESSION, "start": "2020-03-01T14:00", "rrule": None}, "in-the-past"),
    ({**SESSION, "duration_minutes": 0}, "bad-duration"),
    ({**SESSION, "duration_minutes": "60"}, "bad-duration"),
    ({**SESSION, "title": ""}, "bad-title"),
    ({**SESSION, "colour": "red"}, "bad-request"),
    ([SESSION], "bad-request"),
])
async def test_bad_sessions_get_a_400_with_a_code_and_message(
    make_hub: MakeHub, http: aiohttp.ClientSession, body: Any, code: str
) -> None:
    hub = await make_hub(security=security())
    _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
    status, answer = await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/sessions", admin(), body)
    assert status == 400, answer
    assert answer["error"]["code"] == code and answer["error"]["message"]


@pytest.mark.parametrize(("change", "code"), [
    ({"name": ""}, "bad-name"),
    ({"branches": PAIR["branches"][:1]}, "bad-branches"),
    ({"branches": [{**PAIR["branches"][0], "timezone": "Mars/Olympus"}, PAIR["branches"][1]]}, "bad-timezone"),
    ({"branches": [{**PAIR["branches"][0], "languages": ["English"]}, PAIR["branches"][1]]}, "bad-languages"),
    ({"branches": [{**PAIR["branches"][0], "country": "GBR"}, PAIR["branches"][1]]}, "bad-country"),
    ({"branches": [{**PAIR["branches"][0], "name": "a\u0000b"}, PAIR["branches"][1]]}, "bad-name"),
])
async def test_bad_pairs_get_a_400(make_hub: MakeHub, http: aiohttp.ClientSession, change: dict[str, Any], code: str) -> None:
    hub = await make_hub(security=security())
    status, answer = await call(http, hub, "POST", "/api/twinnings", admin(), {**PAIR, **change})
    assert (status, answer["error"]["code"]) == (400, code), answer


async def test_not_json_and_unknown_pairs(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    async with http.post(hub.url + "/api/twinnings", data=b"{nope", headers=admin()) as response:
        assert response.status == 400 and (await response.json())["error"]["code"] == "bad-request"
    for path in ("/api/twinnings/0123456789ab", "/api/twinnings/..%2F..%2Fetc", "/api/twinnings/0123456789ab/sessions/x"):
        status, answer = await call(http, hub, "GET", path, admin())
        assert (status, answer["error"]["code"]) == (404, "not-found"), path
    status, answer = await call(http, hub, "POST", "/api/twinnings/0123456789ab/members", admin(), {"email": "nope"})
    assert (status, answer["error"]["code"]) == (404, "not-found")


async def test_invitations_check_the_email_and_role(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
    path = f"/api/twinnings/{pair['id']}/members"
    for body, code in [({"email": "not an address"}, "bad-email"), ({"email": "a@b.org", "role": "boss"}, "bad-role"),
                       ({"email": "a@b.org", "branch": 2}, "bad-branch")]:
        status, answer = await call(http, hub, "POST", path, admin(), body)
        assert (status, answer["error"]["code"]) == (400, code)
    status, member = await call(http, hub, "POST", path, admin(), {"email": "Ana@B.org", "role": "organiser"})
    assert status == 201 and member["role"] == "organiser"
    status, member = await call(http, hub, "POST", path, admin(), {"email": "ana@b.org", "role": "member"})
    _, page = await call(http, hub, "GET", f"/api/twinnings/{pair['id']}", admin())
    assert [(m["email"].lower(), m["role"]) for m in page["members"]] == [("ana@b.org", "member")]


# -- who may do what ---------------------------------------------------------------------------

#: action -> who may (the rest get 401 signed out, 403 otherwise)
MATRIX = {
    "read pair": {"organiser", "member", "api-key"},
    "read session": {"organiser", "member", "api-key"},
    "download ics": {"organiser", "member", "api-key"},
    "invite member": {"organiser", "api-key"},
    "schedule": {"organiser", "api-key"},
    "change": {"organiser", "api-key"},
    "cancel": {"organiser", "api-key"},
    "change pair settings": {"organiser", "api-key"},
    "remove member": {"organiser", "api-key"},
}


async def test_authorization_matrix(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    pair_id, people = await pair_with_people(hub, http)
    base = f"/api/twinnings/{pair_id}"
    results: dict[tuple[str, str], int] = {}
    for who, headers in people.items():
        _, session = await call(http, hub, "POST", f"{base}/sessions", admin(), SESSION)
        s = f"{base}/sessions/{session['id']}"
        await call(http, hub, "POST", f"{base}/members", admin(), {"email": f"gone-{who}@x.test"})
        actions = {
            "read pair": ("GET", base, None),
            "read session": ("GET", s, None),
            "download ics": ("GET", f"{s}/invite.ics", None),
            "invite member": ("POST", f"{base}/members", {"email": f"new-{who}@x.test"}),
            "schedule": ("POST", f"{base}/sessions", SESSION),
            "change": ("PATCH", s, {"title": "Changed"}),
            "cancel": ("DELETE", s, None),
            "change pair settings": ("PATCH", base, {"record_sessions": who != "member"}),
            "remove member": ("DELETE", f"{base}/members/gone-{who}@x.test", None),
        }
        for action, (method, path, body) in actions.items():
            status, answer = await call(http, hub, method, path, headers, body)
            results[(who, action)] = status
            if status >= 400:
                assert answer["error"]["code"] and answer["error"]["message"]
    expected = {
        (who, action): (200 if method_ok(action) else 201) if who in allowed else (401 if who == "signed-out" else 403)
        for action, allowed in MATRIX.items() for who in people
    }
    assert results == expected


def method_ok(action: str) -> bool:
    return action not in ("invite member", "schedule")


async def test_anyone_signed_in_may_create_a_pair_and_organises_it(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    headers = await sign_in(hub, "new@branch.test", "New Organiser")
    status, pair = await call(http, hub, "POST", "/api/twinnings", headers, PAIR)
    assert status == 201 and pair["your_role"] == "organiser"
    assert pair["members"] == [{"email": "new@branch.test", "name": "New Organiser", "role": "organiser", "branch": None}]
    status, answer = await call(http, hub, "POST", "/api/twinnings", {}, PAIR)
    assert (status, answer["error"]["code"]) == (401, "sign-in-required")
    _, mine = await call(http, hub, "GET", "/api/twinnings", headers)
    assert [p["id"] for p in mine["twinnings"]] == [pair["id"]]
    other = await sign_in(hub, "other@branch.test", "Other")
    _, theirs = await call(http, hub, "GET", "/api/twinnings", other)
    assert theirs["twinnings"] == []


async def test_cookie_writes_need_the_csrf_token(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    pair_id, people = await pair_with_people(hub, http)
    forged = {"Cookie": people["organiser"]["Cookie"]}  # a cross-site form: the cookie, no token
    for method, path, body in [("POST", "/api/twinnings", PAIR), ("POST", f"/api/twinnings/{pair_id}/sessions", SESSION),
                               ("POST", f"/api/twinnings/{pair_id}/members", {"email": "evil@x.test"})]:
        status, answer = await call(http, hub, method, path, forged, body)
        assert (status, answer["error"]["code"]) == (403, "csrf-failed")
    status, _ = await call(http, hub, "GET", f"/api/twinnings/{pair_id}", forged)  # reading needs none
    assert status == 200


async def test_members_get_their_own_join_link(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    pair_id, people = await pair_with_people(hub, http)
    _, session = await call(http, hub, "POST", f"/api/twinnings/{pair_id}/sessions", admin(),
                            {**SESSION, "start": soon(60 * 24 * 30), "timezone": "Africa/Johannesburg"})
    signer = hub.server.security.signer
    assert signer is not None
    for who, role, name in [("organiser", "host", "Olu"), ("member", "speaker", "Maria")]:
        _, view = await call(http, hub, "GET", f"/api/twinnings/{pair_id}/sessions/{session['id']}", people[who])
        token = view["your_link"].split("token=")[1]
        grant = signer.verify(token, f"tw-{session['id']}")
        assert (grant.role, grant.name) == (role, name)
    _, view = await call(http, hub, "GET", f"/api/twinnings/{pair_id}/sessions/{session['id']}", admin())
    assert "your_link" not in view


async def test_the_pair_page_is_served(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    hub = await make_hub(security=security())
    async with http.get(hub.url + "/t/0123456789ab") as response:
        assert response.status == 200 and "twinning.js" in await response.text()
    async with http.get(hub.url + "/t/nope") as response:
        assert response.status == 404


async def test_a_past_session_lists_the_recordings_made_in_its_room(make_hub: MakeHub, http: aiohttp.ClientSession) -> None:
    """The pair page's past sessions link the recordings of each occurrence (the player shows the
    transcript in the reader's language); a recording of another occurrence or room does not."""
    hub = await make_hub(security=security())
    _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
    _, session = await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/sessions", admin(), SESSION)
    first = datetime(2027, 3, 1, 14, 0, tzinfo=UTC)  # London 14:00 in winter
    archive = hub.app[ARCHIVE_KEY]

    async def recorded(room: str, at: datetime) -> str:
        rec = await archive.create(room, None, 0.0, at.timestamp())
        await archive.finish(rec.id, at.timestamp() + 1800, 1800.0, ["Olu", "Maria"], status="ready")
        return rec.id

    in_first = await recorded(session["room"], first + timedelta(minutes=2))
    await recorded(session["room"], first + timedelta(days=7, minutes=1))  # the second occurrence's
    await recorded("some-other-room", first + timedelta(minutes=3))
    hub.app[TWINNING_KEY].twinnings.now = lambda: first + timedelta(days=3)  # after the first only
    status, page = await call(http, hub, "GET", f"/api/twinnings/{pair['id']}", admin())
    assert status == 200
    past = page["past"]
    assert [p["start"] for p in past] == ["2027-03-01T14:00:00Z"]
    assert [(r["id"], r["url"]) for r in past[0]["recordings"]] == [(in_first, f"/recordings/{in_first}")]


async def test_activity_written_before_migration_4_stays_readable(tmp_path: Path) -> None:
    """Entries logged before entries had fields keep their English text (the page shows it);
    new ones carry their kind's fields, which the page words in the reader's language."""
    path = tmp_path / "unionhub.sqlite3"
    old = Database(path, MIGRATIONS[:3])  # the schema as it was shipped with pairs first
    try:
        await old.execute("INSERT INTO twinnings (id, name, created_by, created_at) VALUES ('0123456789ab', 'Old', NULL, 1)")
        await old.execute("INSERT INTO twinning_activity (twinning_id, at, kind, text) "
                          "VALUES ('0123456789ab', 2, 'session-held', '“Pensions” held')")
    finally:
        old.close()
    db = Database(path)
    try:
        store = PairStore(db)
        await store.log("0123456789ab", entry(Activity.SESSION_SCHEDULED, title="Staffing"))
        assert await store.activity("0123456789ab") == [
            {"at": pytest.approx(time.time(), abs=60), "kind": "session-scheduled", "text": "“Staffing” scheduled",
             "fields": {"title": "Staffing"}},
            {"at": 2.0, "kind": "session-held", "text": "“Pensions” held", "fields": None},
        ]
        pair = await store.get("0123456789ab")
        assert pair is not None and pair.record_sessions is False
    finally:
        db.close()
