"""RTMP push of a live room to a real RTMP server (Debian's nginx + libnginx-mod-rtmp) on loopback."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest

from hubtest import running_hub
from rtmp_server import free_port, nginx_rtmp
from testkit.rtc_client import HubClient, encode_test_video, encode_wav_audio

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"


@pytest.fixture
def rtmp_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An nginx-rtmp server on loopback that records what it receives to FLV files."""
    with nginx_rtmp(tmp_path / "nginx") as server:
        yield server


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


def push_states(client: HubClient) -> list[dict]:
    return [d["push"] for e, d in client.events if e == "live" and d.get("push")]


async def test_live_room_is_pushed_to_rtmp_with_h264_and_aac(tmp_path: Path, rtmp_server: tuple[str, Path]) -> None:
    base, recordings = rtmp_server
    async with running_hub(tmp_path / "data", captions=None) as hub:
        ana = HubClient(hub.url, "push", "Ana", video=encode_test_video(seconds=4, width=640, height=480),
                        audio=encode_wav_audio(str(SPEECH / "jfk.wav")))
        try:
            await ana.join()
            await ana.sio.emit("live-push", {"url": f"{base}/early"})  # not live yet
            await until(lambda: any(e == "error" and d["code"] == "not-live" for e, d in ana.events), 10)
            await ana.sio.emit("live", {"on": True})
            await until(lambda: any(e == "live" and d["on"] for e, d in ana.events), 10)
            await ana.sio.emit("live-push", {"url": "http://example.org/not-rtmp"})
            await until(lambda: any(e == "error" and d["code"] == "bad-rtmp-url" for e, d in ana.events), 10)
            await ana.sio.emit("live-push", {"url": f"{base}/union-rally"})
            await until(lambda: any(p["state"] == "live" for p in push_states(ana)), 60)
            assert all("union-rally" not in p["url"] for p in push_states(ana))  # the key is secret
            await asyncio.sleep(6)
            await ana.sio.emit("live-push", {"url": None})
            await until(lambda: push_states(ana)[-1]["state"] == "stopped", 10)  # the host sees it stopped
            await asyncio.sleep(2)
        finally:
            await ana.close()
    flv = recordings / "union-rally.flv"
    assert flv.is_file() and flv.stat().st_size > 10_000
    with av.open(str(flv)) as received:
        assert {s.codec_context.name for s in received.streams} == {"h264", "aac"}
        assert sum(1 for _ in received.decode(video=0)) >= 60  # ≥ 4 s at 15 fps


async def test_an_unreachable_destination_is_reported_and_the_stream_goes_on(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens here
    async with running_hub(tmp_path / "data", captions=None) as hub:
        assert hub.live is not None
        ana = HubClient(
            hub.url, "nowhere", "Ana", video=encode_test_video(seconds=4), audio=encode_wav_audio(str(SPEECH / "jfk.wav"))
        )
        try:
            await ana.join()
            await ana.sio.emit("live", {"on": True})
            await until(lambda: any(e == "live" and d["on"] for e, d in ana.events), 10)
            await ana.sio.emit("live-push", {"url": f"rtmp://127.0.0.1:{closed}/live/key"})
            await until(lambda: any(p["state"] == "retrying" and p["error"] for p in push_states(ana)), 60)
            playlist = hub.live.folder("nowhere") / "video.m3u8"
            await until(lambda: playlist.is_file() and len(re.findall(r"seg-[0-9a-f]{8}\d{5}", playlist.read_text())) >= 2, 60)
            def newest() -> int:
                return max(int(n) for n in re.findall(r"seg-[0-9a-f]{8}(\d{5})", playlist.read_text()))

            before = newest()
            await asyncio.sleep(4.5)
            assert newest() > before  # viewers keep getting segments while the push retries
        finally:
            await ana.close()
