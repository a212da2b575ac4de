"""Publication: fan-out to subscribers, keyframe gating after loss, throttled PLIs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpSynchronizationSource

from media_server.forwarding import EncodedFrame, ForwardedTrack
from media_server.publication import PLI_INTERVAL, Publication

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
