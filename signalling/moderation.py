"""Host controls: room settings, lobby answers, mute, stop camera, remove/ban, roles, end.

Every control is checked here, on the server: only a host of the room may use it, and it acts
on the media itself (a muted microphone is no longer forwarded, whatever the muted person's
client does), not only on what clients display. The handlers are the ``on_*`` methods of a
mixin of the Socket.IO namespace; they act through the :class:`~signalling.meeting.Meeting`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from . import validation
from .errors import SignallingError, refusal
from .meeting import Meeting, room_key
from .rooms import Participant, Room
from .vocabulary import Source

logger = logging.getLogger(__name__)

#: Host events, in PROTOCOL.md's order.
HOST_EVENTS = ("settings", "admit", "reject", "mute", "stop-camera", "remove", "role", "end")


class HostControls:
    """The host events' handlers (``on_<event>``, dashes as underscores)."""

    meeting: Meeting

    def _host(self, sid: str) -> tuple[Room, Participant]:
        room, participant = self.meeting.store.member(sid)
        if participant.role != "host":
            raise refusal("hosts-only")
        return room, participant

    async def on_settings(self, sid: str, data: Any) -> None:
        changes = validation.settings(data)
        room, host = self._host(sid)
        if changes.get("access") == "token" and self.meeting.security.signer is None:
            raise refusal("tokens-off")
        settings = room.settings
        if "passcode" in changes:
            settings.set_passcode(changes["passcode"])
        if changes.get("access") == "passcode" and not settings.passcode_hash:
            raise refusal("passcode-missing")
        if "access" in changes:
            settings.access = changes["access"]
        if "locked" in changes:
            settings.locked = changes["locked"]
        if "record" in changes:
            settings.record = changes["record"]
        if "live" in changes:
            settings.live = changes["live"]
        if "last_n" in changes:
            settings.last_n = changes["last_n"]
            self.meeting.sfu.set_last_n(room.name, settings.last_n)
        if "low_bandwidth" in changes:
            settings.low_bandwidth = changes["low_bandwidth"]
        if settings.access != "passcode":
            settings.set_passcode(None)
        await self.meeting.sio.emit("settings", settings.public(), room=room_key(room.name))
        await self.meeting.update_send_limits(room)
        await self.meeting.durable_changed(room)
        logger.info("room %s: %s changed settings %s", room.name, host.id, settings.public())
        if settings.access != "lobby" and room.lobby:  # an opened lobby lets its knockers in
            for knock_id in list(room.lobby):
                knocker = self.meeting.take_knocker(room, knock_id)
                await self.meeting.admit(room, knocker)

    async def on_admit(self, sid: str, data: Any) -> None:
        knock_id = validation.target(data)
        room, host = self._host(sid)
        knocker = self.meeting.take_knocker(room, knock_id)
        logger.info("room %s: %s admitted %s", room.name, host.id, knock_id)
        await self.meeting.admit(room, knocker)

    async def on_reject(self, sid: str, data: Any) -> None:
        knock_id = validation.target(data)
        room, host = self._host(sid)
        knocker = self.meeting.take_knocker(room, knock_id)
        logger.info("room %s: %s turned away %s", room.name, host.id, knock_id)
        await self.meeting.turn_away(knocker, "turned-away")

    async def _mute(self, sid: str, target_id: str | None, source: Source, kind: Literal["audio", "video"]) -> None:
        room, host = self._host(sid)
        if target_id is None:
            # "mute all" is the floor's: interpreters keep interpreting (their voice never
            # reaches the floor anyway); a host mutes one by name if they must
            targets = [p for p in room.participants.values()
                       if p.id != host.id and not (kind == "audio" and self.meeting.interpreters.interprets(p.id))]
        else:
            targets = [room.target(target_id)]
        for target in targets:
            self.meeting.sfu.set_muted(target.id, source, True)
            on = target.audio if kind == "audio" else target.video
            if kind == "audio":
                target.audio = False
            else:
                target.video = False
            await self.meeting.sio.emit("muted", {"by": host.id, "name": host.name, "kind": kind}, to=target.sid)
            if on:
                await self.meeting.broadcast_participant(room, target)

    async def on_mute(self, sid: str, data: Any) -> None:
        await self._mute(sid, validation.mute(data), "mic", "audio")

    async def on_stop_camera(self, sid: str, data: Any) -> None:
        await self._mute(sid, validation.target(data), "camera", "video")

    async def on_remove(self, sid: str, data: Any) -> None:
        target_id, ban = validation.remove(data)
        room, host = self._host(sid)
        target = room.target(target_id)
        if target.id == host.id:
            raise refusal("remove-self")
        if target.jti:
            room.revoked.add(target.jti)
        if target.client:
            room.admitted.pop(target.client, None)  # a removed browser is a stranger again
            self.meeting.interpreters.forget_client(room.name, target.client)
        if ban:
            if target.client:
                room.banned_clients.add(target.client)
            room.banned_names.add(target.name.casefold())
        logger.info("room %s: %s removed %s%s", room.name, host.id, target.id, " (banned)" if ban else "")
        await self.meeting.durable_changed(room)
        await self.meeting.sio.emit("removed", {"ban": ban, "by": host.id, "name": host.name}, to=target.sid)
        await self.meeting.remove(target.sid)

    async def on_role(self, sid: str, data: Any) -> None:
        target_id, role = validation.role(data)
        room, _host = self._host(sid)
        target = room.target(target_id)
        if target.role == role:
            return
        if target.role == "host" and len(room.hosts()) == 1:
            raise refusal("last-host")
        await self.meeting.set_role(room, target, role)

    async def on_end(self, sid: str, data: Any) -> None:
        if data is not None and not isinstance(data, dict):
            raise SignallingError("bad-request", "The event payload must be a JSON object.")
        room, host = self._host(sid)
        logger.info("room %s: %s ended the meeting", room.name, host.id)
        await self.meeting.sio.emit("ended", {"by": host.id, "name": host.name}, room=room_key(room.name))
        for knocker in list(room.lobby.values()):
            self.meeting.take_knocker(room, knocker.id)
            await self.meeting.turn_away(knocker, "meeting-ended")
        for participant in list(room.participants.values()):
            await self.meeting.remove(participant.sid)
        self.meeting.store.forget(room.name)  # an ended meeting is not resumed by reconnecting
