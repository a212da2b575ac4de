"""A scheduled session's call room: open from 15 minutes before each occurrence, roles preset.

A client of every room like captions and recordings (:class:`signalling.features.Feature`).
Before anyone enters a session's room (``tw-<session id>``) it checks that an occurrence is
open and, if the room is new, stages it in the :class:`~signalling.store.RoomStore` with the
lobby on: organisers (host links) and members (speaker links) come in with their signed links,
everyone else waits for a host. The room asks for captions in both sides' languages.

Recording as the pair decided: in a pair that records its sessions (``record_sessions``), the
room's recording starts when its first participant comes in (a guest admitted from the lobby
is never first: someone had to be there to admit them), through the recording feature's
:class:`~signalling.features.Switchable` seam, as a host's record button would — everyone sees
the usual recording indicator, and a host can still stop it. An empty room records nothing.

A removed member's personal links are revoked in the session's room (``Room.revoked``): staged
with the room, and added to a room already open when the member is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from core.errors import HubError
from signalling import RoomStore, SignallingError
from signalling.features import Switchable
from signalling.rooms import RoomSettings

from .activity import entry
from .pairs import ROOM_PREFIX, PairStore
from .timing import OPENS_EARLY
from .vocabulary import Activity

logger = logging.getLogger(__name__)


class SessionRooms:
    """The ``twinning`` feature: opens session rooms on time, with the pair's settings."""

    name = "twinning"

    def __init__(self, store: PairStore, rooms: RoomStore,
                 recording: Callable[[], Switchable | None] = lambda: None) -> None:
        """``recording``: the hub's recording feature, if it runs one (asked when needed)."""
        self._pairs = store
        self._rooms = rooms
        self._recording = recording
        self.recorded = 0  # session rooms whose recording this feature started (/healthz)
        self._languages: dict[str, set[str]] = {}  # room -> both sides' languages
        self._titles: dict[str, dict[str, Any]] = {}
        self._held: set[tuple[str, str]] = set()  # (room, occurrence) logged as held

    def state(self, room: str) -> dict[str, Any]:
        """``joined.twinning``: the session's title and pair, in a session's room."""
        return dict(self._titles.get(room, {}))

    async def before_join(self, room: str) -> None:
        if not room.startswith(ROOM_PREFIX) or self._rooms.room(room) is not None:
            return  # not a session, or already running (it may overrun its end)
        session = await self._pairs.session(room[len(ROOM_PREFIX):])
        if session is None:
            raise SignallingError("no-such-session", "There is no scheduled session with this link.")
        if session.cancelled:
            raise SignallingError("session-cancelled", "This session was cancelled.")
        now = datetime.now(UTC)
        start = session.schedule.open_occurrence(now)
        if start is None:
            nxt = session.schedule.next_occurrence(now)
            when = f" It opens at {(nxt - OPENS_EARLY).astimezone(UTC):%Y-%m-%d %H:%M} UTC." if nxt else ""
            raise SignallingError("not-open", f"This session's room opens 15 minutes before it starts.{when}")
        pair = await self._pairs.get(session.pair_id)
        if pair is not None:
            self._languages[room] = pair.languages()
            self._titles[room] = {"title": session.title, "pair": pair.name, "twinning": pair.id}
        revoked = await self._pairs.revoked_links(session.id)
        remembered = self._rooms.find(room)
        if remembered is None:
            self._rooms.stage(room, {"settings": asdict(RoomSettings(access="lobby")), "revoked": sorted(revoked)})
            logger.info("session room %s opened for the occurrence at %s", room, start.isoformat())
        else:
            remembered.revoked.update(revoked)

    def revoke(self, room: str, ids: set[str]) -> None:
        """Personal links (JWT ids) of someone removed from the pair: refused from now on in ``room``
        if it is open (a closed room gets them when it opens); anyone in it stays."""
        found = self._rooms.find(room)
        if found is not None:
            found.revoked.update(ids)

    async def participant_joined(self, room: str, name: str, first: bool) -> None:
        if not first or not room.startswith(ROOM_PREFIX):
            return
        session = await self._pairs.session(room[len(ROOM_PREFIX):])
        if session is None:
            return
        pair = await self._pairs.get(session.pair_id)
        if pair is not None and pair.record_sessions:
            await self._record(room)
        start = session.schedule.open_occurrence(datetime.now(UTC))
        key = (room, start.isoformat() if start else "")
        if key not in self._held:
            self._held.add(key)
            await self._pairs.log(session.pair_id, entry(Activity.SESSION_HELD, title=session.title))

    async def _record(self, room: str) -> None:
        recording = self._recording()
        if recording is None:
            logger.warning("session room %s should be recorded, but this hub runs without recordings", room)
            return
        try:
            if await recording.switch(room, True):
                self.recorded += 1
                logger.info("session room %s: recording started, as its pair decided", room)
        except (HubError, OSError) as exc:  # the call goes on unrecorded; the host can try the button
            logger.error("session room %s: the recording did not start: %s", room, exc)

    async def room_changed(self, room: str, state: dict[str, Any]) -> None:
        return None

    async def room_ended(self, room: str) -> None:
        self._languages.pop(room, None)  # asked again when the room reopens
        self._titles.pop(room, None)

    def caption_languages(self, room: str) -> set[str]:
        return set(self._languages.get(room, ()))

    async def on_caption(self, room: str, lang: str, caption: dict[str, Any]) -> None:
        return None

    async def translate_chat(self, text: str, source: str, langs: set[str]) -> dict[str, str]:
        return {}

    def stats(self) -> dict[str, Any]:
        return {"recorded": self.recorded}

    async def close(self) -> None:
        return None
