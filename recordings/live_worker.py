"""The live-stream worker process: decode, compose, mix and encode a room once, write HLS.

Fed by the server with the SFU's forwarded packets over a queue, it keeps the latest picture of
every camera/screen and a short buffer of every speaker's audio, and on a fixed clock encodes
one H.264 + AAC stream into fMP4 HLS segments (2 s, GOP = segment). Viewers only ever fetch
files, so their number never reaches the SFU. Closing the muxer writes ``#EXT-X-ENDLIST``.
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

from .composer import AudioEncoder, canvas, fit_tile
from .rtmp import RtmpPusher

logger = logging.getLogger(__name__)

FPS = 15
SEGMENT = 2
WIDTH, HEIGHT = 854, 480
RATE = 48000
DELAY = 0.3  # seconds of media buffered before a tick is encoded
MAX_AUDIO_BACKLOG = RATE // 2  # never let a speaker's audio lag more than 0.5 s


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

    def mux(kind: str, packets: Any) -> None:
        for packet in packets:
            if pusher is not None:
                pusher.push(kind, packet)
            out.mux(packet)

    audio.on_packet = lambda p: pusher.push("audio", p) if pusher is not None else None
    videos: dict[str, _LiveVideo] = {}
    audios: dict[str, _LiveAudio] = {}
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
            elif kind == "end":
                videos.pop(msg[1], None)
                audios.pop(msg[1], None)
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
            index += 1
            if index % FPS == 0:
                (out_dir / "status.json").write_text(json.dumps({"seconds": index / FPS}))
    mux("video", video.encode(None))
    audio.write(np.zeros(0, np.float32), final=True)
    if pusher is not None:
        pusher.stop()
        pusher.join(5)
    out.close()
    playlist = out_dir / "video.m3u8"
    text = playlist.read_text()
    if "#EXT-X-ENDLIST" not in text:
        playlist.write_text(text.rstrip("\n") + "\n#EXT-X-ENDLIST\n")
    (out_dir / "status.json").write_text(json.dumps({"seconds": index / FPS, "ended": True}))
