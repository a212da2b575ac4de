"""RTMP(S) push of a live stream (YouTube Live, Facebook, PeerTube…), inside the live worker.

The worker encodes once; this thread muxes copies of the encoded packets into FLV over RTMP.
Network trouble never stalls the HLS stream: packets go through a bounded queue, a dropped
connection is retried with exponential backoff (starting again at a keyframe), and the state is
written to ``rtmp.json`` for the server to show the host. The stream key is never logged.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import av

logger = logging.getLogger(__name__)

BACKOFF = (1, 2, 4, 8, 15, 30)


def redact(url: str) -> str:
    """rtmp://host/app/KEY → rtmp://host/app/•••• (the key is a secret)."""
    head, _, _ = url.rpartition("/")
    return head + "/••••"


def _copy(packet: av.Packet) -> av.Packet:
    out = av.Packet(bytes(packet))
    out.pts, out.dts, out.time_base = packet.pts, packet.dts, packet.time_base
    out.is_keyframe = packet.is_keyframe
    return out


class RtmpPusher(threading.Thread):
    """Owns the FLV/RTMP connection; fed with ``push(kind, packet)`` from the encoding loop."""

    def __init__(self, url: str, video: Any, audio: Any, status_path: Path) -> None:
        super().__init__(name="rtmp-push", daemon=True)
        self.url = url
        self._video, self._audio = video, audio
        self._status_path = status_path
        self._queue: queue.Queue[tuple[str, av.Packet] | None] = queue.Queue(maxsize=300)
        self._stop = threading.Event()
        self.attempts = 0
        self._state: dict[str, Any] = {}
        self._set("connecting")

    def _set(self, state: str, error: str | None = None) -> None:
        self._state = {"state": state, "error": error, "attempts": self.attempts,
                       "url": redact(self.url), "since": time.time()}
        tmp = self._status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state))
        tmp.replace(self._status_path)

    def push(self, kind: str, packet: av.Packet) -> None:
        try:
            self._queue.put_nowait((kind, _copy(packet)))
        except queue.Full:
            pass  # the destination is slow or down: drop here, never hold up the encoder

    def stop(self) -> None:
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass

    def run(self) -> None:
        while not self._stop.is_set():
            self.attempts += 1
            try:
                self._stream()
                if self._stop.is_set():
                    break
                error = "the destination closed the connection"
            except Exception as exc:  # av.FFmpegError, OSError: refused, DNS, TLS, dropped
                error = str(exc) or type(exc).__name__
            delay = BACKOFF[min(self.attempts - 1, len(BACKOFF) - 1)]
            logger.warning("RTMP push to %s failed (%s); retrying in %d s", redact(self.url), error, delay)
            self._set("retrying", error)
            if self._stop.wait(delay):
                break
        self._set("stopped")

    def _stream(self) -> None:
        container = av.open(self.url, "w", format="flv", options={"rw_timeout": "10000000"})
        try:
            video = container.add_stream_from_template(self._video)
            audio = container.add_stream_from_template(self._audio)
            video.codec_context.extradata = self._video.codec_context.extradata
            audio.codec_context.extradata = self._audio.codec_context.extradata
            started = False
            while not self._stop.is_set():
                try:
                    item = self._queue.get(timeout=5)
                except queue.Empty:
                    continue
                if item is None:
                    break
                kind, packet = item
                if not started:
                    if kind != "video" or not packet.is_keyframe:
                        continue  # viewers can only start at a keyframe
                    started = True
                    self._set("live")
                packet.stream = video if kind == "video" else audio
                container.mux(packet)
        finally:
            try:
                container.close()
            except Exception as exc:  # the connection is already broken: the retry loop reports it
                logger.debug("closing the RTMP connection to %s: %s", redact(self.url), exc)
