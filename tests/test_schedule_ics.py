"""Schedules and their .ics files, read back by an independent reader (icalendar +
recurring-ical-events): occurrences across daylight saving changes, updates, cancellations,
and the schedules refused with a reason."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from meetings.errors import TwinningError
from meetings.ics import calendar
from meetings.pairs import Branch, Pair, Session
from meetings.timing import Schedule

ZONES = {"London": "Europe/London", "São Paulo": "America/Sao_Paulo", "Johannesburg": "Africa/Johannesburg",
         "Kolkata": "Asia/Kolkata", "Cairo": "Africa/Cairo"}
PAIR = Pair("0123456789ab", "Five-way bargaining exchange", tuple(Branch(n, z) for n, z in ZONES.items()))


def ics_for(start: str, tz: str, rule: str | None, sequence: int = 0, cancelled: bool = False) -> icalendar.Calendar:
    session = Session("abcdef012345", PAIR.id, "Bargaining exchange", Schedule.parse(start, tz, 60, rule),
                      "https://hub.example.org", sequence, cancelled)
    data = calendar(session, PAIR, "https://hub.example.org/r/tw-abcdef012345", "hub@example.org", "ana@example.org")
    return icalendar.Calendar.from_ical(data)


def occurrences(cal: icalendar.Calendar, first: date, last: date) -> dict[date, datetime]:
    """Each occurrence's start by its date in the organiser's zone."""
    found = recurring_ical_events.of(cal).between(first, last)
    return {e["DTSTART"].dt.date(): e["DTSTART"].dt for e in found}


def local(moment: datetime, city: str) -> str:
    return moment.astimezone(ZoneInfo(ZONES[city])).strftime("%H:%M")


def test_a_weekly_london_session_keeps_14_00_in_london_and_moves_elsewhere_across_both_changes() -> None:
    cal = ics_for("2027-03-01T14:00", "Europe/London", "FREQ=WEEKLY;COUNT=40")
    starts = occurrences(cal, date(2027, 3, 1), date(2027, 12, 1))
    assert len(starts) == 40
    assert {local(s, "London") for s in starts.values()} == {"14:00"}
    # Hand-written from the rules each country announced, not computed by the code under test:
    # UK on BST from 28 March to 31 October 2027; Egypt on summer time from 30 April to
    # 28 October 2027; Brazil, South Africa and India without daylight saving time.
    expected = {
        #               London  São Paulo  Johannesburg  Kolkata  Cairo
        date(2027, 3, 22): ("14:00", "11:00", "16:00", "19:30", "16:00"),  # before every change
        date(2027, 3, 29): ("14:00", "10:00", "15:00", "18:30", "15:00"),  # UK on BST, Egypt not yet
        date(2027, 4, 26): ("14:00", "10:00", "15:00", "18:30", "15:00"),
        date(2027, 5, 3): ("14:00", "10:00", "15:00", "18:30", "16:00"),  # both on summer time
        date(2027, 10, 25): ("14:00", "10:00", "15:00", "18:30", "16:00"),
        # Egypt's summer time ended on Thursday 28 October, the UK's on Sunday 31 October:
        date(2027, 11, 1): ("14:00", "11:00", "16:00", "19:30", "16:00"),
    }
    for day, times in expected.items():
        assert tuple(local(starts[day], city) for city in ZONES) == times, day


def test_cairo_changes_on_its_own_dates_between_the_uk_changes() -> None:
    # Egypt's summer time ends at 24:00 on the last Thursday of October (28 October 2027), the
    # UK's at 01:00 UTC on the last Sunday (31 October): a daily 12:00 in Cairo, read elsewhere.
    cal = ics_for("2027-10-27T12:00", "Africa/Cairo", "FREQ=DAILY;COUNT=6")
    starts = list(occurrences(cal, date(2027, 10, 1), date(2027, 11, 30)).values())
    assert [local(s, "Cairo") for s in starts] == ["12:00"] * 6
    #                    27 Oct   28 Oct   29 Oct   30 Oct   31 Oct   1 Nov
    assert [local(s, "London") for s in starts] == ["10:00", "10:00", "11:00", "11:00", "10:00", "10:00"]
    assert [local(s, "São Paulo") for s in starts] == ["06:00", "06:00", "07:00", "07:00", "07:00", "07:00"]


@pytest.mark.parametrize("city", list(ZONES))
def test_a_weekly_session_in_each_zone_is_at_its_local_time_all_year(city: str) -> None:
    cal = ics_for("2027-01-04T09:30", ZONES[city], "FREQ=WEEKLY;COUNT=52")
    starts = occurrences(cal, date(2027, 1, 1), date(2028, 1, 31))
    assert len(starts) == 52
    assert {local(s, city) for s in starts.values()} == {"09:30"}
    assert all(s.weekday() == 0 for s in starts.values())  # Mondays, also across the changes


def test_sao_paulo_session_is_13_00_or_12_00_in_london() -> None:
    cal = ics_for("2027-03-01T10:00", "America/Sao_Paulo", "FREQ=MONTHLY;COUNT=12")
    starts = occurrences(cal, date(2027, 1, 1), date(2028, 3, 1))
    assert local(starts[date(2027, 3, 1)], "London") == "13:00"
    assert local(starts[date(2027, 7, 1)], "London") == "14:00"
    assert local(starts[date(2027, 12, 1)], "London") == "13:00"


def test_the_invitation_carries_what_calendars_need() -> None:
    cal = ics_for("2027-03-01T14:00", "Europe/London", "FREQ=WEEKLY;COUNT=10")
    assert cal["METHOD"] == "REQUEST"
    zones = [tz["TZID"] for tz in cal.walk("VTIMEZONE")]
    assert zones == ["Europe/London"]
    (event,) = cal.walk("VEVENT")
    assert event["DTSTART"].params["TZID"] == "Europe/London"
    assert event["DTSTART"].dt == datetime(2027, 3, 1, 14, 0, tzinfo=ZoneInfo("Europe/London"))
    assert event["RRULE"]["FREQ"] == ["WEEKLY"] and event["RRULE"]["COUNT"] == [10]
    assert event["SEQUENCE"] == 0 and event["STATUS"] == "CONFIRMED"
    assert "https://hub.example.org/r/tw-abcdef012345" in event["DESCRIPTION"]
    assert event["URL"] == "https://hub.example.org/r/tw-abcdef012345"
    assert str(event["UID"]) == "abcdef012345@unionhub"
    assert str(event["ORGANIZER"]) == "mailto:hub@example.org"


def test_the_vtimezone_alone_gives_the_right_offsets() -> None:
    """A calendar without IANA data reads the offsets from the VTIMEZONE: check them there."""
    cal = ics_for("2027-03-01T14:00", "Europe/London", "FREQ=WEEKLY;COUNT=10")
    (vtz,) = cal.walk("VTIMEZONE")
    tz = vtz.to_tz()
    assert datetime(2027, 3, 22, 14, tzinfo=tz).utcoffset().total_seconds() == 0
    assert datetime(2027, 3, 29, 14, tzinfo=tz).utcoffset().total_seconds() == 3600


def test_an_update_has_a_higher_sequence_and_the_same_uid_and_a_cancellation_cancels() -> None:
    first = ics_for("2027-03-01T14:00", "Europe/London", "FREQ=WEEKLY;COUNT=10")
    moved = ics_for("2027-03-01T15:00", "Europe/London", "FREQ=WEEKLY;COUNT=10", sequence=1)
    cancelled = ics_for("2027-03-01T15:00", "Europe/London", "FREQ=WEEKLY;COUNT=10", sequence=2, cancelled=True)
    events = [c.walk("VEVENT")[0] for c in (first, moved, cancelled)]
    assert len({str(e["UID"]) for e in events}) == 1
    assert [e["SEQUENCE"] for e in events] == [0, 1, 2]
    assert [c["METHOD"] for c in (first, moved, cancelled)] == ["REQUEST", "REQUEST", "CANCEL"]
    assert events[2]["STATUS"] == "CANCELLED"
    assert local(occurrences(moved, date(2027, 3, 1), date(2027, 3, 2))[date(2027, 3, 1)], "London") == "15:00"


@pytest.mark.parametrize(("start", "tz", "rule", "code"), [
    ("2027-03-28T01:30", "Europe/London", None, "nonexistent-time"),  # the clocks go 01:00 → 02:00
    ("2027-10-08T00:30", "America/Sao_Paulo", None, None),  # Brazil has no DST any more: fine
    ("2027-04-30T00:30", "Africa/Cairo", None, "nonexistent-time"),  # Egypt: 00:00 → 01:00
    ("2027-03-01T14:00", "Europe/Londres", None, "bad-timezone"),
    ("2027-03-01T14:00", "../../etc/passwd", None, "bad-timezone"),
    ("2027-03-01T14:00Z", "Europe/London", None, "bad-start"),
    ("2027-03-01 14:00", "Europe/London", None, "bad-start"),
    ("2027-02-30T14:00", "Europe/London", None, "bad-start"),
    ("2027-03-01T14:00", "Europe/London", "FREQ=HOURLY", "bad-rrule"),
    ("2027-03-01T14:00", "Europe/London", "FREQ=WEEKLY;COUNT=0", "bad-rrule"),
    ("2027-03-01T14:00", "Europe/London", "FREQ=WEEKLY;COUNT=2;UNTIL=20270401T000000Z", "bad-rrule"),
    ("2027-03-01T14:00", "Europe/London", "FREQ=WEEKLY;BYDAY=XY", "bad-rrule"),
    ("2027-03-01T14:00", "Europe/London", "FREQ=WEEKLY;UNTIL=20270401T000000", "bad-rrule"),
    ("2027-03-01T14:00", "Europe/London", "FREQ=WEEKLY;UNTIL=20200101T000000Z", "bad-rrule"),
    ("2027-03-01T14:00", "Europe/London", "FREQ=WEEKLY\nDTSTART:20000101", "bad-rrule"),
    ("2027-03-01T14:00", "Europe/London", "RRULE:FREQ=MONTHLY;BYDAY=1MO;COUNT=6", None),
])
def test_schedules_are_checked(start: str, tz: str, rule: str | None, code: str | None) -> None:
    if code is None:
        Schedule.parse(start, tz, 60, rule)
        return
    with pytest.raises(TwinningError) as info:
        Schedule.parse(start, tz, 60, rule)
    assert info.value.code == code and info.value.message and info.value.status == 400
