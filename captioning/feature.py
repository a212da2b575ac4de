"""Captions as a client of every room (:class:`signalling.Feature`): the glue, nothing more.

The :class:`~captioning.service.CaptionService` hears every audio publication through the SFU's
``watch``, sends captions through the hub, and ends a room's caption session with the room.
"""

from __future__ import annotations

from typing import Any

from signalling.features import Feature, RoomHub

from .service import CaptionConfig, CaptionService
from .store import CaptionStore


class CaptionsFeature(Feature):
    name = "captions"

    def __init__(self, hub: RoomHub, config: CaptionConfig, store: CaptionStore | None = None) -> None:
        self.service = CaptionService(config, hub.emit_caption, hub.participant_info, hub.caption_languages, store,
                                      interpretation=hub)
        self.service.attach(hub.sfu)
        # models finished loading (or failed): tell everyone already in a call
        self.service.on_status = lambda: hub.notify("captions-status", self.service.status())

    def state(self, room: str) -> dict[str, Any]:
        return self.service.status()

    async def room_ended(self, room: str) -> None:
        await self.service.end_session(room)

    async def translate_chat(self, text: str, source: str, langs: set[str]) -> dict[str, str]:
        return await self.service.translate_many(text, source, langs)

    def stats(self) -> dict[str, Any]:
        return {**self.service.status(), **self.service.stats()}

    async def close(self) -> None:
        await self.service.close()
