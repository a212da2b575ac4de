"""The room model: participants, host-chosen settings, the lobby, bans — no protocol, no storage.

Galène's ``group`` knows no protocol; neither does this module. Where rooms are kept is the
:class:`~signalling.store.RoomStore`'s business, what is sent over Socket.IO the namespace's.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from media_server.lastn import DEFAULT_LAST_N

from .bandwidth import CameraLimit
from .errors import SignallingError
from .validation import JoinRequest
from .vocabulary import Access, Role, Who

CHAT_HISTORY = 100

#: How long an emptied room's settings, bans and admitted browsers are kept: someone whose
#: connection dropped (the last one in, or a host) comes back to the same meeting.
ROOM_MEMORY_S = 120.0


@dataclass
class RoomSettings:
    """What hosts control; broadcast to the room (the passcode never leaves the server)."""

    access: Access = "open"
    locked: bool = False
    record: Who = "hosts"  # who may record
    live: Who = "hosts"  # who may go live and push to RTMP
    #: last-N video: each participant receives at most this many others' video ("lastN")
    last_n: int = DEFAULT_LAST_N
    #: "low bandwidth room": every camera small and cheap (``bandwidth.py``; "lowBandwidth")
    low_bandwidth: bool = False
    passcode: str | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        del out["passcode"]
        out["lastN"] = out.pop("last_n")
        out["lowBandwidth"] = out.pop("low_bandwidth")
        return out


@dataclass
class Knocker:
    """Someone waiting in a room's lobby for a host."""

    id: str
    sid: str
    req: JoinRequest
    verified: bool = False

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.req.name, "lang": self.req.lang, "verified": self.verified}


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
    role: Role = "speaker"
    verified: bool = False  # the name comes from a signed link
    client: str | None = None  # the browser's id (bans)
    jti: str | None = None  # the signed link's id (revoked on removal)
    # "Data saver": receives no video and publishes no camera or screen; ``publishes_video`` keeps
    # saying whether the participant has a camera to publish again when it switches back.
    audio_only: bool = False
    joined_at: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        """What other participants see."""
        return {
            "id": self.id,
            "name": self.name,
            "lang": self.lang,
            "audio": self.audio and self.publishes_audio,
            "video": self.video and self.publishes_video and not self.audio_only,
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
    admitted: dict[str, Role] = field(default_factory=dict)  # browser (client id) -> role, to resume
    banned_clients: set[str] = field(default_factory=set)
    banned_names: set[str] = field(default_factory=set)
    #: what every camera was last asked to send at most (``bandwidth.py``; None: no cap)
    camera_limit: CameraLimit | None = None

    def hosts(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.role == "host"]

    def target(self, participant_id: str) -> Participant:
        """A participant a host acts on, or ``no-such-participant``."""
        target = self.participants.get(participant_id)
        if target is None:
            raise SignallingError("no-such-participant", "Nobody with that id is in this meeting.")
        return target
