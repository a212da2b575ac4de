"""Who may enter a room, and as what: access modes, locks, bans and the lobby.

Decided once per ``join``, on the server, before the socket sees anything of the room. A signed
link (``Grant``) is the strongest credential: it skips passcode and lobby, and only a host link
opens a locked room. Without one, the room's host-chosen ``access`` applies.
"""

from __future__ import annotations

from typing import Literal

from .auth import Grant
from .errors import SignallingError, refusal
from .rooms import Room
from .validation import JoinRequest
from .vocabulary import Role

Decision = Literal["join", "lobby"]


def decide(
    room: Room | None, req: JoinRequest, grant: Grant | None, token_only: bool, relayed: bool = False
) -> tuple[Decision, Role]:
    """("join" | "lobby", role) for a join request, or the error that refuses it. ``relayed``:
    this process relays a room another owns (a spanned room), whose half here may be empty while
    the meeting goes on: roles come from links and the room's remembered roles, never emptiness."""
    if grant is None and token_only:
        raise SignallingError("auth-required", "This server only admits signed join links — ask the host for one.")
    founder: Role = "speaker" if relayed else "host"
    if room is None:  # a new room: its creator hosts it (or the link's role)
        return "join", grant.role if grant else founder
    if grant is not None and grant.jti in room.revoked:
        raise refusal("link-revoked")
    if (req.client and req.client in room.banned_clients) or req.name.casefold() in room.banned_names:
        raise SignallingError("banned", "A host removed you from this meeting; you cannot rejoin it.")
    if req.client and req.client in room.admitted:
        # back after a dropped connection (or a rejoin to publish): the role hosts last gave it,
        # whatever its link says, and no lobby, passcode or lock again
        return "join", room.admitted[req.client]
    settings = room.settings
    if grant is not None:
        if settings.locked and grant.role != "host":
            raise SignallingError("room-locked", "A host locked this meeting: nobody new can join.")
        return "join", grant.role
    if settings.locked:
        raise SignallingError("room-locked", "A host locked this meeting: nobody new can join.")
    if settings.access == "token":
        raise SignallingError("auth-required", "This meeting only admits signed join links — ask the host for one.")
    if settings.access == "passcode":
        if not req.passcode:
            raise SignallingError("passcode-required", "This meeting needs a passcode.")
        if not settings.passcode_matches(req.passcode):
            raise SignallingError("bad-passcode", "That passcode is not right.")
    if settings.access == "lobby":
        if not room.participants and not relayed:  # remembered (emptied) room: nobody is there
            raise refusal("nobody-to-admit")  # to let anyone in (a relay's hosts may be elsewhere)
        return "lobby", "speaker"
    return "join", "speaker" if room.participants else founder
