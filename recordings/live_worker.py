"""The live-stream worker process: decode, compose, mix and encode a room once, write HLS.

Fed by the server with the SFU's forwarded packets over a queue, it keeps the latest picture of
every camera/screen and a short buffer of every speaker's audio, and on a fixed clock encodes
one H.264 + AAC stream into fMP4 HLS segments (2 s, GOP = segment). Viewers only ever fetch
files, so their number never reaches the SFU. Closing the muxer writes ``#EXT-X-ENDLIST``.

Interpreter channels (issue #14) are audio-only HLS renditions beside it, ``audio_<lang>.m3u8``:
the server sends a live interpreter's packets tagged with their channel, and each tick every
channel is mixed from them and the floor (:mod:`recordings.channels`) on the floor's clock, so a
player switches rendition without a jump. With the first channel the floor gets an audio-only
rendition too (``audio_floor.m3u8``) and the video a playlist without audio (``video_only.m3u8``,
the same encoded packets, not encoded twice): players (hls.js) switch between separate audio
renditions, never out of audio muxed into the video's segments. ``video.m3u8`` keeps the floor
muxed in for RTMP and the stream's earlier viewers.
"""

from __future__ import annotations

import fractions
import json
import logging
import multiprocessing
import queue as queue_mod
import time
from collections import deque
from pathlib import Path
from typing import Any, cast

import av
import numpy as np

from .channels import SILENT_AFTER, channel_mix
from .composer import AudioEncoder, canvas, fit_tile
from .rtmp import RtmpPusher

logger = logging.getLogger(__name__)

FPS = 15
SEGMENT = 2
WIDTH, HEIGHT = 854, 480
RATE = 48000
DELAY = 0.3  # seconds of media buffered before a tick is encoded
MAX_AUDIO_BACKLOG = RATE // 2  # never let a speaker's audio lag more than 0.5 s
FLOOR_RENDITION = "floor"  # audio_floor.m3u8 (no language code is five letters)


class _LiveVideo:
    def __init__(self, codec: str) -> None:
        # a codec name known only at run time: PyAV's stubs type that as the generic CodecContext
        self.decoder = cast("av.VideoCodecContext", av.CodecContext.create(codec, "r"))
        self.current: av.VideoFrame | None = None
        self.arrived = 0.0
        self._tile_key: tuple[int, int, int] | None = None
        self._tile: np.ndarray | None = None

    def feed(self, data: bytes, now: float) -> None:
        try:
            for frame in self.decoder.decode(av.Packet(data)):
                self.current, self.arrived = frame, now
        except av.FFmpegError:
            pass  # a broken frame: keep showing the last good one

    def live(self, t: float) -> bool:
        return self.current is not None and time.monotonic() - self.arrived < 1.5

    def tile(self, w: int, h: int) -> np.ndarray:
        assert self.current is not None
        key = (id(self.current), w, h)
        if key != self._tile_key:
            self._tile, self._tile_key = fit_tile(self.current, w, h), key
        assert self._tile is not None
        return self._tile


class _LiveAudio:
    def __init__(self) -> None:
        self.decoder = av.CodecContext.create("opus", "r")
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        self.buffer: deque[np.ndarray] = deque()
        self.samples = 0

    def feed(self, data: bytes) -> None:
        try:
            for frame in self.decoder.decode(av.Packet(data)):
                frame.pts = None
                for out in self.resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1).astype(np.float32)
                    self.buffer.append(chunk)
                    self.samples += len(chunk)
        except av.FFmpegError:
            return
        while self.samples > MAX_AUDIO_BACKLOG:
            self.samples -= len(self.buffer.popleft())

    def take(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.float32)
        filled = 0
        while filled < n and self.buffer:
            chunk = self.buffer[0]
            k = min(n - filled, len(chunk))
            out[filled : filled + k] = chunk[:k]
            filled += k
            if k == len(chunk):
                self.buffer.popleft()
            else:
                self.buffer[0] = chunk[k:]
            self.samples -= k
        return out


def _rendition(out_dir: Path, name: str, prefix: str) -> Any:
    """An fMP4 HLS output ``<name>.m3u8`` cut like the video's (its segments ``<name><prefix>_N``)."""
    return av.open(
        str(out_dir / f"{name}.m3u8"), "w", format="hls",
        options={
            "hls_time": str(SEGMENT), "hls_list_size": "10", "hls_segment_type": "fmp4",
            "hls_flags": "delete_segments+independent_segments",
            "hls_fmp4_init_filename": f"{name}{prefix}.mp4",
            "hls_segment_filename": str(out_dir / f"{name}{prefix}_%05d.m4s"),
        },
    )


def _end_playlist(playlist: Path) -> None:
    """Make sure a finished playlist says so (players stop asking for more)."""
    text = playlist.read_text() if playlist.is_file() else ""
    if text and "#EXT-X-ENDLIST" not in text:
        playlist.write_text(text.rstrip("\n") + "\n#EXT-X-ENDLIST\n")


class _LiveChannel:
    """One interpreter channel's rendition: its interpreters' audio, its own HLS muxer."""

    def __init__(self, out_dir: Path, lang: str, prefix: str, pts: int) -> None:
        self.playlist = out_dir / f"audio_{lang}.m3u8"
        self.out = _rendition(out_dir, f"audio_{lang}", prefix)
        self.audio = AudioEncoder(self.out)
        self.audio.pts = pts  # the floor's clock: a channel opened mid-stream starts where it is
        self.tracks: dict[str, _LiveAudio] = {}
        self.heard = -SILENT_AFTER  # monotonic time of the last interpreter packet

    def feed(self, key: str, data: bytes) -> None:
        self.tracks.setdefault(key, _LiveAudio()).feed(data)
        self.heard = time.monotonic()

    def write(self, floor: np.ndarray) -> None:
        voices = np.zeros(len(floor), np.float32)
        for track in self.tracks.values():
            voices += track.take(len(floor))
        self.audio.write(channel_mix(floor, voices, time.monotonic() - self.heard < SILENT_AFTER))

    def close(self) -> None:
        self.audio.write(np.zeros(0, np.float32), final=True)
        self.out.close()
        _end_playlist(self.playlist)


class _VideoOnly:
    """The video's packets again, without audio, for a master playlist with audio renditions."""

    def __init__(self, out_dir: Path, prefix: str, template: Any) -> None:
        self.playlist = out_dir / "video_only.m3u8"
        self.out = _rendition(out_dir, "video_only", prefix)
        self.stream = self.out.add_stream_from_template(template)
        source, target = template.codec_context, self.stream.codec_context
        target.width, target.height = source.width, source.height  # (not all copied from the encoder)
        target.extradata = source.extradata  # the avcC: a player's decoder needs it in the init segment
        self.started = False

    def mux(self, packet: av.Packet) -> None:
        """Mux a copy (muxing takes a packet's data): from the next keyframe on."""
        self.started = self.started or packet.is_keyframe
        if not self.started:
            return
        copy = av.Packet(bytes(packet))
        copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
        copy.is_keyframe = packet.is_keyframe
        copy.stream = self.stream
        self.out.mux(copy)

    def close(self) -> None:
        self.out.close()
        _end_playlist(self.playlist)


def run(messages: Any, folder: str, codec: str = "vp8", prefix: str = "") -> None:
    """Process entry point: consume ``messages`` until ``("stop",)``, writing HLS to ``folder``.

    ``prefix`` makes this stream's file names unique, so caches never serve an earlier stream's.
    """
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = av.open(
        str(out_dir / "video.m3u8"), "w", format="hls",
        options={
            "hls_time": str(SEGMENT), "hls_list_size": "10", "hls_segment_type": "fmp4",
            "hls_flags": "delete_segments+independent_segments",
            "hls_fmp4_init_filename": f"init{prefix}.mp4",
            "hls_segment_filename": str(out_dir / f"seg{prefix}%05d.m4s"),
        },
    )
    video = out.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.options = {"preset": "veryfast", "tune": "zerolatency", "crf": "28", "flags": "+global_header",
                     "profile": "high", "level": "3.1",  # = CODECS in the master playlist
                     "g": str(FPS * SEGMENT), "keyint_min": str(FPS * SEGMENT), "sc_threshold": "0"}
    audio = AudioEncoder(out)
    audio.stream.options = {"flags": "+global_header"}  # FLV (RTMP) needs the headers out of band
    pusher: RtmpPusher | None = None
    wanted_rtmp: str | None = None

    channels: dict[str, _LiveChannel] = {}  # by language, and the floor's own rendition
    video_only: _VideoOnly | None = None

    def mux(kind: str, packets: Any) -> None:
        nonlocal video_only
        for packet in packets:
            if pusher is not None:
                pusher.push(kind, packet)
            if video_only is None and channels and video.codec_context.extradata:  # (the encoder is open)
                video_only = _VideoOnly(out_dir, prefix, video)
            if video_only is not None:
                video_only.mux(packet)
            out.mux(packet)

    audio.on_packet = lambda p: pusher.push("audio", p) if pusher is not None else None
    videos: dict[str, _LiveVideo] = {}
    audios: dict[str, _LiveAudio] = {}

    def channel(lang: str) -> _LiveChannel:
        if lang not in channels:
            clock = audio.pts + len(audio.buffer)
            if FLOOR_RENDITION not in channels:  # (no interpreter packet ever goes to it)
                channels[FLOOR_RENDITION] = _LiveChannel(out_dir, FLOOR_RENDITION, prefix, clock)
            channels[lang] = _LiveChannel(out_dir, lang, prefix, clock)
        return channels[lang]

    start = time.monotonic() + DELAY
    # the server maps caption times onto the stream's clock with this
    (out_dir / "clock.json").write_text(json.dumps({"start_wall": time.time() + DELAY}))
    index = 0
    samples_per_tick = RATE // FPS
    stopping = False
    parent = multiprocessing.parent_process()
    while not stopping:
        if parent is not None and not parent.is_alive():
            break  # the hub died (kill -9): do not encode into the void forever
        due = start + index / FPS
        try:
            msg = messages.get(timeout=max(0.0, due - time.monotonic()))
        except queue_mod.Empty:
            msg = None
        if msg is not None:
            kind = msg[0]
            if kind == "stop":
                stopping = True
            elif kind == "rtmp":
                if pusher is not None:
                    pusher.stop()
                    pusher = None
                wanted_rtmp = msg[1]
            elif kind == "video":
                videos.setdefault(msg[1], _LiveVideo(codec)).feed(msg[2], time.monotonic())
            elif kind == "audio":
                audios.setdefault(msg[1], _LiveAudio()).feed(msg[2])
            elif kind == "channel":  # ("channel", lang): a rendition from now on
                channel(msg[1])
            elif kind == "chan":  # ("chan", lang, key, packet): a live interpreter's voice
                channel(msg[1]).feed(msg[2], msg[3])
            elif kind == "end":
                videos.pop(msg[1], None)
                audios.pop(msg[1], None)
                for chan in channels.values():
                    chan.tracks.pop(msg[1], None)
            if time.monotonic() < due:
                continue
        if wanted_rtmp and pusher is None and video.codec_context.extradata and audio.stream.codec_context.extradata:
            pusher = RtmpPusher(wanted_rtmp, video, audio.stream, out_dir / "rtmp.json")
            pusher.start()
        # encode every tick that is due (catch up without sleeping if we fell behind)
        while time.monotonic() >= start + index / FPS:
            frame = av.VideoFrame.from_ndarray(canvas(list(videos.values()), 0.0, WIDTH, HEIGHT), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = index
            frame.time_base = fractions.Fraction(1, FPS)
            mux("video", video.encode(frame))
            mix = np.zeros(samples_per_tick, np.float32)
            for track in audios.values():
                mix += track.take(samples_per_tick)
            np.clip(mix, -1.0, 1.0, out=mix)
            audio.write(mix)
            for chan in channels.values():
                chan.write(mix)
            index += 1
            if index % FPS == 0:
                (out_dir / "status.json").write_text(json.dumps({"seconds": index / FPS}))
    mux("video", video.encode(None))
    audio.write(np.zeros(0, np.float32), final=True)
    if pusher is not None:
        pusher.stop()
        pusher.join(5)
    out.close()
    for chan in channels.values():
        chan.close()
    if video_only is not None:
        video_only.close()
    _end_playlist(out_dir / "video.m3u8")
    (out_dir / "status.json").write_text(json.dumps({"seconds": index / FPS, "ended": True}))
