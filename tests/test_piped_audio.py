"""media_server/piped_audio.py: a voice piped from another hub process (a spanned room's other
half) is decoded for its publication's audio tap like a local publisher's — only once someone
listens, into the frames aiortc's decoder makes, holes filled with silence, ended with the track."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest

from media_server.forwarding import EncodedFrame
from media_server.publication import Publication
from testkit.rtc_client import encode_test_audio

TIMEOUT = 10.0  # a frame that never comes fails the test instead of hanging it


@pytest.fixture(scope="module")
def tone() -> list[av.Packet]:
    return encode_test_audio(seconds=1.0, hz=440.0)  # 50 Opus frames of 20 ms


def piped_voice() -> Publication:
    return Publication.piped("relay-speaker", "mic", "audio", lambda: None)


def encoded(packet: av.Packet, timestamp: int | None = None) -> EncodedFrame:
    assert packet.pts is not None
    return EncodedFrame(bytes(packet), packet.pts if timestamp is None else timestamp, False, "opus")


async def take(q: asyncio.Queue[av.AudioFrame | None], n: int) -> list[av.AudioFrame]:
    frames = []
    for _ in range(n):
        frame = await asyncio.wait_for(q.get(), TIMEOUT)
        assert frame is not None, "the tap ended early"
        frames.append(frame)
    return frames


def samples(frames: list[av.AudioFrame]) -> np.ndarray:
    """Left channel of interleaved stereo s16, as float in [-1, 1]."""
    return np.concatenate([f.to_ndarray().reshape(-1)[0::2] for f in frames]).astype(np.float64) / 32768


async def test_a_piped_voice_is_decoded_for_its_tap_as_aiortc_decodes_a_local_one(tone: list[av.Packet]) -> None:
    publication = piped_voice()
    assert publication.audio is not None and not publication.decoding
    q = publication.audio.subscribe()
    try:
        for packet in tone:
            publication.push(encoded(packet))
        frames = await take(q, len(tone))
        assert publication.decoding
        # what captions and the speaker detector get from a local publisher (aiortc's decoder)
        assert {(f.format.name, f.layout.name, f.sample_rate, f.samples) for f in frames} == {("s16", "stereo", 48000, 960)}
        assert [f.pts for f in frames] == [p.pts for p in tone]  # the RTP timestamps
        # the tone the relay's publisher sent: loud, and at 440 Hz
        pcm = samples(frames[10:])
        assert np.sqrt(np.mean(pcm**2)) > 0.1
        spectrum = np.abs(np.fft.rfft(pcm))
        assert abs(np.fft.rfftfreq(len(pcm), 1 / 48000)[int(np.argmax(spectrum))] - 440) < 5
    finally:
        await publication.close()


async def test_nothing_is_decoded_before_a_consumer_listens(tone: list[av.Packet]) -> None:
    publication = piped_voice()
    assert publication.audio is not None
    try:
        for packet in tone[:20]:
            publication.push(encoded(packet))  # forwarded to browsers; nobody wants it decoded
        await asyncio.sleep(0.1)
        assert not publication.decoding
        q = publication.audio.subscribe()
        for packet in tone[20:]:
            publication.push(encoded(packet))
        frames = await take(q, len(tone) - 20)
        assert frames[0].pts == tone[20].pts  # decoding started with the first frame after the subscription
        assert q.empty()
    finally:
        await publication.close()


async def test_a_hole_in_a_piped_voice_is_filled_with_silence_and_the_end_reaches_the_consumer(
    tone: list[av.Packet],
) -> None:
    publication = piped_voice()
    assert publication.audio is not None
    q = publication.audio.subscribe()
    try:
        for packet in tone[:10]:
            publication.push(encoded(packet))
        # the publisher's microphone went silent (Opus DTX) for 0.4 s; the timestamps keep counting
        for i, packet in enumerate(tone[30:40]):
            publication.push(encoded(packet, timestamp=(30 + i) * 960))
        frames = await take(q, 10)
        filler = await asyncio.wait_for(q.get(), TIMEOUT)
        assert filler is not None and filler.pts == 10 * 960 and filler.samples == 20 * 960
        assert not filler.to_ndarray().any()
        after = await take(q, 10)
        assert [f.pts for f in frames + after] == [i * 960 for i in (*range(10), *range(30, 40))]
        assert publication.audio.filled == 20 * 960
    finally:
        await publication.close()
    assert await asyncio.wait_for(q.get(), TIMEOUT) is None  # the tap's consumers hear the end


async def test_a_muted_piped_voice_reaches_its_consumers_as_silence(tone: list[av.Packet]) -> None:
    publication = piped_voice()
    assert publication.audio is not None
    q = publication.audio.subscribe()
    publication.muted = True  # a host on this half muted the speaker on the other
    try:
        for packet in tone:
            publication.push(encoded(packet))
        frames = await take(q, len(tone))
        assert not samples(frames).any()
    finally:
        await publication.close()
