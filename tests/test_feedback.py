"""The RTCP feedback seam (media_server/feedback.py) on two real aiortc peer connections:
receiver reports and REMB reach the sender's observer, and a receiver reports upstream the loss
it is told to (what a publisher's Opus encoder sizes its FEC by)."""

from __future__ import annotations

import asyncio

from aiortc import AudioStreamTrack, RTCPeerConnection, VideoStreamTrack

from media_server.feedback import observe_sender, report_loss_upstream
from sigclient import until


async def connect(pc1: RTCPeerConnection, pc2: RTCPeerConnection) -> None:
    await pc1.setLocalDescription(await pc1.createOffer())
    await pc2.setRemoteDescription(pc1.localDescription)
    await pc2.setLocalDescription(await pc2.createAnswer())
    await pc1.setRemoteDescription(pc2.localDescription)


async def test_reports_and_estimates_reach_the_observer_and_loss_goes_upstream() -> None:
    pc1, pc2 = RTCPeerConnection(), RTCPeerConnection()
    audio_sender = pc1.addTrack(AudioStreamTrack())
    video_sender = pc1.addTrack(VideoStreamTrack())
    seen: dict[str, list[float]] = {"audio": [], "video": [], "remb": []}
    assert observe_sender(audio_sender, seen["audio"].append, lambda bps: seen["remb"].append(bps))
    assert observe_sender(video_sender, seen["video"].append, lambda bps: seen["remb"].append(bps))
    installed: list[bool] = []

    def on_track(track: object) -> None:
        for transceiver in pc2.getTransceivers():
            if transceiver.kind == "audio" and transceiver.receiver.track is track:
                installed.append(report_loss_upstream(transceiver.receiver, lambda: 0.25))

    pc2.on("track", on_track)
    try:
        await connect(pc1, pc2)
        assert installed == [True]
        # receivers report every 0.5-1.5 s; aiortc's receiver sends REMB for video
        await until(lambda: len(seen["audio"]) >= 2 and len(seen["video"]) >= 2 and seen["remb"], timeout=15)
        assert min(seen["audio"]) >= 0.24, "the audio receiver claims the loss it was told"
        assert max(seen["video"]) < 0.05, "the video receiver reports its own (no) loss"
        assert all(bps > 0 for bps in seen["remb"])
        # aiortc handled the same packets as usual: its stats show the reported loss
        stats = await audio_sender.getStats()
        remote = [s for s in stats.values() if s.type == "remote-inbound-rtp"]
        assert remote and remote[0].fractionLost >= 64
    finally:
        await pc1.close()
        await pc2.close()
        await asyncio.sleep(0)
