"""A participant's microphone as a browser with Opus DTX sends it, for meeting-shaped load.

Why: the hub forwards a publisher's audio only while they speak (``media_server/silence.py``)
and chooses whose video to forward by who spoke last (``media_server/lastn.py``), both from the
RFC 6464 level each audio packet carries. A test clip played without levels, 50 packets a second
for everyone, exercises neither; a real meeting has one or two people talking and everyone else
silent, their browsers sending a comfort-noise packet every 400 ms (DTX).

How: :func:`encode_speech` encodes a real speech clip (WAV) to 20 ms Opus frames once and
measures each frame's level (dBov, as a browser's capture pipeline reports it) and a voice
flag (the V bit). :class:`SpeakingMic` plays it in real time while its ``speaking(t)`` function
says so — :class:`TurnSchedule` gives turns of one or two speakers at a time — and otherwise
sends :data:`DTX_INTERVAL`-spaced comfort-noise packets at level 127 (digital silence), V = 0;
RTP timestamps jump over the gaps as real DTX does. aiortc's sender writes the
ssrc-audio-level extension only for audio it encodes itself, so :func:`send_audio_levels`
makes one sender write the level of the frame it is sending (its header-extension map is
wrapped; aiortc internals, test code only).
"""

from __future__ import annotations

import asyncio
import fractions
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap

from .lightreceive import frame_key

#: One Opus frame: 20 ms at the 48 kHz RTP clock.
FRAME_TICKS = 960
FRAME_SECONDS = 0.02
#: While silent, a browser's Opus DTX sends one comfort-noise packet per 400 ms.
DTX_INTERVAL = 20  # frames
#: RFC 6464 level of digital silence (-127 dBov).
SILENT_LEVEL = 127
#: The voice-activity flag is set on frames louder than this (dBov): a stand-in for the
#: browser's VAD, at the hub's active-speaker silence line (``speaker.SILENCE_DBOV``).
VOICE_DBOV = -50.0


@dataclass(frozen=True)
class SpeechClip:
    """A speech clip as 20 ms Opus frames with the RFC 6464 extension each would carry."""

    payloads: list[bytes]
    levels: list[int]  # 0..127, meaning 0..-127 dBov
    voice: list[bool]  # the V bit
    dtx: bytes  # a comfort-noise packet (sent every DTX_INTERVAL frames while silent)


def _level(samples: np.ndarray[Any, Any]) -> tuple[int, bool]:
    """RFC 6464 level (0..127) and voice flag of one frame of s16 samples."""
    x = samples.astype(np.float32) / 32768.0
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    dbov = max(-127.0, 20.0 * math.log10(rms)) if rms > 0 else -127.0
    return min(127, max(0, round(-dbov))), dbov > VOICE_DBOV


def _encoder(bit_rate: int) -> av.AudioCodecContext:
    codec = av.CodecContext.create("libopus", "w")
    assert isinstance(codec, av.AudioCodecContext)
    codec.sample_rate = 48000
    codec.layout = "mono"  # browsers send mono voice (the hub's offer says stereo=0)
    codec.format = "s16"
    codec.bit_rate = bit_rate
    return codec


def _frame(samples: np.ndarray[Any, Any], pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 48000
    frame.pts = pts
    return frame


def encode_speech(path: str, bit_rate: int = 32000) -> SpeechClip:
    """Encode a WAV file (any rate) to mono Opus 20 ms frames, with each frame's level."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000, frame_size=FRAME_TICKS)
    chunks: list[np.ndarray[Any, Any]] = []
    with av.open(path) as container:
        for frame in container.decode(audio=0):
            frame.pts = None
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    pcm = np.concatenate(chunks)
    n = len(pcm) // FRAME_TICKS
    codec = _encoder(bit_rate)
    payloads: list[bytes] = []
    levels: list[int] = []
    voice: list[bool] = []
    for i in range(n):
        samples = pcm[i * FRAME_TICKS:(i + 1) * FRAME_TICKS]
        level, speech = _level(samples)
        levels.append(level)
        voice.append(speech)
        payloads.extend(bytes(p) for p in codec.encode(_frame(samples, i * FRAME_TICKS)))
    payloads.extend(bytes(p) for p in codec.encode(None))
    payloads = payloads[:n]
    # comfort noise: a quiet hiss coded at a low rate, ~15 bytes like a browser's DTX update
    noise = _encoder(6000)
    rng = np.random.default_rng(0)
    hiss = [bytes(p) for i in range(10)
            for p in noise.encode(_frame((rng.standard_normal(FRAME_TICKS) * 10).astype(np.int16), i * FRAME_TICKS))]
    return SpeechClip(payloads, levels[:len(payloads)], voice[:len(payloads)], hiss[-1])


class TurnSchedule:
    """Who speaks when: turns of ``turn_seconds`` from ``start`` (``time.monotonic()``).

    Each turn has one speaker, in an order shuffled once (a meeting does not speak in join
    order); every other turn, the next turn's speaker starts during the last third of it, so
    one or two people speak at a time. Same answer in every process for the same arguments.
    """

    def __init__(self, participants: int, start: float, turn_seconds: float = 3.0, seed: int = 12) -> None:
        self.participants = participants
        self.start = start
        self.turn_seconds = turn_seconds
        self.order = random.Random(seed).sample(range(participants), participants)

    def speaker(self, turn: int) -> int:
        return self.order[turn % self.participants]

    def speakers(self, t: float) -> set[int]:
        """Indices of the participants speaking at monotonic time ``t``."""
        if t < self.start or self.participants == 0:
            return set()
        turn, into = divmod(t - self.start, self.turn_seconds)
        k = int(turn)
        out = {self.speaker(k)}
        if k % 2 == 1 and into >= self.turn_seconds * 2 / 3:
            out.add(self.speaker(k + 1))
        return out

    def speaking(self, index: int) -> Callable[[float], bool]:
        """``t -> bool``: whether participant ``index`` speaks at ``t``."""
        return lambda t: index in self.speakers(t)


class SpeakingMic(MediaStreamTrack):
    """Plays a :class:`SpeechClip` while ``speaking(t)``, DTX comfort noise otherwise.

    :attr:`level` is the RFC 6464 ``(voice, level)`` of the frame :meth:`recv` returned last
    (what :func:`send_audio_levels` writes). ``send_log``: (frame key, send time) per frame.
    """

    kind = "audio"

    def __init__(self, clip: SpeechClip, speaking: Callable[[float], bool], offset: int = 0) -> None:
        super().__init__()
        self._clip = clip
        self._speaking = speaking
        self._cursor = offset % len(clip.payloads)
        self._start: float | None = None
        self._slot = 0  # 20 ms slots since start
        self._next_dtx = 0  # the slot of the next comfort-noise packet while silent
        self._time_base = fractions.Fraction(1, 48000)
        self.level: tuple[bool, int] = (False, SILENT_LEVEL)
        self.send_log: list[tuple[int, float]] = []
        self.speech_frames = 0
        self.dtx_frames = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        while True:
            due = self._start + self._slot * FRAME_SECONDS
            slot = self._slot
            self._slot += 1
            if self._speaking(due):
                i = self._cursor
                self._cursor = (i + 1) % len(self._clip.payloads)
                data = self._clip.payloads[i]
                self.level = (self._clip.voice[i], self._clip.levels[i])
                self._next_dtx = self._slot  # silence after this sends its first update at once
                self.speech_frames += 1
                break
            if slot >= self._next_dtx:
                data = self._clip.dtx
                self.level = (False, SILENT_LEVEL)
                self._next_dtx = slot + DTX_INTERVAL
                self.dtx_frames += 1
                break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.send_log.append((frame_key(data), time.monotonic()))
        packet = av.Packet(data)
        packet.pts = slot * FRAME_TICKS
        packet.time_base = self._time_base
        return packet


class _LevelWriter(HeaderExtensionsMap):
    """Wraps a sender's header-extension map: every packet it serializes carries the level of
    the frame the mic returned last (aiortc's sender serializes a frame's packets right after
    ``recv``, before asking for the next frame)."""

    def __init__(self, inner: HeaderExtensionsMap, mic: SpeakingMic) -> None:
        super().__init__()
        self._inner = inner
        self._mic = mic

    def configure(self, parameters: Any) -> None:
        self._inner.configure(parameters)

    def get(self, extension_profile: int, extension_value: bytes) -> HeaderExtensions:
        return self._inner.get(extension_profile, extension_value)

    def set(self, values: HeaderExtensions) -> tuple[int, bytes]:
        if values.audio_level is None:
            values.audio_level = self._mic.level
        return self._inner.set(values)


def send_audio_levels(sender: RTCRtpSender, mic: SpeakingMic) -> None:
    """Make ``sender`` put ``mic``'s level in the ssrc-audio-level extension (if negotiated).

    Works before or after the sender started: the wrapped map keeps its negotiated ids.
    """
    attr = "_RTCRtpSender__rtp_header_extensions_map"
    inner = getattr(sender, attr, None)
    if not isinstance(inner, HeaderExtensionsMap):
        raise RuntimeError("unsupported aiortc version: the sender's header-extension map moved")
    if not isinstance(inner, _LevelWriter):
        setattr(sender, attr, _LevelWriter(inner, mic))
