"""media_server/speaker.py: audio levels and who is highlighted as the active speaker."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from levelkit import SILENT, SPEAKING, Publisher, audio_publication
from media_server.audio_tap import AudioTap
from media_server.publication import Publication
from media_server.speaker import (
    HOLD_SECONDS,
    SILENCE_DBOV,
    ActiveSpeakerDetector,
    frame_level_dbov,
)
from testkit.rtc_client import encode_test_audio

RATE = 48000
SAMPLES = 960  # 20 ms
EPSILON = 1e-6  # keeps "after HOLD_SECONDS" clear of float rounding


def s16_frame(samples: np.ndarray, stereo: bool = False) -> AudioFrame:
    """An s16 frame from float samples in [-1, 1] (packed interleaved when stereo)."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
    if stereo:
        pcm = np.repeat(pcm, 2)
    frame = AudioFrame.from_ndarray(
        pcm.reshape(1, -1), format="s16", layout="stereo" if stereo else "mono"
    )
    frame.sample_rate = RATE
    return frame


def sine(peak: float, hz: float = 440.0, n: int = SAMPLES) -> np.ndarray:
    return peak * np.sin(2 * np.pi * hz * np.arange(n) / RATE)


# -- levels -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stereo", [False, True])
def test_digital_silence_is_minus_127(stereo: bool) -> None:
    assert frame_level_dbov(s16_frame(np.zeros(SAMPLES), stereo)) == -127.0


@pytest.mark.parametrize("stereo", [False, True])
def test_full_scale_square_wave_is_0_dbov(stereo: bool) -> None:
    square = np.where(np.arange(SAMPLES) % 2 == 0, 1.0, -1.0)
    assert frame_level_dbov(s16_frame(square, stereo)) == pytest.approx(0.0, abs=0.01)


def test_full_scale_sine_is_minus_3_dbov() -> None:
    assert frame_level_dbov(s16_frame(sine(1.0))) == pytest.approx(-3.01, abs=0.05)


@pytest.mark.parametrize("stereo", [False, True])
def test_sine_at_minus_20_db_peak(stereo: bool) -> None:
    # peak at -20 dB of full scale: RMS is 3 dB lower still
    level = frame_level_dbov(s16_frame(sine(10 ** (-20 / 20)), stereo))
    assert level == pytest.approx(-20.0 - 10 * math.log10(2), abs=0.05)


def test_quiet_hiss_is_below_the_silence_threshold_and_speech_above() -> None:
    rng = np.random.default_rng(1)
    hiss = s16_frame(rng.normal(0, 10 ** (-65 / 20), SAMPLES))
    speech = s16_frame(sine(10 ** (-26 / 20)))
    assert frame_level_dbov(hiss) < SILENCE_DBOV < frame_level_dbov(speech)


# -- decisions ----------------------------------------------------------------------------------


class Changes(list[str | None]):
    def __call__(self, participant: str | None) -> None:
        self.append(participant)


def detector_with(levels: dict[str, float]) -> tuple[ActiveSpeakerDetector, Changes]:
    changes = Changes()
    detector = ActiveSpeakerDetector(changes)
    detector._levels.update(levels)
    return detector, changes


def test_nobody_speaking_reports_nobody() -> None:
    detector, changes = detector_with({"ana": -127.0, "bo": SILENCE_DBOV - 1})
    detector.decide(0.0)
    assert detector.current is None and changes == []


def test_loudest_speaker_is_chosen_at_once_when_nobody_speaks() -> None:
    detector, changes = detector_with({"ana": -30.0, "bo": -20.0, "cy": -127.0})
    detector.decide(0.0)
    assert detector.current == "bo"
    assert changes == ["bo"]
    detector.decide(0.1)
    assert changes == ["bo"]  # reported once


def test_louder_newcomer_takes_over_only_after_the_hold() -> None:
    detector, changes = detector_with({"ana": -30.0})
    detector.decide(0.0)
    detector._levels["bo"] = -15.0
    detector.decide(1.0)
    detector.decide(1.0 + HOLD_SECONDS / 2)
    assert detector.current == "ana"
    detector.decide(1.0 + HOLD_SECONDS + EPSILON)
    assert detector.current == "bo"
    assert changes == ["ana", "bo"]


def test_a_brief_interruption_does_not_move_the_highlight() -> None:
    detector, changes = detector_with({"ana": -30.0})
    detector.decide(0.0)
    detector._levels["bo"] = -15.0  # bo coughs ...
    detector.decide(1.0)
    detector._levels["bo"] = -40.0  # ... and ana is the loudest again
    detector.decide(1.2)
    detector._levels["bo"] = -15.0  # bo speaks up: the hold starts over
    detector.decide(1.4)
    detector.decide(1.0 + HOLD_SECONDS + EPSILON)
    assert detector.current == "ana"
    detector.decide(1.4 + HOLD_SECONDS + EPSILON)
    assert detector.current == "bo"
    assert changes == ["ana", "bo"]


def test_speaker_who_falls_silent_yields_at_once_to_someone_speaking() -> None:
    detector, changes = detector_with({"ana": -30.0})
    detector.decide(0.0)
    detector._levels.update({"ana": -127.0, "bo": -35.0})
    detector.decide(0.1)
    assert detector.current == "bo"
    assert changes == ["ana", "bo"]


def test_silence_keeps_the_last_speaker_highlighted() -> None:
    detector, changes = detector_with({"ana": -30.0, "bo": -40.0})
    detector.decide(0.0)
    detector._levels.update({"ana": -80.0, "bo": -127.0})
    for t in range(1, 10):
        detector.decide(float(t))
    assert detector.current == "ana"
    assert changes == ["ana"]


def test_removing_the_current_speaker_reports_nobody() -> None:
    detector, changes = detector_with({"ana": -30.0, "bo": -40.0})
    detector.decide(0.0)
    detector.remove("ana")
    assert detector.current is None
    assert changes == ["ana", None]
    detector.decide(0.1)
    assert changes == ["ana", None, "bo"]


def test_removing_someone_else_changes_nothing() -> None:
    detector, changes = detector_with({"ana": -30.0, "bo": -40.0})
    detector.decide(0.0)
    detector.remove("bo")
    detector.remove("nobody")
    assert detector.current == "ana"
    assert changes == ["ana"]


# -- detector fed by real audio taps ------------------------------------------------------------


class LiveAudioTrack(MediaStreamTrack):
    """Endless 20 ms frames of a given level, paced by the event loop rather than real time."""

    kind = "audio"

    def __init__(self, peak: float) -> None:
        super().__init__()
        self._peak = peak

    async def recv(self) -> AudioFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        await asyncio.sleep(0.01)
        return s16_frame(sine(self._peak))


async def test_detector_highlights_the_participant_who_speaks() -> None:
    changes = Changes()
    detector = ActiveSpeakerDetector(changes)
    tracks = {"ana": LiveAudioTrack(0.0), "bo": LiveAudioTrack(0.3)}
    taps = {name: AudioTap(track, None) for name, track in tracks.items()}
    try:
        for name, tap in taps.items():
            detector.add(name, tap)
        async with asyncio.timeout(10):
            while not changes:
                await asyncio.sleep(0.05)
        assert changes == ["bo"]
        assert detector.current == "bo"
    finally:
        await detector.close()
        for tap in taps.values():
            await tap.close()
        for track in tracks.values():
            track.stop()


# -- detector fed by the levels publishers send (RFC 6464), nothing decoded ----------------------


def decoding(publication: Publication) -> bool:
    """Whether anything decodes the publication's audio (the receiver feeds its decoder)."""
    assert publication.audio is not None
    return publication.audio.consumers > 0 or publication.decoding


async def test_detector_follows_the_levels_publishers_send_without_decoding() -> None:
    changes = Changes()
    detector = ActiveSpeakerDetector(changes)
    async with audio_publication("ana") as ana, audio_publication("bo") as bo:
        detector.add("ana", ana)
        detector.add("bo", bo)
        pa, pb = Publisher(ana), Publisher(bo)
        for _ in range(10):
            await pa.send(SILENT)
            await pb.send(SPEAKING)
        detector.decide(0.0)
        assert detector.current == "bo" and changes == ["bo"]
        assert not decoding(ana) and not decoding(bo)
        await detector.close()


async def test_the_highlight_moves_after_the_hold_as_with_decoded_audio() -> None:
    changes = Changes()
    detector = ActiveSpeakerDetector(changes)
    async with audio_publication("ana") as ana, audio_publication("bo") as bo:
        detector.add("ana", ana)
        detector.add("bo", bo)
        pa, pb = Publisher(ana), Publisher(bo)
        await pa.send(*[SPEAKING + 10] * 10)  # ana talks
        detector.decide(0.0)
        await pb.send(*[SPEAKING] * 10)  # bo, louder, talks over her
        await pa.send(*[SPEAKING + 10] * 10)
        detector.decide(1.0)
        assert detector.current == "ana"
        detector.decide(1.0 + HOLD_SECONDS + EPSILON)
        assert changes == ["ana", "bo"]
        await detector.close()


async def test_a_speaker_gone_quiet_in_dtx_yields_at_once() -> None:
    changes = Changes()
    detector = ActiveSpeakerDetector(changes)
    async with audio_publication("ana") as ana, audio_publication("bo") as bo:
        detector.add("ana", ana)
        detector.add("bo", bo)
        pa, pb = Publisher(ana), Publisher(bo)
        await pb.send(*[SPEAKING] * 10)
        detector.decide(0.0)
        # bo stops: his browser sends one silent packet, then nothing for a second (DTX), then
        # another; the second he was quiet counts, not just the two packets
        await pb.send(SILENT)
        pb.skip(49)
        await pb.send(SILENT)
        await pa.send(*[SPEAKING + 10] * 3)
        detector.decide(1.0)
        assert changes == ["bo", "ana"]
        await detector.close()


async def test_a_host_muted_publisher_is_not_the_active_speaker() -> None:
    changes = Changes()
    detector = ActiveSpeakerDetector(changes)
    async with audio_publication("bo") as bo:
        detector.add("bo", bo)
        bo.muted = True
        await Publisher(bo).send(*[SPEAKING] * 10)
        detector.decide(0.0)
        assert detector.current is None and changes == []
        await detector.close()


async def test_a_publisher_without_levels_is_decoded_instead() -> None:
    changes = Changes()
    detector = ActiveSpeakerDetector(changes)
    tone = [bytes(p) for p in encode_test_audio(seconds=1)]
    async with audio_publication("bo") as bo:
        detector.add("bo", bo)
        assert not decoding(bo)  # nothing is decoded before the publisher shows what it sends
        publisher = Publisher(bo, payloads=tone)
        await publisher.send(None)  # like our test client's pre-encoded packets: no level
        assert bo.audio is not None and bo.audio.consumers == 1 and decoding(bo)
        await publisher.send(*[None] * 25)
        async with asyncio.timeout(10):
            while detector._levels.get("bo", -127.0) <= SILENCE_DBOV:
                await asyncio.sleep(0.02)
        detector.decide(0.0)
        assert changes == ["bo"]
        await detector.close()
        assert bo.audio.consumers == 0


async def test_removing_a_participant_stops_listening_to_its_levels() -> None:
    detector = ActiveSpeakerDetector(Changes())
    async with audio_publication("bo") as bo:
        assert bo.levels is not None
        detector.add("bo", bo)
        assert bo.levels.listeners == 1
        detector.remove("bo")
        assert bo.levels.listeners == 0
        await Publisher(bo).send(SPEAKING)
        detector.decide(0.0)
        assert detector.current is None
        await detector.close()


# -- speaking recency (last-N video) ----------------------------------------------------------


def test_recency_lists_who_spoke_most_recent_first() -> None:
    detector, _ = detector_with({"ana": -30.0, "bo": -127.0, "cy": -127.0})
    assert detector.recency() == []
    detector.decide(1.0)
    detector._levels.update({"ana": -127.0, "cy": -30.0})
    detector.decide(2.0)
    detector._levels.update({"cy": -127.0, "bo": -25.0})
    detector.decide(3.0)
    assert detector.recency() == ["bo", "cy", "ana"]
    assert detector.spoke_at("cy") == 2.0 and detector.spoke_at("nobody") is None


def test_recency_follows_speech_below_the_hold_and_puts_the_highlight_first_on_ties() -> None:
    detector, changes = detector_with({"ana": -30.0})
    detector.decide(0.0)
    detector._levels["bo"] = -15.0  # bo speaks too: the highlight stays during the hold
    detector.decide(0.1)
    assert changes == ["ana"]
    assert detector.recency() == ["ana", "bo"]  # both spoke at 0.1: the highlighted one first


def test_silence_keeps_recency_and_removal_forgets_it() -> None:
    detector, _ = detector_with({"ana": -30.0, "bo": -127.0})
    detector.decide(0.0)
    detector._levels["ana"] = -127.0
    detector.decide(5.0)
    assert detector.recency() == ["ana"] and detector.spoke_at("ana") == 0.0
    detector.remove("ana")
    assert detector.recency() == []
