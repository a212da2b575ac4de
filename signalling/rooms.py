"""The room model: participants, host-chosen settings, the lobby, bans — no protocol, no storage.

Galène's ``group`` knows no protocol; neither does this module. Where rooms are kept is the
:class:`~signalling.store.RoomStore`'s business, what is sent over Socket.IO the namespace's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
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
#: PBKDF2 rounds for a room passcode's hash (~10 ms per check on these machines: enough to make
#: a stolen hash costly to try, little enough for the event loop at join rates).
PASSCODE_ROUNDS = 20_000


def hash_passcode(code: str, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$rounds$salt$hash`` (hex): how a passcode is kept (never in clear)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, PASSCODE_ROUNDS)
    return f"pbkdf2_sha256${PASSCODE_ROUNDS}${salt.hex()}${digest.hex()}"


def passcode_matches(code: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, rounds, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        tried = hashlib.pbkdf2_hmac("sha256", code.encode(), bytes.fromhex(salt), int(rounds))
    except ValueError:
        return False
    return hmac.compare_digest(tried.hex(), digest)

#: How long an emptied room's settings, bans and admitted browsers are kept: someone whose
#: connection dropped (the last one in, or a host) comes back to the same meeting.
ROOM_MEMORY_S = 120.0


@dataclass
class RoomSettings:
    """What hosts control; broadcast to the room (the passcode's hash never leaves the server)."""

    access: Access = "open"
    locked: bool = False
    record: Who = "hosts"  # who may record
    live: Who = "hosts"  # who may go live and push to RTMP
    #: last-N video: each participant receives at most this many others' video ("lastN")
    last_n: int = DEFAULT_LAST_N
    #: "low bandwidth room": every camera small and cheap (``bandwidth.py``; "lowBandwidth")
    low_bandwidth: bool = False
    #: the passcode, hashed (``hash_passcode``): set with :meth:`set_passcode`
    passcode_hash: str | None = field(default=None, repr=False)

    def set_passcode(self, code: str | None) -> None:
        self.passcode_hash = hash_passcode(code) if code else None

    def passcode_matches(self, code: str) -> bool:
        return passcode_matches(code, self.passcode_hash)

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        del out["passcode_hash"]
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
    #: browser (client id) -> the language it interprets into: an interpreter whose connection
    #: dropped, or whose room moved to another node, comes back in their booth (never on the floor)
    interpreting: dict[str, str] = field(default_factory=dict)
    #: what every camera was last asked to send at most (``bandwidth.py``; None: no cap)
    camera_limit: CameraLimit | None = None

    def durable(self) -> dict[str, Any]:
        """What outlives connections and should outlive this process (a cluster keeps it in
        Redis): settings (the passcode hashed), revoked links, admitted browsers' roles, bans,
        interpreters' browsers."""
        return {
            "settings": asdict(self.settings),
            "revoked": sorted(self.revoked),
            "admitted": dict(self.admitted),
            "banned_clients": sorted(self.banned_clients),
            "banned_names": sorted(self.banned_names),
            "interpreting": dict(self.interpreting),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`durable` gave (fields it does not know are ignored)."""
        known = {f.name for f in dataclasses.fields(RoomSettings)}
        settings = {k: v for k, v in dict(state.get("settings") or {}).items() if k in known}
        self.settings = RoomSettings(**settings)
        self.revoked = set(state.get("revoked") or ())
        self.admitted = {str(k): v for k, v in dict(state.get("admitted") or {}).items()}
        self.banned_clients = set(state.get("banned_clients") or ())
        self.banned_names = set(state.get("banned_names") or ())
        self.interpreting = {str(k): str(v) for k, v in dict(state.get("interpreting") or {}).items()}

    def hosts(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.role == "host"]

    def target(self, participant_id: str) -> Participant:
        """A participant a host acts on, or ``no-such-participant``."""
        target = self.participants.get(participant_id)
        if target is None:
            raise SignallingError("no-such-participant", "Nobody with that id is in this meeting.")
        return target
