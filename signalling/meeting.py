"""Meeting operations below the event handlers: join, knock, admit, leave, roles, broadcasts.

Participant events (:mod:`signalling.namespace`) and host controls (:mod:`signalling.moderation`)
both act through a :class:`Meeting`; neither reaches into the other, nor into the store's rooms
except through :class:`~signalling.store.RoomStore`. Features hear of joins and ended rooms here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Sequence
from typing import Any

import socketio

from core.errors import HubError
from media_server import SFU

from . import access, bandwidth
from .auth import Grant, Security
from .errors import Reason, SignallingError, payload, refusal
from .features import OFF_STATES, Control, Distributed, Feature
from .interpreters import Interpreters
from .rooms import Knocker, Participant, Room
from .store import RoomStore
from .validation import JoinRequest, VideoPrefsChange
from .vocabulary import Role, Source

logger = logging.getLogger(__name__)


def room_key(name: str) -> str:
    """The Socket.IO room of everyone in a meeting."""
    return f"room:{name}"


def hosts_key(name: str) -> str:
    """The Socket.IO room of a meeting's hosts (knocks go there)."""
    return f"hosts:{name}"


def captions_key(name: str, lang: str) -> str:
    """The Socket.IO room of a meeting's caption readers in one language."""
    return f"captions:{name}:{lang}"


class Meeting:
    """The meeting layer: rooms in a :class:`RoomStore`, media in the :class:`SFU`, people over
    Socket.IO, and the features told of what happens."""

    def __init__(
        self, sio: socketio.AsyncServer, store: RoomStore, sfu: SFU, security: Security, features: Sequence[Feature]
    ) -> None:
        self.sio = sio
        self.store = store
        self.sfu = sfu
        self.security = security
        self.features = features
        self._knocking: dict[str, tuple[str, str]] = {}  # sid -> (room, knocker id)
        self._tasks: set[asyncio.Task[Any]] = set()
        #: interpretation: booths, channels, and the SFU's say on who hears interpreters
        self.interpreters = Interpreters(store, sfu, self._emit_to_room, self.durable_changed)

    # -- plumbing ---------------------------------------------------------------------------

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` in the background, owned here and cancelled by :meth:`close`."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit_to_room(self, room: str, event: str, payload: dict[str, Any]) -> None:
        await self.sio.emit(event, payload, room=room_key(room))

    def is_connected(self, sid: str) -> bool:
        return bool(self.sio.manager.is_connected(sid, "/"))

    async def error(self, sid: str, exc: HubError, event: str | None) -> None:
        """Answer a refused event: ``error {code, message, event, reason?, params?}``."""
        await self.sio.emit("error", payload(exc, event), to=sid)

    async def update_send_limits(self, room: Room) -> None:
        """Ask every browser in the room to cap its camera (``send-limits``) if the cap changed:
        the number of cameras on, the room's N or its low-bandwidth setting did (``bandwidth.py``)."""
        cameras = sum(1 for p in room.participants.values() if p.public()["video"])
        limit = bandwidth.camera_limit(cameras, room.settings.last_n, room.settings.low_bandwidth)
        if limit == room.camera_limit:
            return
        room.camera_limit = limit
        logger.info("room %s: %d cameras on, camera limit %s", room.name, cameras, limit)
        await self.sio.emit("send-limits", bandwidth.public(limit), room=room_key(room.name))

    async def durable_changed(self, room: Room) -> None:
        """Tell the features that the room's durable state changed (a cluster saves it)."""
        state = room.durable()
        for feature in self.features:
            await feature.room_changed(room.name, state)

    async def broadcast_participant(self, room: Room, participant: Participant) -> None:
        """Tell the room a participant changed (and re-check the camera caps: a camera may have
        been switched on or off)."""
        await self.sio.emit("participant-updated", participant.public(), room=room_key(room.name))
        await self.participant_changed(room.name, participant.id, participant.public())
        await self.update_send_limits(room)

    async def participant_changed(self, room: str, participant_id: str, public: dict[str, Any] | None) -> None:
        """Tell the features someone joined, changed (``public``) or left (None)."""
        for feature in self.features:
            if isinstance(feature, Distributed):
                await feature.participant_changed(room, participant_id, public)

    async def remote_participants(self, room: str) -> list[dict[str, Any]]:
        """The room's people served by other processes (a cluster's spanned room)."""
        found: list[dict[str, Any]] = []
        for feature in self.features:
            if isinstance(feature, Distributed):
                found += await feature.remote_participants(room)
        return found

    async def knocker_changed(self, room: str, knock_id: str, public: dict[str, Any] | None) -> None:
        """Tell the features someone knocks here (``public``) or no longer does (None)."""
        for feature in self.features:
            if isinstance(feature, Distributed):
                await feature.knocker_changed(room, knock_id, public)

    async def lobby(self, room: Room) -> list[dict[str, Any]]:
        """Everyone knocking on the room, here and elsewhere (a cluster's spanned room), for a host."""
        found = [k.public() for k in room.lobby.values()]
        for feature in self.features:
            if isinstance(feature, Distributed):
                found += await feature.remote_knockers(room.name)
        return found

    async def control_elsewhere(self, control: Control) -> bool:
        """Hand a host's control to the features (a cluster carries it to the room's other
        half); whether one of them found its target."""
        carried = False
        for feature in self.features:
            if isinstance(feature, Distributed):
                carried = await feature.control(control) or carried
        return carried

    def feature_states(self, room: str) -> dict[str, dict[str, Any]]:
        """Every feature's state for ``joined``; features this hub runs without say they are off."""
        states = dict(OFF_STATES)
        for feature in self.features:
            states[feature.name] = feature.state(room)
        return states

    def caption_languages(self, room_name: str) -> set[str]:
        """Caption languages wanted: chosen by someone in the room, or needed by a feature."""
        room = self.store.room(room_name)
        langs = {p.caption_lang for p in room.participants.values()} if room else set()
        for feature in self.features:
            langs |= feature.caption_languages(room_name)
        return langs

    def is_knocking(self, sid: str) -> bool:
        return sid in self._knocking

    # -- joining ------------------------------------------------------------------------------

    async def join(self, sid: str, req: JoinRequest) -> None:
        """A validated ``join``: into the room, into the lobby, or refused with the reason."""
        if not self.is_connected(sid):
            return
        if self.store.participant(sid) is not None or sid in self._knocking:
            raise SignallingError("already-joined", "This connection has already joined a room.")
        for feature in self.features:
            await feature.before_join(req.room)
        grant: Grant | None = None
        if req.token is not None:
            if self.security.signer is None:
                raise refusal("tokens-not-accepted")
            grant = self.security.signer.verify(req.token, req.room)
            req = dataclasses.replace(req, name=grant.name, lang=grant.lang or req.lang)
        self.store.check_capacity(req.room)
        decision, role = access.decide(
            self.store.find(req.room), req, grant, self.security.token_only, self.store.relayed(req.room)
        )
        if decision == "lobby":
            room = self.store.room(req.room)
            if room is None and self.store.relayed(req.room):  # (hosts on the room's other half)
                room = self.store.find(req.room)
            if room is None:  # (access.decide sends people to a lobby only when someone is in)
                raise refusal("nobody-to-admit")
            await self._knock(sid, room, req)
            return
        await self._complete_join(sid, req, role, grant)

    async def _knock(self, sid: str, room: Room, req: JoinRequest) -> None:
        knocker = Knocker(uuid.uuid4().hex[:12], sid, req)
        room.lobby[knocker.id] = knocker
        self._knocking[sid] = (room.name, knocker.id)
        await self.knocker_changed(room.name, knocker.id, knocker.public())
        await self.sio.emit("lobby", {"state": "waiting", "room": room.name}, to=sid)
        await self.sio.emit("knock", knocker.public(), room=hosts_key(room.name))
        logger.info("room %s: %s knocks", room.name, knocker.id)

    async def _cancel_knock(self, sid: str) -> None:
        room_name, knock_id = self._knocking.pop(sid)
        room = self.store.find(room_name)  # (a relay's lobby may wait in a half nobody is in)
        if room is not None and room.lobby.pop(knock_id, None) is not None:
            await self.knocker_changed(room_name, knock_id, None)
            await self.sio.emit("knock-left", {"id": knock_id}, room=hosts_key(room_name))

    def take_knocker(self, room: Room, knock_id: str) -> Knocker:
        """Remove a knocker from the lobby (to admit or reject it)."""
        knocker = room.lobby.pop(knock_id, None)
        if knocker is None:
            raise SignallingError("no-such-participant", "Nobody with that id is waiting in the lobby.")
        self._knocking.pop(knocker.sid, None)
        self.spawn(self.knocker_changed(room.name, knock_id, None))
        self.spawn(self.sio.emit("knock-left", {"id": knock_id}, room=hosts_key(room.name)))
        return knocker

    async def admit(self, room: Room, knocker: Knocker) -> None:
        try:
            if not self.is_connected(knocker.sid):
                return
            self.store.check_capacity(room.name)
            await self._complete_join(knocker.sid, knocker.req, "speaker", None)
        except HubError as exc:  # (the knocker's join failed, not the host's admit: e.g. no media port)
            await self.error(knocker.sid, exc, "join")

    async def turn_away(self, knocker: Knocker, why: Reason) -> None:
        """Tell a knocker (already taken from the lobby) that they will not be let in, and why."""
        await self.error(knocker.sid, refusal(why), "join")

    async def _complete_join(self, sid: str, req: JoinRequest, role: Role, grant: Grant | None) -> None:
        room, participant = self.store.join(
            sid, req, role=role, verified=grant is not None, jti=grant.jti if grant else None
        )
        participant.audio_only = req.audio_only
        # before media: an interpreter's voice never reaches the floor
        await self.interpreters.joined(room, participant, grant.interprets if grant else None)
        sources: list[Source] = []
        if participant.publishes_audio:
            sources.append("mic")
        if participant.publishes_video and not participant.audio_only:
            sources.append("camera")
        try:
            self.sfu.join(
                room.name, participant.id, sources, receive_video=not participant.audio_only,
                last_n=room.settings.last_n,
            )
        except HubError:  # no free media port: undo the join, the client is told why
            await self.leave(sid)
            raise
        await self.participant_changed(room.name, participant.id, participant.public())
        await self.sio.enter_room(sid, room_key(room.name))
        if role == "host":
            await self.sio.enter_room(sid, hosts_key(room.name))
        await self.sio.enter_room(sid, captions_key(room.name, participant.caption_lang))
        await self.update_send_limits(room)
        others = [p.public() for p in room.participants.values() if p.id != participant.id]
        others += await self.remote_participants(room.name)
        lobby = await self.lobby(room) if role == "host" else []
        await self.sio.emit(
            "joined",
            {
                "id": participant.id,
                "room": room.name,
                "codec": self.sfu.codec,
                "participants": others,
                "chat": list(room.chat),
                **self.feature_states(room.name),
                "interpretation": self.interpreters.state(room.name),
                "role": participant.role,
                "verified": participant.verified,
                "name": participant.name,
                "settings": room.settings.public(),
                "forwarding": {
                    "video": self.sfu.video_from(participant.id),
                    "congested": self.sfu.congested(participant.id),
                },
                "sendLimits": bandwidth.public(room.camera_limit),
                "lobby": lobby,
                "iceServers": self.security.ice.for_participant(participant.id) if self.security.ice else [],
            },
            to=sid,
        )
        if self.store.participant(sid) is not participant:
            return  # gone while we were sending
        first = len(room.participants) == 1
        for feature in self.features:
            await feature.participant_joined(room.name, participant.name, first)
        if participant.client:  # (its browser's role is remembered)
            await self.durable_changed(room)
        speaker = self.sfu.active_speaker(room.name)
        if speaker is not None:
            await self.sio.emit("active-speaker", {"id": speaker}, to=sid)
        await self.sio.emit(
            "participant-joined", participant.public(), room=room_key(room.name), skip_sid=sid
        )
        logger.info(
            "room %s: %s joined (%s%s)", room.name, participant.id, ",".join(sources) or "listener",
            ", audio only" if participant.audio_only else "",
        )

    # -- leaving ------------------------------------------------------------------------------

    async def leave(self, sid: str) -> None:
        """The socket leaves its room or lobby (idempotent); an emptied room ends for features."""
        if sid in self._knocking:
            await self._cancel_knock(sid)
            return
        left = self.store.leave(sid)
        if left is None:
            return
        room, participant = left
        await self.sio.leave_room(sid, hosts_key(room.name))
        await self.sio.leave_room(sid, room_key(room.name))
        await self.sio.leave_room(sid, captions_key(room.name, participant.caption_lang))
        await self.sio.emit("participant-left", {"id": participant.id}, room=room_key(room.name))
        await self.participant_changed(room.name, participant.id, None)
        await self.interpreters.leave(room.name, participant.id)
        await self.sfu.leave(participant.id)
        if self.store.room(room.name) is None:
            # nobody is left to let them in (on a relay, hosts on the room's other half are)
            waiting = [] if self.store.relayed(room.name) else list(room.lobby)
            for knock_id in waiting:
                if knock_id in room.lobby:
                    await self.turn_away(self.take_knocker(room, knock_id), "ended-before-admitted")
            self.interpreters.room_ended(room.name)
            for feature in reversed(self.features):  # live before recordings before captions
                await feature.room_ended(room.name)
        else:
            await self.update_send_limits(room)
            if participant.role == "host" and not room.hosts():
                await self._promote_successor(room)
        logger.info("room %s: %s left", room.name, participant.id)

    async def move_out(self, room_name: str, url: str | None, message: str) -> int:
        """Send everyone in a room to another server (``moved {url, message}``; a draining node, a
        lease another node now holds), then let them go here. ``url`` None: the page reloads later.
        The room's durable state is wherever the cluster keeps it; nothing is forgotten here."""
        room = self.store.room(room_name)
        if room is None:
            return 0
        payload = {"url": url, "message": message}
        for knocker in list(room.lobby.values()):
            self.take_knocker(room, knocker.id)
            await self.sio.emit("moved", payload, to=knocker.sid)
        sids = [p.sid for p in room.participants.values()]
        await self.sio.emit("moved", payload, room=room_key(room_name))
        for sid in sids:
            await self.remove(sid)
        logger.info("room %s: %d participants sent to %s", room_name, len(sids), url or "a reload")
        return len(sids)

    async def remove(self, sid: str) -> None:
        """Leave on a host's behalf (removed, or the meeting ended) and close the connection."""
        await self.leave(sid)
        await self.sio.disconnect(sid)

    async def _promote_successor(self, room: Room) -> None:
        """The last host left: the longest-present speaker hosts (not when roles come from links,
        nor on a relay: the room's hosts may be on its other half)."""
        if self.security.token_only or self.store.relayed(room.name):
            return
        speakers = sorted((p for p in room.participants.values() if p.role == "speaker"), key=lambda p: p.joined_at)
        if speakers:
            await self.set_role(room, speakers[0], "host")

    # -- roles and media ------------------------------------------------------------------------

    async def set_role(self, room: Room, participant: Participant, role: Role) -> None:
        """Promote/demote: hosts get the lobby, a viewer's media stops."""
        old, participant.role = participant.role, role
        if participant.client:
            room.admitted[participant.client] = role
            await self.durable_changed(room)
        if role == "host" and old != "host":
            await self.sio.enter_room(participant.sid, hosts_key(room.name))
            for knocker in await self.lobby(room):  # (here and on a spanned room's other half)
                await self.sio.emit("knock", knocker, to=participant.sid)
        elif old == "host" and role != "host":
            await self.sio.leave_room(participant.sid, hosts_key(room.name))
        if role == "viewer":
            await self.interpreters.assign(room, participant, None)  # viewers do not speak
            stopped: set[Source] = {"mic", "camera"}
            for source in sorted(self.sfu.sources_of(participant.id) | stopped):
                await self.sfu.unpublish(participant.id, source)
            participant.publishes_audio = participant.publishes_video = False
            participant.audio = participant.video = participant.screen = False
        await self.broadcast_participant(room, participant)
        logger.info("room %s: %s is now %s", room.name, participant.id, role)

    async def set_audio_only(self, room: Room, participant: Participant, on: bool) -> None:
        """Data saver on: no video in (every video subscription removed) and none out (camera and
        screen unpublished). Off: video subscriptions back, each starting at a keyframe, and a
        camera publish slot again if the participant joined with a camera (and may publish)."""
        if on == participant.audio_only:
            return
        participant.audio_only = on
        self.sfu.set_receive_video(participant.id, not on)
        if on:
            video: tuple[Source, ...] = ("camera", "screen")
            for source in video:
                await self.sfu.unpublish(participant.id, source)
            participant.screen = False
        elif participant.publishes_video and participant.role != "viewer":
            self.sfu.publish(participant.id, "camera")  # the client attaches a camera to it
        await self.broadcast_participant(room, participant)
        logger.info("room %s: %s audio only %s", room.name, participant.id, "on" if on else "off")

    def set_video_prefs(self, participant: Participant, changes: VideoPrefsChange) -> None:
        """A participant's own last-N preferences; fields it left out keep their value."""
        prefs = self.sfu.video_prefs(participant.id)
        if "last_n" in changes:
            prefs = dataclasses.replace(prefs, n=changes["last_n"])
        if "pinned" in changes:
            prefs = dataclasses.replace(prefs, pinned=changes["pinned"])
        if "visible" in changes:
            prefs = dataclasses.replace(prefs, visible=changes["visible"])
        self.sfu.set_video_prefs(participant.id, prefs)

    def forwarding_changed(self, participant_id: str, video: list[str], congested: bool) -> None:
        """The SFU changed whose video a participant receives (last-N, or its link's congestion):
        tell it, and whether its link is why it gets less."""
        participant = self.store.participant_by_id(participant_id)
        if participant is not None:
            payload = {"video": video, "congested": congested}
            self.spawn(self.sio.emit("forwarding", payload, to=participant.sid))

    def camera_wanted(self, participant_id: str, wanted: bool) -> None:
        """The SFU asks a publisher to stop sending its camera, which reaches nobody now, or to
        send it again (``camera-wanted``; the browser's encoder pauses, or restarts on a keyframe)."""
        participant = self.store.participant_by_id(participant_id)
        if participant is not None:
            self.spawn(self.sio.emit("camera-wanted", {"wanted": wanted}, to=participant.sid))

    def publications_changed(self, room_name: str, participant_id: str) -> None:
        """The SFU saw a publication come or go: a screen share shows on the participant."""
        participant = self.store.participant_by_id(participant_id)
        room = self.store.room(room_name)
        if participant is None or room is None:
            return
        screen = "screen" in self.sfu.sources_of(participant_id)
        if screen != participant.screen:
            participant.screen = screen
            self.spawn(self.broadcast_participant(room, participant))

    # -- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
