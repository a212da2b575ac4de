"""Host controls: room settings, lobby answers, mute, stop camera, remove/ban, roles, end.

Every control is checked here, on the server: only a host of the room may use it, and it acts
on the media itself (a muted microphone is no longer forwarded, whatever the muted person's
client does), not only on what clients display.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import validation
from .rooms import Participant, Room
from .validation import SignallingError

if TYPE_CHECKING:
    from .server import SignallingServer

logger = logging.getLogger(__name__)


class HostControls:
    """The ``HOST_EVENTS`` handlers of a :class:`SignallingServer`."""

    def __init__(self, server: SignallingServer) -> None:
        self.server = server

    def _host(self, sid: str) -> tuple[Room, Participant]:
        room, participant = self.server.registry.get(sid)
        if participant.role != "host":
            raise SignallingError("forbidden", "Only hosts can do that.")
        return room, participant

    @staticmethod
    def _target(room: Room, participant_id: str) -> Participant:
        target = room.participants.get(participant_id)
        if target is None:
            raise SignallingError("no-such-participant", "Nobody with that id is in this meeting.")
        return target

    async def on_settings(self, sid: str, data: Any) -> None:
        changes = validation.settings(data)
        room, host = self._host(sid)
        if changes.get("access") == "token" and self.server.security.signer is None:
            raise SignallingError("not-available", "Signed join links are turned off on this server "
                                                   "(it has no UNIONHUB_JWT_SECRET).")
        settings = room.settings
        if "passcode" in changes:
            settings.passcode = changes.pop("passcode")
        if changes.get("access") == "passcode" and not settings.passcode:
            raise SignallingError("passcode-required", "Give the passcode people will need.")
        for key, value in changes.items():
            setattr(settings, key, value)
        if settings.access != "passcode":
            settings.passcode = None
        await self.server.sio.emit("settings", settings.public(), room=f"room:{room.name}")
        logger.info("room %s: %s changed settings %s", room.name, host.id, settings.public())
        if settings.access != "lobby" and room.lobby:  # an opened lobby lets its knockers in
            for knock_id in list(room.lobby):
                knocker = self.server.take_knocker(room, knock_id)
                await self.server.admit(room, knocker)

    async def on_admit(self, sid: str, data: Any) -> None:
        knock_id = validation.target(data)
        room, host = self._host(sid)
        knocker = self.server.take_knocker(room, knock_id)
        logger.info("room %s: %s admitted %s", room.name, host.id, knock_id)
        await self.server.admit(room, knocker)

    async def on_reject(self, sid: str, data: Any) -> None:
        knock_id = validation.target(data)
        room, host = self._host(sid)
        knocker = self.server.take_knocker(room, knock_id)
        logger.info("room %s: %s turned away %s", room.name, host.id, knock_id)
        await self.server._error(knocker.sid, "rejected", "A host did not let you into this meeting.", "join")

    async def _mute(self, sid: str, target_id: str | None, source: str, kind: str) -> None:
        room, host = self._host(sid)
        if target_id is None:
            targets = [p for p in room.participants.values() if p.id != host.id]
        else:
            targets = [self._target(room, target_id)]
        for target in targets:
            self.server.sfu.set_muted(target.id, source, True)  # type: ignore[arg-type]
            on = target.audio if kind == "audio" else target.video
            if kind == "audio":
                target.audio = False
            else:
                target.video = False
            await self.server.sio.emit("muted", {"by": host.id, "name": host.name, "kind": kind}, to=target.sid)
            if on:
                await self.server._broadcast_participant(room, target)

    async def on_mute(self, sid: str, data: Any) -> None:
        await self._mute(sid, validation.mute(data), "mic", "audio")

    async def on_stop_camera(self, sid: str, data: Any) -> None:
        await self._mute(sid, validation.target(data), "camera", "video")

    async def on_remove(self, sid: str, data: Any) -> None:
        target_id, ban = validation.remove(data)
        room, host = self._host(sid)
        target = self._target(room, target_id)
        if target.id == host.id:
            raise SignallingError("forbidden", "You cannot remove yourself — leave instead.")
        if target.jti:
            room.revoked.add(target.jti)
        if target.client:
            room.admitted.pop(target.client, None)  # a removed browser is a stranger again
        if ban:
            if target.client:
                room.banned_clients.add(target.client)
            room.banned_names.add(target.name.casefold())
        logger.info("room %s: %s removed %s%s", room.name, host.id, target.id, " (banned)" if ban else "")
        await self.server.sio.emit("removed", {"ban": ban, "by": host.id, "name": host.name}, to=target.sid)
        await self.server._leave(target.sid)
        await self.server.sio.disconnect(target.sid)

    async def on_role(self, sid: str, data: Any) -> None:
        target_id, role = validation.role(data)
        room, host = self._host(sid)
        target = self._target(room, target_id)
        if target.role == role:
            return
        if target.role == "host" and len(room.hosts()) == 1:
            raise SignallingError("forbidden", "A meeting needs a host: make someone else host first.")
        await self.server.set_role(room, target, role)

    async def on_end(self, sid: str, data: Any) -> None:
        if data is not None and not isinstance(data, dict):
            raise SignallingError("bad-request", "The event payload must be a JSON object.")
        room, host = self._host(sid)
        logger.info("room %s: %s ended the meeting", room.name, host.id)
        await self.server.sio.emit("ended", {"by": host.id, "name": host.name}, room=f"room:{room.name}")
        for knocker in list(room.lobby.values()):
            self.server.take_knocker(room, knocker.id)
            await self.server._error(knocker.sid, "rejected", "The host ended the meeting.", "join")
        for participant in list(room.participants.values()):
            await self.server._leave(participant.sid)
            await self.server.sio.disconnect(participant.sid)
        self.server.registry.forget(room.name)  # an ended meeting is not resumed by reconnecting
