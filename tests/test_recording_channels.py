"""Interpreter channels in recordings (issue #14): the floor and each channel are kept.

The floor publishes a 440 Hz tone, the live Spanish interpreter 880 Hz (the tones of
``test_interpretation_hub``). The composed recording's floor files have no interpreter in them;
the Spanish channel's files (what the player loads when a viewer picks Spanish, and what the
podcast feed publishes for ``?lang=es``) are her voice with the floor underneath.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path

import aiohttp
import av

from hubtest import RunningHub
from sigclient import until
from test_interpretation_hub import FLOOR_HZ, LUCIA_HZ, band_energy, send, tones
from testkit.rtc_client import HubClient

__all__ = ["tones"]  # (the fixture, shared with test_interpretation_hub)


async def record_with_interpreter(hub: RunningHub, tones: dict[int, list[av.Packet]], room: str) -> str:
    """A recording of ``room``: 2 s of the floor alone, then 4 s with Lucía live in Spanish."""
    floor = HubClient(hub.url, room, "Fiona", lang="en", audio=tones[FLOOR_HZ])  # first in: hosts
    lucia = HubClient(hub.url, room, "Lucía", lang="es", audio=tones[LUCIA_HZ])
    try:
        for c in (floor, lucia):
            await c.join()
        assert await send(floor, "interpreter", {"id": lucia.id, "lang": "es"}) == []
        await floor.sio.call("record", {"on": True}, timeout=10)
        await until(lambda: any(e == "recording" and d["on"] for e, d in floor.events))
        await asyncio.sleep(2.0)
        assert await send(lucia, "booth", {"action": "live"}) == []
        await asyncio.sleep(4.0)
        await floor.sio.call("record", {"on": False}, timeout=10)
        rec_id = str(next(d["id"] for e, d in floor.events if e == "recording" and d["on"]))
    finally:
        for c in (floor, lucia):
            await c.close()
    for _ in range(240):
        rec = await hub.archive.get(rec_id)
        if rec is not None and rec.status in ("ready", "failed"):
            break
        await asyncio.sleep(0.5)
    assert rec is not None and rec.status == "ready", rec
    return rec_id


async def test_a_recording_keeps_the_floor_and_each_channel_and_the_player_loads_the_channel(
    hub: RunningHub, tones: dict[int, list[av.Packet]], tmp_path: Path
) -> None:
    rec_id = await record_with_interpreter(hub, tones, "rec-channels")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{hub.url}/api/recordings/{rec_id}") as response:
            meta = await response.json()
        base = f"/api/recordings/{rec_id}/media"
        assert meta["video"] == f"{base}/playback.mp4"
        assert meta["channels"] == [{"lang": "es", "video": f"{base}/playback-es.mp4", "audio": f"{base}/audio-es.m4a"}]
        files = {}
        for name, url in {"floor": meta["video"], "es": meta["channels"][0]["video"],
                          "es-audio": meta["channels"][0]["audio"], "floor-audio": meta["audio"]}.items():
            async with http.get(f"{hub.url}{url}") as response:
                assert response.status == 200, name
                files[name] = tmp_path / f"{name}.mp4"
                files[name].write_bytes(await response.read())
        async with http.get(f"{hub.url}{base}/playback-fr.mp4") as response:
            assert response.status == 404 and (await response.json())["error"]["code"] == "no-channel"
        async with http.get(f"{hub.url}{base}/playback-..%2Fx.mp4") as response:
            assert response.status in (400, 404)

    def energies(path: Path, start: float) -> tuple[float, float]:
        return band_energy_after(path, FLOOR_HZ, start), band_energy_after(path, LUCIA_HZ, start)

    for name in ("floor", "floor-audio"):  # the floor never has the interpreter
        floor_440, floor_880 = energies(files[name], 0.0)
        assert floor_440 > 100 * floor_880, (name, floor_440, floor_880)
    for name in ("es", "es-audio"):  # the channel: her voice over the floor once she is live
        es_440, es_880 = energies(files[name], 3.0)
        assert es_880 > 10 * es_440 > 0, (name, es_440, es_880)
        before_440, before_880 = band_energy_after(files[name], FLOOR_HZ, 0.0, 1.5), \
            band_energy_after(files[name], LUCIA_HZ, 0.0, 1.5)
        assert before_440 > 100 * before_880, (name, "before she was live: the floor", before_440, before_880)
    # the channel's video is the floor's video: same frames, not encoded again
    with av.open(str(files["floor"])) as floor_file, av.open(str(files["es"])) as es_file:
        assert [s.type for s in es_file.streams] == ["video", "audio"]
        floor_video = [bytes(p) for p in floor_file.demux(video=0) if p.size]
        es_video = [bytes(p) for p in es_file.demux(video=0) if p.size]
        assert floor_video == es_video and floor_video
    assert band_energy(files["es"], LUCIA_HZ) > 0


def band_energy_after(path: Path, hz: float, start: float, end: float = 1e9) -> float:
    """``band_energy`` of the audio between ``start`` and ``end`` seconds only."""
    trimmed = path.with_suffix(f".{hz}.{start}.m4a")
    with av.open(str(path)) as source, av.open(str(trimmed), "w", format="mp4") as out:
        stream = out.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux(audio=0):
            if packet.pts is None or packet.time_base is None:
                continue
            if start <= float(packet.pts * packet.time_base) < end:
                packet.stream = stream
                out.mux(packet)
    return band_energy(trimmed, hz)


async def test_the_podcast_feed_publishes_a_channel_s_audio(
    hub: RunningHub, tones: dict[int, list[av.Packet]]
) -> None:
    rec_id = await record_with_interpreter(hub, tones, "rec-feed")
    await hub.archive.set_published(rec_id, True)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{hub.url}/recordings/feed.xml", params={"lang": "es"}) as response:
            assert response.status == 200
            spanish = ET.fromstring(await response.text())
        async with http.get(f"{hub.url}/recordings/feed.xml") as response:
            floor = ET.fromstring(await response.text())
        async with http.get(f"{hub.url}/recordings/feed.xml", params={"lang": "Spanish"}) as response:
            assert response.status == 400
    enclosure = spanish.find("channel/item/enclosure")
    assert enclosure is not None and enclosure.get("url", "").endswith(f"/api/recordings/{rec_id}/media/audio-es.m4a")
    assert spanish.findtext("channel/language") == "es"
    floor_enclosure = floor.find("channel/item/enclosure")
    assert floor_enclosure is not None and floor_enclosure.get("url", "").endswith("/media/audio.m4a")
