"""What organisers and members do with pairs and sessions, and what they are shown.

The HTTP routes (:mod:`meetings.http`) ask :func:`meetings.access.caller` who is asking and
hand the checked body here; this module applies the rules (who may), stores the change, logs
it, and wakes the notifier that e-mails invitations, updates and cancellations.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from signalling.auth import MAX_TTL, Security, TokenSigner, join_url

from . import validation
from .access import Caller, require
from .activity import entry
from .errors import TwinningError
from .pairs import Member, Pair, PairStore, Session, new_id
from .timing import OPENS_EARLY, in_zone
from .vocabulary import Activity, Notice, PairRole

logger = logging.getLogger(__name__)

PUBLIC_URL_ENV = "UNIONHUB_PUBLIC_URL"
LINK_SECRET = "join-links"
PAST_SHOWN = 10
#: A recording belongs to the occurrence it started in (the room opens early; people stay late).
RECORDING_GRACE = timedelta(hours=1)

#: The recordings of a room, as the archive has them ready (``unionhub`` wires the recordings
#: feature in: meetings does not import it): ``[{"id", "title", "started_at", "duration",
#: "languages", "url"}]``, ``started_at`` in epoch seconds.
RoomRecordings = Callable[[str], Awaitable[list[dict[str, Any]]]]


def public_url() -> str | None:
    """The hub's address for links in e-mails, when it is behind a proxy (else each request's)."""
    value = os.environ.get(PUBLIC_URL_ENV, "").strip().rstrip("/")
    return value or None


class Twinnings:
    """Pairs and sessions: the rules, the views, and personal join links."""

    def __init__(self, store: PairStore, security: Security, wake: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.security = security
        self.wake = wake
        self.now = clock
        self.recordings: RoomRecordings | None = None
        #: Told a session room's revoked personal links (their ids) when a member is removed, so
        #: that a room already open refuses them too (the session rooms feature listens).
        self.revoked: Callable[[str, set[str]], None] = lambda room, ids: None

    async def start(self) -> None:
        """Sessions need signed join links: a hub without ``UNIONHUB_JWT_SECRET`` signs them with
        a secret kept in its database, so that links in e-mails survive a restart."""
        if self.security.signer is None:
            self.security.signer = TokenSigner(await self.store.secret(LINK_SECRET))
            logger.info("signed join links enabled for scheduled sessions (secret kept in the database)")

    # -- pairs --------------------------------------------------------------------------------

    async def create_pair(self, who: Caller, body: Any) -> Pair:
        name, branches = validation.pair(body)
        record = validation.pair_settings(body, creating=True).get("record_sessions", False)
        organiser = None
        if who.account is not None:
            organiser = Member(who.account.email, PairRole.ORGANISER, who.account.name[:64], None)
        pair = await self.store.create(name, branches, organiser, who.account.id if who.account else None, record)
        if organiser is not None:  # they know: no welcome e-mail for the creator
            await self.store.mark_sent(welcome_key(pair.id), organiser.email, Notice.WELCOME)
        logger.info("twinning pair %s created", pair.id)
        return pair

    async def pair(self, who: Caller, pair_id: str, role: PairRole = PairRole.MEMBER) -> tuple[Pair, PairRole]:
        pair = await self.store.get(pair_id)
        if pair is None:
            raise TwinningError("not-found", "There is no such twinning pair.", 404)
        return pair, require(who, pair, role)

    async def pairs_of(self, who: Caller) -> list[Pair]:
        """The pairs ``who`` belongs to now (every pair for the API key): a removed member's are not."""
        pairs = await self.store.for_email(None if who.admin else who.email)
        return [p for p in pairs if who.role_in(p) is not None]

    async def add_member(self, who: Caller, pair_id: str, body: Any) -> Member:
        pair, _ = await self.pair(who, pair_id, PairRole.ORGANISER)
        member = validation.member(body, len(pair.branches))
        await self.store.add_member(pair.id, member)
        await self.store.log(pair.id, entry(Activity.MEMBER_ADDED, name=member.name or member.email, role=member.role.value))
        self.wake()
        return member

    async def remove_member(self, who: Caller, pair_id: str, email: str) -> Member:
        """An organiser takes someone out of the pair: the pair page, its documents and e-mails
        are theirs no more, and their personal join links stop working (open rooms included)."""
        pair, _ = await self.pair(who, pair_id, PairRole.ORGANISER)
        gone = await self.store.remove_member(pair.id, email)
        await self.store.log(pair.id, entry(Activity.MEMBER_REMOVED, name=gone.name or gone.email))
        for session in await self.store.sessions(pair.id):
            revoked = await self.store.revoked_links(session.id)
            if revoked:
                self.revoked(session.room, revoked)
        logger.info("twinning pair %s: a member was removed", pair.id)
        return gone

    async def change_settings(self, who: Caller, pair_id: str, body: Any) -> Pair:
        """``{"record_sessions": bool}`` (organisers): whether the pair's session rooms record."""
        pair, _ = await self.pair(who, pair_id, PairRole.ORGANISER)
        settings = validation.pair_settings(body)
        record = settings.get("record_sessions")
        if record is not None and record != pair.record_sessions:
            await self.store.set_recording(pair.id, record)
            await self.store.log(pair.id, entry(Activity.RECORDING_ON if record else Activity.RECORDING_OFF))
        changed = await self.store.get(pair.id)
        assert changed is not None
        return changed

    # -- sessions -------------------------------------------------------------------------------

    async def schedule(self, who: Caller, pair_id: str, body: Any, base_url: str) -> tuple[Pair, Session]:
        pair, _ = await self.pair(who, pair_id, PairRole.ORGANISER)
        fields = validation.session(body)
        end = fields.schedule.last_end()
        if end is not None and end <= self.now():
            raise TwinningError("in-the-past", "This session would be over already: pick a start in the future.")
        session = Session(new_id(), pair.id, fields.title, fields.schedule, public_url() or base_url)
        await self.store.add_session(session)
        await self.store.log(pair.id, entry(Activity.SESSION_SCHEDULED, title=session.title))
        self.wake()
        return pair, session

    async def session(self, who: Caller, pair_id: str, session_id: str,
                      role: PairRole = PairRole.MEMBER) -> tuple[Pair, Session]:
        pair, _ = await self.pair(who, pair_id, role)
        session = await self.store.session(session_id)
        if session is None or session.pair_id != pair.id:
            raise TwinningError("not-found", "There is no such session in this pair.", 404)
        return pair, session

    async def change(self, who: Caller, pair_id: str, session_id: str, body: Any) -> tuple[Pair, Session]:
        pair, session = await self.session(who, pair_id, session_id, PairRole.ORGANISER)
        if session.cancelled:
            raise TwinningError("cancelled", "This session was cancelled; schedule a new one.", 409)
        fields = validation.session(body, validation.SessionFields(session.title, session.schedule))
        changed = Session(session.id, pair.id, fields.title, fields.schedule, session.base_url, session.sequence + 1)
        await self.store.save_session(changed)
        await self.store.log(pair.id, entry(Activity.SESSION_CHANGED, title=changed.title))
        self.wake()
        return pair, changed

    async def cancel(self, who: Caller, pair_id: str, session_id: str) -> tuple[Pair, Session]:
        pair, session = await self.session(who, pair_id, session_id, PairRole.ORGANISER)
        if session.cancelled:
            return pair, session
        cancelled = Session(session.id, pair.id, session.title, session.schedule, session.base_url,
                            session.sequence + 1, cancelled=True)
        await self.store.save_session(cancelled)
        await self.store.log(pair.id, entry(Activity.SESSION_CANCELLED, title=session.title))
        self.wake()
        return pair, cancelled

    # -- links ----------------------------------------------------------------------------------

    def room_url(self, session: Session) -> str:
        return f"{session.base_url}/r/{quote(session.room)}"

    async def personal_link(self, session: Session, member: Member) -> str:
        """A member's own signed join link: organisers host, members skip the lobby. Its id is
        kept, so that it stops working if the member is removed from the pair."""
        signer = self.security.signer
        if signer is None:  # (start() sets one up)
            return self.room_url(session)
        end = session.schedule.last_end()
        ttl = MAX_TTL if end is None else (end - self.now()).total_seconds() + 24 * 3600
        ttl = min(MAX_TTL, max(3600.0, math.ceil(ttl)))
        role = "host" if member.role is PairRole.ORGANISER else "speaker"
        name = member.name or member.email.split("@", 1)[0][:64] or "member"
        token = signer.create(session.room, role, name, ttl)
        grant = signer.verify(token, session.room)
        await self.store.note_link(grant.jti, session.id, member.email, grant.expires)
        return join_url(session.base_url, session.room, token)

    async def link_for(self, who: Caller, pair: Pair, session: Session) -> str:
        member = pair.member(who.email) if who.email else None
        return await self.personal_link(session, member) if member is not None else self.room_url(session)

    # -- views ----------------------------------------------------------------------------------

    async def session_view(self, pair: Pair, session: Session, who: Caller | None = None) -> dict[str, Any]:
        now = self.now()
        schedule = session.schedule
        nxt = None if session.cancelled else schedule.next_occurrence(now)
        view: dict[str, Any] = {
            "id": session.id, "twinning": pair.id, "title": session.title, "start": schedule.local,
            "timezone": schedule.timezone, "duration_minutes": int(schedule.length.total_seconds() // 60),
            "rrule": schedule.rule, "sequence": session.sequence, "status": session.status.value,
            "room": session.room, "join_url": self.room_url(session),
            "ics_url": f"{session.base_url}/api/twinnings/{pair.id}/sessions/{session.id}/invite.ics",
            "next": occurrence_view(pair, nxt, schedule.length) if nxt is not None else None,
            "past": [occurrence_view(pair, s, schedule.length) for s in schedule.past(now, PAST_SHOWN)],
        }
        if who is not None and who.email and pair.member(who.email) is not None and not session.cancelled:
            view["your_link"] = await self.link_for(who, pair, session)
        return view

    async def pair_view(self, pair: Pair, role: PairRole, who: Caller) -> dict[str, Any]:
        sessions = await self.store.sessions(pair.id)
        views = [await self.session_view(pair, s, who) for s in sessions]
        if self.recordings is not None:
            for view in views:
                await self._attach_recordings(view)
        upcoming = sorted((v for v in views if v["next"]), key=lambda v: v["next"]["start"])
        past = sorted(
            ({"title": v["title"], "session": v["id"], **p} for v in views for p in v["past"]),
            key=lambda p: p["start"], reverse=True,
        )[:PAST_SHOWN]
        return {
            "id": pair.id, "name": pair.name, "url": f"/t/{pair.id}", "your_role": role.value,
            "record_sessions": pair.record_sessions,
            "branches": [b.public() for b in pair.branches],
            "members": [m.public() for m in pair.members],
            "sessions": views, "next": upcoming[0] if upcoming else None, "past": past,
            "activity": await self.store.activity(pair.id),
        }


    async def _attach_recordings(self, view: dict[str, Any]) -> None:
        """Each past occurrence of a session with the recordings made in its room meanwhile (the
        player shows the transcript in the reader's language)."""
        assert self.recordings is not None
        made = await self.recordings(view["room"])
        for past in view["past"]:
            start = datetime.fromisoformat(past["opens"].replace("Z", "+00:00")).timestamp()
            end = (datetime.fromisoformat(past["end"].replace("Z", "+00:00")) + RECORDING_GRACE).timestamp()
            past["recordings"] = [r for r in made if start <= float(r["started_at"]) < end]


def welcome_key(pair_id: str) -> str:
    """Notices about the pair itself (welcome) are kept under this pseudo session id."""
    return f"pair:{pair_id}"


def occurrence_view(pair: Pair, start: datetime, length: timedelta) -> dict[str, Any]:
    """One occurrence: UTC start and end, when its room opens, and each side's local time."""
    return {
        "start": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + length).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "opens": (start - OPENS_EARLY).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "local": [{"branch": b.name, **in_zone(start, b.timezone)} for b in pair.branches],
    }
