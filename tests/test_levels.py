"""media_server/levels.py: the RFC 6464 levels publishers send, read from real RTP packets."""

from __future__ import annotations

import pytest

from levelkit import SILENT, SPEAKING, audio_packet
from media_server.levels import SPEECH_DBOV, AudioLevel, AudioLevels, from_extension, is_speech


def level_of(level: int | None, voice: bool = False, timestamp: int = 960) -> AudioLevel | None:
    packet = audio_packet(1, timestamp, level, voice)  # serialized and parsed back by aiortc
    return from_extension(packet.extensions.audio_level, packet.timestamp)


def test_a_packets_level_is_minus_dbov_with_its_voice_bit() -> None:
    assert level_of(SPEAKING) == AudioLevel(-SPEAKING, False, 960)
    assert level_of(SILENT, voice=True, timestamp=1920) == AudioLevel(-127, True, 1920)
    assert level_of(0) == AudioLevel(0, False, 960)  # full scale


def test_a_packet_without_the_extension_has_no_level() -> None:
    assert level_of(None) is None


@pytest.mark.parametrize(
    ("level", "voice", "speech"),
    [
        (SPEAKING, False, True),
        (-SPEECH_DBOV, False, True),  # at the threshold: still speech
        (-SPEECH_DBOV + 1, False, False),
        (SILENT, False, False),
        (SILENT - 30, True, True),  # the publisher's own voice detector heard speech
    ],
)
def test_speech_is_loud_enough_or_flagged_by_the_publisher(level: int, voice: bool, speech: bool) -> None:
    parsed = level_of(level, voice)
    assert parsed is not None and is_speech(parsed) is speech


def test_whether_a_publisher_sends_levels_is_known_from_its_first_packet() -> None:
    browser, test_client = AudioLevels(), AudioLevels()
    assert browser.sending is None and browser.latest is None
    browser.update(level_of(SPEAKING))
    test_client.update(None)
    assert browser.sending is True and browser.latest == AudioLevel(-SPEAKING, False, 960)
    assert test_client.sending is False and test_client.latest is None
    browser.update(None)  # a stray packet without it does not undo what the others showed
    assert browser.sending is True and browser.latest is not None
    test_client.update(level_of(SILENT))  # nor is a publisher who starts sending them ignored
    assert test_client.sending is True


def test_listeners_hear_every_packet_until_they_stop() -> None:
    levels = AudioLevels()
    heard: list[AudioLevel | None] = []
    stop = levels.listen(heard.append)
    assert levels.listeners == 1
    first, second = level_of(SPEAKING), level_of(SILENT, timestamp=1920)
    levels.update(first)
    levels.update(None)
    stop()
    stop()  # idempotent
    levels.update(second)
    assert heard == [first, None]
    assert levels.listeners == 0 and levels.latest == second


def test_a_failing_listener_does_not_stop_the_others() -> None:
    levels = AudioLevels()
    heard: list[AudioLevel | None] = []

    def broken(level: AudioLevel | None) -> None:
        raise RuntimeError("bug")

    levels.listen(broken)
    levels.listen(heard.append)
    levels.update(level_of(SPEAKING))
    assert len(heard) == 1
