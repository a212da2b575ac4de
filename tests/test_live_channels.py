"""Interpreter channels in the live stream (issue #14): one HLS audio rendition per channel.

The floor publishes a 440 Hz tone, the live Spanish interpreter 880 Hz (the tones of
``test_interpretation_hub``). What a viewer fetches over HTTP is decoded: the master playlist
lists the floor (the default) and the Spanish rendition beside a video without audio; the
Spanish playlist's audio is the interpreter's, the floor's has no interpreter in it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import av
import numpy as np

from hubtest import RunningHub
from recordings.live_http import HLS_FILE, PLAYLIST_CACHE, SEGMENT_CACHE, cache_control
from sigclient import until
from test_interpretation_hub import FLOOR_HZ, LUCIA_HZ, band_energy, send, tones
from testkit.rtc_client import HubClient

__all__ = ["tones"]  # (the fixture, shared with test_interpretation_hub)


async def fetch_rendition(http: aiohttp.ClientSession, base: str, playlist: str, out: Path) -> Path:
    """Init segment + the playlist's media segments, as a viewer fetches them, in one file."""
    async with http.get(f"{base}/{playlist}") as response:
        assert response.status == 200, playlist
        text = await response.text()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    assert init is not None, text
    segments = [line for line in text.splitlines() if line and not line.startswith("#")]
    data = b""
    for name in [init.group(1), *segments[-3:]]:  # the last three segments: the tones are steady
        async with http.get(f"{base}/{name}") as response:
            assert response.status == 200, name
            data += await response.read()
    out.write_bytes(data)
    return out


async def test_the_live_stream_has_an_audio_rendition_per_channel_with_the_interpreter_s_voice(
    hub: RunningHub, tones: dict[int, list[av.Packet]], tmp_path: Path
) -> None:
    assert hub.live is not None
    floor = HubClient(hub.url, "congress", "Fiona", lang="en", audio=tones[FLOOR_HZ])  # first in: hosts
    lucia = HubClient(hub.url, "congress", "Lucía", lang="es", audio=tones[LUCIA_HZ])
    folder = hub.live.folder("congress")
    base = f"{hub.url}/live/congress/hls"
    try:
        for c in (floor, lucia):
            await c.join()
        assert await send(floor, "interpreter", {"id": lucia.id, "lang": "es"}) == []
        assert await send(lucia, "booth", {"action": "live"}) == []
        await floor.sio.call("live", {"on": True}, timeout=10)

        def segments(playlist: str) -> int:
            path = folder / playlist
            return path.read_text().count("#EXTINF") if path.is_file() else 0

        await until(lambda: segments("audio_es.m3u8") >= 4 and segments("video.m3u8") >= 4, timeout=60)
        await until(lambda: "audio_es.m3u8" in (folder / "index.m3u8").read_text(), timeout=5)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/index.m3u8") as response:
                master = await response.text()
            async with http.get(f"{hub.url}/api/live/congress") as response:
                assert (await response.json())["channels"] == ["es"]
            audio = [line for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:TYPE=AUDIO")]
            assert audio == [
                '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Floor",DEFAULT=YES,AUTOSELECT=YES,URI="audio_floor.m3u8"',
                '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="es",NAME="Español",DEFAULT=NO,AUTOSELECT=YES,'
                'URI="audio_es.m3u8"',
            ]
            lines = master.splitlines()
            variant = next(i for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF"))
            assert 'AUDIO="aud"' in lines[variant] and lines[variant + 1] == "video_only.m3u8"

            spanish = await fetch_rendition(http, base, "audio_es.m3u8", tmp_path / "es.mp4")
            main = await fetch_rendition(http, base, "audio_floor.m3u8", tmp_path / "floor.mp4")
            muxed = await fetch_rendition(http, base, "video.m3u8", tmp_path / "muxed.mp4")  # (RTMP, old viewers)
            picture = await fetch_rendition(http, base, "video_only.m3u8", tmp_path / "picture.mp4")
        with av.open(str(spanish)) as media:
            assert [s.type for s in media.streams] == ["audio"]  # audio only: no second video
        with av.open(str(picture)) as media:
            assert [s.type for s in media.streams] == ["video"]
            assert sum(1 for _ in media.decode(video=0)) >= 20  # (it plays: the init segment has the avcC)
        assert band_energy(muxed, FLOOR_HZ) > 100 * band_energy(muxed, LUCIA_HZ)
        # the channel is the interpreter, the floor quietly under her; the floor never has her
        es_880, es_440 = band_energy(spanish, LUCIA_HZ), band_energy(spanish, FLOOR_HZ)
        floor_880, floor_440 = band_energy(main, LUCIA_HZ), band_energy(main, FLOOR_HZ)
        assert es_880 > 10 * es_440 > 0, (es_880, es_440)
        assert floor_440 > 100 * floor_880, (floor_440, floor_880)

        # the channel's rendition is on the floor's clock: a player switches without a jump
        def first_time(path: Path) -> float:
            with av.open(str(path)) as media:
                return float(next(media.decode(audio=0)).time or 0.0)
        assert abs(first_time(spanish) - first_time(main)) < 0.1

        await floor.sio.call("live", {"on": False}, timeout=10)
        await until(lambda: "#EXT-X-ENDLIST" in (folder / "audio_es.m3u8").read_text(), timeout=30)
    finally:
        for c in (floor, lucia):
            await c.close()


async def test_a_channel_with_nobody_live_carries_the_floor_and_a_stream_without_channels_has_no_audio_group(
    hub: RunningHub, tones: dict[int, list[av.Packet]], tmp_path: Path
) -> None:
    assert hub.live is not None
    floor = HubClient(hub.url, "plenary", "Fiona", lang="en", audio=tones[FLOOR_HZ])
    lucia = HubClient(hub.url, "plenary", "Lucía", lang="es", audio=tones[LUCIA_HZ])
    folder = hub.live.folder("plenary")
    try:
        for c in (floor, lucia):
            await c.join()
        assert await send(floor, "interpreter", {"id": lucia.id, "lang": "es"}) == []
        await floor.sio.call("live", {"on": True}, timeout=10)
        await until(lambda: (folder / "video.m3u8").is_file(), timeout=30)
        await asyncio.sleep(2.0)
        # nobody live yet: no channel, and the master is the plain one
        assert "TYPE=AUDIO" not in (folder / "index.m3u8").read_text()
        assert await send(lucia, "booth", {"action": "live"}) == []
        await until(lambda: "audio_es.m3u8" in (folder / "index.m3u8").read_text(), timeout=30)
        assert await send(lucia, "booth", {"action": "off"}) == []

        def listed() -> list[str]:
            text = (folder / "audio_es.m3u8").read_text()
            return [line for line in text.splitlines() if line.endswith(".m4s")]

        before = listed()
        await until(lambda: len(set(listed()) - set(before)) >= 5, timeout=30)  # (fetched: the last 3)
        async with aiohttp.ClientSession() as http:
            spanish = await fetch_rendition(http, f"{hub.url}/live/plenary/hls", "audio_es.m3u8", tmp_path / "es.mp4")
        # she went off: the last segments are the floor at full volume, not her
        assert band_energy(spanish, FLOOR_HZ) > 100 * band_energy(spanish, LUCIA_HZ)
        level = peak(spanish)
        assert level > 0.2, level  # (the floor under an interpreter would be about a fifth of this)
        await floor.sio.call("live", {"on": False}, timeout=10)
    finally:
        for c in (floor, lucia):
            await c.close()


def peak(path: Path) -> float:
    with av.open(str(path)) as media:
        return max(float(np.abs(frame.to_ndarray()).max()) for frame in media.decode(audio=0))


def test_channel_files_are_served_and_cached_like_the_stream_s_other_files() -> None:
    for name in ("audio_es.m3u8", "audio_floor.m3u8", "video_only.m3u8", "audio_pt-BR.m3u8"):
        assert HLS_FILE.fullmatch(name) and cache_control(name) == PLAYLIST_CACHE, name
    for name in ("audio_es-0a1b2c3d_00004.m4s", "audio_floor-0a1b2c3d.mp4", "video_only-0a1b2c3d_00012.m4s"):
        assert HLS_FILE.fullmatch(name) and cache_control(name) == SEGMENT_CACHE, name  # unique per stream
    for name in ("audio_../x.m3u8", "audio_es-0a1b2c3d_1.m4s", "audio_Spanish.m3u8", "video_only_00001.m4s"):
        assert not HLS_FILE.fullmatch(name), name
