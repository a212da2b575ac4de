"""Publication: fan-out to subscribers, keyframe gating after loss, throttled PLIs, and audio:
levels from the publisher's packets, silence not forwarded to browsers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpSynchronizationSource

from levelkit import SILENT, SPEAKING, Publisher, audio_publication
from media_server.forwarding import EncodedFrame, ForwardedTrack
from media_server.levels import AudioLevel
from media_server.publication import PLI_INTERVAL, Publication
from media_server.silence import HANGOVER
from testkit.rtc_client import encode_test_audio

HANGOVER_FRAMES = HANGOVER // 960

KEY = b"\x10\x02\x00\x9d\x01\x2a" + b"k" * 10  # VP8 key frame tag + start code
DELTA = b"\x11\x02\x00" + b"d" * 10


@pytest.fixture
async def publication() -> AsyncIterator[Publication]:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    publication = Publication("ana", "camera", transceiver.receiver, RemoteStreamTrack("video"))
    yield publication
    await publication.close()
    await pc.close()


def frame(data: bytes, ts: int, discontinuity: bool = False) -> EncodedFrame:
    return EncodedFrame(data, ts, data is KEY, "vp8", discontinuity)


async def test_each_subscriber_gets_every_frame_from_a_keyframe_on(publication: Publication) -> None:
    subs = [publication.subscribe() for _ in range(2)]
    assert all(isinstance(s, ForwardedTrack) for s in subs)
    publication._on_frame(frame(DELTA, 0))  # before any keyframe: useless to a new decoder
    publication._on_frame(frame(KEY, 3000))
    publication._on_frame(frame(DELTA, 6000))
    for sub in subs:
        got = [bytes(await sub.recv()) for _ in range(2)]
        assert got == [KEY, DELTA]


async def test_after_ingress_loss_subscribers_wait_for_the_next_keyframe(publication: Publication) -> None:
    sub = publication.subscribe()
    assert isinstance(sub, ForwardedTrack)
    publication._on_frame(frame(KEY, 0))
    publication._on_frame(frame(DELTA, 3000, discontinuity=True))  # its reference was lost
    publication._on_frame(frame(DELTA, 6000))
    publication._on_frame(frame(KEY, 9000))
    got = [(bytes(p), p.pts) for p in [await sub.recv(), await sub.recv()]]
    assert got == [(KEY, 0), (KEY, 9000)]
    assert sub.queued == 0


async def test_keyframe_requests_are_merged(
    publication: Publication, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    receiver = publication._receiver

    async def send_pli(ssrc: int) -> None:
        sent.append(ssrc)

    monkeypatch.setattr(receiver, "_send_rtcp_pli", send_pli)
    monkeypatch.setattr(
        receiver, "getSynchronizationSources",
        lambda: [RTCRtpSynchronizationSource(timestamp=None, source=1234)],  # type: ignore[arg-type]
    )
    for _ in range(10):  # ten subscribers' browsers report picture loss at once
        publication.request_keyframe()
    await asyncio.sleep(0.05)
    assert sent == [1234]
    await asyncio.sleep(PLI_INTERVAL * 1.5)
    assert sent == [1234, 1234]  # the merged rest, sent when the window closed


# -- audio: levels and silence suppression, through a real aiortc receiver ----------------------


async def got(track: MediaStreamTrack) -> list[bytes]:
    """What a subscriber has been sent so far (and not yet read)."""
    assert isinstance(track, ForwardedTrack)
    forwarded: ForwardedTrack = track
    return [bytes(await forwarded.recv()) for _ in range(forwarded.queued)]


async def test_browsers_get_a_speakers_audio_but_not_a_silent_publishers() -> None:
    async with audio_publication("ana") as ana, audio_publication("bo") as bo:
        browsers = {"ana": ana.subscribe(suppress_silence=True), "bo": bo.subscribe(suppress_silence=True)}
        silent, speaking = Publisher(ana), Publisher(bo)
        for _ in range(40):
            await silent.send(SILENT)
            await speaking.send(SPEAKING)
        assert await got(browsers["ana"]) == []
        assert await got(browsers["bo"]) == speaking.sent
        assert ana.frames == bo.frames == 40  # both received; one not worth forwarding
        assert ana.frames_suppressed == 40 - 3 and bo.frames_suppressed == 0  # (3: the pre-roll)


async def test_speech_after_silence_arrives_preroll_first() -> None:
    async with audio_publication() as publication:
        browser = publication.subscribe(suppress_silence=True)
        publisher = Publisher(publication)
        await publisher.send(*[SILENT] * 20)
        assert await got(browser) == []
        await publisher.send(SPEAKING, SPEAKING)
        # the first syllable is whole: the 60 ms before the onset, in order, then the speech
        assert await got(browser) == publisher.sent[17:22]


async def test_a_second_after_the_last_word_is_still_forwarded() -> None:
    async with audio_publication() as publication:
        browser = publication.subscribe(suppress_silence=True)
        publisher = Publisher(publication)
        await publisher.send(*[SPEAKING] * 10)
        assert await got(browser) == publisher.sent[:10]
        await publisher.send(*[SILENT] * (HANGOVER_FRAMES + 30))
        assert await got(browser) == publisher.sent[10 : 10 + HANGOVER_FRAMES]


async def test_a_publisher_without_levels_is_never_suppressed() -> None:
    async with audio_publication() as publication:
        browser = publication.subscribe(suppress_silence=True)
        publisher = Publisher(publication)
        await publisher.send(*[None] * 30)
        assert await got(browser) == publisher.sent
        assert publication.levels is not None and publication.levels.sending is False
        assert publication.audio_level is None


async def test_levels_are_exposed_without_decoding() -> None:
    async with audio_publication() as publication:
        publisher = Publisher(publication)
        await publisher.send(SPEAKING)
        assert publication.audio_level == AudioLevel(-SPEAKING, False, 0)  # (RTP time from the first)
        await publisher.send(SILENT)
        assert publication.audio_level == AudioLevel(-127, False, 960)
        assert publication.levels is not None and publication.levels.sending is True
        assert not publication.decoding


async def test_recorders_and_the_audio_tap_still_get_every_frame() -> None:
    opus = [bytes(p) for p in encode_test_audio(seconds=0.5)]
    async with audio_publication() as publication:
        assert publication.audio is not None
        decoded = publication.audio.subscribe()  # captions
        recorder = publication.subscribe()  # recordings and live streams: every frame
        browser = publication.subscribe(suppress_silence=True)
        publisher = Publisher(publication, payloads=opus)
        await publisher.send(*[SILENT] * 20, *[SPEAKING] * 5)
        assert await got(recorder) == publisher.sent
        assert len(await got(browser)) == 3 + 5
        async with asyncio.timeout(10):
            frames = [await decoded.get() for _ in range(len(publisher.sent))]
        assert all(f is not None and f.samples == 960 for f in frames)


async def test_a_host_muted_publisher_is_not_forwarded_and_reads_silent() -> None:
    async with audio_publication() as publication:
        browser = publication.subscribe(suppress_silence=True)
        publisher = Publisher(publication)
        await publisher.send(*[SPEAKING] * 5)
        await publisher.send(*[SILENT] * (HANGOVER_FRAMES + 10))
        await got(browser)
        publication.muted = True
        await publisher.send(*[SPEAKING] * 5)  # the muted publisher's client keeps sending
        assert await got(browser) == []
        assert publication.audio_level is not None and publication.audio_level.dbov == -127
        publication.muted = False
        await publisher.send(SPEAKING)
        assert await got(browser) == publisher.sent[-1:]  # nothing from before the mute
