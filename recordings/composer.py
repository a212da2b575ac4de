"""Compose a recording's per-track files into one playback file, after the session.

Runs in a worker process (decoding and encoding are CPU work): every video track is decoded and
laid out in a grid of the tracks live at each moment, every audio track is mixed, and the result
is encoded once as ``playback.mp4`` (H.264 + AAC, fast start) plus ``audio.m4a`` (the podcast
rendition). Everything streams in blocks, so memory does not grow with the recording's length.
Progress goes to ``progress.json`` for the server to show.

Interpreter channels (issue #14): the floor's files never carry an interpreter. Each channel
gets ``audio-<lang>.m4a`` (mixed as :mod:`recordings.channels` says) and ``playback-<lang>.mp4``,
the same encoded video with that audio (a remux, no second encode): any player switches channel
by switching file, and a download has the language one wants.
"""

from __future__ import annotations

import fractions
import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from .channels import channel_mix, remux

logger = logging.getLogger(__name__)

RATE = 48000
FPS = 15
WIDTH, HEIGHT = 960, 540
BLOCK = RATE  # mix one second of audio at a time
AAC_FRAME = 1024


def _write_progress(folder: Path, progress: float) -> None:
    tmp = folder / "progress.tmp"
    tmp.write_text(json.dumps({"progress": round(progress, 4)}))
    tmp.replace(folder / "progress.json")


def track_end(path: Path) -> float:
    """Last packet time of a (possibly truncated) track file, in seconds: demux only."""
    end = 0.0
    try:
        with av.open(str(path)) as container:
            stream = container.streams[0]
            time_base = stream.time_base
            if time_base is None:  # PyAV types it optional; a demuxed stream always has one
                return end
            for packet in container.demux(stream):
                if packet.pts is not None:
                    end = max(end, float(packet.pts * time_base))
    except (av.FFmpegError, IndexError, OSError):
        pass
    return end


def _audio_chunks(path: Path, offset: float) -> Iterator[tuple[int, np.ndarray]]:
    """(start sample on the recording's clock, mono float32 samples) for one audio track."""
    try:
        with av.open(str(path)) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            for frame in container.decode(audio=0):
                start = int(round((offset + float(frame.time or 0.0)) * RATE))
                frame.pts = None
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1).astype(np.float32)
                    yield start, samples
                    start += len(samples)
    except (av.FFmpegError, OSError) as exc:  # a truncated file ends early, it does not fail
        logger.info("audio track %s ends early: %s", path.name, exc)


def _video_frames(path: Path, offset: float) -> Iterator[tuple[float, av.VideoFrame]]:
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield offset + float(frame.time or 0.0), frame
    except (av.FFmpegError, OSError) as exc:
        logger.info("video track %s ends early: %s", path.name, exc)


class _VideoTrack:
    def __init__(self, path: Path, offset: float, name: str) -> None:
        self.frames = _video_frames(path, offset)
        self.offset = offset
        self.name = name
        self.current: av.VideoFrame | None = None
        self.current_time = -1.0
        self.pending: tuple[float, av.VideoFrame] | None = None
        self.done = False
        self._tile_key: tuple[int, int, int] | None = None
        self._tile: np.ndarray | None = None

    def advance(self, t: float) -> None:
        while not self.done:
            if self.pending is None:
                try:
                    self.pending = next(self.frames)
                except StopIteration:
                    self.done = True
                    break
            if self.pending[0] > t:
                break
            self.current_time, self.current = self.pending
            self.pending = None

    def live(self, t: float) -> bool:
        return self.current is not None and (not self.done or t - self.current_time < 1.0)

    def tile(self, w: int, h: int) -> np.ndarray:
        assert self.current is not None
        key = (id(self.current), w, h)
        if key != self._tile_key:
            self._tile, self._tile_key = fit_tile(self.current, w, h), key
        assert self._tile is not None
        return self._tile


def fit_tile(src: av.VideoFrame, w: int, h: int) -> np.ndarray:
    """The frame scaled to fit a w×h tile, letterboxed (RGB)."""
    scale = min(w / src.width, h / src.height)
    tw, th = max(2, int(src.width * scale) // 2 * 2), max(2, int(src.height * scale) // 2 * 2)
    img = src.reformat(width=tw, height=th, format="rgb24").to_ndarray()
    tile = np.zeros((h, w, 3), np.uint8)
    y, x = (h - th) // 2, (w - tw) // 2
    tile[y : y + th, x : x + tw] = img
    return tile


def _grid(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


def canvas(tracks: list[Any], t: float, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Grid of the tracks live at ``t`` (objects with ``live(t)`` and ``tile(w, h)``)."""
    canvas = np.full((height, width, 3), 24, np.uint8)
    live = [tr for tr in tracks if tr.live(t)]
    if not live:
        return canvas
    cols, rows = _grid(len(live))
    w, h = width // cols // 2 * 2, height // rows // 2 * 2
    for i, tr in enumerate(live):
        r, c = divmod(i, cols)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = tr.tile(w, h)
    return canvas


class AudioEncoder:
    def __init__(self, container: Any) -> None:
        self.container = container
        self.stream = container.add_stream("aac", rate=RATE)
        self.stream.layout = "mono"
        self.stream.bit_rate = 64000
        self.pts = 0
        self.buffer = np.zeros(0, np.float32)
        self.on_packet: Any = None  # also hand each packet to a second output (RTMP)

    def write(self, samples: np.ndarray, final: bool = False) -> None:
        self.buffer = np.concatenate([self.buffer, samples])
        while len(self.buffer) >= AAC_FRAME or (final and len(self.buffer)):
            chunk = self.buffer[:AAC_FRAME]
            self.buffer = self.buffer[AAC_FRAME:]
            if len(chunk) < AAC_FRAME:
                chunk = np.pad(chunk, (0, AAC_FRAME - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.pts = self.pts
            frame.time_base = fractions.Fraction(1, RATE)
            self.pts += AAC_FRAME
            for packet in self.stream.encode(frame):
                self._mux(packet)
        if final:
            for packet in self.stream.encode(None):
                self._mux(packet)

    def _mux(self, packet: av.Packet) -> None:
        if self.on_packet is not None:
            self.on_packet(packet)
        self.container.mux(packet)


class _Mixer:
    """Sums audio tracks (``_audio_chunks`` iterators) one block at a time."""

    def __init__(self, chunks: list[Iterator[tuple[int, np.ndarray]]]) -> None:
        self.chunks = chunks
        self.pending: list[tuple[int, np.ndarray] | None] = [None] * len(chunks)

    def block(self, block_start: int, block_end: int) -> tuple[np.ndarray, bool]:
        """The mix of ``[block_start, block_end)`` and whether any track had sound in it."""
        mix = np.zeros(block_end - block_start, np.float32)
        heard = False
        for i, chunks in enumerate(self.chunks):
            while True:
                item = self.pending[i]
                if item is None:
                    item = next(chunks, None)
                    if item is None:
                        break
                start, samples = item
                if start >= block_end:
                    self.pending[i] = item
                    break
                lo, hi = max(start, block_start), min(start + len(samples), block_end)
                if hi > lo:
                    mix[lo - block_start : hi - block_start] += samples[lo - start : hi - start]
                    heard = True
                if start + len(samples) > block_end:
                    self.pending[i] = (block_end, samples[block_end - start :])
                    break
                self.pending[i] = None
        return mix, heard


def compose(folder: str | Path, duration: float | None = None) -> dict[str, Any]:
    """Write playback.mp4 and audio.m4a from the tracks in ``folder``; returns a summary."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    tracks = [t for t in manifest["tracks"] if (folder / "tracks" / t["file"]).is_file()]
    ends = {t["file"]: t["offset"] + track_end(folder / "tracks" / t["file"]) for t in tracks}
    total = max([duration or 0.0, *ends.values()]) if tracks else 0.0
    if total <= 0:
        raise ValueError("the recording has no media")
    started = time.monotonic()
    videos = [
        _VideoTrack(folder / "tracks" / t["file"], t["offset"], t.get("name", ""))
        for t in tracks if t["kind"] == "video"
    ]
    def mixer(channel: str | None) -> _Mixer:
        return _Mixer([_audio_chunks(folder / "tracks" / t["file"], t["offset"]) for t in tracks
                       if t["kind"] == "audio" and t.get("channel") == channel])

    floor = mixer(None)
    langs = sorted({str(t["channel"]) for t in tracks if t["kind"] == "audio" and t.get("channel")})
    channels = {lang: mixer(lang) for lang in langs}

    tmp_video, tmp_audio = folder / "playback.tmp.mp4", folder / "audio.tmp.m4a"
    out = av.open(str(tmp_video), "w", format="mp4", options={"movflags": "+faststart"})
    vstream = out.add_stream("libx264", rate=FPS)
    vstream.width, vstream.height, vstream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    vstream.options = {"preset": "veryfast", "crf": "28", "g": str(FPS * 2)}
    aout = AudioEncoder(out)
    podcast = av.open(str(tmp_audio), "w", format="mp4", options={"movflags": "+faststart"})
    pout = AudioEncoder(podcast)
    channel_files = {lang: av.open(str(folder / f"audio-{lang}.tmp.m4a"), "w", format="mp4",
                                   options={"movflags": "+faststart"}) for lang in langs}
    channel_outs = {lang: AudioEncoder(out) for lang, out in channel_files.items()}

    n_frames = int(math.ceil(total * FPS))
    n_samples = int(math.ceil(total * RATE))
    frame_index = 0
    last_progress = 0.0
    for block_start in range(0, n_samples, BLOCK):
        block_end = min(block_start + BLOCK, n_samples)
        mix, _ = floor.block(block_start, block_end)
        np.clip(mix, -1.0, 1.0, out=mix)
        aout.write(mix)
        pout.write(mix)
        for lang, channel in channels.items():
            voices, live = channel.block(block_start, block_end)
            channel_outs[lang].write(channel_mix(mix, voices, live))
        while frame_index < n_frames and frame_index / FPS < block_end / RATE:
            t = frame_index / FPS
            for tr in videos:
                tr.advance(t)
            frame = av.VideoFrame.from_ndarray(canvas(videos, t), format="rgb24")
            frame.pts = frame_index
            frame.time_base = fractions.Fraction(1, FPS)
            for packet in vstream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
            frame_index += 1
        progress = block_end / n_samples
        if progress - last_progress >= 0.02:
            _write_progress(folder, progress)
            last_progress = progress
    for packet in vstream.encode(None):
        out.mux(packet)
    aout.write(np.zeros(0, np.float32), final=True)
    pout.write(np.zeros(0, np.float32), final=True)
    out.close()
    podcast.close()
    for lang in langs:
        channel_outs[lang].write(np.zeros(0, np.float32), final=True)
        channel_files[lang].close()
        remux(tmp_video, folder / f"audio-{lang}.tmp.m4a", folder / f"playback-{lang}.tmp.mp4")
    for lang in langs:  # (the floor's files last: "ready" files never lack their channels)
        (folder / f"playback-{lang}.tmp.mp4").replace(folder / f"playback-{lang}.mp4")
        (folder / f"audio-{lang}.tmp.m4a").replace(folder / f"audio-{lang}.m4a")
    tmp_video.replace(folder / "playback.mp4")
    tmp_audio.replace(folder / "audio.m4a")
    (folder / "channels.json").write_text(json.dumps(langs))
    _write_progress(folder, 1.0)
    return {"duration": round(total, 3), "seconds": round(time.monotonic() - started, 2),
            "video_tracks": len(videos), "audio_tracks": sum(1 for t in tracks if t["kind"] == "audio"),
            "channels": langs}
