"""Recording a real call: per-track WebM without re-encoding, then a composed playback file."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from hubtest import RunningHub
from recordings.composer import compose, track_end
from recordings.recorder import RoomRecorder, vp8_size
from signalling import SignallingServer
from testkit.rtc_client import HubClient, encode_test_video, encode_wav_audio

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"


@pytest.fixture
async def server(hub: RunningHub) -> tuple[str, SignallingServer]:
    return hub.url, hub.server


async def record_call(url: str, server: SignallingServer, folder: Path, seconds: float) -> tuple[float, list[bytes]]:
    video = encode_test_video(seconds=4, width=640, height=480)
    ana = HubClient(url, "rec", "Ana", video=video, audio=encode_wav_audio(str(SPEECH / "jfk.wav")))
    bo = HubClient(url, "rec", "Bo", video=encode_test_video(seconds=4, width=320, height=240))
    try:
        await ana.join()
        await bo.join()
        for _ in range(200):
            if len(server.sfu.rooms["rec"].publications) == 3:
                break
            await asyncio.sleep(0.05)
        recorder = RoomRecorder(folder, "rec", names={ana.id: "Ana", bo.id: "Bo"})  # type: ignore[dict-item]
        for publication in server.sfu.rooms["rec"].publications.values():
            recorder.add(publication)
        await asyncio.sleep(seconds)
        duration = await recorder.stop()
        return duration, ana.tracks["camera"].sent_payloads  # type: ignore[attr-defined]
    finally:
        await ana.close()
        await bo.close()


async def test_call_is_recorded_per_track_without_reencoding_and_composed(
    server: tuple[str, SignallingServer], tmp_path: Path
) -> None:
    url, hub = server
    folder = tmp_path / "recording"
    duration, sent = await record_call(url, hub, folder, 6.0)
    manifest = json.loads((folder / "manifest.json").read_text())
    kinds = sorted((t["name"], t["kind"]) for t in manifest["tracks"])
    assert kinds == [("Ana", "audio"), ("Ana", "video"), ("Bo", "video")]
    ana_video = next(t for t in manifest["tracks"] if t["name"] == "Ana" and t["kind"] == "video")
    assert (ana_video["width"], ana_video["height"]) == (640, 480)

    # the recorded VP8 frames are the publisher's own bytes
    with av.open(str(folder / "tracks" / ana_video["file"])) as container:
        packets = [bytes(p) for p in container.demux(video=0) if p.size]
    assert len(packets) > 100
    assert all(p in set(sent) for p in packets)
    assert vp8_size(packets[0]) == (640, 480)  # starts on a keyframe
    for track in manifest["tracks"]:
        assert track_end(folder / "tracks" / track["file"]) == pytest.approx(duration - track["offset"], abs=0.5)

    summary = await asyncio.to_thread(compose, folder, duration)
    with av.open(str(folder / "playback.mp4")) as playback:
        assert sorted(s.type for s in playback.streams) == ["audio", "video"]
        assert playback.duration / 1e6 == pytest.approx(duration, abs=0.5)
        frames = sum(1 for _ in playback.decode(video=0))
    assert frames >= duration * 15 - 2
    with av.open(str(folder / "audio.m4a")) as podcast:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in podcast.decode(audio=0)])
    assert pcm.size / 48000 == pytest.approx(duration, abs=0.5)
    assert float(np.sqrt(np.mean(pcm**2))) > 0.01  # the speech is in the mix
    assert summary["video_tracks"] == 2 and summary["audio_tracks"] == 1


async def test_a_track_cut_off_by_a_crash_still_composes(
    server: tuple[str, SignallingServer], tmp_path: Path
) -> None:
    url, hub = server
    folder = tmp_path / "recording"
    _duration, _ = await record_call(url, hub, folder, 4.0)
    # simulate kill -9: the last bytes of every file never reached the disk
    for track in (folder / "tracks").iterdir():
        data = track.read_bytes()
        track.write_bytes(data[: int(len(data) * 0.8)])
    summary = await asyncio.to_thread(compose, folder, None)
    assert summary["duration"] > 2.0  # most of it survived
    with av.open(str(folder / "playback.mp4")) as playback:
        assert sum(1 for _ in playback.decode(video=0)) > 30
    shutil.rmtree(folder)
