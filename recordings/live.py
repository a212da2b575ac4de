"""Live streams to audiences: one HLS stream per live room, with a caption rendition per language.

The server side of a stream: it feeds the room's forwarded packets to the worker process
(:mod:`recordings.live_worker`, which encodes once), writes the master playlist and the WebVTT
subtitle segments (aligned to the 2 s video segments) from the captions pipeline, counts viewers,
and archives the stream as a recording.

Interpreter channels (issue #14): a live interpreter's packets go to the worker tagged with their
language (never into the floor's mix); the first one makes the language an audio rendition of
the master playlist (``EXT-X-MEDIA TYPE=AUDIO``, the floor the default), which it stays until
the stream ends. Viewers' pages reload the stream when the list of channels grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import multiprocessing
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
from aiortc.mediastreams import MediaStreamError

from media_server import SFU, MediaRoom, Publication

from . import live_worker
from .archive import Cue, render_webvtt
from .channels import channel_name
from .rtmp import redact

if TYPE_CHECKING:
    from .manager import RecordingManager

logger = logging.getLogger(__name__)

WINDOW = 10  # segments kept in the playlists
QUEUE_PACKETS = 600  # ~4 s of a few tracks; a stalled worker drops, never grows memory
CUE_MIN, CUE_MAX = 2.5, 7.0  # seconds a live caption stays on screen
MAX_VIEWERS = 100_000  # per room: a bound on what anonymous status polls can make us remember


@dataclass
class _Stream:
    room: str
    folder: Path
    languages: list[str]
    process: Any
    queue: Any
    started: float = field(default_factory=time.time)
    start_wall: float | None = None  # stream time 0, from the worker's clock.json
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    cues: dict[str, list[Cue]] = field(default_factory=dict)
    written: int = 0  # subtitle segments written so far
    subtitles: asyncio.Task[None] | None = None
    recording: str | None = None
    dropped: int = 0
    push: dict[str, Any] | None = None  # last RTMP status shown to the room
    prefix: str = ""  # makes this stream's file names unique
    unwatch: Callable[[], None] | None = None  # stops the SFU's calls about this room's media
    channels: list[str] = field(default_factory=list)  # interpreter channels in the master, in order
    opening: list[str] = field(default_factory=list)  # channels whose first segment is still to come


class LiveManager:
    """Starts and stops live streams and serves what viewers need to know."""

    def __init__(
        self,
        root: Path,
        sfu: SFU,
        languages: Callable[[], list[str]],
        on_change: Callable[[str, dict[str, Any]], None],
        recordings: RecordingManager | None = None,
        channels: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        """``channels(room)``: ``{language: live interpreter's id}`` (``RoomHub.live_channels``)."""
        self.root = root
        self._channels = channels or (lambda room: {})
        self._sfu = sfu
        self._languages = languages
        self._on_change = on_change
        self._recordings = recordings
        self._streams: dict[str, _Stream] = {}
        self._ended: dict[str, float] = {}
        self._viewers: dict[str, dict[str, float]] = {}
        self._pruned: dict[str, float] = {}
        root.mkdir(parents=True, exist_ok=True)

    # -- state -----------------------------------------------------------------------------

    def state(self, room: str) -> dict[str, Any]:
        stream = self._streams.get(room)
        return {"on": stream is not None, "url": f"/live/{room}", "available": True,
                "push": stream.push if stream else None}

    def is_live(self, room: str) -> bool:
        return room in self._streams

    def push(self, room: str, url: str | None) -> bool:
        """Start (or, with None, stop) pushing the room's stream to an RTMP(S) destination."""
        stream = self._streams.get(room)
        if stream is None:
            return False
        try:
            stream.queue.put_nowait(("rtmp", url))
        except Exception:
            return False  # the worker is not keeping up; the host can try again
        with contextlib.suppress(FileNotFoundError):
            (stream.folder / "rtmp.json").unlink()
        if url:
            stream.push = {"state": "connecting", "url": redact(url), "error": None, "attempts": 0}
        elif stream.push is not None:  # stopped by the host: say so until the next destination
            stream.push = {**stream.push, "state": "stopped", "error": None}
        self._on_change(room, self.state(room))
        return True

    def _poll_push(self, stream: _Stream) -> None:
        with contextlib.suppress(OSError, ValueError):
            status = json.loads((stream.folder / "rtmp.json").read_text())
            if (
                stream.push is not None
                and status["url"] == stream.push.get("url")  # not a replaced destination's last words
                and (status["state"], status["error"]) != (stream.push.get("state"), stream.push.get("error"))
            ):
                stream.push = {k: status[k] for k in ("state", "error", "url", "attempts")}
                self._on_change(stream.room, self.state(stream.room))

    def languages(self, room: str) -> set[str]:
        stream = self._streams.get(room)
        return set(stream.languages) if stream else set()

    def folder(self, room: str) -> Path:
        return self.root / room

    def status(self, room: str, viewer: str | None) -> dict[str, Any]:
        now = time.time()
        stream = self._streams.get(room)
        seen = self._viewers.get(room)
        if seen is None and (stream is not None or room in self._ended):
            seen = self._viewers[room] = {}  # only rooms that are or were live are counted
        if seen is not None:
            if viewer and (viewer in seen or len(seen) < MAX_VIEWERS):
                seen[viewer[:64]] = now
            if now - self._pruned.get(room, 0.0) > 5.0:  # prune in batches, not per request
                self._pruned[room] = now
                for key in [k for k, t in seen.items() if now - t > 15]:
                    del seen[key]
        for old in [r for r, t in self._ended.items() if now - t > 3600]:
            self._ended.pop(old, None)
            if old not in self._streams:
                self._viewers.pop(old, None)
                self._pruned.pop(old, None)
        return {
            "live": stream is not None and (self.folder(room) / "video.m3u8").is_file(),
            "ended": stream is None and room in self._ended,
            "viewers": len(seen or {}),
            "languages": stream.languages if stream else [],
            "channels": list(stream.channels) if stream else [],
            "playlist": f"/live/{room}/hls/index.m3u8",
            "started_at": stream.started if stream else None,
        }

    # -- start / stop ---------------------------------------------------------------------------

    async def start(self, room: str) -> None:
        if room in self._streams:
            return
        folder = self.folder(room)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        languages = sorted(self._languages())[:8]
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue(QUEUE_PACKETS)
        prefix = "-" + uuid.uuid4().hex[:8]  # unique segment names: caches never mix two streams
        process = ctx.Process(
            target=live_worker.run, args=(queue, str(folder), self._sfu.codec, prefix), daemon=True
        )
        process.start()
        stream = _Stream(room, folder, languages, process, queue, prefix=prefix)
        self._streams[room] = stream
        self._ended.pop(room, None)
        self._write_master(stream)
        stream.unwatch = self._sfu.watch(self._publication_hook(room))  # what is published already, too
        stream.subtitles = asyncio.create_task(self._subtitle_loop(stream), name=f"live-subs-{room}")
        if self._recordings is not None and not self._recordings.state(room)["on"]:
            stream.recording = await self._recordings.start(room)  # the stream is archived
        logger.info("room %s is live (%s)", room, ", ".join(languages) or "no captions")
        self._on_change(room, self.state(room))

    async def stop(self, room: str) -> None:
        stream = self._streams.pop(room, None)
        if stream is None:
            return
        self._on_change(room, self.state(room))
        if stream.unwatch is not None:
            stream.unwatch()
        for task in stream.tasks.values():
            task.cancel()
        for task in stream.tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            stream.queue.put_nowait(("stop",))  # if the queue is full the join times out below
        await asyncio.get_running_loop().run_in_executor(None, stream.process.join, 20)
        if stream.process.is_alive():
            stream.process.kill()
        if stream.subtitles is not None:
            stream.subtitles.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream.subtitles
        self._write_subtitles(stream, final=True)
        self._ended[room] = time.time()
        if self._recordings is not None and stream.recording is not None:
            await self._recordings.stop(room)
        logger.info("room %s live stream ended (%d packets dropped)", room, stream.dropped)

    async def close(self) -> None:
        for room in list(self._streams):
            await self.stop(room)

    # -- media ----------------------------------------------------------------------------------

    def _publication_hook(self, name: str) -> Callable[[MediaRoom, Publication], None]:
        def hook(room: MediaRoom, publication: Publication) -> None:
            if room.name == name:
                self._on_publication(room, publication)

        return hook

    def _on_publication(self, room: MediaRoom, publication: Publication) -> None:
        stream = self._streams.get(room.name)
        if stream is None or publication.id in stream.tasks:
            return
        stream.tasks[publication.id] = asyncio.create_task(
            self._feed(stream, publication, room), name=f"live-feed-{publication.id}"
        )

    async def _feed(self, stream: _Stream, publication: Publication, room: MediaRoom) -> None:
        track = publication.subscribe()
        key = publication.id
        try:
            while True:
                packet = await track.recv()
                if not isinstance(packet, av.Packet):  # forwarded tracks carry encoded packets
                    continue
                message: tuple[Any, ...] = (publication.kind, key, bytes(packet))
                if publication.kind == "audio" and publication.owner in room.off_floor:
                    # an interpreter's voice is not the floor's: it is their channel's, while live
                    lang = self._live_channel(stream, room.name, publication.owner)
                    if lang is None:
                        continue
                    message = ("chan", lang, key, message[2])
                try:
                    stream.queue.put_nowait(message)
                except Exception:  # queue full: the worker is behind; drop rather than buffer
                    stream.dropped += 1
        except (MediaStreamError, asyncio.CancelledError):
            pass
        finally:
            publication.unsubscribe(track)
            with contextlib.suppress(Exception):
                stream.queue.put_nowait(("end", key))

    def _live_channel(self, stream: _Stream, room: str, owner: str) -> str | None:
        """The channel ``owner`` is live in now (None: not live), streamed from now on."""
        lang = next((lang for lang, live in self._channels(room).items() if live == owner), None)
        if lang is not None and lang not in stream.channels and lang not in stream.opening:
            stream.opening.append(lang)
            with contextlib.suppress(Exception):  # (its first packet opens it anyway)
                stream.queue.put_nowait(("channel", lang))
        return lang

    def _announce_channels(self, stream: _Stream) -> None:
        """Channels whose playlist exists go into the master playlist (a player never gets a 404)."""
        if not all((stream.folder / f"{name}.m3u8").is_file()
                   for name in ("video_only", f"audio_{live_worker.FLOOR_RENDITION}")):
            return
        ready = [lang for lang in stream.opening if (stream.folder / f"audio_{lang}.m3u8").is_file()]
        if ready:
            stream.opening = [lang for lang in stream.opening if lang not in ready]
            stream.channels += ready
            self._write_master(stream)
            logger.info("room %s: live stream carries the %s channel(s)", stream.room, ", ".join(ready))

    # -- captions ---------------------------------------------------------------------------------

    def on_caption(self, room: str, lang: str, caption: dict[str, Any]) -> None:
        """Final captions become cues of the stream's subtitle rendition in ``lang``."""
        stream = self._streams.get(room)
        if stream is None or not caption.get("final") or lang not in stream.languages:
            return
        start_wall = self._stream_start(stream)
        if start_wall is None:
            return
        # Like broadcast live captions, a cue is shown from when it is ready (a final arrives
        # seconds after the words were spoken), for about as long as the speech lasted. Placing it
        # at its speech time instead would put it in subtitle segments viewers already have.
        now = time.time() - start_wall
        spoken = caption["end"] - caption["start"]
        duration = min(CUE_MAX, max(CUE_MIN, spoken))
        cue = Cue(max(0.0, now), max(0.0, now) + duration, str(caption.get("name", "")), str(caption["text"]))
        stream.cues.setdefault(lang, []).append(cue)

    def _stream_start(self, stream: _Stream) -> float | None:
        if stream.start_wall is None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                stream.start_wall = float(json.loads((stream.folder / "clock.json").read_text())["start_wall"])
        return stream.start_wall

    def _write_master(self, stream: _Stream) -> None:
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
        for lang in stream.languages:
            lines.append(
                f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="{lang}",LANGUAGE="{lang}",'
                f'DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="sub_{lang}.m3u8"'
            )
        groups = ',SUBTITLES="subs"' if stream.languages else ""
        variant = "video.m3u8"
        if stream.channels:  # video without audio, the floor and the channels each on its own
            lines.append('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Floor",DEFAULT=YES,AUTOSELECT=YES,'
                         f'URI="audio_{live_worker.FLOOR_RENDITION}.m3u8"')
            for lang in stream.channels:
                name = channel_name(lang).replace('"', "'")
                lines.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="{lang}",NAME="{name}",'
                             f'DEFAULT=NO,AUTOSELECT=YES,URI="audio_{lang}.m3u8"')
            groups += ',AUDIO="aud"'
            variant = "video_only.m3u8"
        # H.264 High@3.1 and AAC-LC, as the worker encodes them: players pick (or skip) the variant
        # without downloading the init segment first.
        lines += [f'#EXT-X-STREAM-INF:BANDWIDTH=1200000,CODECS="avc1.64001f,mp4a.40.2",'
                  f"RESOLUTION={live_worker.WIDTH}x{live_worker.HEIGHT},FRAME-RATE={live_worker.FPS:.3f}{groups}",
                  variant]
        tmp = stream.folder / "index.m3u8.tmp"  # rewritten mid-stream: never half a playlist
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(stream.folder / "index.m3u8")

    async def _subtitle_loop(self, stream: _Stream) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._write_subtitles(stream, final=False)
            self._poll_push(stream)
            self._announce_channels(stream)

    def _write_subtitles(self, stream: _Stream, final: bool) -> None:
        """Write every finished 2 s subtitle segment (and, at the end, the last partial one)."""
        start_wall = self._stream_start(stream)
        if start_wall is None or not stream.languages:
            return
        elapsed = time.time() - start_wall
        seg = live_worker.SEGMENT
        done = math.ceil(elapsed / seg) if final else int(elapsed // seg)
        for n in range(stream.written, max(stream.written, done)):
            for lang in stream.languages:
                cues = [c for c in stream.cues.get(lang, []) if c.end > n * seg and c.start < (n + 1) * seg]
                body = render_webvtt(cues, ids=False)  # numbering restarts per segment
                body = body.replace("WEBVTT", "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000", 1)
                (stream.folder / f"sub_{lang}{stream.prefix}_{n:05d}.vtt").write_text(body)
        stream.written = max(stream.written, done)
        first = max(0, stream.written - WINDOW)
        for lang in stream.languages:
            lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{seg}", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
            for n in range(first, stream.written):
                lines += [f"#EXTINF:{seg:.3f},", f"sub_{lang}{stream.prefix}_{n:05d}.vtt"]
            if final:
                lines.append("#EXT-X-ENDLIST")
            tmp = stream.folder / f"sub_{lang}.m3u8.tmp"
            tmp.write_text("\n".join(lines) + "\n")
            tmp.replace(stream.folder / f"sub_{lang}.m3u8")
            for old in range(max(0, first - WINDOW), first):
                with contextlib.suppress(FileNotFoundError):
                    (stream.folder / f"sub_{lang}{stream.prefix}_{old:05d}.vtt").unlink()
