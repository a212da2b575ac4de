"""Twinning pairs, their members and scheduled sessions, kept in the hub's SQLite database.

The schema is migrations 3 and 4 in :mod:`core.migrations`; this module only queries it, on the
database's own thread (:meth:`core.database.Database.run`). It knows nothing of HTTP or mail.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from core.database import Database

from .activity import Entry, entry
from .errors import TwinningError
from .timing import Schedule
from .vocabulary import Activity, Notice, PairRole, SessionStatus

ROOM_PREFIX = "tw-"


@dataclass(frozen=True)
class Branch:
    """One side of a pair: a workplace's union branch, where it is and what it speaks."""

    name: str
    timezone: str
    languages: tuple[str, ...] = ()
    union: str = ""
    sector: str = ""
    employer: str = ""
    country: str = ""

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name, "union": self.union, "sector": self.sector, "employer": self.employer,
            "country": self.country, "timezone": self.timezone, "languages": list(self.languages),
        }


@dataclass(frozen=True)
class Member:
    email: str
    role: PairRole
    name: str = ""
    branch: int | None = None

    def public(self) -> dict[str, Any]:
        return {"email": self.email, "name": self.name, "role": self.role.value, "branch": self.branch}


@dataclass(frozen=True)
class Pair:
    id: str
    name: str
    branches: tuple[Branch, ...]
    members: tuple[Member, ...] = ()
    created_at: float = field(default_factory=time.time)
    record_sessions: bool = False  # its session rooms record from their first participant on

    def role_of(self, email: str) -> PairRole | None:
        folded = email.casefold()
        return next((m.role for m in self.members if m.email.casefold() == folded), None)

    def member(self, email: str) -> Member | None:
        folded = email.casefold()
        return next((m for m in self.members if m.email.casefold() == folded), None)

    def languages(self) -> set[str]:
        return {lang for branch in self.branches for lang in branch.languages}


@dataclass(frozen=True)
class Session:
    """A scheduled (one-off or recurring) session of a pair; ``sequence`` grows with each change."""

    id: str
    pair_id: str
    title: str
    schedule: Schedule
    base_url: str
    sequence: int = 0
    cancelled: bool = False

    @property
    def room(self) -> str:
        """The call's room name (signalling's ROOM_RE: letters, digits, '-')."""
        return f"{ROOM_PREFIX}{self.id}"

    @property
    def status(self) -> SessionStatus:
        return SessionStatus.CANCELLED if self.cancelled else SessionStatus.SCHEDULED


def new_id() -> str:
    return uuid.uuid4().hex[:12]


class PairStore:
    """Pairs, members, sessions, the notices sent and the activity log."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- pairs and members --------------------------------------------------------------------

    async def create(self, name: str, branches: list[Branch], organiser: Member | None, by: str | None,
                     record_sessions: bool = False) -> Pair:
        pair_id = new_id()
        await self._db.run(_create, pair_id, name, branches, organiser, by, record_sessions)
        pair = await self.get(pair_id)
        assert pair is not None
        return pair

    async def get(self, pair_id: str) -> Pair | None:
        return await self._db.run(_get, pair_id)

    async def for_email(self, email: str | None) -> list[Pair]:
        """The pairs ``email`` belongs to (every pair for None: the API key)."""
        ids = await self._db.run(_pair_ids, email)
        pairs = [await self.get(i) for i in ids]
        return [p for p in pairs if p is not None]

    async def add_member(self, pair_id: str, member: Member) -> None:
        await self._db.run(_add_member, pair_id, member)

    async def remove_member(self, pair_id: str, email: str) -> Member:
        """Takes ``email`` out of the pair and returns who it was; 404 ``no-such-member``, or 409
        ``last-organiser`` (a pair always keeps an organiser), checked in the same transaction."""
        return await self._db.run(_remove_member, pair_id, email)

    async def set_recording(self, pair_id: str, on: bool) -> None:
        await self._db.execute("UPDATE twinnings SET record_sessions = ? WHERE id = ?", (int(on), pair_id))

    # -- sessions -------------------------------------------------------------------------------

    async def add_session(self, session: Session) -> None:
        await self._db.run(_save_session, session, True)

    async def save_session(self, session: Session) -> None:
        await self._db.run(_save_session, session, False)

    async def session(self, session_id: str) -> Session | None:
        return await self._db.run(_session, session_id)

    async def sessions(self, pair_id: str | None = None) -> list[Session]:
        """A pair's sessions (every pair's with None), oldest first."""
        return await self._db.run(_sessions, pair_id)

    # -- notices and activity ------------------------------------------------------------------

    async def sent(self, session_id: str) -> set[tuple[str, Notice, str, int]]:
        """(email casefolded, kind, occurrence, sequence) of every notice sent for a session."""
        return await self._db.run(_sent, session_id)

    async def mark_sent(self, session_id: str, email: str, kind: Notice, occurrence: str = "", sequence: int = 0) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO twinning_notices (session_id, email, kind, occurrence, sequence, sent_at) "
            "VALUES (?, ?, ?, ?, ?, ?)", (session_id, email, kind.value, occurrence, sequence, time.time()),
        )

    async def log(self, pair_id: str, what: Entry) -> None:
        await self._db.run(_log, pair_id, what, time.time())

    async def activity(self, pair_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return await self._db.run(_activity, pair_id, limit)

    # -- personal join links ----------------------------------------------------------------------

    async def note_link(self, jti: str, session_id: str, email: str, expires: float) -> None:
        """A personal join link was handed out (its JWT id), to revoke it if its holder leaves the pair."""
        await self._db.run(_note_link, jti, session_id, email, expires)

    async def revoked_links(self, session_id: str) -> set[str]:
        """The ids of the session's unexpired personal links whose holders are no longer members."""
        return await self._db.run(_revoked_links, session_id, time.time())

    async def secret(self, name: str) -> str:
        """A random secret kept in the database (created on first use), e.g. for signing links."""
        return await self._db.run(_secret, name)


# -- on the database thread ----------------------------------------------------------------------


def _create(conn: sqlite3.Connection, pair_id: str, name: str, branches: list[Branch], organiser: Member | None,
            by: str | None, record_sessions: bool) -> None:
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT INTO twinnings (id, name, created_by, created_at, record_sessions) VALUES (?, ?, ?, ?, ?)",
                     (pair_id, name, by, now, int(record_sessions)))
        for position, b in enumerate(branches):
            conn.execute(
                "INSERT INTO twinning_branches (twinning_id, position, name, union_name, sector, employer, country, "
                "timezone, languages) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pair_id, position, b.name, b.union, b.sector, b.employer, b.country, b.timezone, json.dumps(b.languages)),
            )
        if organiser is not None:
            _add_member(conn, pair_id, organiser)
        _log(conn, pair_id, entry(Activity.CREATED, pair=name), now)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _get(conn: sqlite3.Connection, pair_id: str) -> Pair | None:
    row = conn.execute("SELECT id, name, created_at, record_sessions FROM twinnings WHERE id = ?", (pair_id,)).fetchone()
    if row is None:
        return None
    branches = tuple(
        Branch(name=r[0], union=r[1], sector=r[2], employer=r[3], country=r[4], timezone=r[5], languages=tuple(json.loads(r[6])))
        for r in conn.execute(
            "SELECT name, union_name, sector, employer, country, timezone, languages FROM twinning_branches "
            "WHERE twinning_id = ? ORDER BY position", (pair_id,),
        )
    )
    members = tuple(
        Member(email=r[0], name=r[1], role=PairRole(r[2]), branch=r[3])
        for r in conn.execute(
            "SELECT email, name, role, branch FROM twinning_members WHERE twinning_id = ? ORDER BY added_at, email", (pair_id,)
        )
    )
    return Pair(id=row[0], name=row[1], branches=branches, members=members, created_at=row[2],
                record_sessions=bool(row[3]))


def _pair_ids(conn: sqlite3.Connection, email: str | None) -> list[str]:
    if email is None:
        return [r[0] for r in conn.execute("SELECT id FROM twinnings ORDER BY created_at")]
    return [r[0] for r in conn.execute(
        "SELECT t.id FROM twinnings t JOIN twinning_members m ON m.twinning_id = t.id WHERE m.email = ? "
        "ORDER BY t.created_at", (email,),
    )]


def _add_member(conn: sqlite3.Connection, pair_id: str, member: Member) -> None:
    conn.execute(
        "INSERT INTO twinning_members (twinning_id, email, name, role, branch, added_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (twinning_id, email) DO UPDATE SET name = excluded.name, role = excluded.role, branch = excluded.branch",
        (pair_id, member.email, member.name, member.role.value, member.branch, time.time()),
    )


def _remove_member(conn: sqlite3.Connection, pair_id: str, email: str) -> Member:
    folded = email.casefold()
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute("SELECT email, name, role, branch FROM twinning_members WHERE twinning_id = ?",
                            (pair_id,)).fetchall()
        members = [Member(email=r[0], name=r[1], role=PairRole(r[2]), branch=r[3]) for r in rows]
        gone = next((m for m in members if m.email.casefold() == folded), None)
        if gone is None:
            raise TwinningError("no-such-member", "This address is not a member of the pair.", 404)
        organisers = [m for m in members if m.role is PairRole.ORGANISER]
        if organisers == [gone]:
            raise TwinningError("last-organiser", "A pair keeps at least one organiser: make someone else an "
                                "organiser before removing this one.", 409)
        conn.execute("DELETE FROM twinning_members WHERE twinning_id = ? AND email = ?", (pair_id, gone.email))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return gone


def _save_session(conn: sqlite3.Connection, s: Session, new: bool) -> None:
    now = time.time()
    values = (s.title, s.schedule.local, s.schedule.timezone, int(s.schedule.length.total_seconds() // 60),
              s.schedule.rule, s.sequence, int(s.cancelled), s.base_url)
    if new:
        conn.execute(
            "INSERT INTO twinning_sessions (title, start_local, timezone, duration_minutes, rrule, sequence, cancelled, "
            "base_url, id, twinning_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, s.id, s.pair_id, now, now),
        )
    else:
        conn.execute(
            "UPDATE twinning_sessions SET title = ?, start_local = ?, timezone = ?, duration_minutes = ?, rrule = ?, "
            "sequence = ?, cancelled = ?, base_url = ?, updated_at = ? WHERE id = ?", (*values, now, s.id),
        )


_SESSION_COLUMNS = "id, twinning_id, title, start_local, timezone, duration_minutes, rrule, sequence, cancelled, base_url"


def _session_row(r: tuple[Any, ...]) -> Session:
    schedule = Schedule.stored(r[3], r[4], r[5], r[6])
    return Session(id=r[0], pair_id=r[1], title=r[2], schedule=schedule, sequence=r[7], cancelled=bool(r[8]), base_url=r[9])


def _session(conn: sqlite3.Connection, session_id: str) -> Session | None:
    row = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM twinning_sessions WHERE id = ?", (session_id,)).fetchone()
    return _session_row(row) if row else None


def _sessions(conn: sqlite3.Connection, pair_id: str | None) -> list[Session]:
    if pair_id is None:
        rows = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM twinning_sessions ORDER BY created_at").fetchall()
    else:
        rows = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM twinning_sessions WHERE twinning_id = ? ORDER BY created_at",
                            (pair_id,)).fetchall()
    return [_session_row(r) for r in rows]


def _sent(conn: sqlite3.Connection, session_id: str) -> set[tuple[str, Notice, str, int]]:
    return {
        (r[0].casefold(), Notice(r[1]), r[2], r[3])
        for r in conn.execute("SELECT email, kind, occurrence, sequence FROM twinning_notices WHERE session_id = ?",
                              (session_id,))
    }


def _log(conn: sqlite3.Connection, pair_id: str, what: Entry, at: float) -> None:
    conn.execute("INSERT INTO twinning_activity (twinning_id, at, kind, text, fields) VALUES (?, ?, ?, ?, ?)",
                 (pair_id, at, what.kind.value, what.text, json.dumps(what.fields, ensure_ascii=False)))


def _activity(conn: sqlite3.Connection, pair_id: str, limit: int) -> list[dict[str, Any]]:
    """Newest first: ``{"at", "kind", "text", "fields"}`` (``fields`` None in entries older than migration 4)."""
    return [
        {"at": r[0], "kind": r[1], "text": r[2], "fields": json.loads(r[3]) if r[3] else None}
        for r in conn.execute("SELECT at, kind, text, fields FROM twinning_activity WHERE twinning_id = ? "
                              "ORDER BY at DESC, id DESC LIMIT ?", (pair_id, limit))
    ]


def _note_link(conn: sqlite3.Connection, jti: str, session_id: str, email: str, expires: float) -> None:
    conn.execute("DELETE FROM twinning_links WHERE expires < ?", (time.time(),))  # (they no longer admit anyone)
    conn.execute("INSERT OR IGNORE INTO twinning_links (jti, session_id, email, expires) VALUES (?, ?, ?, ?)",
                 (jti, session_id, email.casefold(), expires))


def _revoked_links(conn: sqlite3.Connection, session_id: str, now: float) -> set[str]:
    members = {r[0].casefold() for r in conn.execute(
        "SELECT m.email FROM twinning_members m JOIN twinning_sessions s ON s.twinning_id = m.twinning_id WHERE s.id = ?",
        (session_id,),
    )}
    return {jti for jti, email in conn.execute(
        "SELECT jti, email FROM twinning_links WHERE session_id = ? AND expires >= ?", (session_id, now),
    ) if email not in members}


def _secret(conn: sqlite3.Connection, name: str) -> str:
    conn.execute("INSERT OR IGNORE INTO twinning_secrets (name, value) VALUES (?, ?)", (name, secrets.token_urlsafe(48)))
    row = conn.execute("SELECT value FROM twinning_secrets WHERE name = ?", (name,)).fetchone()
    return str(row[0])
