"""Congestion on a subscriber's downlink (issue #12 item 4), through the hub with real aiortc
clients: while its feedback says the link is congested, the hub pauses its videos one by one —
the lowest-ranked first, its pin last — and keeps its audio; it says why (`forwarding
{congested: true}`); when the link clears, video comes back at a keyframe.

The loss a browser would report is fed straight into the listener's ``Downlink`` (its public
``on_report``), here every 0.25 s; that RTCP reaches it is tests/test_feedback.py, and a real
browser behind a real lossy link is tests/e2e/test_weak_link_browser.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import av
import pytest

from hubtest import RunningHub as Hub
from media_server import congestion
from media_server.congestion import Kind
from sigclient import until
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=30)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)


def frames(client: HubClient, publisher: HubClient, kind: str) -> int:
    assert publisher.id is not None
    return sum(len(r.frames) for r in client.received_from(publisher.id, kind))


def forwarding(client: HubClient) -> dict[str, object] | None:
    for event, data in reversed(client.events):
        if event == "forwarding":
            return dict(data)
    return None


async def flowing(client: HubClient, publishers: list[HubClient], kind: str) -> set[str]:
    """The publishers whose ``kind`` frames reach ``client`` over the next second."""
    start = {p.id: frames(client, p, kind) for p in publishers}
    await asyncio.sleep(1.0)
    return {p.id for p in publishers if p.id is not None and frames(client, p, kind) > start[p.id] + 5}


async def test_a_congested_listener_loses_video_lowest_first_keeps_audio_and_gets_it_back(
    hub: Hub, video: list[av.Packet], audio: list[av.Packet], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(congestion, "FIRST_BACKOFF", 1.5)  # (read when a peer is created)
    listener = HubClient(hub.url, "weak", "Lee")
    pubs = [HubClient(hub.url, "weak", name, video=video) for name in ("Ana", "Bo", "Cy")]
    # (a separate speaker: testkit's aiortc client routes every video after the first of several
    # publishers who send audio and video to the first video receiver; browsers do not)
    talker = HubClient(hub.url, "weak", "Dee", audio=audio)
    lossy: asyncio.Task[None] | None = None
    try:
        await listener.join()
        for p in (*pubs, talker):
            await p.join()
        ana, bo, cy = pubs
        everyone = {p.id for p in pubs}
        await until(lambda: all(frames(listener, p, "video") >= 30 for p in pubs))
        await listener.sio.call("video-prefs", {"pinned": [cy.id]}, timeout=10)
        peer = hub.server.sfu.peer(listener.id or "")
        assert peer is not None

        async def report_loss() -> None:
            while True:
                peer.downlink.on_report(Kind.VIDEO, 0.3, time.monotonic())
                await asyncio.sleep(0.25)

        lossy = asyncio.create_task(report_loss())
        await until(lambda: (forwarding(listener) or {}).get("congested") is True, timeout=10)
        # one video per HOLD: 3 -> 2 -> 1 -> 0; the pin is the last one kept
        await until(lambda: (forwarding(listener) or {}).get("video") == [cy.id], timeout=15)
        assert await flowing(listener, pubs, "video") == {cy.id}
        await until(lambda: (forwarding(listener) or {}).get("video") == [], timeout=10)
        assert await flowing(listener, pubs, "video") == set()
        assert await flowing(listener, [talker], "audio") == {talker.id}, "audio is never paused"
        assert hub.server.sfu.congested(listener.id or "")
        # others are not affected
        assert await flowing(ana, [bo, cy], "video") == {bo.id, cy.id}

        lossy.cancel()
        lossy = None
        # the link is clean again: probes bring the videos back one by one, pin first
        await until(lambda: (forwarding(listener) or {}).get("video") == [cy.id], timeout=15)
        await until(lambda: (forwarding(listener) or {}).get("congested") is False, timeout=30)
        assert sorted((forwarding(listener) or {}).get("video") or []) == sorted(everyone)  # type: ignore[type-var]
        # (the video added last may still wait for its keyframe: a few seconds, not one, under load;
        # thumbnails arrive at the base layer's 7.5 fps, near flowing()'s 5-frames-a-second bar)
        seen: set[str] = set()
        for _ in range(4):
            seen = await flowing(listener, pubs, "video")
            if seen == everyone:
                break
        assert seen == everyone
        for p in pubs:  # each resumed at a keyframe
            last = listener.received_from(p.id or "", "video")[0].frames
            assert any(f.keyframe for f in last[-60:])
        stats = hub.server.sfu.stats()
        assert stats["congestion_steps_down"] >= 3 and stats["congestion_probes"] >= 3
        assert stats["congested"] == 0
    finally:
        if lossy is not None:
            lossy.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lossy
        for c in (listener, *pubs, talker):
            await c.close()
