"""In-memory rooms and participants (the embedded default; one process, no Redis)."""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .access import Knocker, RoomSettings
from .validation import JoinRequest, SignallingError

CHAT_HISTORY = 100


@dataclass
class Participant:
    id: str
    sid: str
    room: str
    name: str
    lang: str
    audio: bool
    video: bool
    publishes_audio: bool
    publishes_video: bool
    caption_lang: str = ""
    screen: bool = False
    hand: bool = False
    role: str = "speaker"
    verified: bool = False  # the name comes from a signed link
    client: str | None = None  # the browser's id (bans)
    jti: str | None = None  # the signed link's id (revoked on removal)
    joined_at: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        """What other participants see."""
        return {
            "id": self.id,
            "name": self.name,
            "lang": self.lang,
            "audio": self.audio and self.publishes_audio,
            "video": self.video and self.publishes_video,
            "screen": self.screen,
            "hand": self.hand,
            "role": self.role,
            "verified": self.verified,
        }


@dataclass
class Room:
    name: str
    participants: dict[str, Participant] = field(default_factory=dict)
    chat: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=CHAT_HISTORY))
    created_at: float = field(default_factory=time.time)
    # Host-controlled, for as long as the room exists (someone is in it).
    settings: RoomSettings = field(default_factory=RoomSettings)
    lobby: dict[str, Knocker] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)  # signed-link ids of removed participants
    admitted: dict[str, str] = field(default_factory=dict)  # browser (client id) -> role, to resume
    banned_clients: set[str] = field(default_factory=set)
    banned_names: set[str] = field(default_factory=set)

    def hosts(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.role == "host"]


#: How long an emptied room's settings, bans and admitted browsers are kept: someone whose
#: connection dropped (the last one in, or a host) comes back to the same meeting.
ROOM_MEMORY_S = 120.0


class RoomRegistry:
    """Rooms by name and participants by socket id, with the server's size limits."""

    def __init__(self, max_participants: int = 50, max_rooms: int = 200, memory_s: float = ROOM_MEMORY_S) -> None:
        self.max_participants = max_participants
        self.max_rooms = max_rooms
        self.memory_s = memory_s
        self.rooms: dict[str, Room] = {}
        self.by_sid: dict[str, Participant] = {}
        self._memory: dict[str, tuple[Room, float]] = {}  # emptied rooms, until they expire

    def room_or_memory(self, name: str) -> Room | None:
        """The room, or what is remembered of it if it emptied within ``memory_s``."""
        room = self.rooms.get(name)
        if room is not None:
            return room
        self._prune()
        kept = self._memory.get(name)
        return kept[0] if kept else None

    def forget(self, name: str) -> None:
        self._memory.pop(name, None)

    def _prune(self) -> None:
        now = time.monotonic()
        for name in [n for n, (_, until) in self._memory.items() if until < now]:
            del self._memory[name]

    def check_capacity(self, room_name: str) -> None:
        """``server-full`` / ``room-full`` before anything else is decided about a join."""
        room = self.rooms.get(room_name)
        if room is None and len(self.rooms) >= self.max_rooms:
            raise SignallingError("server-full", "This server hosts too many rooms right now.")
        if (len(room.participants) if room else 0) >= self.max_participants:
            raise SignallingError(
                "room-full", f"This room is full ({self.max_participants} participants)."
            )

    def join(
        self, sid: str, req: JoinRequest, role: str = "speaker", verified: bool = False,
        jti: str | None = None,
    ) -> tuple[Room, Participant]:
        if sid in self.by_sid:
            raise SignallingError("already-joined", "This connection has already joined a room.")
        self.check_capacity(req.room)
        room = self.room_or_memory(req.room) or Room(req.room)
        self._memory.pop(req.room, None)
        self.rooms[req.room] = room
        publishes = role != "viewer"  # a viewer's devices stay home, whatever it asked for
        participant = Participant(
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
        room.participants[participant.id] = participant
        self.by_sid[sid] = participant
        if req.client:
            room.admitted[req.client] = role
        return room, participant

    def leave(self, sid: str) -> tuple[Room, Participant] | None:
        participant = self.by_sid.pop(sid, None)
        if participant is None:
            return None
        room = self.rooms[participant.room]
        room.participants.pop(participant.id, None)
        if not room.participants:
            del self.rooms[room.name]
            room.lobby.clear()
            self._prune()
            if len(self._memory) < self.max_rooms:
                self._memory[room.name] = (room, time.monotonic() + self.memory_s)
        return room, participant

    def get(self, sid: str) -> tuple[Room, Participant]:
        participant = self.by_sid.get(sid)
        if participant is None:
            raise SignallingError("not-joined", "Join a room first.")
        return self.rooms[participant.room], participant

    def add_chat(
        self, room: Room, participant: Participant, text: str, translations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        message = {
            "id": uuid.uuid4().hex[:12],
            "from": participant.id,
            "name": participant.name,
            "lang": participant.lang,
            "text": text,
            "translations": translations or {},
            "ts": int(time.time() * 1000),
        }
        room.chat.append(message)
        return message
