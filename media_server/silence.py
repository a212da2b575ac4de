"""Silence suppression: a publisher's audio reaches other participants only while they speak.

As Jitsi's bridge does, a publication forwards audio to browsers while the publisher speaks
and for :data:`HANGOVER` (1 s of RTP time) after their last speech frame, judged by the
RFC 6464 level each packet carries (:func:`~media_server.levels.is_speech`); in a call of many
mostly silent participants that is most of the audio not sent. Nothing is decoded.

Browsers do not notice the holes as loss: each subscriber's sender numbers the packets it
actually sends (``fastsend.FastSender``, and aiortc's own sender the same), so sequence
numbers stay contiguous while the RTP timestamps, which are the publisher's, jump over the
silence: exactly what Opus DTX looks like, and NetEq plays comfort noise through it.

Never clip the first syllable: while closed, the gate keeps the last few frames
(:data:`PREROLL_FRAMES`, at most :data:`PREROLL` of RTP time before the opening frame) and
sends them, in order, right before the frame that opens speech. A frame without a level (a
publisher that does not send the extension) always goes through.
"""

from __future__ import annotations

from collections import deque

from .forwarding import EncodedFrame
from .levels import AUDIO_CLOCK, AudioLevel, is_speech

#: Forwarding continues this long (RTP ticks) after the last speech frame: pauses between words
#: and sentences go through untouched, so a turn of talk reaches the listener whole.
HANGOVER = AUDIO_CLOCK  # 1 s
#: Frames kept while suppressed, sent before the frame that opens speech ...
PREROLL_FRAMES = 3
#: ... if they are at most this much (RTP ticks) older than it: 60 ms, the soft onset of a word
#: (an "s", "f", "h") just below the threshold. (Older ones, e.g. DTX frames, are dropped.)
PREROLL = AUDIO_CLOCK * 60 // 1000


def _ts_delta(a: int, b: int) -> int:
    """Signed distance a - b between RTP timestamps (32-bit, wrapping)."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


class SilenceGate:
    """Decides, frame by frame, which of one publisher's audio frames to forward to browsers."""

    def __init__(self) -> None:
        self._open = False
        self._last_speech: int | None = None  # RTP timestamp of the last speech frame
        self._preroll: deque[EncodedFrame] = deque()
        #: Frames never forwarded (left the pre-roll unsent).
        self.suppressed = 0

    @property
    def open(self) -> bool:
        """Whether frames are going through (speech, or within the hangover after it)."""
        return self._open

    def admit(self, frame: EncodedFrame, level: AudioLevel | None) -> list[EncodedFrame]:
        """The frames to forward now, in order: none, ``frame``, or the pre-roll and ``frame``.

        ``level`` is the frame's (:func:`~media_server.levels.from_extension`); None: it has none.
        """
        if level is None or is_speech(level):
            self._last_speech = frame.timestamp
            if self._open:
                return [frame]
            self._open = True
            out = [f for f in self._preroll if 0 < _ts_delta(frame.timestamp, f.timestamp) <= PREROLL]
            self.suppressed += len(self._preroll) - len(out)
            self._preroll.clear()
            out.append(frame)
            return out
        if self._open:
            assert self._last_speech is not None
            if _ts_delta(frame.timestamp, self._last_speech) <= HANGOVER:
                return [frame]
            self._open = False
        self._preroll.append(frame)
        if len(self._preroll) > PREROLL_FRAMES:
            self._preroll.popleft()
            self.suppressed += 1
        return []

    def reset(self) -> None:
        """Close the gate and forget the pre-roll (a host muted the publisher)."""
        self._open = False
        self._last_speech = None
        self.suppressed += len(self._preroll)
        self._preroll.clear()
