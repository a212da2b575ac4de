"""Recording lifecycle: start/stop per room, background composition, recovery after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from media_server import SFU, MediaRoom, Publication

from .composer import compose
from .recorder import RoomRecorder

if TYPE_CHECKING:
    from .archive import Archive

logger = logging.getLogger(__name__)


class CaptionSession(Protocol):
    id: str
    started: float  # wall clock; caption times count from here


class CaptionSessions(Protocol):
    """Where a room's captions are kept (captioning's service): a recording names its session
    and offset, so the archive shows the captions under the recording."""

    async def session(self, room: str) -> CaptionSession: ...


@dataclass
class _Active:
    id: str
    recorder: RoomRecorder
    participants: set[str] = field(default_factory=set)
    unwatch: Callable[[], None] | None = None  # stops the SFU's calls about this room's media


class RecordingManager:
    """Owns every room recording and the (one-at-a-time) composition queue."""

    def __init__(
        self,
        root: Path,
        sfu: SFU,
        archive: Archive,
        names: Callable[[str], str | None],
        on_change: Callable[[str, dict[str, Any]], None],
        captions: CaptionSessions | None = None,
        auto_record: bool = False,
        channels: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        """``channels(room)``: ``{language: live interpreter's id}`` (``RoomHub.live_channels``)."""
        self.root = root
        self._channels = channels or (lambda room: {})
        self._sfu = sfu
        self._archive = archive
        self._names = names
        self._on_change = on_change
        self._captions = captions
        self.auto_record = auto_record
        self._active: dict[str, _Active] = {}
        self._jobs: asyncio.Queue[tuple[str, float | None]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._executor: ProcessPoolExecutor | None = None
        self.composing: str | None = None  # the recording being composed now
        root.mkdir(parents=True, exist_ok=True)

    # -- state -------------------------------------------------------------------------

    def state(self, room: str) -> dict[str, Any]:
        active = self._active.get(room)
        return {"on": active is not None, "id": active.id if active else None}

    def _publication_hook(self, name: str) -> Callable[[MediaRoom, Publication], None]:
        def hook(room: MediaRoom, publication: Publication) -> None:
            if room.name == name:
                self._on_publication(room, publication)

        return hook

    def _on_publication(self, room: MediaRoom, publication: Publication) -> None:
        active = self._active.get(room.name)
        if active is not None:
            owner = publication.owner
            active.recorder.add(publication, self._names(owner) or "",
                                on_floor=lambda: owner not in room.off_floor,
                                channel=lambda: next((lang for lang, live in self._channels(room.name).items()
                                                      if live == owner), None))
            active.participants.add(self._names(publication.owner) or publication.owner)

    # -- start / stop -------------------------------------------------------------------------

    async def start(self, room: str) -> str:
        """Start recording ``room`` (idempotent); returns the recording id."""
        active = self._active.get(room)
        if active is not None:
            return active.id
        started = time.time()
        session_id, offset = None, 0.0
        if self._captions is not None:
            session = await self._captions.session(room)
            session_id, offset = session.id, started - session.started
        recording = await self._archive.create(room, session_id, offset, started)
        recorder = RoomRecorder(self.root / recording.id, room, self._sfu.codec)
        active = _Active(recording.id, recorder)
        self._active[room] = active
        active.unwatch = self._sfu.watch(self._publication_hook(room))  # what is published already, too
        logger.info("room %s: recording %s started", room, recording.id)
        self._on_change(room, self.state(room))
        return recording.id

    def note_participant(self, room: str, name: str) -> None:
        """Someone was in the room while it was recorded (listeners count too)."""
        active = self._active.get(room)
        if active is not None:
            active.participants.add(name)

    async def stop(self, room: str) -> str | None:
        active = self._active.pop(room, None)
        if active is None:
            return None
        if active.unwatch is not None:
            active.unwatch()
        self._on_change(room, self.state(room))
        duration = await active.recorder.stop()
        if not active.recorder.tracks:  # nobody published anything: nothing worth keeping
            await self._archive.delete(active.id)
            logger.info("room %s: recording %s had no media; discarded", room, active.id)
            return None
        await self._archive.finish(active.id, time.time(), duration, sorted(active.participants))
        self._enqueue(active.id, duration)
        logger.info("room %s: recording %s stopped after %.1f s", room, active.id, duration)
        return active.id

    # -- composition ----------------------------------------------------------------------------

    @property
    def compositions_waiting(self) -> int:
        """Recordings stopped and not yet being composed (one composes at a time)."""
        return self._jobs.qsize()

    def _enqueue(self, recording_id: str, duration: float | None) -> None:
        self._jobs.put_nowait((recording_id, duration))
        if self._worker is None:
            self._worker = asyncio.create_task(self._compose_loop(), name="recordings-compose")

    async def _compose_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            recording_id, duration = await self._jobs.get()
            folder = self.root / recording_id
            if self._executor is None:
                self._executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            future = loop.run_in_executor(self._executor, compose, str(folder), duration)
            watcher = asyncio.create_task(self._watch_progress(recording_id, folder))
            self.composing = recording_id
            try:
                summary = await future
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.error("composing recording %s failed: %s", recording_id, exc)
                await self._archive.set_status(recording_id, "failed", error=str(exc) or type(exc).__name__)
                if self._executor is not None and "BrokenProcessPool" in type(exc).__name__:
                    self._executor = None
                continue
            finally:
                watcher.cancel()
                self.composing = None
            await self._archive.set_duration(recording_id, summary["duration"])
            await self._archive.set_status(recording_id, "ready", progress=1.0)
            logger.info("recording %s ready (%s)", recording_id, summary)

    async def _watch_progress(self, recording_id: str, folder: Path) -> None:
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(OSError, ValueError):
                progress = json.loads((folder / "progress.json").read_text())["progress"]
                await self._archive.set_status(recording_id, "processing", progress=float(progress))

    # -- recovery and shutdown ----------------------------------------------------------------------

    async def recover(self) -> list[str]:
        """Recordings a crash left unfinished: close them and compose what is on disk."""
        recovered = []
        for recording in await self._archive.unfinished():
            manifest = self.root / recording.id / "manifest.json"
            if not manifest.is_file():
                await self._archive.set_status(recording.id, "failed", error="no media was recorded")
                continue
            await self._archive.finish(recording.id, time.time(), 0.0, list(recording.participants))
            self._enqueue(recording.id, None)
            recovered.append(recording.id)
            logger.warning("recovering recording %s after an unclean stop", recording.id)
        for recording in await self._archive.list():
            if recording.status == "processing":  # composition was interrupted: redo it
                self._enqueue(recording.id, recording.duration or None)
                recovered.append(recording.id)
        return recovered

    async def close(self) -> None:
        for room in list(self._active):
            await self.stop(room)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._executor is not None:
            # a composition in progress must not outlive the hub: recover() redoes it at start-up
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.terminate()
            self._executor.shutdown(wait=False, cancel_futures=True)
