"""Interpretation over the room store and the SFU: the meeting layer's side of ``interpretation.py``.

:class:`Interpreters` keeps one :class:`~signalling.interpretation.Interpretation` per room, is
the SFU's :class:`~media_server.sfu.Audience` (every audio subscription is checked against it,
so an interpreter reaches only their channel's listeners, whatever a client asks), and after
each change brings the room's subscriptions in line and tells the room (``interpretation``).
Subscriptions change by renegotiation; who may do what is checked by the event handlers
(:mod:`signalling.booths`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from media_server import SFU
from media_server.publication import Publication

from .errors import SignallingError
from .interpretation import Interpretation
from .rooms import Participant, Room
from .store import RoomStore
from .vocabulary import FLOOR, BoothAction

logger = logging.getLogger(__name__)

#: ``emit(room, event, payload)``: send to everyone in a room.
Emit = Callable[[str, str, dict[str, Any]], Awaitable[None]]
#: ``durable(room)``: the room's durable state changed (interpreters' browsers are part of it).
Durable = Callable[[Room], Awaitable[None]]


class Interpreters:
    """Booths and channels of every room; installed as the SFU's audience."""

    def __init__(self, store: RoomStore, sfu: SFU, emit: Emit, durable: Durable | None = None) -> None:
        self._store = store
        self._sfu = sfu
        self._emit = emit
        self._durable = durable
        self._rooms: dict[str, Interpretation] = {}
        sfu.set_audience(self)

    # -- the SFU's audience -----------------------------------------------------------------

    def hears(self, subscriber: str, publication: Publication) -> bool:
        owner = self._store.participant_by_id(publication.owner)
        if owner is None:  # leaving (its booth is already forgotten): nobody new gets it
            return False
        model = self._rooms.get(owner.room)
        if model is None:
            return True
        listener = self._store.participant_by_id(subscriber)
        lang = listener.lang if listener is not None else ""
        return model.hears(subscriber, lang, owner.id) if listener is not None else model.on_floor(owner.id)

    def on_floor(self, publication: Publication) -> bool:
        owner = self._store.participant_by_id(publication.owner)
        model = self._rooms.get(owner.room) if owner is not None else None
        return model is None or model.on_floor(publication.owner)

    # -- what clients see -------------------------------------------------------------------

    def state(self, room: str) -> dict[str, Any]:
        """``interpretation`` in ``joined`` and in its own event (PROTOCOL.md)."""
        model = self._rooms.get(room)
        if model is None:
            return {"channels": []}
        found = self._store.room(room)
        names = {p.id: p.name for p in found.participants.values()} if found else {}
        return model.public(names)

    def interprets(self, participant_id: str) -> str | None:
        """The language a participant interprets into (None: the floor)."""
        owner = self._store.participant_by_id(participant_id)
        model = self._rooms.get(owner.room) if owner is not None else None
        return model.booth_of(participant_id) if model is not None else None

    def live_channels(self, room: str) -> dict[str, str]:
        """``{language: the live interpreter's id}`` (captions come from them, not translation)."""
        model = self._rooms.get(room)
        if model is None:
            return {}
        return {lang: live for lang in model.booths if (live := model.live(lang)) is not None}

    def channel_of(self, participant: Participant) -> str:
        model = self._rooms.get(participant.room)
        return model.channel_of(participant.id, participant.lang) if model else FLOOR

    async def _changed(self, room: str) -> None:
        changed = self._sfu.apply_audience(room)
        logger.debug("room %s: interpretation changed %d audio subscriptions", room, changed)
        await self._emit(room, "interpretation", self.state(room))

    # -- operations -------------------------------------------------------------------------

    async def assign(self, room: Room, target: Participant, lang: str | None) -> None:
        """Make ``target`` interpret into ``lang`` (None: no longer)."""
        if lang is not None and not target.publishes_audio:
            raise SignallingError("no-microphone", f"{target.name} joined without a microphone: they cannot interpret.",
                                  params={"name": target.name})
        if target.client and room.interpreting.get(target.client) != lang:
            # (the room's durable state: a dropped connection or a room moved to another node
            # brings the interpreter back in their booth, else their voice would reach the floor)
            if lang is None:
                room.interpreting.pop(target.client, None)
            else:
                room.interpreting[target.client] = lang
            if self._durable is not None:
                await self._durable(room)
        model = self._rooms.setdefault(room.name, Interpretation())
        if model.assign(target.id, lang):
            logger.info("room %s: %s interprets into %s", room.name, target.id, lang or "nothing")
            await self._changed(room.name)
        if not model.booths:
            self._rooms.pop(room.name, None)

    async def joined(self, room: Room, participant: Participant, link: str | None) -> None:
        """Someone joined (before their media): an interpreter's link, or their browser's
        interpreting before a dropped connection, puts them in their booth (if they have a
        microphone: without one they join as a listener)."""
        lang = link or (room.interpreting.get(participant.client) if participant.client else None)
        if lang is not None and participant.publishes_audio:
            await self.assign(room, participant, lang)

    def forget_client(self, room: str, client: str | None) -> None:
        """A host removed this browser: it comes back (if it may) as no interpreter."""
        found = self._store.find(room)
        if client and found is not None:
            found.interpreting.pop(client, None)

    def room_ended(self, room: str) -> None:
        self._rooms.pop(room, None)  # (the browsers stay in the room's memory, with its other state)

    async def choose(self, participant: Participant, channel: str) -> str:
        """``participant`` listens to ``channel``; returns the channel they now hear."""
        model = self._rooms.get(participant.room)
        if model is None:
            if channel != FLOOR:
                raise SignallingError("no-channel", "Nobody interprets into that language in this meeting.")
            return FLOOR
        model.choose(participant.id, channel)
        self._sfu.apply_audience(participant.room)
        return model.channel_of(participant.id, participant.lang)

    async def act(self, participant: Participant, action: BoothAction, to: str | None) -> None:
        """An interpreter goes live, goes off or hands over."""
        model = self._rooms.get(participant.room)
        if model is None or model.booth_of(participant.id) is None:
            raise SignallingError("not-interpreter", "Only interpreters have a booth.")
        if action == "live":
            changed = model.go_live(participant.id)
        elif action == "off":
            changed = model.go_off(participant.id)
        else:
            to = model.hand_over(participant.id, to)
            changed = True
        if changed:
            logger.info("room %s: %s %s%s", participant.room, participant.id, action, f" to {to}" if to else "")
            await self._changed(participant.room)

    async def leave(self, room: str, participant: str) -> None:
        """``participant`` left ``room`` (their booth loses them; nobody may be live after)."""
        model = self._rooms.get(room)
        if model is None:
            return
        was_interpreter = model.booth_of(participant) is not None
        model.forget(participant)
        if not model.booths:
            self._rooms.pop(room, None)
        if was_interpreter and self._store.room(room) is not None:
            await self._changed(room)
