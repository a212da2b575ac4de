"""The signalling server: Socket.IO on aiohttp, a room store, the SFU, and the features.

It composes the layer (:class:`~signalling.namespace.MeetingNamespace` handles events,
:class:`~signalling.meeting.Meeting` acts, :class:`~signalling.store.RoomStore` keeps rooms) and
is the :class:`~signalling.features.RoomHub` that features (captions, recordings, live streams)
are given: they are clients of the room, added with :meth:`SignallingServer.add`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import socketio

from media_server import SFU

from . import moderation
from .auth import Security
from .booths import INTERPRETATION_EVENTS
from .features import Control, Feature
from .limits import RateLimiter
from .meeting import Meeting, captions_key, room_key
from .moderation import HOST_EVENTS
from .namespace import EVENTS, MeetingNamespace
from .store import MemoryRoomStore, RoomStore

logger = logging.getLogger(__name__)

#: Largest Socket.IO message received. Fields have their own, tighter limits, which answer
#: ``too-large``; only a message over this closes the connection (engine.io's only recourse).
MAX_MESSAGE_BYTES = 1_000_000


class SignallingServer:
    """Binds a python-socketio ``AsyncServer`` to a :class:`RoomStore` and an :class:`SFU`."""

    EVENTS = EVENTS
    HOST_EVENTS = HOST_EVENTS
    INTERPRETATION_EVENTS = INTERPRETATION_EVENTS

    def __init__(
        self,
        store: RoomStore | None = None,
        client_manager: socketio.AsyncManager | None = None,
        sfu_options: dict[str, Any] | None = None,
        security: Security | None = None,
    ) -> None:
        self.store = store or MemoryRoomStore()
        self.security = security or Security()
        self.features: list[Feature] = []
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
            on_forwarding=self._on_forwarding,
            on_camera_wanted=self._on_camera_wanted,
            **(sfu_options or {}),
        )
        self.meeting = Meeting(self.sio, self.store, self.sfu, self.security, self.features)
        self.sio.register_namespace(MeetingNamespace(self.meeting, RateLimiter()))

    def add(self, feature: Feature) -> None:
        """Make ``feature`` a client of every room (in order: later features end first)."""
        self.features.append(feature)

    def feature(self, name: str) -> Feature | None:
        return next((f for f in self.features if f.name == name), None)

    # -- SFU callbacks ---------------------------------------------------------------------------

    async def _send_offer(self, participant_id: str, offer: dict[str, Any]) -> None:
        participant = self.store.participant_by_id(participant_id)
        if participant is not None:
            await self.sio.emit("sdp", offer, to=participant.sid)

    def _on_active_speaker(self, room: str, participant_id: str | None) -> None:
        self.meeting.spawn(self.sio.emit("active-speaker", {"id": participant_id}, room=room_key(room)))

    def _on_publications_changed(self, room_name: str, participant_id: str) -> None:
        self.meeting.publications_changed(room_name, participant_id)

    def _on_forwarding(self, room_name: str, participant_id: str, video: list[str], congested: bool) -> None:
        self.meeting.forwarding_changed(participant_id, video, congested)

    def _on_camera_wanted(self, participant_id: str, wanted: bool) -> None:
        self.meeting.camera_wanted(participant_id, wanted)

    # -- RoomHub: what features use --------------------------------------------------------------

    def participant_info(self, participant_id: str) -> tuple[str, str] | None:
        """(display name, profile language) of a participant, for captions."""
        participant = self.store.participant_by_id(participant_id)
        return (participant.name, participant.lang) if participant else None

    def participant_name(self, participant_id: str) -> str | None:
        info = self.participant_info(participant_id)
        return info[0] if info else None

    def names(self, room: str) -> list[str]:
        found = self.store.room(room)
        return [p.name for p in found.participants.values()] if found else []

    def caption_languages(self, room: str) -> set[str]:
        return self.meeting.caption_languages(room)

    def relayed(self, room: str) -> bool:
        return self.store.relayed(room)

    async def remote_participants(self, room: str) -> list[dict[str, Any]]:
        return await self.meeting.remote_participants(room)

    def interprets(self, participant_id: str) -> str | None:
        return self.meeting.interpreters.interprets(participant_id)

    def live_channels(self, room: str) -> dict[str, str]:
        return self.meeting.interpreters.live_channels(room)

    async def emit_caption(self, room: str, lang: str, caption: dict[str, Any]) -> None:
        for feature in self.features:
            await feature.on_caption(room, lang, caption)
        await self.sio.emit("caption", caption, room=captions_key(room, lang))

    def notify(self, event: str, payload: dict[str, Any], room: str | None = None) -> None:
        target = room_key(room) if room is not None else None
        self.meeting.spawn(self.sio.emit(event, payload, room=target))

    async def apply_control(self, control: Control) -> bool:
        """A host's control from another node of a spanned room, for someone served here."""
        return await moderation.apply(self.meeting, control)

    async def move(self, room: str, url: str | None, message: str) -> int:
        """Send a room's people to ``url`` (a cluster moving the room); how many were in it."""
        return await self.meeting.move_out(room, url, message)

    # -- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        for sid in self.store.sids():
            with contextlib.suppress(Exception):
                await self.meeting.leave(sid)
        for feature in reversed(self.features):  # a live stream stops before the tracks under it
            await feature.close()
        await self.sfu.close()
        await self.meeting.close()
