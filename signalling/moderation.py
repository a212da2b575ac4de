"""Host controls: room settings, lobby answers, mute, stop camera, remove/ban, roles, end.

Every control is checked here, on the server: only a host of the room may use it, and it acts
on the media itself (a muted microphone is no longer forwarded, whatever the muted person's
client does), not only on what clients display. The handlers are the ``on_*`` methods of a
mixin of the Socket.IO namespace; they act through the :class:`~signalling.meeting.Meeting`.
"""

from __future__ import annotations

import logging
from typing import Any

from . import validation
from .errors import SignallingError, refusal
from .features import Control, HostAction
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
        # the other half of a spanned room follows (it reads what durable_changed saved)
        await self.meeting.control_elsewhere(Control(room.name, "settings", None, host.id, host.name))
        await open_lobby(self.meeting, room)

    async def on_admit(self, sid: str, data: Any) -> None:
        knock_id = validation.target(data)
        room, host = self._host(sid)
        if knock_id not in room.lobby and await self.meeting.control_elsewhere(
                Control(room.name, "admit", knock_id, host.id, host.name)):
            return  # knocking on the other half of a spanned room
        knocker = self.meeting.take_knocker(room, knock_id)
        logger.info("room %s: %s admitted %s", room.name, host.id, knock_id)
        await self.meeting.admit(room, knocker)

    async def on_reject(self, sid: str, data: Any) -> None:
        knock_id = validation.target(data)
        room, host = self._host(sid)
        if knock_id not in room.lobby and await self.meeting.control_elsewhere(
                Control(room.name, "reject", knock_id, host.id, host.name)):
            return  # knocking on the other half of a spanned room
        knocker = self.meeting.take_knocker(room, knock_id)
        logger.info("room %s: %s turned away %s", room.name, host.id, knock_id)
        await self.meeting.turn_away(knocker, "turned-away")

    async def _mute(self, sid: str, target_id: str | None, action: HostAction) -> None:
        room, host = self._host(sid)
        control = Control(room.name, action, target_id, host.id, host.name)
        if target_id is None:
            await mute(self.meeting, room, control, everyone_but=host.id)
            await self.meeting.control_elsewhere(control)  # the other half of a spanned room
        elif target_id in room.participants:
            await mute(self.meeting, room, control)
        elif not await self.meeting.control_elsewhere(control):
            room.target(target_id)  # (raises no-such-participant)

    async def on_mute(self, sid: str, data: Any) -> None:
        await self._mute(sid, validation.mute(data), "mute")

    async def on_stop_camera(self, sid: str, data: Any) -> None:
        await self._mute(sid, validation.target(data), "stop-camera")

    async def on_remove(self, sid: str, data: Any) -> None:
        target_id, ban = validation.remove(data)
        room, host = self._host(sid)
        if target_id == host.id:
            raise refusal("remove-self")
        control = Control(room.name, "remove", target_id, host.id, host.name, ban)
        if target_id in room.participants:
            await remove(self.meeting, room, control)
        elif not await self.meeting.control_elsewhere(control):
            room.target(target_id)  # (raises no-such-participant)

    async def on_role(self, sid: str, data: Any) -> None:
        target_id, role = validation.role(data)
        room, host = self._host(sid)
        target = room.participants.get(target_id)
        if target is None:  # on the other half of a spanned room? (its host stays a host here)
            if await self.meeting.control_elsewhere(Control(room.name, "role", target_id, host.id, host.name,
                                                            role=role)):
                return
            target = room.target(target_id)  # (raises no-such-participant)
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
        # the other half first: once everyone here has left, this half no longer spans
        await self.meeting.control_elsewhere(Control(room.name, "end", None, host.id, host.name))
        await end(self.meeting, room)


# -- acting on the people served here: a host's control from this process or another ----------

MUTES: dict[HostAction, tuple[Source, str]] = {"mute": ("mic", "audio"), "stop-camera": ("camera", "video")}


async def mute(meeting: Meeting, room: Room, control: Control, everyone_but: str | None = None) -> None:
    """Mute a microphone or stop a camera (``control.target``; None: everyone here but
    ``everyone_but``) — on the media itself: it is no longer forwarded."""
    source, kind = MUTES[control.action]
    if control.target is None:
        # "mute all" is the floor's: interpreters keep interpreting (their voice never
        # reaches the floor anyway); a host mutes one by name if they must
        targets = [p for p in room.participants.values()
                   if p.id != everyone_but and not (kind == "audio" and meeting.interpreters.interprets(p.id))]
    else:
        targets = [room.target(control.target)]
    for target in targets:
        meeting.sfu.set_muted(target.id, source, True)
        on = target.audio if kind == "audio" else target.video
        if kind == "audio":
            target.audio = False
        else:
            target.video = False
        await meeting.sio.emit("muted", {"by": control.by, "name": control.by_name, "kind": kind}, to=target.sid)
        if on:
            await meeting.broadcast_participant(room, target)


async def remove(meeting: Meeting, room: Room, control: Control) -> None:
    """Remove ``control.target`` (banned with ``control.ban``): its link revoked, its browser a
    stranger again, its connection closed."""
    target = room.target(control.target or "")
    if target.jti:
        room.revoked.add(target.jti)
    if target.client:
        room.admitted.pop(target.client, None)  # a removed browser is a stranger again
        meeting.interpreters.forget_client(room.name, target.client)
    if control.ban:
        if target.client:
            room.banned_clients.add(target.client)
        room.banned_names.add(target.name.casefold())
    logger.info("room %s: %s removed %s%s", room.name, control.by, target.id, " (banned)" if control.ban else "")
    await meeting.durable_changed(room)
    await meeting.sio.emit("removed", {"ban": control.ban, "by": control.by, "name": control.by_name}, to=target.sid)
    await meeting.remove(target.sid)


async def end(meeting: Meeting, room: Room) -> None:
    """Everyone here let go (told ``ended`` already), knockers turned away, nothing resumed."""
    for knocker in list(room.lobby.values()):
        meeting.take_knocker(room, knocker.id)
        await meeting.turn_away(knocker, "meeting-ended")
    for participant in list(room.participants.values()):
        await meeting.remove(participant.sid)
    meeting.store.forget(room.name)  # an ended meeting is not resumed by reconnecting


async def open_lobby(meeting: Meeting, room: Room) -> None:
    """An opened lobby (``access`` other than lobby) lets its knockers in."""
    if room.settings.access == "lobby":
        return
    for knock_id in list(room.lobby):
        if knock_id in room.lobby:  # (one may have left while another was let in)
            await meeting.admit(room, meeting.take_knocker(room, knock_id))


async def settings_changed(meeting: Meeting, room_name: str) -> bool:
    """A host on the room's other half changed its settings (the room here has them already):
    the media here follows at once — last-N, the cameras' cap — and an opened lobby lets in its
    knockers here; False: the room has nobody here, in it or knocking."""
    room = meeting.store.find(room_name)
    if room is None:
        return False
    if meeting.store.room(room_name) is not None:
        meeting.sfu.set_last_n(room_name, room.settings.last_n)
        await meeting.update_send_limits(room)
    await open_lobby(meeting, room)
    return True


async def apply(meeting: Meeting, control: Control) -> bool:
    """A host's control from another process of the room (a spanned room's other half): acted
    on if its target is served here (everyone here, for a mute of all); whether it was."""
    if control.action == "settings":
        return await settings_changed(meeting, control.room)
    if control.action in ("admit", "reject"):
        lobby = meeting.store.find(control.room)  # (a relay's knockers may wait in an empty half)
        if lobby is None or control.target not in lobby.lobby:
            return False
        knocker = meeting.take_knocker(lobby, control.target)
        logger.info("room %s: %s %s %s", control.room, control.by,
                    "admitted" if control.action == "admit" else "turned away", knocker.id)
        if control.action == "admit":
            await meeting.admit(lobby, knocker)
        else:
            await meeting.turn_away(knocker, "turned-away")
        return True
    room = meeting.store.room(control.room)
    if room is None or (control.target is not None and control.target not in room.participants):
        return False
    if control.action == "remove":
        await remove(meeting, room, control)
    elif control.action == "end":
        await end(meeting, room)
    elif control.action == "role":
        target = room.target(control.target or "")
        if control.role is not None and target.role != control.role:
            await meeting.set_role(room, target, control.role)
    else:
        await mute(meeting, room, control, everyone_but=control.by)
    return True
