"""media_server/silence.py: which of a publisher's audio frames browsers get."""

from __future__ import annotations

from levelkit import FRAME, SILENT, SPEAKING
from media_server.forwarding import EncodedFrame
from media_server.levels import SPEECH_DBOV, from_extension
from media_server.silence import HANGOVER, PREROLL_FRAMES, SilenceGate

HANGOVER_FRAMES = HANGOVER // FRAME  # 50: one second of 20 ms frames


class Publisher:
    """Numbered 20 ms frames through one gate; ``forwarded`` is what a browser got, in order."""

    def __init__(self) -> None:
        self.gate = SilenceGate()
        self.index = 0
        self.forwarded: list[int] = []

    def send(self, level: int | None, frames: int = 1, voice: bool = False) -> list[int]:
        """``frames`` frames at ``level`` (None: no extension); the indices forwarded meanwhile."""
        before = len(self.forwarded)
        for _ in range(frames):
            audio_level = None if level is None else (voice, level)
            frame = EncodedFrame(b"opus%d" % self.index, self.index * FRAME, True, "opus", audio_level=audio_level)
            out = self.gate.admit(frame, from_extension(frame.audio_level, frame.timestamp))
            self.forwarded += [f.timestamp // FRAME for f in out]
            self.index += 1
        return self.forwarded[before:]

    def skip(self, frames: int) -> None:
        self.index += frames  # DTX: nothing sent for a while


def test_a_silent_publisher_is_not_forwarded() -> None:
    pub = Publisher()
    assert pub.send(SILENT, 200) == []
    assert not pub.gate.open
    assert pub.gate.suppressed == 200 - PREROLL_FRAMES  # (the last few wait as pre-roll)


def test_noise_below_the_threshold_is_silence() -> None:
    pub = Publisher()
    assert pub.send(-SPEECH_DBOV + 1, 100) == []


def test_speech_after_silence_starts_with_the_preroll_in_order() -> None:
    pub = Publisher()
    pub.send(SILENT, 10)
    assert pub.send(SPEAKING) == [7, 8, 9, 10]  # 60 ms of what came just before, then the onset
    assert pub.gate.open
    assert pub.send(SPEAKING, 3) == [11, 12, 13]


def test_the_voice_bit_opens_the_gate_whatever_the_level() -> None:
    pub = Publisher()
    pub.send(SILENT, 5)
    assert pub.send(SILENT - 10, voice=True) == [2, 3, 4, 5]


def test_forwarding_goes_on_for_a_second_after_the_last_word() -> None:
    pub = Publisher()
    pub.send(SPEAKING, 20)
    # the trailing second (breath, the end of the word, the pause before a reply) still goes out
    trailing = pub.send(SILENT, HANGOVER_FRAMES + 30)
    assert trailing == list(range(20, 20 + HANGOVER_FRAMES))
    assert not pub.gate.open


def test_pauses_shorter_than_the_hangover_reach_the_listener_untouched() -> None:
    pub = Publisher()
    pub.send(SPEAKING, 10)
    pub.send(SILENT, HANGOVER_FRAMES - 5)  # a pause between sentences
    pub.send(SPEAKING, 10)
    pub.send(SILENT, HANGOVER_FRAMES - 5)
    assert pub.forwarded == list(range(pub.index))
    assert pub.gate.suppressed == 0


def test_the_hangover_counts_media_time_even_across_dtx_gaps() -> None:
    pub = Publisher()
    pub.send(SPEAKING, 5)
    pub.skip(HANGOVER_FRAMES)  # the browser went quiet (DTX) for a second
    assert pub.send(SILENT) == []  # the next (silent) frame is past the hangover


def test_preroll_leaves_out_frames_older_than_60_ms() -> None:
    pub = Publisher()
    pub.send(SILENT, 3)
    pub.skip(20)  # DTX: 400 ms without packets
    pub.send(SILENT)  # index 23
    assert pub.send(SPEAKING) == [23, 24]  # the onset, and only what just preceded it
    assert pub.gate.suppressed == 3


def test_without_the_extension_everything_is_forwarded() -> None:
    pub = Publisher()
    pub.send(None, 300)
    assert pub.forwarded == list(range(300))
    assert pub.gate.suppressed == 0


def test_a_packet_without_a_level_counts_as_speech() -> None:
    pub = Publisher()
    pub.send(SILENT, 5)
    assert pub.send(None) == [2, 3, 4, 5]


def test_reset_forgets_the_preroll_and_closes() -> None:
    pub = Publisher()
    pub.send(SPEAKING, 3)
    pub.send(SILENT, HANGOVER_FRAMES + 5)  # closed, pre-roll holding three silent frames
    pub.gate.reset()  # (a host muted the publisher)
    suppressed = pub.gate.suppressed
    assert pub.send(SPEAKING) == [pub.index - 1]  # audio from before the mute is not replayed
    assert suppressed == 5  # all the silence past the hangover
