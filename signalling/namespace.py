"""The Socket.IO namespace: every client event validated, rate limited and answered.

python-socketio dispatches ``<event>`` to ``on_<event>`` of a class-based namespace; this one
adds what every handler shares (rate limit, one payload, one error shape) and answers events it
does not know with ``unknown-event``. A rejected event gets ``error {code, message, event}`` and
leaves all state as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import socketio
from aiohttp import web

from core.errors import HubError

from . import validation
from .booths import INTERPRETATION_EVENTS, InterpretationEvents
from .errors import Reason, SignallingError, refusal
from .features import Pushable, Switchable
from .limits import RateLimiter
from .meeting import Meeting, captions_key, room_key
from .moderation import HOST_EVENTS, HostControls
from .rooms import Participant, RoomSettings
from .vocabulary import Who

logger = logging.getLogger(__name__)

#: Participant events, in PROTOCOL.md's order.
EVENTS = (
    "join", "sdp", "publish", "unpublish", "media-state", "audio-only", "video-prefs", "hand", "chat",
    "caption-language", "record", "live", "live-push", "leave",
)
ALL_EVENTS = frozenset(EVENTS + HOST_EVENTS + INTERPRETATION_EVENTS)


class MeetingNamespace(HostControls, InterpretationEvents, socketio.AsyncNamespace):  # type: ignore[misc]  # (untyped library)
    """Handlers of the default namespace ``/``."""

    def __init__(self, meeting: Meeting, limiter: RateLimiter | None = None) -> None:
        super().__init__("/")
        self.meeting = meeting
        self.limiter = limiter or RateLimiter()

    # -- dispatch -------------------------------------------------------------------------------

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        if event in ("connect", "disconnect"):  # or a client's event of that name: the handler tells
            return await super().trigger_event(event, *args)
        sid = args[0] if args else None
        if not isinstance(sid, str):
            return None
        if not isinstance(event, str) or event not in ALL_EVENTS:
            await self._unknown(event, sid)
            return None
        try:
            if not self.limiter.allow(sid):
                raise SignallingError("rate-limited", "Too many requests — slow down.")
            if len(args) > 2:
                raise SignallingError("bad-request", "Send one payload object.")
            await super().trigger_event(event.replace("-", "_"), sid, args[1] if len(args) > 1 else None)
        except HubError as exc:
            await self.meeting.error(sid, exc, event)
        except Exception:
            logger.exception("handler %s failed", event)
            await self.meeting.error(sid, SignallingError("internal", "Something went wrong on the server."), event)
        return None

    async def _unknown(self, event: Any, sid: str) -> None:
        if not self.limiter.allow(sid):
            await self.meeting.error(sid, SignallingError("rate-limited", "Too many requests — slow down."), None)
            return
        await self.meeting.error(sid, SignallingError("unknown-event", f"Unknown event '{str(event)[:64]}'."), None)

    # -- connection -----------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: Any = None, *args: Any) -> None:
        if not (isinstance(environ, dict) and isinstance(environ.get("aiohttp.request"), web.Request)):
            # an event named "connect" from a connected client, not a connection
            await self._unknown("connect", sid)
            return
        logger.debug("socket %s connected", sid)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        if self.meeting.is_connected(sid):  # an event named "disconnect", not a disconnect
            await self._unknown("disconnect", sid)
            return
        self.limiter.forget(sid)
        await self.meeting.leave(sid)

    # -- participant events ---------------------------------------------------------------------

    async def on_join(self, sid: str, data: Any) -> None:
        await self.meeting.join(sid, validation.join(data))

    async def on_leave(self, sid: str, data: Any) -> None:
        if not self.meeting.is_knocking(sid):
            self.meeting.store.member(sid)
        await self.meeting.leave(sid)

    async def on_sdp(self, sid: str, data: Any) -> None:
        sdp = validation.answer(data)
        _, participant = self.meeting.store.member(sid)
        peer = self.meeting.sfu.peer(participant.id)
        if peer is None:
            raise SignallingError("not-joined", "Join a room first.")
        await peer.handle_answer(sdp)

    async def on_publish(self, sid: str, data: Any) -> None:
        source = validation.source(data)
        _, participant = self.meeting.store.member(sid)
        if participant.role == "viewer":
            raise refusal("viewer-cannot-share")
        if participant.audio_only:
            raise SignallingError("audio-only", "Turn audio-only mode off to share.")
        if not (participant.publishes_audio or participant.publishes_video):
            raise SignallingError("listener", "Listeners cannot publish; rejoin with a device.")
        if not self.meeting.sfu.publish(participant.id, source):
            raise refusal("already-sharing")

    async def on_unpublish(self, sid: str, data: Any) -> None:
        source = validation.source(data)
        _, participant = self.meeting.store.member(sid)
        if not await self.meeting.sfu.unpublish(participant.id, source):
            raise SignallingError("bad-source", f"'{source}' is not being published.")

    async def on_media_state(self, sid: str, data: Any) -> None:
        audio, video = validation.media_state(data)
        room, participant = self.meeting.store.member(sid)
        if audio is not None:
            participant.audio = audio
            if audio:  # its owner unmutes: a host's mute ends
                self.meeting.sfu.set_muted(participant.id, "mic", False)
        if video is not None:
            participant.video = video
            if video:
                self.meeting.sfu.set_muted(participant.id, "camera", False)
            self.meeting.sfu.set_camera_on(participant.id, video)  # last-N: only cameras that are on
        await self.meeting.broadcast_participant(room, participant)

    async def on_audio_only(self, sid: str, data: Any) -> None:
        on = validation.audio_only(data)
        room, participant = self.meeting.store.member(sid)
        await self.meeting.set_audio_only(room, participant, on)
        await self.meeting.sio.emit("audio-only", {"on": participant.audio_only}, to=sid)

    async def on_video_prefs(self, sid: str, data: Any) -> None:
        changes = validation.video_prefs(data)
        _, participant = self.meeting.store.member(sid)
        self.meeting.set_video_prefs(participant, changes)

    async def on_hand(self, sid: str, data: Any) -> None:
        raised = validation.hand(data)
        room, participant = self.meeting.store.member(sid)
        participant.hand = raised
        await self.meeting.broadcast_participant(room, participant)

    async def on_chat(self, sid: str, data: Any) -> None:
        text = validation.chat(data)
        room, participant = self.meeting.store.member(sid)
        translations: dict[str, str] = {}
        if self.meeting.features:
            # once per language present in the room, not once per reader
            langs = {p.lang for p in room.participants.values()} | self.meeting.caption_languages(room.name)
            for feature in self.meeting.features:
                translations.update(await feature.translate_chat(text, participant.lang, langs))
        message = self.meeting.store.add_chat(room, participant, text, translations)
        await self.meeting.sio.emit("chat", message, room=room_key(room.name))

    async def on_caption_language(self, sid: str, data: Any) -> None:
        lang = validation.caption_language(data)
        room, participant = self.meeting.store.member(sid)
        if lang != participant.caption_lang:
            await self.meeting.sio.leave_room(sid, captions_key(room.name, participant.caption_lang))
            participant.caption_lang = lang
            await self.meeting.sio.enter_room(sid, captions_key(room.name, lang))
        await self.meeting.sio.emit("caption-language", {"lang": lang}, to=sid)

    # -- features a host switches ---------------------------------------------------------------

    def _require(self, participant: Participant, who: Who, hosts_only: Reason) -> None:
        """``forbidden`` (``hosts_only``) unless ``who`` is "everyone" or the participant hosts."""
        if who != "everyone" and participant.role != "host":
            raise refusal(hosts_only)

    def _switchable(self, name: str, off: Reason) -> Switchable:
        for feature in self.meeting.features:
            if feature.name == name and isinstance(feature, Switchable):
                return feature
        raise refusal(off)

    async def _switch(
        self, sid: str, data: Any, name: str, off: Reason, who: Callable[[RoomSettings], Who], what: Reason
    ) -> None:
        """``record`` / ``live``: a host (or anyone, per the room's ``who``) turns a feature on or off."""
        on = validation.record(data)
        room, participant = self.meeting.store.member(sid)
        feature = self._switchable(name, off)
        self._require(participant, who(room.settings), what)
        if not await feature.switch(room.name, on):  # nothing changed (two people clicked at once)
            state = self.meeting.feature_states(room.name)[feature.name]
            await self.meeting.sio.emit(feature.name, state, to=sid)

    async def on_record(self, sid: str, data: Any) -> None:
        await self._switch(sid, data, "recording", "recording-off", lambda settings: settings.record, "hosts-record")

    async def on_live(self, sid: str, data: Any) -> None:
        await self._switch(sid, data, "live", "live-off", lambda settings: settings.live, "hosts-live")

    async def on_live_push(self, sid: str, data: Any) -> None:
        url = validation.push_url(data)
        room, participant = self.meeting.store.member(sid)
        feature = self._switchable("live", "live-off")
        self._require(participant, room.settings.live, "hosts-push")
        if not isinstance(feature, Pushable) or not feature.push(room.name, url):
            raise SignallingError("not-live", "Go live first, then add a destination.")
