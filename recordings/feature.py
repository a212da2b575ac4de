"""Recordings and live streams as clients of every room (:class:`signalling.Feature`).

Hosts switch them per room (``record`` / ``live`` events, checked by the meeting layer); a room
that ends stops both. A live stream is archived as a recording when recordings are on; with
``--no-recordings`` it still streams, and is simply not archived.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from signalling.features import Pushable, RoomHub, Switchable

from .archive import Archive
from .live import LiveManager
from .manager import CaptionSessions, RecordingManager


class RecordingFeature(Switchable):
    name = "recording"

    def __init__(
        self, hub: RoomHub, root: Path, archive: Archive, captions: CaptionSessions | None = None,
        auto_record: bool = False,
    ) -> None:
        self._hub = hub
        self.manager = RecordingManager(
            root, hub.sfu, archive, hub.participant_name, self._changed, captions, auto_record, hub.live_channels
        )

    def _changed(self, room: str, state: dict[str, Any]) -> None:
        self._hub.notify("recording", {**state, "available": True}, room)

    def state(self, room: str) -> dict[str, Any]:
        return {**self.manager.state(room), "available": True}

    async def participant_joined(self, room: str, name: str, first: bool) -> None:
        if self.manager.auto_record and first:
            await self.manager.start(room)
        self.manager.note_participant(room, name)

    async def switch(self, room: str, on: bool) -> bool:
        recording = self.manager.state(room)["on"]
        if on and not recording:
            await self.manager.start(room)
            for name in self._hub.names(room):  # listeners count too
                self.manager.note_participant(room, name)
            return True
        if not on and recording:
            await self.manager.stop(room)
            return True
        return False

    async def room_ended(self, room: str) -> None:
        await self.manager.stop(room)

    async def close(self) -> None:
        await self.manager.close()


class LiveFeature(Pushable):
    name = "live"

    def __init__(
        self,
        hub: RoomHub,
        root: Path,
        caption_languages: Callable[[], list[str]] | None = None,
        recordings: RecordingFeature | None = None,
    ) -> None:
        self._hub = hub
        self._recordings = recordings
        self.manager = LiveManager(
            root, hub.sfu, caption_languages or (list), self._changed,
            recordings.manager if recordings is not None else None, hub.live_channels,
        )

    def _changed(self, room: str, state: dict[str, Any]) -> None:
        self._hub.notify("live", state, room)

    def state(self, room: str) -> dict[str, Any]:
        return self.manager.state(room)

    async def switch(self, room: str, on: bool) -> bool:
        live = self.manager.is_live(room)
        if on and not live:
            await self.manager.start(room)
            if self._recordings is not None:  # the stream is archived: everyone here is in it
                for name in self._hub.names(room):
                    self._recordings.manager.note_participant(room, name)
            return True
        if not on and live:
            await self.manager.stop(room)
            return True
        return False

    def push(self, room: str, url: str | None) -> bool:
        return self.manager.push(room, url)

    def caption_languages(self, room: str) -> set[str]:
        return self.manager.languages(room)

    async def on_caption(self, room: str, lang: str, caption: dict[str, Any]) -> None:
        self.manager.on_caption(room, lang, caption)

    async def room_ended(self, room: str) -> None:
        await self.manager.stop(room)

    async def close(self) -> None:
        await self.manager.close()
