"""A scheduled session's call room: open from 15 minutes before each occurrence, roles preset.

A client of every room like captions and recordings (:class:`signalling.features.Feature`).
Before anyone enters a session's room (``tw-<session id>``) it checks that an occurrence is
open and, if the room is new, stages it in the :class:`~signalling.store.RoomStore` with the
lobby on: organisers (host links) and members (speaker links) come in with their signed links,
everyone else waits for a host. The room asks for captions in both sides' languages.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from signalling import RoomStore, SignallingError
from signalling.rooms import RoomSettings

from .pairs import ROOM_PREFIX, PairStore
from .timing import OPENS_EARLY
from .vocabulary import Activity

logger = logging.getLogger(__name__)


class SessionRooms:
    """The ``twinning`` feature: opens session rooms on time, with the pair's settings."""

    name = "twinning"

    def __init__(self, store: PairStore, rooms: RoomStore) -> None:
        self._pairs = store
        self._rooms = rooms
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
        if self._rooms.find(room) is None:
            self._rooms.stage(room, {"settings": asdict(RoomSettings(access="lobby"))})
            logger.info("session room %s opened for the occurrence at %s", room, start.isoformat())

    async def participant_joined(self, room: str, name: str, first: bool) -> None:
        if not first or not room.startswith(ROOM_PREFIX):
            return
        session = await self._pairs.session(room[len(ROOM_PREFIX):])
        if session is None:
            return
        start = session.schedule.open_occurrence(datetime.now(UTC))
        key = (room, start.isoformat() if start else "")
        if key not in self._held:
            self._held.add(key)
            await self._pairs.log(session.pair_id, Activity.SESSION_HELD, f"“{session.title}” held")

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
        return {}

    async def close(self) -> None:
        return None
