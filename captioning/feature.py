"""Captions as a client of every room (:class:`signalling.Feature`): the glue, nothing more.

The :class:`~captioning.service.CaptionService` hears every audio publication this feature hands
it from the SFU's ``watch``, sends captions through the hub, and ends a room's caption session
with the room.

A cluster's spanned room is captioned in one place, its owner, for both halves: the relay's
voices reach the owner through the pipe (piped publications, decoded there for their tap like a
local voice), the owner's captions reach the relay's readers through the hub, and they land in
the owner's caption session, which its recordings and live stream use. So the relay captions
nothing of a room it relays (each voice would be captioned twice), until the room is its own
again (the owner's half ended). The owner translates them into the languages of both halves'
people (the other half's, learnt from the hub every :data:`OTHER_HALF_S`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from media_server import MediaRoom, Publication
from signalling.features import Feature, RoomHub

from .service import CaptionConfig, CaptionService
from .store import CaptionStore

logger = logging.getLogger(__name__)

#: Seconds between looks at whether the rooms relayed here still are (their voices wait meanwhile).
RELAY_CHECK_S = 1.0
#: Seconds between looks at who is on the other half of the rooms with media here (their languages).
OTHER_HALF_S = 2.0


class CaptionsFeature(Feature):
    name = "captions"

    def __init__(self, hub: RoomHub, config: CaptionConfig, store: CaptionStore | None = None) -> None:
        self._hub = hub
        self.service = CaptionService(config, hub.emit_caption, self._participant_info, hub.caption_languages, store,
                                      interpretation=hub)
        self._unwatch: Callable[[], None] | None = None
        #: voices of rooms relayed here (their owner captions them), by publication id
        self._held: dict[str, tuple[str, Publication]] = {}
        self._held_check: asyncio.Task[None] | None = None
        #: the people on the other half of each spanned room with media here: {room: {id: (name, lang)}}
        self._remote: dict[str, dict[str, tuple[str, str]]] = {}
        self._piped_rooms: dict[str, str] = {}  # the piped voices' owners: their room
        self._learning: dict[str, asyncio.Task[None]] = {}  # by room
        self._unknown: set[str] = set()  # rooms whose other half could not be learnt (logged once)
        self._tasks: set[asyncio.Task[None]] = set()
        self._other_halves: asyncio.Task[None] | None = None

        def on_status() -> None:
            # models finished loading (or failed): caption what is published from now on, and
            # tell everyone already in a call
            if self.service.available and self._unwatch is None:
                self._unwatch = hub.sfu.watch(self._on_publication)
                self._other_halves = asyncio.create_task(self._follow_other_halves(), name="captions-other-halves")
            hub.notify("captions-status", self.service.status())

        self.service.on_status = on_status

    def state(self, room: str) -> dict[str, Any]:
        return self.service.status()

    def caption_languages(self, room: str) -> set[str]:
        """The languages of a spanned room's other half: its readers read the captions made here
        (their profile language: what they read unless they chose another)."""
        return {lang for _, lang in self._remote.get(room, {}).values() if lang}

    async def room_ended(self, room: str) -> None:
        self._remote.pop(room, None)
        for owner in [o for o, r in self._piped_rooms.items() if r == room]:
            del self._piped_rooms[owner]
        await self.service.end_session(room)

    async def translate_chat(self, text: str, source: str, langs: set[str]) -> dict[str, str]:
        return await self.service.translate_many(text, source, langs)

    def stats(self) -> dict[str, Any]:
        return {**self.service.status(), **self.service.stats(), "voices_captioned_elsewhere": len(self._held)}

    async def close(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        tasks = [*self._tasks, *(t for t in (self._held_check, self._other_halves) if t is not None)]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.service.close()

    # -- which voices are captioned here ---------------------------------------------------------

    def _on_publication(self, room: MediaRoom, publication: Publication) -> None:
        """SFU hook: hand each voice to the service, except in a room relayed here; a piped
        voice once the other half's people are known (its speaker's name and language)."""
        if publication.audio is None:
            return
        if self._hub.relayed(room.name):
            self._held[publication.id] = (room.name, publication)
            if self._held_check is None:
                self._held_check = asyncio.create_task(self._check_held(), name="captions-relayed-rooms")
            return
        if publication.is_piped:
            self._piped_rooms[publication.owner] = room.name
            if self._participant_info(publication.owner) is None:
                self._spawn(self._caption_after_learning(room, publication))
                return
        self.service.on_publication(room, publication)

    async def _caption_after_learning(self, room: MediaRoom, publication: Publication) -> None:
        await self._learn(room.name)
        if room.publications.get(publication.id) is publication:  # not ended meanwhile
            self.service.on_publication(room, publication)

    async def _check_held(self) -> None:
        """Caption the voices of a room relayed here once it is not (its owner's half ended)."""
        try:
            while self._held:
                await asyncio.sleep(RELAY_CHECK_S)
                for key, (name, publication) in list(self._held.items()):
                    room = self._hub.sfu.room(name)
                    if room is None or room.publications.get(key) is not publication:
                        del self._held[key]  # ended while held
                    elif not self._hub.relayed(name):
                        del self._held[key]
                        self._on_publication(room, publication)
        finally:
            self._held_check = None

    async def _follow_other_halves(self) -> None:
        """Keep what this node knows of the other half of each room with media here (nothing, but
        for a cluster's spanned rooms) up to date: who speaks there, what they read."""
        while True:
            await asyncio.sleep(OTHER_HALF_S)
            for room in list(self._hub.sfu.rooms):
                if not self._hub.relayed(room):
                    await self._learn(room)

    # -- who speaks --------------------------------------------------------------------------------

    def _participant_info(self, participant_id: str) -> tuple[str, str] | None:
        """(name, language) of a speaker here, or of one on a spanned room's other half (learnt
        from the hub, asked again when a piped voice's speaker is not known yet)."""
        info = self._hub.participant_info(participant_id)
        if info is not None:
            return info
        room = self._piped_rooms.get(participant_id)
        if room is None:
            return None
        info = self._remote.get(room, {}).get(participant_id)
        if info is None:
            self._learn(room)
        return info

    def _learn(self, room: str) -> asyncio.Task[None]:
        """Ask the hub who is on the room's other half (one question at a time per room)."""
        task = self._learning.get(room)
        if task is None:
            task = self._learning[room] = asyncio.create_task(self._fetch_people(room), name="captions-people")
            self._tasks.add(task)

            def done(t: asyncio.Task[None]) -> None:
                self._tasks.discard(t)
                self._learning.pop(room, None)

            task.add_done_callback(done)
        return task

    async def _fetch_people(self, room: str) -> None:
        try:
            people = await self._hub.remote_participants(room)
        except Exception as exc:  # (Redis away) captions go on as they were; asked again later
            if room not in self._unknown:
                self._unknown.add(room)
                logger.warning("room %s: who is on its other half is unknown for now (%r)", room, exc)
            return
        self._unknown.discard(room)
        if not people:
            self._remote.pop(room, None)
            return
        self._remote[room] = {str(p["id"]): (str(p.get("name", "")), str(p.get("lang", ""))) for p in people
                              if "id" in p}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
