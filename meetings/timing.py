"""When a session happens: local start + IANA time zone + optional RFC 5545 RRULE, checked once.

A session is kept as its organiser said it (wall-clock start, zone, rule) and expanded on
demand, so that a weekly 14:00 in London stays 14:00 in London across daylight saving changes
while the other side's local time moves (10:00 or 11:00 in São Paulo). Everything that is not
a valid schedule is refused here with a :class:`TwinningError` naming what is wrong.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from dateutil.rrule import rrule, rrulestr

from .errors import TwinningError

START_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
RRULE_RE = re.compile(r"[A-Z0-9=;,:+-]{1,300}")
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
MAX_COUNT = 1000
MIN_MINUTES, MAX_MINUTES = 5, 24 * 60
#: The room opens this long before each occurrence (lobby and roles already set).
OPENS_EARLY = timedelta(minutes=15)


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(value: Any) -> ZoneInfo:
    """An IANA time zone (``Europe/London``) or ``bad-timezone``."""
    if not isinstance(value, str) or value not in _zones():
        raise TwinningError("bad-timezone", f"{str(value)[:64]!r} is not an IANA time zone such as 'Europe/London'.")
    return ZoneInfo(value)


def local_start(value: Any, tz: ZoneInfo) -> datetime:
    """``2026-12-03T14:00`` read as wall-clock time in ``tz``; refused if the clocks skip it."""
    if not isinstance(value, str) or not START_RE.fullmatch(value):
        raise TwinningError(
            "bad-start", "'start' must be a local date and time like '2026-12-03T14:00' (no offset: give 'timezone')."
        )
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise TwinningError("bad-start", f"{value!r} is not a real date and time.") from None
    aware = naive.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise TwinningError(
            "nonexistent-time",
            f"{value} does not exist in {tz.key}: the clocks skip it when daylight saving time starts.",
        )
    return aware


def duration(value: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_MINUTES <= value <= MAX_MINUTES:
        raise TwinningError("bad-duration", f"'duration_minutes' must be a whole number from {MIN_MINUTES} to {MAX_MINUTES}.")
    return timedelta(minutes=value)


def recurrence(value: Any, start: datetime) -> str | None:
    """A normalised RRULE value (``FREQ=WEEKLY;COUNT=10``) or None; ``bad-rrule`` if not usable."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TwinningError("bad-rrule", "'rrule' must be an RFC 5545 rule like 'FREQ=WEEKLY;COUNT=10'.")
    text = value.strip().upper().removeprefix("RRULE:")
    if not RRULE_RE.fullmatch(text):
        raise TwinningError("bad-rrule", "'rrule' must be one RFC 5545 rule like 'FREQ=WEEKLY;COUNT=10'.")
    parts: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, val = part.partition("=")
        if not sep or not val or key in parts:
            raise TwinningError("bad-rrule", f"'{part}' is not a NAME=VALUE part of a rule (or is repeated).")
        parts[key] = val
    if parts.get("FREQ") not in FREQUENCIES:
        raise TwinningError("bad-rrule", f"FREQ must be one of {', '.join(FREQUENCIES)}.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise TwinningError("bad-rrule", "A rule has COUNT or UNTIL, not both (RFC 5545).")
    if "COUNT" in parts and (not parts["COUNT"].isdigit() or not 1 <= int(parts["COUNT"]) <= MAX_COUNT):
        raise TwinningError("bad-rrule", f"COUNT must be from 1 to {MAX_COUNT}.")
    if "UNTIL" in parts and "T" in parts["UNTIL"] and not parts["UNTIL"].endswith("Z"):
        raise TwinningError("bad-rrule", "UNTIL with a time must be in UTC, like 20271231T235959Z (RFC 5545).")
    try:
        rule = rrulestr(f"RRULE:{text}", dtstart=start)
        first = next(iter(rule), None)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise TwinningError("bad-rrule", f"The rule is not valid: {exc}.") from None
    if first is None:
        raise TwinningError("bad-rrule", "The rule gives no occurrence at all (is UNTIL before the start?).")
    return text


@dataclass(frozen=True)
class Schedule:
    """A session's times: ``start`` is aware (its zone is the organiser's), ``rule`` an RRULE."""

    start: datetime
    length: timedelta
    rule: str | None = None

    @classmethod
    def parse(cls, start: Any, timezone: Any, minutes: Any, rule: Any) -> Schedule:
        """Checked in order (zone, start, duration, rule) so the first error is the one to fix."""
        tz = zone(timezone)
        begin = local_start(start, tz)
        length = duration(minutes)
        return cls(begin, length, recurrence(rule, begin))

    @classmethod
    def stored(cls, start: str, timezone: str, minutes: int, rule: str | None) -> Schedule:
        """A schedule as stored (checked when it was given): read even if a later tzdata release
        moved a daylight saving change onto its start."""
        begin = datetime.fromisoformat(start).replace(tzinfo=ZoneInfo(timezone))
        return cls(begin, timedelta(minutes=minutes), rule)

    @property
    def timezone(self) -> str:
        return str(self.start.tzinfo)

    @property
    def local(self) -> str:
        """The start as the organiser gave it: ``2026-12-03T14:00``."""
        return self.start.strftime("%Y-%m-%dT%H:%M")

    def _rule(self) -> rrule | None:
        if not self.rule:
            return None
        rule = rrulestr(f"RRULE:{self.rule}", dtstart=self.start)
        assert isinstance(rule, rrule)  # one RRULE (no RDATE/EXDATE): never an rruleset
        return rule

    def starts_between(self, after: datetime, before: datetime) -> list[datetime]:
        """Starts of the occurrences that overlap [after, before), in the session's zone."""
        rule = self._rule()
        if rule is None:
            starts = [self.start] if self.start < before and self.start + self.length > after else []
            return starts
        found: list[datetime] = rule.between(after - self.length, before, inc=False)
        return [s for s in found if s + self.length > after and s < before]

    def next_occurrence(self, now: datetime) -> datetime | None:
        """The start of the first occurrence not yet over at ``now``."""
        rule = self._rule()
        if rule is None:
            return self.start if self.start + self.length > now else None
        found: datetime | None = rule.after(now - self.length, inc=False)
        return found

    def past(self, now: datetime, limit: int = 20) -> list[datetime]:
        """Starts of the last ``limit`` occurrences over by ``now``, newest first."""
        rule = self._rule()
        if rule is None:
            return [self.start] if self.start + self.length <= now else []
        found: list[datetime] = []
        cursor: datetime | None = rule.before(now - self.length, inc=True)
        while cursor is not None and len(found) < limit:
            found.append(cursor)
            cursor = rule.before(cursor, inc=False)
        return found

    def open_occurrence(self, now: datetime) -> datetime | None:
        """The occurrence whose room is open at ``now`` (from 15 min before its start to its end)."""
        found = self.starts_between(now, now + OPENS_EARLY + timedelta(seconds=1))
        return found[0] if found else None

    def last_end(self) -> datetime | None:
        """When the last occurrence ends; None for a rule without COUNT or UNTIL."""
        rule = self._rule()
        if rule is None:
            return self.start + self.length
        if "COUNT" not in (self.rule or "") and "UNTIL" not in (self.rule or ""):
            return None
        last: datetime | None = rule.before(datetime.max.replace(tzinfo=UTC), inc=True)
        return last + self.length if last is not None else None


def in_zone(moment: datetime, tz: str) -> dict[str, str]:
    """``moment`` as someone in ``tz`` reads it: local time, its UTC offset, the zone."""
    local = moment.astimezone(ZoneInfo(tz))
    offset = local.strftime("%z")
    return {"timezone": tz, "start": local.strftime("%Y-%m-%dT%H:%M"), "offset": f"{offset[:3]}:{offset[3:]}"}
