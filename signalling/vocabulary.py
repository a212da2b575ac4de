"""The words of the meeting protocol, defined once: roles, access modes, who may, sources.

Validation returns these types, so a value that reaches the room model or the SFU is already
one of them (no ``str`` where a role is meant, no ``type: ignore`` to pass it on).
"""

from __future__ import annotations

from typing import Literal, get_args

from media_server.publication import Source

__all__ = [
    "ACCESS", "BOOTH_ACTIONS", "FLOOR", "LINK_ROLES", "PUBLISHABLE", "ROLES", "WHO", "Access", "BoothAction",
    "LinkRole", "Publishable", "Role", "Source", "Who",
]

#: host: manages the meeting; speaker: talks and shares; viewer: watches and listens.
Role = Literal["host", "speaker", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)

#: What a signed link may make its holder: a role, or an interpreter (a speaker whose voice goes
#: to one language's channel, never to the floor; the link's ``lang`` names the channel).
LinkRole = Literal["host", "speaker", "viewer", "interpreter"]
LINK_ROLES: tuple[LinkRole, ...] = get_args(LinkRole)

#: The audio channel everyone hears: the room's own voices, no interpreter.
FLOOR = "floor"

#: What an interpreter does in their booth: go live, go off, hand the microphone to a partner.
BoothAction = Literal["live", "off", "handover"]
BOOTH_ACTIONS: tuple[BoothAction, ...] = get_args(BoothAction)

#: How a newcomer gets in: straight in, with a passcode, through the lobby, or only with a link.
Access = Literal["open", "passcode", "lobby", "token"]
ACCESS: tuple[Access, ...] = get_args(Access)

#: Who may record or go live.
Who = Literal["hosts", "everyone"]
WHO: tuple[Who, ...] = get_args(Who)

#: Sources a participant opens after joining (microphone and camera are opened by ``join``).
Publishable = Literal["screen"]
PUBLISHABLE: tuple[Publishable, ...] = get_args(Publishable)
