"""A session as an iCalendar object (RFC 5545, iTIP RFC 5546), as calendars expect to receive it.

``METHOD:REQUEST`` invites (and, with a higher ``SEQUENCE``, updates); ``METHOD:CANCEL`` with
``STATUS:CANCELLED`` removes it. Times are local with a ``TZID`` and its ``VTIMEZONE``, so a
calendar repeats the RRULE in the organiser's zone and shows each reader their own local time.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from email.utils import parseaddr

from icalendar import Calendar, Event, Timezone, vCalAddress, vRecur, vText

from .pairs import Pair, Session

PRODID = "-//unionhub//twinning sessions//EN"
#: Every VTIMEZONE covers these years (icalendar's default stops in 2038; recurrences may not).
FIRST_YEAR, LAST_YEAR = 1970, 2100


@functools.lru_cache(maxsize=64)
def _vtimezone(tzid: str) -> bytes:
    """A VTIMEZONE built from the IANA data (slow to make: cached per zone)."""
    first = datetime(FIRST_YEAR, 1, 1).date()
    last = datetime(LAST_YEAR, 1, 1).date()
    return bytes(Timezone.from_tzid(tzid, first_date=first, last_date=last).to_ical())


def uid(session: Session) -> str:
    return f"{session.id}@unionhub"


def calendar(session: Session, pair: Pair, join_link: str, organiser: str, attendee: str | None = None) -> bytes:
    """The .ics for ``session``: REQUEST while scheduled, CANCEL once cancelled.

    ``join_link`` is the reader's own link (a member's signed link, or the room page);
    ``organiser`` the hub's sending address; ``attendee`` the reader's e-mail, if known.
    """
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "CANCEL" if session.cancelled else "REQUEST")
    cal.add_component(Timezone.from_ical(_vtimezone(session.schedule.timezone)))
    event = Event()
    event.add("uid", uid(session))
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", session.schedule.start)  # TZID=<zone> from the aware datetime
    event.add("dtend", session.schedule.start + session.schedule.length)
    if session.schedule.rule:
        event.add("rrule", vRecur.from_ical(session.schedule.rule))
    event.add("summary", f"{session.title} — {pair.name}")
    sides = "\n".join(f"{b.name} ({b.country or b.timezone})" for b in pair.branches)
    event.add("description", f"{session.title}\n\n{sides}\n\nJoin: {join_link}\n(The room opens 15 minutes early.)")
    event.add("location", join_link)
    event.add("url", join_link)
    event.add("sequence", session.sequence)
    event.add("status", "CANCELLED" if session.cancelled else "CONFIRMED")
    sender = parseaddr(organiser)[1] or organiser
    org = vCalAddress(f"mailto:{sender}")
    org.params["cn"] = vText("unionhub")
    event.add("organizer", org)
    if attendee:
        who = vCalAddress(f"mailto:{attendee}")
        who.params["role"] = vText("REQ-PARTICIPANT")
        who.params["rsvp"] = vText("FALSE")
        event.add("attendee", who)
    cal.add_component(event)
    return bytes(cal.to_ical())
