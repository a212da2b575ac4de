"""Thumbnails at a lower frame rate (issue #12): cameras publish VP8 in three temporal layers
(``L1T3``), and the hub forwards the active speaker's every frame, the other tiles the base
layer only (a quarter of the frames; half when a subscriber receives a few big tiles) — and what
each subscriber gets still decodes to the publisher's pictures.

Participants are testkit's aiortc clients publishing a pre-encoded layered clip with the TID in
each packet's payload descriptor, as Chrome does with ``scalabilityMode: 'L1T3'``.
"""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest

from hubtest import RunningHub as Hub
from media_server.forwarding import EncodedFrame
from sigclient import until
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video

GOP = 40


@pytest.fixture(scope="module")
def layered() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=GOP, temporal_layers=True)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)


def received(client: HubClient, publisher: HubClient) -> list[EncodedFrame]:
    assert publisher.id is not None
    return [f for r in client.received_from(publisher.id, "video") for f in r.frames]


def decodes_to_the_clip(frames: list[EncodedFrame], clip: list[av.Packet]) -> int:
    """Decode what a subscriber got, in order, and compare each picture with the same frame of
    the publisher's clip decoded whole; returns the number of frames checked."""
    reference = av.CodecContext.create("vp8", "r")
    pictures = {bytes(p): f.to_ndarray(format="gray").astype(int)
                for p in clip for f in reference.decode(av.Packet(bytes(p)))}
    decoder = av.CodecContext.create("vp8", "r")
    checked = 0
    for frame in frames:
        for picture in decoder.decode(av.Packet(frame.data)):  # raises on a broken stream
            error = float(np.abs(picture.to_ndarray(format="gray").astype(int) - pictures[frame.data]).mean())
            assert error < 1.0, f"frame {checked} differs from the clip by {error:.1f} on average"
            checked += 1
    return checked


async def test_the_speaker_at_full_rate_thumbnails_at_a_quarter_and_both_decode(
    hub: Hub, layered: list[av.Packet], audio: list[av.Packet]
) -> None:
    index = {bytes(p): i for i, p in enumerate(layered)}
    listener = HubClient(hub.url, "layers", "Lee")
    quiet = [HubClient(hub.url, "layers", name, video=layered) for name in ("Ana", "Bo", "Cy", "Di")]
    talker = HubClient(hub.url, "layers", "Ed", video=layered, audio=audio)
    clients = [listener, *quiet, talker]
    try:
        for client in clients:
            await client.join()
        await until(lambda: ("active-speaker", {"id": talker.id}) in listener.events, timeout=20)
        await until(lambda: all(len(received(listener, p)) >= 20 for p in [*quiet, talker]), timeout=20)
        await asyncio.sleep(0.5)  # past the switch to the speaker's layers
        start = {p.id: len(received(listener, p)) for p in [*quiet, talker]}
        await asyncio.sleep(4)
        window = {p.id: received(listener, p)[start[p.id]:] for p in [*quiet, talker]}

        speaker = window[talker.id]
        thumbnails = [window[p.id] for p in quiet]
        # the speaker: every layer (frames of all four positions of the pattern), ~30 fps
        assert {index[f.data] % 4 for f in speaker} == {0, 1, 2, 3}
        # a thumbnail: base-layer frames only (positions 0 mod 4), ~7.5 fps
        for frames in thumbnails:
            assert frames and {index[f.data] % 4 for f in frames} == {0}
            assert len(speaker) / len(frames) > 3
        # both decode: the speaker's stream and a thumbnail's, from the start of each
        assert decodes_to_the_clip(received(listener, talker), layered) == len(received(listener, talker))
        thumbnail = received(listener, quiet[0])
        assert decodes_to_the_clip(thumbnail, layered) == len(thumbnail)
        layers = [t.temporal_layer for t in hub.server.sfu.peer(listener.id).subscribed_tracks()  # type: ignore[union-attr]
                  if getattr(t, "publisher", None) in {p.id for p in quiet}]
        assert layers == [0, 0, 0, 0]

        # pinning a quiet one brings it to full rate (from its next base-layer frame)
        pinned = quiet[1]
        await listener.sio.call("video-prefs", {"pinned": [pinned.id]}, timeout=10)
        await asyncio.sleep(0.5)
        start_pinned = len(received(listener, pinned))
        await asyncio.sleep(2)
        assert {index[f.data] % 4 for f in received(listener, pinned)[start_pinned:]} == {0, 1, 2, 3}
        assert decodes_to_the_clip(received(listener, pinned), layered) == len(received(listener, pinned))
    finally:
        for client in clients:
            await client.close()


async def test_cameras_without_temporal_layers_are_forwarded_whole(hub: Hub, audio: list[av.Packet]) -> None:
    """A browser that cannot send layers (or H.264): every frame to every tile, as before."""
    plain = encode_test_video(seconds=4, gop=30)
    listener = HubClient(hub.url, "no-layers", "Lee")
    pubs = [HubClient(hub.url, "no-layers", name, video=plain) for name in ("Ana", "Bo", "Cy", "Di", "Ed")]
    try:
        for client in [listener, *pubs]:
            await client.join()
        await until(lambda: all(len(received(listener, p)) >= 20 for p in pubs), timeout=20)
        start = {p.id: len(received(listener, p)) for p in pubs}
        await asyncio.sleep(2)
        counts = [len(received(listener, p)) - start[p.id] for p in pubs]
        assert min(counts) > 0.7 * max(counts)  # all at the same (full) rate
        assert hub.server.sfu.stats()["frames_thinned"] == 0
    finally:
        for client in [listener, *pubs]:
            await client.close()
