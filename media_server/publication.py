"""One published track (a participant's mic, camera or screen) and its subscribers."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Literal, TypeGuard, get_args

from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.contrib.media import MediaRelay

from .audio_tap import AudioTap
from .feedback import report_loss_upstream
from .forwarding import EncodedFrame, ForwardedTrack, ReceiverTap, media_ssrcs, send_pli
from .levels import SILENT_DBOV, AudioLevel, AudioLevels, from_extension
from .piped_audio import PipedAudio
from .silence import SilenceGate

logger = logging.getLogger(__name__)

#: What a participant publishes: the one vocabulary for sources, from signalling to recordings.
Source = Literal["mic", "camera", "screen"]
SOURCES: tuple[Source, ...] = get_args(Source)
Mode = Literal["forward", "relay"]


def is_source(value: object) -> TypeGuard[Source]:
    """Whether ``value`` names a source (narrows a ``str`` from the wire to :data:`Source`)."""
    return value in SOURCES


def parse_source(value: object) -> Source:
    """``value`` as a :data:`Source`; ValueError if it is not one."""
    if not is_source(value):
        raise ValueError(f"unknown source {value!r}; expected one of {', '.join(SOURCES)}")
    return value

#: Minimum spacing of PLIs sent to one publisher, however many subscribers ask.
PLI_INTERVAL = 0.3
#: Audio: subscribers' loss reports this recent count for :meth:`Publication.downstream_loss`,
#: which never claims more than MAX_UPSTREAM_LOSS (past that, more FEC costs more than it saves).
LOSS_REPORT_AGE = 12.0
MAX_UPSTREAM_LOSS = 0.2


class Publication:
    """Routes a publisher's encoded frames to each subscriber's :class:`ForwardedTrack`.

    Keyframe requests from all subscribers are merged into at most one PLI per
    ``PLI_INTERVAL``; a request inside the window is sent when the window ends, so a late
    joiner is never left waiting for the publisher's next periodic keyframe.

    Audio: the level each packet carries (RFC 6464) is kept in :attr:`levels` (no decoding),
    and subscribers that asked for it (browsers) get the publisher's audio only while they
    speak (:class:`~media_server.silence.SilenceGate`); the others (recorders, live streams)
    and the decoded :attr:`audio` tap get every frame.

    ``mode="relay"`` is the naive aiortc path (decode, then re-encode per subscriber through
    :class:`MediaRelay`), kept only as a benchmark baseline.
    """

    def __init__(
        self,
        owner: str,
        source: Source,
        receiver: RTCRtpReceiver | None,
        track: MediaStreamTrack | None,
        mode: Mode = "forward",
        *,
        kind: str | None = None,
        keyframes: Callable[[], None] | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.owner = owner
        self.source = source
        self.kind = track.kind if track is not None else str(kind)
        self.mode = mode
        self._receiver = receiver
        self._track = track
        #: piped (:meth:`piped`): frames come through :meth:`push`, keyframe requests go here
        self._keyframes = keyframes
        self._subscribers: set[ForwardedTrack] = set()
        self._relay: MediaRelay | None = None
        self._receiver_tap: ReceiverTap | None = None
        self._last_pli = 0.0
        self._pli_pending: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.frames = 0
        self.plis = 0
        self._gated = False  # after ingress loss: hold video until the next keyframe
        self._muted = False
        # (piped, ``receiver`` None: no receiver of ours, frames come through push())
        if receiver is not None and mode == "relay":
            self._relay = MediaRelay()
        elif receiver is not None:
            self._receiver_tap = ReceiverTap(receiver, self._on_frame)
        self.audio: AudioTap | None = None
        #: piped audio: what decodes it for :attr:`audio`, once a consumer listens
        self._piped_audio: PipedAudio | None = None
        #: Audio: the levels the publisher's packets carry (a host-muted publisher reads silent).
        self.levels: AudioLevels | None = None
        self._silence: SilenceGate | None = None
        if self.kind == "audio":
            if track is not None:
                self.audio = AudioTap(track, self._receiver_tap)
            elif receiver is None:
                self._piped_audio = PipedAudio()
                self.audio = AudioTap(self._piped_audio, self._piped_audio)
            self.levels = AudioLevels()
            self._silence = SilenceGate()
            if mode == "forward" and receiver is not None:
                # the publisher's Opus encoder sizes its in-band FEC from the loss we report
                report_loss_upstream(receiver, self.downstream_loss)

    @classmethod
    def piped(
        cls, owner: str, source: Source, kind: str, request_keyframe: Callable[[], None]
    ) -> Publication:
        """A publication whose publisher is on another hub process (``pipe.py``): its frames
        arrive through :meth:`push`, its keyframe requests (merged as usual) go to
        ``request_keyframe``. Levels, silence suppression and last-N work as usual; audio is
        decoded here only while its :attr:`audio` tap has consumers, as a local publisher's."""
        return cls(owner, source, None, None, kind=kind, keyframes=request_keyframe)

    @property
    def is_piped(self) -> bool:
        """Whether the publisher is on another hub process (see :meth:`piped`)."""
        return self._receiver is None

    def push(self, frame: EncodedFrame) -> None:
        """One frame of a piped publication, forwarded like a local publisher's (and decoded
        while the :attr:`audio` tap has consumers)."""
        self._on_frame(frame)
        if self._piped_audio is not None:
            self._piped_audio.push(frame)

    # -- subscribers -------------------------------------------------------------------

    def subscribe(self, suppress_silence: bool = False) -> MediaStreamTrack:
        """A new track for one subscriber's sender.

        ``suppress_silence``: audio only while the publisher speaks (for participants'
        browsers); by default every frame (recordings, live streams).
        """
        if self._relay is not None and self._track is not None:
            return self._relay.subscribe(self._track, buffered=False)
        forwarded = ForwardedTrack(
            self.kind, self.request_keyframe, suppress_silence=suppress_silence, publisher=self.owner,
            source=self.source,
        )
        self._subscribers.add(forwarded)
        return forwarded

    def unsubscribe(self, track: MediaStreamTrack) -> None:
        if isinstance(track, ForwardedTrack):
            self._subscribers.discard(track)
        track.stop()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def wanted(self) -> bool:
        """Whether anyone receives this track now: a subscription that last-N (or a congested
        link) has not paused — recorders and live streams are never paused. Relay mode (the
        benchmark baseline): always."""
        return self._relay is not None or any(not t.paused for t in self._subscribers)

    def downstream_loss(self) -> float:
        """The worst fraction lost (0..1) a subscriber reported recently, at most
        :data:`MAX_UPSTREAM_LOSS` (told to the publisher: see ``feedback.py``)."""
        since = time.monotonic() - LOSS_REPORT_AGE
        worst = max((t.reported_loss for t in self._subscribers if t.reported_at >= since), default=0.0)
        return min(worst, MAX_UPSTREAM_LOSS)

    @property
    def audio_level(self) -> AudioLevel | None:
        """The level of the latest audio packet, if the publisher sends levels (RFC 6464)."""
        return self.levels.latest if self.levels is not None else None

    @property
    def decoding(self) -> bool:
        """Whether the publisher's audio is being decoded (only while captions, recordings or a
        speaker detector without levels listen)."""
        decoder = self._receiver_tap if self._receiver_tap is not None else self._piped_audio
        return decoder is not None and decoder.decode

    @property
    def frames_suppressed(self) -> int:
        """Audio frames not forwarded to browsers because the publisher was silent."""
        return self._silence.suppressed if self._silence is not None else 0

    @property
    def muted(self) -> bool:
        return self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        """Muted by a host: nothing is forwarded, whatever the publisher's client does."""
        if value == self._muted:
            return
        self._muted = value
        if self.audio is not None:
            self.audio.muted = value
        if self._silence is not None:
            self._silence.reset()
        if not value and self.kind == "video":
            self._gated = True  # subscribers resume at a keyframe
            self.request_keyframe()

    def _on_frame(self, frame: EncodedFrame) -> None:
        self.frames += 1
        level = from_extension(frame.audio_level, frame.timestamp)
        if self.levels is not None:
            muted = level is not None and self._muted
            self.levels.update(AudioLevel(SILENT_DBOV, False, frame.timestamp) if muted else level)
        if self._muted:
            return
        if self.kind == "video":
            # Forwarding a frame whose references were lost would show corruption at every
            # subscriber until the next keyframe; hold everyone at a clean point instead.
            if frame.discontinuity and not frame.keyframe:
                self._gated = True
                self.request_keyframe()
            if self._gated:
                if not frame.keyframe:
                    return
                self._gated = False
        spoken = self._silence.admit(frame, level) if self._silence is not None else None
        for sub in tuple(self._subscribers):
            try:
                if spoken is not None and sub.suppress_silence:
                    for f in spoken:
                        sub.push(f)
                else:
                    sub.push(frame)
            except Exception:  # one subscriber's failure must not starve the others
                logger.exception("forwarding to a subscriber of %s failed", self.id)

    # -- keyframes -----------------------------------------------------------------------

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (throttled)."""
        if self.kind != "video" or self._pli_pending is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_pli + PLI_INTERVAL - time.monotonic()
        if wait <= 0:
            self._send_pli()
        else:
            self._pli_pending = loop.call_later(wait, self._send_pli)

    def _send_pli(self) -> None:
        self._pli_pending = None
        self._last_pli = time.monotonic()
        if self._keyframes is not None:
            self.plis += 1
            self._keyframes()
            return
        if self._receiver is None:
            return
        for ssrc in media_ssrcs(self._receiver):
            self.plis += 1
            task = asyncio.ensure_future(send_pli(self._receiver, ssrc))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        if self._pli_pending is not None:
            self._pli_pending.cancel()
            self._pli_pending = None
        for sub in tuple(self._subscribers):
            sub.stop()
        self._subscribers.clear()
        if self.audio is not None:
            await self.audio.close()
        if self._piped_audio is not None:
            self._piped_audio.stop()
        for task in tuple(self._tasks):
            task.cancel()
