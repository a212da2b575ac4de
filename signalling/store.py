"""Where rooms live: the :class:`RoomStore` interface and the embedded in-memory store.

The meeting operations reach rooms only through this interface, the way python-socketio's
server reaches its clients only through a client manager, so that a store shared by several
processes (Redis, scale-out) can replace :class:`MemoryRoomStore` without touching them.
"""

from __future__ import annotations

import abc
import time
import uuid
from typing import Any

from .errors import SignallingError
from .rooms import ROOM_MEMORY_S, Participant, Room
from .validation import JoinRequest
from .vocabulary import Role


class RoomStore(abc.ABC):
    """Rooms by name, participants by socket id, an emptied room's memory, the server's limits."""

    def __init__(self, max_participants: int = 50, max_rooms: int = 200, memory_s: float = ROOM_MEMORY_S) -> None:
        self.max_participants = max_participants
        self.max_rooms = max_rooms
        self.memory_s = memory_s
        self._relayed: set[str] = set()

    def set_relayed(self, name: str, on: bool) -> None:
        """Whether this process serves ``name`` as a relay of a room another process owns (a
        cluster's spanned room): its half may be empty while the meeting goes on elsewhere, so
        emptiness makes nobody host there (:func:`~signalling.access.decide`)."""
        if on:
            self._relayed.add(name)
        else:
            self._relayed.discard(name)

    def relayed(self, name: str) -> bool:
        return name in self._relayed

    def refresh(self, name: str, state: dict[str, Any]) -> None:
        """``Room.durable()`` state another process of the same room saved (a spanned room's
        owner granted a role, banned someone, locked the room): applied to the room here, or
        remembered with it if nobody is in it here (its lobby kept: a relay's knockers may wait
        in a half nobody is in)."""
        room = self.find(name)
        if room is None:
            self.stage(name, state)
        else:
            room.restore(state)

    @abc.abstractmethod
    def room(self, name: str) -> Room | None:
        """The room if someone is in it."""

    @abc.abstractmethod
    def find(self, name: str) -> Room | None:
        """The room, or what is remembered of it if it emptied within ``memory_s``."""

    @abc.abstractmethod
    def forget(self, name: str) -> None:
        """Drop an emptied room's memory (an ended meeting is not resumed)."""

    @abc.abstractmethod
    def stage(self, name: str, state: dict[str, Any]) -> None:
        """``Room.durable()`` state kept elsewhere (a cluster's Redis: the room lived on another
        node): the room is remembered here with it, as if it had emptied here."""

    @abc.abstractmethod
    def count(self) -> int:
        """Rooms with someone in them."""

    @abc.abstractmethod
    def names(self) -> list[str]:
        """The names of the rooms with someone in them."""

    @abc.abstractmethod
    def participant(self, sid: str) -> Participant | None:
        """The participant on a socket, if it joined."""

    @abc.abstractmethod
    def participant_by_id(self, participant_id: str) -> Participant | None: ...

    @abc.abstractmethod
    def sids(self) -> list[str]:
        """Every joined socket (to close them on shutdown)."""

    @abc.abstractmethod
    def join(
        self, sid: str, req: JoinRequest, role: Role = "speaker", verified: bool = False, jti: str | None = None
    ) -> tuple[Room, Participant]:
        """Add a participant (creating or reviving the room); ``already-joined`` / limits refuse."""

    @abc.abstractmethod
    def leave(self, sid: str) -> tuple[Room, Participant] | None:
        """Remove the socket's participant; an emptied room is remembered for ``memory_s``."""

    @abc.abstractmethod
    def add_chat(
        self, room: Room, participant: Participant, text: str, translations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Keep a chat message in the room's bounded history; returns it as sent."""

    def member(self, sid: str) -> tuple[Room, Participant]:
        """The socket's room and participant, or ``not-joined``."""
        participant = self.participant(sid)
        room = self.room(participant.room) if participant is not None else None
        if participant is None or room is None:
            raise SignallingError("not-joined", "Join a room first.")
        return room, participant

    def check_capacity(self, room_name: str) -> None:
        """``server-full`` / ``room-full`` before anything else is decided about a join."""
        room = self.room(room_name)
        if room is None and self.count() >= self.max_rooms:
            raise SignallingError("server-full", "This server hosts too many rooms right now.")
        if (len(room.participants) if room else 0) >= self.max_participants:
            raise SignallingError(
                "room-full", f"This room is full ({self.max_participants} participants)."
            )

    @staticmethod
    def new_participant(sid: str, req: JoinRequest, role: Role, verified: bool, jti: str | None) -> Participant:
        publishes = role != "viewer"  # a viewer's devices stay home, whatever it asked for
        return Participant(
            id=uuid.uuid4().hex[:12],
            sid=sid,
            room=req.room,
            name=req.name,
            lang=req.lang,
            audio=req.audio and publishes,
            video=req.video and publishes,
            publishes_audio=req.audio and publishes,
            publishes_video=req.video and publishes,
            caption_lang=req.lang,
            role=role,
            verified=verified,
            client=req.client,
            jti=jti,
        )

    @staticmethod
    def new_chat_message(participant: Participant, text: str, translations: dict[str, str] | None) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex[:12],
            "from": participant.id,
            "name": participant.name,
            "lang": participant.lang,
            "text": text,
            "translations": translations or {},
            "ts": int(time.time() * 1000),
        }


class MemoryRoomStore(RoomStore):
    """The embedded default: one process, no Redis. ``rooms`` and ``by_sid`` are read-only views
    for tests and monitoring; changes go through the methods."""

    def __init__(self, max_participants: int = 50, max_rooms: int = 200, memory_s: float = ROOM_MEMORY_S) -> None:
        super().__init__(max_participants, max_rooms, memory_s)
        self.rooms: dict[str, Room] = {}
        self.by_sid: dict[str, Participant] = {}
        self._by_id: dict[str, Participant] = {}
        self._memory: dict[str, tuple[Room, float]] = {}  # emptied rooms, until they expire

    def room(self, name: str) -> Room | None:
        return self.rooms.get(name)

    def find(self, name: str) -> Room | None:
        room = self.rooms.get(name)
        if room is not None:
            return room
        self._prune()
        kept = self._memory.get(name)
        return kept[0] if kept else None

    def forget(self, name: str) -> None:
        self._memory.pop(name, None)

    def stage(self, name: str, state: dict[str, Any]) -> None:
        """Remembered as an emptied room would be: access rules, bans and roles apply at once."""
        room = Room(name)
        room.restore(state)
        self._memory[name] = (room, time.monotonic() + self.memory_s)

    def count(self) -> int:
        return len(self.rooms)

    def names(self) -> list[str]:
        return list(self.rooms)

    def participant(self, sid: str) -> Participant | None:
        return self.by_sid.get(sid)

    def participant_by_id(self, participant_id: str) -> Participant | None:
        return self._by_id.get(participant_id)

    def sids(self) -> list[str]:
        return list(self.by_sid)

    def _prune(self) -> None:
        now = time.monotonic()
        for name in [n for n, (_, until) in self._memory.items() if until < now]:
            del self._memory[name]

    def join(
        self, sid: str, req: JoinRequest, role: Role = "speaker", verified: bool = False, jti: str | None = None
    ) -> tuple[Room, Participant]:
        if sid in self.by_sid:
            raise SignallingError("already-joined", "This connection has already joined a room.")
        self.check_capacity(req.room)
        room = self.find(req.room) or Room(req.room)
        self._memory.pop(req.room, None)
        self.rooms[req.room] = room
        participant = self.new_participant(sid, req, role, verified, jti)
        room.participants[participant.id] = participant
        self.by_sid[sid] = participant
        self._by_id[participant.id] = participant
        if req.client:
            room.admitted[req.client] = role
        return room, participant

    def leave(self, sid: str) -> tuple[Room, Participant] | None:
        participant = self.by_sid.pop(sid, None)
        if participant is None:
            return None
        self._by_id.pop(participant.id, None)
        room = self.rooms[participant.room]
        room.participants.pop(participant.id, None)
        if not room.participants:  # (its knockers: the meeting layer's to turn away, or keep)
            del self.rooms[room.name]
            self._prune()
            if len(self._memory) < self.max_rooms:
                self._memory[room.name] = (room, time.monotonic() + self.memory_s)
        return room, participant

    def add_chat(
        self, room: Room, participant: Participant, text: str, translations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        message = self.new_chat_message(participant, text, translations)
        room.chat.append(message)
        return message
