"""A headless unionhub participant in Python: Socket.IO signalling + aiortc, no decoding.

Used by the tests and by ``bench/`` as a load generator: it publishes pre-encoded VP8/Opus
packets (encoded once, up front) and receives other participants' media as encoded frames
through the same :class:`~media_server.forwarding.ReceiverTap` seam the server uses.

Not part of the shipped package (it lived in ``media_server/client.py`` before).
"""

from __future__ import annotations

import asyncio
import fractions
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import socketio
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from media_server.forwarding import EncodedFrame, ReceiverTap, route_keyframe_requests

from .layers import EncodedClip, l1t3_layers, l1t3_options, layers_of, send_temporal_layers
from .lightreceive import LightReceiver, frame_key
from .speech import SpeakingMic, send_audio_levels

logger = logging.getLogger(__name__)


def encode_test_video(
    seconds: float = 4.0,
    fps: int = 30,
    width: int = 320,
    height: int = 240,
    gop: int = 30,
    codec_name: str = "vp8",
    bit_rate: int = 300_000,
    temporal_layers: bool = False,
) -> list[av.Packet]:
    """Encode a moving test pattern once (VP8, or H.264 Annex B); pts in 1/90000.

    ``temporal_layers``: VP8 in three temporal layers (``L1T3``, see ``layers.py``), returned
    as an :class:`~testkit.layers.EncodedClip` with each packet's TID."""
    if codec_name == "h264":
        codec = av.CodecContext.create("libx264", "w")
        codec.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
                         "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1"}
    else:
        codec = av.CodecContext.create("libvpx", "w")
        codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
                         **(l1t3_options(bit_rate) if temporal_layers else {})}
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    codec.gop_size = gop
    codec.bit_rate = bit_rate
    packets: list[av.Packet] = []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(int(seconds * fps)):
        img = np.zeros((height, width, 3), np.uint8)
        img[..., 0] = (xx + 4 * i) % 256
        img[..., 1] = (yy + 2 * i) % 256
        img[..., 2] = 128
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    for p in packets:
        p.pts = int(p.pts * 90000 / fps)
        p.time_base = fractions.Fraction(1, 90000)
    if temporal_layers:
        return EncodedClip(packets, l1t3_layers(packets, fps, gop))
    return packets


def encode_test_audio(seconds: float = 4.0, hz: float = 440.0) -> list[av.Packet]:
    """Encode a tone to Opus (48 kHz, 20 ms frames) once; pts in 1/48000."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 32000
    packets: list[av.Packet] = []
    n = 960
    for i in range(int(seconds * 50)):
        t = (np.arange(n) + i * n) / 48000
        tone = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = i * n
        packets.extend(codec.encode(frame))
    for i, p in enumerate(packets):
        p.pts = i * n
        p.time_base = fractions.Fraction(1, 48000)
    return packets


def encode_wav_audio(path: str, silence_after: float = 1.0) -> list[av.Packet]:
    """Encode a WAV file (any rate) to Opus packets once, with trailing silence; pts in 1/48000."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 48000
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000, frame_size=960)
    frames: list[av.AudioFrame] = []
    with av.open(path) as container:
        for frame in container.decode(audio=0):
            frame.pts = None
            frames.extend(resampler.resample(frame))
    frames.extend(resampler.resample(None))
    silence = np.zeros((1, 960 * 2), np.int16)
    for _ in range(int(silence_after * 50)):
        f = av.AudioFrame.from_ndarray(silence, format="s16", layout="stereo")
        f.sample_rate = 48000
        frames.append(f)
    packets: list[av.Packet] = []
    for i, frame in enumerate(frames):
        frame.pts = i * 960
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    for i, p in enumerate(packets):
        p.pts = i * 960
        p.time_base = fractions.Fraction(1, 48000)
    return packets


class PreEncodedTrack(MediaStreamTrack):
    """Plays a list of encoded packets in real time, looping, without encoding anything.

    ``answer_keyframes``: answer a keyframe request (PLI/FIR) as a browser's encoder does,
    with a keyframe at once: the clip jumps ahead to its next keyframe, timestamps running on
    (by default requests are only counted and subscribers wait for the clip's next keyframe).
    ``send_log``: if a list, (:func:`~testkit.lightreceive.frame_key`, send time) per frame.
    :meth:`set_active` stops and restarts sending as a browser's ``encodings[].active`` does
    (the hub's ``camera-wanted``).
    """

    def __init__(self, kind: str, packets: list[av.Packet], clock_rate: int, answer_keyframes: bool = False) -> None:
        super().__init__()
        self.kind = kind
        self._payloads = [(bytes(p), int(p.pts)) for p in packets]
        self._layers = layers_of(packets)  # VP8 TIDs of a layered clip (``layers.py``)
        self.layer: int | None = None  # the TID of the frame recv() returned last
        self._keyframes = [i for i, p in enumerate(packets) if p.is_keyframe] if kind == "video" else []
        self._period = self._payloads[-1][1] + (self._payloads[1][1] - self._payloads[0][1])
        self._clock_rate = clock_rate
        self._time_base = fractions.Fraction(1, clock_rate)
        self._index = 0
        self._loops = 0
        self._offset = 0  # added to the clip's pts after jumps to a keyframe, so time runs on
        self._start: float | None = None
        self._answer_keyframes = answer_keyframes and bool(self._keyframes)
        self._keyframe_due = False
        self.sent: dict[str, float] = {}  # sha1 of payload -> last send time
        self.sent_payloads: list[bytes] = []  # first loop, for identity checks
        self.keyframe_requests = 0
        self.keyframes_answered = 0
        self.send_log: list[tuple[int, float]] | None = None
        self._active = asyncio.Event()
        self._active.set()
        self.deactivations = 0

    @property
    def active(self) -> bool:
        return self._active.is_set()

    def set_active(self, active: bool) -> None:
        """Stop sending (``recv`` waits), or send again: as a browser's encoder restarted, the
        first frame is a keyframe and the timestamps run on in real time."""
        if active == self.active:
            return
        if active:
            self._keyframe_due = bool(self._keyframes)  # a restarted encoder starts on one
            self._active.set()
        else:
            self.deactivations += 1
            self._active.clear()

    def stop(self) -> None:
        super().stop()
        self._active.set()  # a recv() waiting for activation ends

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        if self._answer_keyframes:
            self._keyframe_due = True

    def switch(self, packets: list[av.Packet]) -> None:
        """Play another encoding of the clip from now on (a browser's encoder reconfigured, e.g.
        to a lower bit rate or resolution): it starts with its first frame, a keyframe, and the
        timestamps run on."""
        payloads = [(bytes(p), int(p.pts)) for p in packets]
        if self._start is not None:
            i = self._index
            upcoming = self._payloads[i][1] + self._loops * self._period + self._offset
            self._offset = upcoming - payloads[0][1]
        self._payloads = payloads
        self._layers = layers_of(packets)
        self._keyframes = [i for i, p in enumerate(packets) if p.is_keyframe] if self.kind == "video" else []
        self._period = payloads[-1][1] + (payloads[1][1] - payloads[0][1])
        self._answer_keyframes = self._answer_keyframes and bool(self._keyframes)
        self._index = self._loops = 0
        self._keyframe_due = False

    def _jump_to_keyframe(self) -> None:
        """Make the next frame the clip's next keyframe (no-op if it already is one)."""
        self._keyframe_due = False
        i = self._index
        if i in self._keyframes:
            return
        k = next((k for k in self._keyframes if k > i), self._keyframes[0])
        loops = self._loops + (1 if k < i else 0)
        # the frame sent next keeps the pts frame i would have had
        self._offset += (self._payloads[i][1] + self._loops * self._period) - (self._payloads[k][1] + loops * self._period)
        self._index, self._loops = k, loops
        self.keyframes_answered += 1

    @property
    def layered(self) -> bool:
        """Whether the clip is in temporal layers (its sender must write their ids)."""
        return self._layers is not None

    @property
    def started_at(self) -> float | None:
        """``time.monotonic()`` when the first packet was due (None: not started yet)."""
        return self._start

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        if not self._active.is_set():
            stopped = time.monotonic()
            await self._active.wait()
            if self.readyState != "live":
                raise MediaStreamError
            self._offset += round((time.monotonic() - stopped) * self._clock_rate)  # time ran on
        if self._keyframe_due:
            self._jump_to_keyframe()
        data, pts = self._payloads[self._index]
        self.layer = self._layers[self._index] if self._layers is not None else None
        pts += self._loops * self._period + self._offset
        due = self._start + pts / self._clock_rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._loops == 0:
            self.sent_payloads.append(data)
        self._index += 1
        if self._index == len(self._payloads):
            self._index = 0
            self._loops += 1
        now = time.monotonic()
        if self.send_log is not None:
            self.send_log.append((frame_key(data), now))
        else:
            self.sent[hashlib.sha1(data).hexdigest()] = now
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = self._time_base
        return packet


@dataclass
class Received:
    """Encoded frames one client received on one subscribe slot."""

    participant: str
    source: str
    kind: str
    frames: list[EncodedFrame] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)
    keep: int = 10_000

    def add(self, frame: EncodedFrame) -> None:
        if len(self.frames) < self.keep:
            self.frames.append(frame)
            self.arrival.append(time.monotonic())


class HubClient:
    """One participant: joins a room over Socket.IO and answers the server's offers.

    ``light``: count received media with a :class:`~testkit.lightreceive.LightReceiver`
    (:attr:`light`), a load generator's cheap path; ``on_frame`` and :attr:`received` then see
    only what arrives before DTLS completes. ``config``: the peer connection's (default: aiortc's).
    :attr:`camera_limit` is the cap the hub asks cameras for (``send-limits``, ``joined.sendLimits``;
    None: none); :attr:`on_camera_limit`, if set, is called with each one, as a browser applies it.
    """

    def __init__(
        self,
        url: str,
        room: str,
        name: str,
        lang: str = "en",
        video: list[av.Packet] | None = None,
        audio: list[av.Packet] | None = None,
        on_frame: Callable[[Received, EncodedFrame], None] | None = None,
        config: RTCConfiguration | None = None,
        light: bool = False,
    ) -> None:
        self.url = url
        self.room = room
        self.name = name
        self.lang = lang
        self.sio = socketio.AsyncClient(reconnection=False)
        self.pc = RTCPeerConnection(config)
        self.light = LightReceiver(self.pc) if light else None
        self.tracks: dict[str, MediaStreamTrack] = {}
        if video is not None:
            self.tracks["camera"] = PreEncodedTrack("video", video, 90000)
        if audio is not None:
            self.tracks["mic"] = PreEncodedTrack("audio", audio, 48000)
        self.received: dict[str, Received] = {}  # by mid
        self.events: list[tuple[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.id: str | None = None
        self.joined = asyncio.Event()
        self.offers = 0
        self._on_frame = on_frame
        self.camera_limit: dict[str, Any] | None = None
        self.on_camera_limit: Callable[[dict[str, Any] | None], None] | None = None
        self._lock = asyncio.Lock()
        self._slots: dict[str, dict[str, Any]] = {}
        self._closed = False
        self.sio.on("*", self._record)
        self.sio.on("joined", self._joined)
        self.sio.on("sdp", self._offer)
        self.sio.on("send-limits", self._send_limits)
        self.sio.on("camera-wanted", self._camera_wanted)
        self.sio.on("error", self._error)

    async def _record(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))

    async def _joined(self, data: dict[str, Any]) -> None:
        self.events.append(("joined", data))
        self.id = data["id"]
        if "sendLimits" in data:
            self._camera_limit(data["sendLimits"])
        self.joined.set()

    async def _send_limits(self, data: dict[str, Any]) -> None:
        self.events.append(("send-limits", data))
        self._camera_limit(data)

    async def _camera_wanted(self, data: dict[str, Any]) -> None:
        """As the web client: stop the camera's encoder while it reaches nobody."""
        self.events.append(("camera-wanted", data))
        camera = self.tracks.get("camera")
        if isinstance(camera, PreEncodedTrack):
            camera.set_active(data.get("wanted") is not False)

    def _camera_limit(self, limits: dict[str, Any]) -> None:
        self.camera_limit = limits.get("camera")
        if self.on_camera_limit is not None:
            self.on_camera_limit(self.camera_limit)

    async def _error(self, data: dict[str, Any]) -> None:
        self.events.append(("error", data))
        self.errors.append(data)

    async def join(self, timeout: float = 10.0) -> None:
        # as long as a browser would wait (socket.io-client: 20 s), not python-socketio's default 1 s
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=timeout)
        await self.sio.emit(
            "join",
            {
                "room": self.room,
                "name": self.name,
                "lang": self.lang,
                "audio": "mic" in self.tracks,
                "video": "camera" in self.tracks,
            },
        )
        await asyncio.wait_for(self.joined.wait(), timeout)

    async def _offer(self, data: dict[str, Any]) -> None:
        async with self._lock:  # offers are answered in order
            if self._closed:
                return
            self.offers += 1
            self._slots = data["tracks"]
            await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
            if self.light is not None:
                self.light.describe(data["sdp"], {
                    mid: s["participant"] for mid, s in self._slots.items() if s["role"] == "subscribe"
                })
                self.light.install()
            for transceiver in self.pc.getTransceivers():
                slot = self._slots.get(transceiver.mid or "", {"role": "inactive"})
                if slot["role"] == "publish":
                    track = self.tracks.get(slot["source"])
                    if track is not None and transceiver.sender.track is None:
                        transceiver.sender.replaceTrack(track)
                        if isinstance(track, PreEncodedTrack):
                            route_keyframe_requests(transceiver.sender, track)
                            if track.layered:
                                send_temporal_layers(transceiver.sender, track)
                        if isinstance(track, SpeakingMic):
                            send_audio_levels(transceiver.sender, track)
                    transceiver.direction = "sendonly" if track is not None else "inactive"
                elif slot["role"] == "subscribe":
                    transceiver.direction = "recvonly"
                    if transceiver.mid not in self.received:
                        rec = Received(slot["participant"], slot["source"], slot["kind"])
                        self.received[transceiver.mid] = rec  # type: ignore[index]
                        ReceiverTap(transceiver.receiver, self._sink(rec))
                else:
                    transceiver.direction = "inactive"
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
            if self._closed or not self.sio.connected:
                return  # left while answering
            await self.sio.emit("sdp", {"type": "answer", "sdp": self.pc.localDescription.sdp})

    def _sink(self, rec: Received) -> Callable[[EncodedFrame], None]:
        def sink(frame: EncodedFrame) -> None:
            rec.add(frame)
            if self._on_frame is not None:
                self._on_frame(rec, frame)

        return sink

    def active_slots(self) -> dict[str, dict[str, Any]]:
        return {mid: s for mid, s in self._slots.items() if s["role"] == "subscribe"}

    def received_from(self, participant: str, kind: str) -> list[Received]:
        return [
            r for mid, r in self.received.items()
            if r.participant == participant and r.kind == kind
            and self._slots.get(mid, {}).get("role") == "subscribe"
        ]

    async def close(self) -> None:
        self._closed = True
        if self.light is not None:
            self.light.uninstall()
        if self.sio.connected:
            await self.sio.disconnect()
        async with self._lock:  # let an offer being answered finish first
            await self.pc.close()
