"""Audio levels a publisher sends with its audio (RFC 6464), read without decoding anything.

Browsers put the level of each audio frame in an RTP header extension
(``urn:ietf:params:rtp-hdrext:ssrc-audio-level``, which aiortc negotiates and parses into
``packet.extensions.audio_level = (voice_activity, level)``, level 0..127 meaning 0..-127 dBov).
:class:`AudioLevels` keeps, for one audio publication, the latest level and whether the
publisher sends levels at all, and tells listeners (the active-speaker detector) about every
packet. :func:`is_speech` is the one definition of "speaking" used to suppress silence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: Quietest frame (dBov) still taken for speech when deciding what to forward. Browsers capture
#: with AGC and noise suppression: talk sits around -20..-35 dBov, soft word endings reach about
#: -50, and the room between words falls to -70..-127. -60 is 10 dB under the active-speaker
#: detector's silence line (``speaker.SILENCE_DBOV``): what is withheld is never something the
#: detector could call speech, and forwarding a little noise costs far less than clipping a word.
SPEECH_DBOV = -60
#: Level (dBov) of digital silence, and of a host-muted publisher.
SILENT_DBOV = -127
#: The RTP clock of Opus (RFC 7587: always 48 kHz, whatever the sampling rate).
AUDIO_CLOCK = 48000


@dataclass(frozen=True, slots=True)
class AudioLevel:
    """One audio packet's level, as the publisher measured it."""

    dbov: int  # 0 (full scale) down to -127 (silence)
    voice: bool  # the V bit: the publisher's own voice activity detector heard speech
    timestamp: int  # RTP timestamp of the packet (48 kHz)


def from_extension(value: tuple[bool, int] | None, timestamp: int) -> AudioLevel | None:
    """The level in a parsed ssrc-audio-level extension (aiortc's tuple); None if absent."""
    if value is None:
        return None
    voice, level = value
    return AudioLevel(-(level & 0x7F), bool(voice), timestamp)


def is_speech(level: AudioLevel) -> bool:
    """Whether a frame at ``level`` is worth forwarding as speech (V bit, or loud enough)."""
    return level.voice or level.dbov >= SPEECH_DBOV


#: Called for each audio packet of a publication: its level, or None if it carried none.
LevelListener = Callable[[AudioLevel | None], None]


class AudioLevels:
    """The levels one audio publication's packets carry.

    ``sending`` is None until the first packet, True once any packet carried a level, False
    while none has (the publisher does not send the extension: levels must come from decoding).
    """

    def __init__(self) -> None:
        self.latest: AudioLevel | None = None
        self.sending: bool | None = None
        self.packets = 0
        self._listeners: list[LevelListener] = []

    def update(self, level: AudioLevel | None) -> None:
        """Record one packet's level (None: the packet carried no level)."""
        self.packets += 1
        if level is not None:
            self.latest = level
            self.sending = True
        elif self.sending is None:
            self.sending = False
        for listener in tuple(self._listeners):
            try:
                listener(level)
            except Exception:  # a listener's bug must not stop forwarding
                logger.exception("audio level listener failed")

    def listen(self, listener: LevelListener) -> Callable[[], None]:
        """Call ``listener`` for every packet from now on; returns the function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    @property
    def listeners(self) -> int:
        return len(self._listeners)
