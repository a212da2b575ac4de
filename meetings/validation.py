"""Every twinning API body checked once, into the types the rest of the package uses.

A refusal is a :class:`TwinningError` (400) whose code names the field's problem, so a portal
can show it next to the field; :mod:`meetings.timing` checks times, zones and rules.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from signalling.errors import SignallingError
from signalling.validation import language

from .errors import TwinningError
from .pairs import Branch, Member
from .timing import Schedule, zone
from .vocabulary import PairRole

MAX_TEXT = 200
MAX_BRANCHES = 8
MAX_LANGUAGES = 8
EMAIL_RE = re.compile(r"[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
COUNTRY_RE = re.compile(r"[A-Z]{2}")


def obj(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TwinningError("bad-request", "The body must be a JSON object.")
    return body


def text(d: dict[str, Any], key: str, required: bool = True, limit: int = MAX_TEXT) -> str:
    """A one-line string without control characters (whitespace collapsed)."""
    value = d.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise TwinningError(f"bad-{key}", f"'{key}' must be a non-empty string.")
    value = " ".join(value.split())
    if len(value) > limit:
        raise TwinningError(f"bad-{key}", f"'{key}' is longer than {limit} characters.")
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise TwinningError(f"bad-{key}", f"'{key}' cannot contain control characters.")
    return value


def email(value: Any) -> str:
    if not isinstance(value, str) or not EMAIL_RE.fullmatch(value.strip()):
        raise TwinningError("bad-email", "'email' must be an e-mail address like name@example.org.")
    return value.strip()


def branch(value: Any) -> Branch:
    d = obj(value)
    tz = zone(d.get("timezone"))
    country = text(d, "country", required=False, limit=2).upper()
    if country and not COUNTRY_RE.fullmatch(country):
        raise TwinningError("bad-country", "'country' must be a two-letter ISO 3166 code like 'GB' or 'BR'.")
    langs = d.get("languages", [])
    if not isinstance(langs, list) or len(langs) > MAX_LANGUAGES:
        raise TwinningError("bad-languages", f"'languages' must be a list of at most {MAX_LANGUAGES} language codes.")
    try:
        codes = tuple(dict.fromkeys(language(lang) for lang in langs))
    except SignallingError as exc:
        raise TwinningError("bad-languages", exc.message) from None
    return Branch(
        name=text(d, "name"), timezone=tz.key, languages=codes, union=text(d, "union", required=False),
        sector=text(d, "sector", required=False), employer=text(d, "employer", required=False), country=country,
    )


def pair(body: Any) -> tuple[str, list[Branch]]:
    """``{"name", "branches": [...]}``: a name and two to eight branches."""
    d = obj(body)
    name = text(d, "name")
    raw = d.get("branches")
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_BRANCHES:
        raise TwinningError("bad-branches", f"'branches' must list 2 to {MAX_BRANCHES} branches.")
    return name, [branch(b) for b in raw]


#: What an organiser may change about a pair after creating it (``PATCH /api/twinnings/<id>``).
SETTINGS_KEYS = ("record_sessions",)


def pair_settings(body: Any, creating: bool = False) -> dict[str, bool]:
    """``{"record_sessions"?: bool}``; a change (not ``creating``) must name something and nothing else."""
    d = obj(body)
    if not creating:
        unknown = set(d) - set(SETTINGS_KEYS)
        if unknown:
            raise TwinningError("bad-request", f"Unknown field(s): {', '.join(sorted(unknown))[:200]}.")
        if not d:
            raise TwinningError("bad-request", "Nothing to change.")
    found: dict[str, bool] = {}
    if "record_sessions" in d:
        if not isinstance(d["record_sessions"], bool):
            raise TwinningError("bad-record_sessions", "'record_sessions' must be true or false.")
        found["record_sessions"] = d["record_sessions"]
    return found


def member(body: Any, branches: int) -> Member:
    """``{"email", "name"?, "role"?: organiser|member, "branch"?: index}``."""
    d = obj(body)
    address = email(d.get("email"))
    try:
        role = PairRole(d.get("role", PairRole.MEMBER.value))
    except ValueError:
        raise TwinningError("bad-role", "'role' must be 'organiser' or 'member'.") from None
    side = d.get("branch")
    if side is not None and (isinstance(side, bool) or not isinstance(side, int) or not 0 <= side < branches):
        raise TwinningError("bad-branch", f"'branch' must be the index of one of the pair's {branches} branches.")
    return Member(email=address, role=role, name=text(d, "name", required=False, limit=64), branch=side)


@dataclass(frozen=True)
class SessionFields:
    title: str
    schedule: Schedule


SCHEDULE_KEYS = ("start", "timezone", "duration_minutes", "rrule")


def session(body: Any, current: SessionFields | None = None) -> SessionFields:
    """A new session's fields, or (with ``current``) a change: absent keys keep their value."""
    d = obj(body)
    unknown = set(d) - {"title", *SCHEDULE_KEYS}
    if unknown:
        raise TwinningError("bad-request", f"Unknown field(s): {', '.join(sorted(unknown))[:200]}.")
    if current is not None and not d:
        raise TwinningError("bad-request", "Nothing to change.")
    title = text(d, "title") if current is None or "title" in d else current.title
    if current is None:
        return SessionFields(title, Schedule.parse(d.get("start"), d.get("timezone"), d.get("duration_minutes", 60),
                                                   d.get("rrule")))
    old = current.schedule
    schedule = Schedule.parse(
        d.get("start", old.local), d.get("timezone", old.timezone),
        d.get("duration_minutes", int(old.length.total_seconds() // 60)), d.get("rrule", old.rule),
    )
    return SessionFields(title, schedule)
