"""Socket.IO signalling: rooms, presence, chat and SDP, driving the SFU.

Every handler validates its payload; a rejected event gets an ``error`` event with a code and
message and leaves all state as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web

from media_server import SFU
from media_server.peer import NegotiationError

from . import access, validation
from .access import Knocker
from .auth import Grant, Security
from .limits import RateLimiter
from .moderation import HostControls
from .rooms import Participant, Room, RoomRegistry
from .validation import JoinRequest, SignallingError

if TYPE_CHECKING:
    from captioning.service import CaptionService
    from recordings.live import LiveManager
    from recordings.manager import RecordingManager

logger = logging.getLogger(__name__)

#: Largest Socket.IO message received. Fields have their own, tighter limits, which answer
#: ``too-large``; only a message over this closes the connection (engine.io's only recourse).
MAX_MESSAGE_BYTES = 1_000_000

Handler = Callable[[str, Any], Awaitable[None]]


def _room_key(name: str) -> str:
    return f"room:{name}"


def _hosts_key(name: str) -> str:
    return f"hosts:{name}"


def _captions_key(name: str, lang: str) -> str:
    return f"captions:{name}:{lang}"


class SignallingServer:
    """Binds a python-socketio ``AsyncServer`` to a :class:`RoomRegistry` and an :class:`SFU`."""

    EVENTS = (
        "join", "sdp", "publish", "unpublish", "media-state", "hand", "chat", "caption-language", "record",
        "live", "live-push", "leave",
    )
    #: Host controls (signalling/moderation.py).
    HOST_EVENTS = ("settings", "admit", "reject", "mute", "stop-camera", "remove", "role", "end")

    def __init__(
        self,
        registry: RoomRegistry | None = None,
        client_manager: socketio.AsyncManager | None = None,
        sfu_options: dict[str, Any] | None = None,
        security: Security | None = None,
    ) -> None:
        self.registry = registry or RoomRegistry()
        self.security = security or Security()
        self.limiter = RateLimiter()
        self._knocking: dict[str, tuple[str, str]] = {}  # sid -> (room, knocker id)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=client_manager,
            max_http_buffer_size=MAX_MESSAGE_BYTES,
            ping_interval=10,
            ping_timeout=10,
        )
        self.sfu = SFU(
            send_offer=self._send_offer,
            on_active_speaker=self._on_active_speaker,
            on_publications_changed=self._on_publications_changed,
            **(sfu_options or {}),
        )
        self._sid_of: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.captions: CaptionService | None = None
        self.recordings: RecordingManager | None = None
        self.live: LiveManager | None = None
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        for event in self.EVENTS:
            handler = getattr(self, "_on_" + event.replace("-", "_"))
            self.sio.on(event, self._guard(event, handler))
        self.controls = HostControls(self)
        for event in self.HOST_EVENTS:
            handler = getattr(self.controls, "on_" + event.replace("-", "_"))
            self.sio.on(event, self._guard(event, handler))
        self.sio.on("*", self._unknown)

    # -- plumbing ---------------------------------------------------------------------------

    def _guard(self, event: str, handler: Handler) -> Callable[[str, Any], Awaitable[None]]:
        @functools.wraps(handler)
        async def wrapped(sid: str, data: Any = None, *extra: Any) -> None:
            try:
                if not self.limiter.allow(sid):
                    raise SignallingError("rate-limited", "Too many requests — slow down.")
                if extra:
                    raise SignallingError("bad-request", "Send one payload object.")
                await handler(sid, data)
            except SignallingError as exc:
                await self._error(sid, exc.code, exc.message, event)
            except NegotiationError as exc:
                await self._error(sid, exc.code, exc.message, event)
            except Exception:
                logger.exception("handler %s failed", event)
                await self._error(sid, "internal", "Something went wrong on the server.", event)

        return wrapped

    async def _error(self, sid: str, code: str, message: str, event: str | None) -> None:
        await self.sio.emit("error", {"code": code, "message": message, "event": event}, to=sid)

    async def _unknown(self, event: Any, sid: Any = None, *args: Any) -> None:
        """Any event without a handler: python-socketio passes ``(event, sid, *args)``, except for
        an event literally named ``*``, which arrives as ``(sid, *args)``."""
        if not (isinstance(sid, str) and self.sio.manager.is_connected(sid, "/")):
            event, sid = "*", event
            if not (isinstance(sid, str) and self.sio.manager.is_connected(sid, "/")):
                return
        if not self.limiter.allow(sid):
            await self._error(sid, "rate-limited", "Too many requests — slow down.", None)
            return
        await self._error(sid, "unknown-event", f"Unknown event '{str(event)[:64]}'.", None)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _require(self, room: Room, participant: Participant, who: str, what: str) -> None:
        """``forbidden`` unless ``who`` is "everyone" or the participant hosts."""
        if who != "everyone" and participant.role != "host":
            raise SignallingError("forbidden", f"Only hosts can {what} in this meeting.")

    async def _broadcast_participant(self, room: Room, participant: Participant) -> None:
        await self.sio.emit(
            "participant-updated", participant.public(), room=_room_key(room.name)
        )

    # -- SFU callbacks ---------------------------------------------------------------------------

    async def _send_offer(self, participant_id: str, offer: dict[str, Any]) -> None:
        sid = self._sid_of.get(participant_id)
        if sid is not None:
            await self.sio.emit("sdp", offer, to=sid)

    def _on_active_speaker(self, room: str, participant_id: str | None) -> None:
        self._spawn(self.sio.emit("active-speaker", {"id": participant_id}, room=_room_key(room)))

    def _on_publications_changed(self, room_name: str, participant_id: str) -> None:
        sid = self._sid_of.get(participant_id)
        participant = self.registry.by_sid.get(sid) if sid else None
        room = self.registry.rooms.get(room_name)
        if participant is None or room is None:
            return
        screen = "screen" in self.sfu.sources_of(participant_id)
        if screen != participant.screen:
            participant.screen = screen
            self._spawn(self._broadcast_participant(room, participant))

    # -- captions ---------------------------------------------------------------------------------

    def attach_captions(self, captions: CaptionService) -> None:
        self.captions = captions
        captions.attach(self.sfu)
        captions.on_status = self._caption_status_changed

    def _caption_status_changed(self) -> None:
        """Models finished loading (or failed): tell everyone already in a call."""
        self._spawn(self.sio.emit("captions-status", self._caption_status()))

    def participant_info(self, participant_id: str) -> tuple[str, str] | None:
        """(display name, profile language) of a participant, for captions."""
        sid = self._sid_of.get(participant_id)
        participant = self.registry.by_sid.get(sid) if sid else None
        return (participant.name, participant.lang) if participant else None

    def room_languages(self, room_name: str) -> set[str]:
        """Caption languages wanted: chosen by someone in the room, or carried by its live stream."""
        room = self.registry.rooms.get(room_name)
        langs = {p.caption_lang for p in room.participants.values()} if room else set()
        if self.live is not None:
            langs |= self.live.languages(room_name)
        return langs

    async def emit_caption(self, room: str, lang: str, caption: dict[str, Any]) -> None:
        if self.live is not None:
            self.live.on_caption(room, lang, caption)
        await self.sio.emit("caption", caption, room=_captions_key(room, lang))

    def _caption_status(self) -> dict[str, Any]:
        if self.captions is None:
            return {"available": False, "translation": False, "languages": [],
                    "message": "Captions are turned off on this server."}
        return self.captions.status()

    # -- recordings --------------------------------------------------------------------------------

    def attach_recordings(self, recordings: RecordingManager) -> None:
        self.recordings = recordings

    def participant_name(self, participant_id: str) -> str | None:
        info = self.participant_info(participant_id)
        return info[0] if info else None

    def recording_changed(self, room: str, state: dict[str, Any]) -> None:
        self._spawn(self.sio.emit("recording", {**state, "available": True}, room=_room_key(room)))

    def _recording_state(self, room: str) -> dict[str, Any]:
        if self.recordings is None:
            return {"on": False, "id": None, "available": False}
        return {**self.recordings.state(room), "available": True}

    async def _on_record(self, sid: str, data: Any) -> None:
        on = validation.record(data)
        room, participant = self.registry.get(sid)
        if self.recordings is None:
            raise SignallingError("not-available", "Recording is turned off on this server.")
        self._require(room, participant, room.settings.record, "record")
        state = self.recordings.state(room.name)
        if on and not state["on"]:
            await self.recordings.start(room.name)
            for p in room.participants.values():
                self.recordings.note_participant(room.name, p.name)
        elif not on and state["on"]:
            await self.recordings.stop(room.name)
        else:  # nothing changed (e.g. two people clicked at once): tell the requester how it is
            await self.sio.emit("recording", self._recording_state(room.name), to=sid)

    # -- live streams ------------------------------------------------------------------------------

    def attach_live(self, live: LiveManager) -> None:
        self.live = live

    def live_changed(self, room: str, state: dict[str, Any]) -> None:
        self._spawn(self.sio.emit("live", state, room=_room_key(room)))

    def _live_state(self, room: str) -> dict[str, Any]:
        if self.live is None:
            return {"on": False, "url": None, "available": False}
        return self.live.state(room)

    async def _on_live(self, sid: str, data: Any) -> None:
        on = validation.record(data)
        room, participant = self.registry.get(sid)
        if self.live is None:
            raise SignallingError("not-available", "Live streaming is turned off on this server.")
        self._require(room, participant, room.settings.live, "go live")
        if on and room.name not in self.live._streams:
            await self.live.start(room.name)
            if self.recordings is not None:  # the stream is archived: everyone here is in it
                for p in room.participants.values():
                    self.recordings.note_participant(room.name, p.name)
        elif not on and room.name in self.live._streams:
            await self.live.stop(room.name)
        else:
            await self.sio.emit("live", self._live_state(room.name), to=sid)

    async def _on_live_push(self, sid: str, data: Any) -> None:
        url = validation.push_url(data)
        room, participant = self.registry.get(sid)
        if self.live is None:
            raise SignallingError("not-available", "Live streaming is turned off on this server.")
        self._require(room, participant, room.settings.live, "stream to other sites")
        if not self.live.push(room.name, url):
            raise SignallingError("not-live", "Go live first, then add a destination.")

    # -- connection ---------------------------------------------------------------------------

    async def _connect(self, sid: str, environ: Any = None, *args: Any) -> None:
        if not (isinstance(environ, dict) and isinstance(environ.get("aiohttp.request"), web.Request)):
            # an event named "connect" from a connected client, not a connection
            await self._unknown("connect", sid)
            return
        logger.debug("socket %s connected", sid)

    async def _disconnect(self, sid: str, *args: Any) -> None:
        if self.sio.manager.is_connected(sid, "/"):  # an event named "disconnect", not a disconnect
            await self._unknown("disconnect", sid)
            return
        self.limiter.forget(sid)
        await self._leave(sid)

    async def _leave(self, sid: str) -> None:
        if sid in self._knocking:
            await self._cancel_knock(sid)
            return
        left = self.registry.leave(sid)
        if left is None:
            return
        room, participant = left
        self._sid_of.pop(participant.id, None)
        await self.sio.leave_room(sid, _hosts_key(room.name))
        await self.sio.leave_room(sid, _room_key(room.name))
        await self.sio.leave_room(sid, _captions_key(room.name, participant.caption_lang))
        await self.sio.emit("participant-left", {"id": participant.id}, room=_room_key(room.name))
        await self.sfu.leave(participant.id)
        if room.name not in self.registry.rooms:
            for knocker in list(room.lobby.values()):  # nobody is left to let them in
                self._knocking.pop(knocker.sid, None)
                await self._error(knocker.sid, "rejected", "The meeting ended before a host let you in.", "join")
            room.lobby.clear()
            if self.live is not None:
                await self.live.stop(room.name)
            if self.recordings is not None:
                await self.recordings.stop(room.name)
            if self.captions is not None:
                await self.captions.end_session(room.name)
        elif participant.role == "host" and not room.hosts():
            await self._promote_successor(room)
        logger.info("room %s: %s left", room.name, participant.id)

    async def _promote_successor(self, room: Room) -> None:
        """The last host left: the longest-present speaker hosts (not when roles come from links)."""
        if self.security.token_only:
            return
        speakers = sorted((p for p in room.participants.values() if p.role == "speaker"), key=lambda p: p.joined_at)
        if speakers:
            await self.set_role(room, speakers[0], "host")

    # -- events ---------------------------------------------------------------------------------

    async def _on_join(self, sid: str, data: Any) -> None:
        req = validation.join(data)
        if not self.sio.manager.is_connected(sid, "/"):
            return
        if sid in self.registry.by_sid or sid in self._knocking:
            raise SignallingError("already-joined", "This connection has already joined a room.")
        grant: Grant | None = None
        if req.token is not None:
            if self.security.signer is None:
                raise SignallingError("bad-token", "This server does not accept signed join links.")
            grant = self.security.signer.verify(req.token, req.room)
            req = dataclasses.replace(req, name=grant.name, lang=grant.lang or req.lang)
        self.registry.check_capacity(req.room)
        decision, role = access.decide(self.registry.room_or_memory(req.room), req, grant, self.security.token_only)
        if decision == "lobby":
            await self._knock(sid, self.registry.rooms[req.room], req)
            return
        await self._complete_join(sid, req, role, grant)

    async def _knock(self, sid: str, room: Room, req: JoinRequest) -> None:
        knocker = Knocker(uuid.uuid4().hex[:12], sid, req)
        room.lobby[knocker.id] = knocker
        self._knocking[sid] = (room.name, knocker.id)
        await self.sio.emit("lobby", {"state": "waiting", "room": room.name}, to=sid)
        await self.sio.emit("knock", knocker.public(), room=_hosts_key(room.name))
        logger.info("room %s: %s knocks", room.name, knocker.id)

    async def _cancel_knock(self, sid: str) -> None:
        room_name, knock_id = self._knocking.pop(sid)
        room = self.registry.rooms.get(room_name)
        if room is not None and room.lobby.pop(knock_id, None) is not None:
            await self.sio.emit("knock-left", {"id": knock_id}, room=_hosts_key(room_name))

    def take_knocker(self, room: Room, knock_id: str) -> Knocker:
        """Remove a knocker from the lobby (to admit or reject it)."""
        knocker = room.lobby.pop(knock_id, None)
        if knocker is None:
            raise SignallingError("no-such-participant", "Nobody with that id is waiting in the lobby.")
        self._knocking.pop(knocker.sid, None)
        self._spawn(self.sio.emit("knock-left", {"id": knock_id}, room=_hosts_key(room.name)))
        return knocker

    async def admit(self, room: Room, knocker: Knocker) -> None:
        try:
            if not self.sio.manager.is_connected(knocker.sid, "/"):
                return
            self.registry.check_capacity(room.name)
            await self._complete_join(knocker.sid, knocker.req, "speaker", None)
        except SignallingError as exc:
            await self._error(knocker.sid, exc.code, exc.message, "join")

    async def _complete_join(self, sid: str, req: JoinRequest, role: str, grant: Grant | None) -> None:
        room, participant = self.registry.join(
            sid, req, role=role, verified=grant is not None, jti=grant.jti if grant else None
        )
        self._sid_of[participant.id] = sid
        sources: list[Any] = []
        if participant.publishes_audio:
            sources.append("mic")
        if participant.publishes_video:
            sources.append("camera")
        self.sfu.join(room.name, participant.id, sources)
        await self.sio.enter_room(sid, _room_key(room.name))
        if role == "host":
            await self.sio.enter_room(sid, _hosts_key(room.name))
        await self.sio.enter_room(sid, _captions_key(room.name, participant.caption_lang))
        others = [p.public() for p in room.participants.values() if p.id != participant.id]
        await self.sio.emit(
            "joined",
            {
                "id": participant.id,
                "room": room.name,
                "codec": self.sfu.codec,
                "participants": others,
                "chat": list(room.chat),
                "captions": self._caption_status(),
                "recording": self._recording_state(room.name),
                "live": self._live_state(room.name),
                "role": participant.role,
                "verified": participant.verified,
                "name": participant.name,
                "settings": room.settings.public(),
                "lobby": [k.public() for k in room.lobby.values()] if role == "host" else [],
                "iceServers": self.security.ice.for_participant(participant.id) if self.security.ice else [],
            },
            to=sid,
        )
        if self.registry.by_sid.get(sid) is not participant:
            return  # gone while we were sending
        if self.recordings is not None:
            if self.recordings.auto_record and len(room.participants) == 1:
                await self.recordings.start(room.name)
            self.recordings.note_participant(room.name, participant.name)
        media_room = self.sfu.rooms.get(room.name)
        if media_room is not None and media_room.speaker is not None and media_room.speaker.current:
            await self.sio.emit("active-speaker", {"id": media_room.speaker.current}, to=sid)
        await self.sio.emit(
            "participant-joined", participant.public(), room=_room_key(room.name), skip_sid=sid
        )
        logger.info("room %s: %s joined (%s)", room.name, participant.id, ",".join(sources) or "listener")

    async def _on_leave(self, sid: str, data: Any) -> None:
        if sid not in self._knocking:
            self.registry.get(sid)
        await self._leave(sid)

    # -- roles ----------------------------------------------------------------------------------

    async def set_role(self, room: Room, participant: Participant, role: str) -> None:
        """Promote/demote: hosts get the lobby, a viewer's media stops."""
        old, participant.role = participant.role, role
        if participant.client:
            room.admitted[participant.client] = role
        if role == "host" and old != "host":
            await self.sio.enter_room(participant.sid, _hosts_key(room.name))
            for knocker in list(room.lobby.values()):  # (it changes while we await)
                await self.sio.emit("knock", knocker.public(), to=participant.sid)
        elif old == "host" and role != "host":
            await self.sio.leave_room(participant.sid, _hosts_key(room.name))
        if role == "viewer":
            for source in sorted(self.sfu.sources_of(participant.id) | {"mic", "camera"}):
                await self.sfu.unpublish(participant.id, source)  # type: ignore[arg-type]
            participant.publishes_audio = participant.publishes_video = False
            participant.audio = participant.video = participant.screen = False
        await self._broadcast_participant(room, participant)
        logger.info("room %s: %s is now %s", room.name, participant.id, role)

    async def _on_sdp(self, sid: str, data: Any) -> None:
        sdp = validation.answer(data)
        _, participant = self.registry.get(sid)
        peer = self.sfu.peer(participant.id)
        if peer is None:
            raise SignallingError("not-joined", "Join a room first.")
        await peer.handle_answer(sdp)

    async def _on_publish(self, sid: str, data: Any) -> None:
        source = validation.source(data)
        _, participant = self.registry.get(sid)
        if participant.role == "viewer":
            raise SignallingError("forbidden", "Viewers cannot share; ask a host to make you a speaker.")
        if not (participant.publishes_audio or participant.publishes_video):
            raise SignallingError("listener", "Listeners cannot publish; rejoin with a device.")
        if not self.sfu.publish(participant.id, source):  # type: ignore[arg-type]
            raise SignallingError("bad-source", f"'{source}' is already being published.")

    async def _on_unpublish(self, sid: str, data: Any) -> None:
        source = validation.source(data)
        _, participant = self.registry.get(sid)
        if not await self.sfu.unpublish(participant.id, source):  # type: ignore[arg-type]
            raise SignallingError("bad-source", f"'{source}' is not being published.")

    async def _on_media_state(self, sid: str, data: Any) -> None:
        audio, video = validation.media_state(data)
        room, participant = self.registry.get(sid)
        if audio is not None:
            participant.audio = audio
            if audio:  # its owner unmutes: a host's mute ends
                self.sfu.set_muted(participant.id, "mic", False)
        if video is not None:
            participant.video = video
            if video:
                self.sfu.set_muted(participant.id, "camera", False)
        await self._broadcast_participant(room, participant)

    async def _on_hand(self, sid: str, data: Any) -> None:
        raised = validation.hand(data)
        room, participant = self.registry.get(sid)
        participant.hand = raised
        await self._broadcast_participant(room, participant)

    async def _on_chat(self, sid: str, data: Any) -> None:
        text = validation.chat(data)
        room, participant = self.registry.get(sid)
        translations: dict[str, str] = {}
        if self.captions is not None:
            # once per language present in the room, not once per reader
            langs = {p.lang for p in room.participants.values()} | self.room_languages(room.name)
            translations = await self.captions.translate_many(text, participant.lang, langs)
        message = self.registry.add_chat(room, participant, text, translations)
        await self.sio.emit("chat", message, room=_room_key(room.name))

    async def _on_caption_language(self, sid: str, data: Any) -> None:
        lang = validation.caption_language(data)
        room, participant = self.registry.get(sid)
        if lang != participant.caption_lang:
            await self.sio.leave_room(sid, _captions_key(room.name, participant.caption_lang))
            participant.caption_lang = lang
            await self.sio.enter_room(sid, _captions_key(room.name, lang))
        await self.sio.emit("caption-language", {"lang": lang}, to=sid)

    # -- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        for sid in list(self.registry.by_sid):
            with contextlib.suppress(Exception):
                await self._leave(sid)
        if self.live is not None:
            await self.live.close()
        await self.sfu.close()
        if self.recordings is not None:
            await self.recordings.close()
        if self.captions is not None:
            await self.captions.close()
        for task in tuple(self._tasks):
            task.cancel()
