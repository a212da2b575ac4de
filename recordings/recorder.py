"""Crash-safe recording of a room's forwarded media: one WebM file per track, no re-encoding.

The recorder is one more subscriber of each publication (so it gets the same keyframe gating
and PLI handling as a browser) and muxes the encoded packets straight into WebM in "live" mode:
clusters of at most one second are flushed as they close, so a ``kill -9`` loses at most the
last second or two, and what is on disk stays readable. ``manifest.json`` (rewritten atomically
whenever a track starts) has what is needed to align the tracks afterwards.

Interpretation (issue #14): an interpreter's voice is never the floor's. While they are live in a
channel, their packets go to a track file of that channel (``channel`` in the manifest), from
which the composer makes the channel's own audio; off the floor and not live, they are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError

from media_server import Publication, is_keyframe

logger = logging.getLogger(__name__)

MUX_OPTIONS = {"live": "1", "cluster_time_limit": "1000", "flush_packets": "1"}
MS = fractions.Fraction(1, 1000)


@dataclass
class TrackInfo:
    file: str
    participant: str
    name: str
    source: str
    kind: str
    codec: str
    offset: float  # seconds from the recording's start to this track's first packet
    width: int = 0
    height: int = 0
    channel: str | None = None  # the interpreter channel (a language) of this audio; None: the floor


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Frame size from a VP8 key frame header (RFC 6386 9.1)."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class TrackWriter:
    """Muxes one track's packets (called on the recording's I/O thread only)."""

    def __init__(self, path: Path, kind: str, codec: str) -> None:
        self.path = path
        self.kind = kind
        self.codec = codec
        self._container: Any = None
        self._stream: Any = None
        self._first_pts: int | None = None
        self.packets = 0
        self.last_ms = 0

    def _open(self, data: bytes) -> bool:
        if self.kind == "video":
            size = vp8_size(data) if self.codec == "vp8" else None
            if size is None and self.codec == "vp8":
                return False  # wait for a keyframe: it carries the frame size
            fmt = "webm" if self.codec == "vp8" else "matroska"
            self._container = av.open(str(self.path), "w", format=fmt, options=MUX_OPTIONS)
            self._stream = self._container.add_stream("libvpx" if self.codec == "vp8" else "h264", rate=30)
            self._stream.width, self._stream.height = size or (640, 480)
        else:
            self._container = av.open(str(self.path), "w", format="webm", options=MUX_OPTIONS)
            self._stream = self._container.add_stream("libopus", rate=48000)
        self._stream.time_base = MS
        return True

    def write(self, data: bytes, pts: int, clock_rate: int, keyframe: bool) -> None:
        if self._container is None and not self._open(data):
            return
        if self._first_pts is None:
            self._first_pts = pts
        ms = (pts - self._first_pts) * 1000 // clock_rate
        if ms < self.last_ms:  # never let a timestamp go backwards (would corrupt the file)
            ms = self.last_ms
        packet = av.Packet(data)
        packet.pts = packet.dts = ms
        packet.time_base = MS
        packet.stream = self._stream
        packet.is_keyframe = keyframe
        self._container.mux(packet)
        self.last_ms = ms
        self.packets += 1

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class RoomRecorder:
    """Records every publication of one room into ``folder`` until stopped."""

    def __init__(self, folder: Path, room: str, codec: str = "vp8", names: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.room = room
        self.codec = codec
        self.started = time.time()
        self._t0 = time.monotonic()
        self._names = names or {}
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rec-{room}")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.tracks: list[TrackInfo] = []
        self._count = 0
        self._stopped = False
        (folder / "tracks").mkdir(parents=True, exist_ok=True)
        self._write_manifest()

    def _write_manifest(self) -> None:
        write_json_atomic(
            self.folder / "manifest.json",
            {"room": self.room, "started_at": self.started, "tracks": [asdict(t) for t in self.tracks]},
        )

    def add(self, publication: Publication, name: str | None = None,
            on_floor: Callable[[], bool] | None = None, channel: Callable[[], str | None] | None = None) -> None:
        """Start recording a publication (called for existing and new ones). ``on_floor``: whether
        its audio belongs in the floor's recording now (an interpreter's voice is not the floor's);
        ``channel``: the channel its owner is live in now, if any (their voice goes there)."""
        if self._stopped or publication.id in self._tasks:
            return
        self._count += 1
        safe = re.sub(r"[^A-Za-z0-9_-]", "", publication.owner)[:32]
        ext = "mkv" if publication.kind == "video" and self.codec == "h264" else "webm"
        filename = f"{self._count:02d}-{safe}-{publication.source}"
        track = publication.subscribe()
        self._tasks[publication.id] = asyncio.create_task(
            self._record(publication, track, filename, ext, name or self._names.get(publication.owner, ""),
                         on_floor, channel),
            name=f"record-{filename}",
        )

    async def _record(self, publication: Publication, track: Any, filename: str, ext: str, name: str,
                      on_floor: Callable[[], bool] | None = None,
                      channel: Callable[[], str | None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        kind = publication.kind
        clock = 90000 if kind == "video" else 48000
        writers: dict[str | None, TrackWriter] = {}  # by channel (None: the floor)
        noted: set[str | None] = set()
        try:
            while True:
                packet = await track.recv()
                target: str | None = None
                if kind == "audio" and on_floor is not None and not on_floor():
                    target = channel() if channel is not None else None
                    if target is None:
                        continue  # in a booth, not live: in no recording
                data = bytes(packet)
                writer = writers.get(target)
                if writer is None:
                    codec = "opus" if kind == "audio" else self.codec
                    file = f"{filename}.{ext}" if target is None else f"{filename}.{target}.{ext}"
                    writer = writers[target] = TrackWriter(self.folder / "tracks" / file, kind, codec)
                key = is_keyframe(writer.codec, data)
                await loop.run_in_executor(self._io, writer.write, data, int(packet.pts), clock, key)
                if target not in noted and writer.packets:
                    noted.add(target)
                    size = vp8_size(data) or (0, 0)
                    self.tracks.append(TrackInfo(writer.path.name, publication.owner, name, publication.source, kind,
                                                 writer.codec, round(time.monotonic() - self._t0, 3), *size,
                                                 channel=target))
                    await loop.run_in_executor(self._io, self._write_manifest)
        except (MediaStreamError, asyncio.CancelledError):
            pass
        finally:
            publication.unsubscribe(track)
            for writer in writers.values():
                with contextlib.suppress(RuntimeError):
                    await loop.run_in_executor(self._io, writer.close)

    async def stop(self) -> float:
        """Finish every file; returns the recording's duration in seconds."""
        self._stopped = True
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._io.shutdown(wait=True)
        return round(time.monotonic() - self._t0, 3)
