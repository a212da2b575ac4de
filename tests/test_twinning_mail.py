"""Invitations, updates, cancellations and reminders, received by a real SMTP server (aiosmtpd)
and read back as a calendar would; each is sent once, also after the hub restarts."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import icalendar
import pytest
from aiosmtpd.controller import Controller

from hubtest import running_hub
from sigclient import until
from signinkit import Mailbox, SmtpServer, free_port, smtp_server
from twinningkit import PAIR, SENDER, admin, attachment, call, security, smtp, soon
from unionhub.app import TWINNING_KEY

MEMBERS = [("olu@unison.test", "organiser"), ("maria@sindsaude.test", "member")]


@pytest.fixture
def relay() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


def to(messages: list[EmailMessage], email: str) -> list[EmailMessage]:
    return [m for m in messages if m["To"] == email]


def subjects(messages: list[EmailMessage]) -> list[str]:
    return sorted(str(m["Subject"]).split(":")[0] for m in messages)


async def setup_pair(http: aiohttp.ClientSession, hub: object) -> str:
    _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)  # type: ignore[arg-type]
    for email, role in MEMBERS:
        status, _ = await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", admin(),  # type: ignore[arg-type]
                               {"email": email, "role": role, "name": email.split("@")[0].title()})
        assert status == 201
    return str(pair["id"])


async def test_members_get_an_invitation_then_the_update_then_the_cancellation(tmp_path: Path, relay: SmtpServer) -> None:
    box = relay.mailbox.messages
    async with running_hub(tmp_path / "hub", security=security(), signin=smtp(relay.port)) as hub, \
            aiohttp.ClientSession() as http:
        pair_id = await setup_pair(http, hub)
        await until(lambda: len(box) == 2)  # the welcome e-mails
        assert subjects(box) == ["You are in the twinning “Leeds–São Paulo health workers”"] * 2
        body = {"title": "Staffing levels", "start": "2027-03-01T14:00", "timezone": "Europe/London",
                "duration_minutes": 60, "rrule": "FREQ=WEEKLY;COUNT=10"}
        _, session = await call(http, hub, "POST", f"/api/twinnings/{pair_id}/sessions", admin(), body)
        await until(lambda: len(box) == 4)
        for email, role in MEMBERS:
            (invite,) = to(box[2:], email)
            assert invite["From"] == SENDER and str(invite["Subject"]).startswith("Invitation:")
            text = invite.get_body(("plain",)).get_content()
            assert "Leeds Teaching Hospitals: 2027-03-01 14:00 (Europe/London, UTC+00:00)" in text
            assert "Hospital das Clínicas: 2027-03-01 11:00 (America/Sao_Paulo, UTC-03:00)" in text
            cal = icalendar.Calendar.from_ical(attachment(invite))
            event = cal.walk("VEVENT")[0]
            assert cal["METHOD"] == "REQUEST" and event["SEQUENCE"] == 0
            assert str(event["ATTENDEE"]) == f"mailto:{email}"
            link = str(event["URL"])
            assert link.startswith(f"{hub.url}/?room=tw-{session['id']}&token=")
            grant = hub.server.security.signer.verify(link.split("token=")[1], f"tw-{session['id']}")
            assert grant.role == ("host" if role == "organiser" else "speaker")
            assert link in text
        await call(http, hub, "PATCH", f"/api/twinnings/{pair_id}/sessions/{session['id']}", admin(),
                   {"start": "2027-03-01T15:00"})
        await until(lambda: len(box) == 6)
        for email, _ in MEMBERS:
            update = to(box[4:], email)[0]
            assert str(update["Subject"]).startswith("Updated:")
            event = icalendar.Calendar.from_ical(attachment(update)).walk("VEVENT")[0]
            assert event["SEQUENCE"] == 1 and event["DTSTART"].dt.hour == 15
        await call(http, hub, "DELETE", f"/api/twinnings/{pair_id}/sessions/{session['id']}", admin())
        await until(lambda: len(box) == 8)
        for email, _ in MEMBERS:
            cancel = to(box[6:], email)[0]
            cal = icalendar.Calendar.from_ical(attachment(cancel))
            assert str(cancel["Subject"]).startswith("Cancelled:")
            assert cal["METHOD"] == "CANCEL" and cal.walk("VEVENT")[0]["SEQUENCE"] == 2
        feature = hub.app[TWINNING_KEY]
        passes = feature.notifier.passes
        await feature.notifier.run_once()  # nothing more is due
        assert feature.notifier.passes > passes and len(box) == 8


async def test_a_member_added_later_gets_the_invitation_too(tmp_path: Path, relay: SmtpServer) -> None:
    box = relay.mailbox.messages
    async with running_hub(tmp_path / "hub", security=security(), signin=smtp(relay.port)) as hub, \
            aiohttp.ClientSession() as http:
        _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
        await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/sessions", admin(),
                   {"title": "Monthly", "start": "2027-01-05T09:00", "timezone": "Asia/Kolkata", "rrule": "FREQ=MONTHLY"})
        await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", admin(), {"email": "late@x.test"})
        await until(lambda: len(box) == 2)
        assert subjects(box) == ["Invitation", "You are in the twinning “Leeds–São Paulo health workers”"]


async def test_reminders_are_sent_once_also_after_a_restart(tmp_path: Path, relay: SmtpServer) -> None:
    box = relay.mailbox.messages
    options = {"security": security(), "signin": smtp(relay.port)}
    async with running_hub(tmp_path / "hub", **options) as hub, aiohttp.ClientSession() as http:
        pair_id = await setup_pair(http, hub)
        for title, minutes in [("Soon", 10), ("Tomorrow", 23 * 60)]:
            status, _ = await call(http, hub, "POST", f"/api/twinnings/{pair_id}/sessions", admin(),
                                   {"title": title, "start": soon(minutes, "America/Sao_Paulo"),
                                    "timezone": "America/Sao_Paulo", "duration_minutes": 45})
            assert status == 201
        # per member: welcome, two invitations, "Soon" in 15 min, "Tomorrow" tomorrow
        await until(lambda: len(box) == 10)
        for email, _ in MEMBERS:
            mine = [str(m["Subject"]) for m in to(box, email)]
            assert sorted(s for s in mine if s.startswith("Reminder")) == [
                "Reminder: “Soon” in 15 minutes", "Reminder: “Tomorrow” tomorrow"]
        first = hub.app[TWINNING_KEY].notifier
        await until(lambda: first.sent == 10)  # (counted when its check ends, after the last e-mail)
    async with running_hub(tmp_path / "hub", **options) as again:  # a new app on the same database
        notifier = again.app[TWINNING_KEY].notifier
        await until(lambda: notifier.passes >= 1)
        await notifier.run_once()
        assert notifier.sent == 0 and len(box) == 10


async def test_without_a_relay_nothing_is_sent_and_nothing_is_marked(tmp_path: Path, relay: SmtpServer) -> None:
    async with running_hub(tmp_path / "hub", security=security()) as hub, aiohttp.ClientSession() as http:
        pair_id = await setup_pair(http, hub)
        await call(http, hub, "POST", f"/api/twinnings/{pair_id}/sessions", admin(),
                   {"title": "Soon", "start": soon(10), "timezone": "Africa/Johannesburg"})
        assert hub.app[TWINNING_KEY].notifier.passes == 0
    box = relay.mailbox.messages
    async with running_hub(tmp_path / "hub", security=security(), signin=smtp(relay.port)):
        await until(lambda: len(box) == 6)  # configured later: welcome, invitation, reminder each
    assert sorted(str(m["Subject"]).split(":")[0] for m in box) == sorted(
        ["Invitation"] * 2 + ["Reminder"] * 2 + ["You are in the twinning “Leeds–São Paulo health workers”"] * 2)


class Refusing(Mailbox):
    """A relay that refuses one address (a full mailbox, a typo) and takes the rest."""

    async def handle_RCPT(self, server: object, session: object, envelope: Any, address: str, options: list[str]) -> str:
        if address == "bounce@unison.test":
            return "550 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_refused_address_does_not_hold_up_the_others_and_stays_due(tmp_path: Path) -> None:
    box = Refusing()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        async with running_hub(tmp_path / "hub", security=security(), signin=smtp(controller.port)) as hub, \
                aiohttp.ClientSession() as http:
            _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
            for email in ("bounce@unison.test", "maria@sindsaude.test"):
                await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", admin(), {"email": email})
            await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/sessions", admin(),
                       {"title": "Monthly", "start": "2027-01-05T09:00", "timezone": "Africa/Johannesburg",
                        "rrule": "FREQ=MONTHLY"})
            await until(lambda: len(box.messages) == 2)  # Maria's welcome and invitation
            assert {m["To"] for m in box.messages} == {"maria@sindsaude.test"}
            notifier = hub.app[TWINNING_KEY].notifier
            failed = notifier.failed
            assert failed >= 1
            await notifier.run_once()  # tried again, refused again; nothing re-sent to Maria
            assert notifier.failed > failed and len(box.messages) == 2
    finally:
        controller.stop()


async def test_each_member_reads_the_e_mails_in_their_branch_s_language(tmp_path: Path, relay: SmtpServer) -> None:
    box = relay.mailbox.messages
    async with running_hub(tmp_path / "hub", security=security(), signin=smtp(relay.port)) as hub, \
            aiohttp.ClientSession() as http:
        _, pair = await call(http, hub, "POST", "/api/twinnings", admin(), PAIR)
        for email, branch in (("olu@unison.test", 0), ("maria@sindsaude.test", 1)):
            status, _ = await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/members", admin(),
                                   {"email": email, "role": "member", "name": email.split("@")[0].title(),
                                    "branch": branch})
            assert status == 201
        await until(lambda: len(box) == 2)
        body = {"title": "Staffing levels", "start": "2027-03-01T14:00", "timezone": "Europe/London",
                "duration_minutes": 60}
        await call(http, hub, "POST", f"/api/twinnings/{pair['id']}/sessions", admin(), body)
        await until(lambda: len(box) == 4)
    (welcome_pt, invite_pt) = to(box, "maria@sindsaude.test")
    assert welcome_pt["Content-Language"] == "pt" and str(welcome_pt["Subject"]).startswith("Você faz parte")
    assert str(invite_pt["Subject"]).startswith("Convite: “Staffing levels”")
    text = invite_pt.get_body(("plain",)).get_content()
    assert "a sala abre 15 minutos antes" in text
    assert "Hospital das Clínicas: 2027-03-01 11:00 (America/Sao_Paulo, UTC-03:00)" in text
    (welcome_en, invite_en) = to(box, "olu@unison.test")
    assert welcome_en["Content-Language"] == "en" and str(invite_en["Subject"]).startswith("Invitation:")
