"""Live streams: HLS from the room's forwarded media, caption renditions, end of stream."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import av

from captioning.models import ModelDirs, resolve_asr_model
from captioning.service import CaptionConfig
from hubtest import running_hub
from testkit.rtc_client import HubClient, encode_test_video, encode_wav_audio

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.25)


async def test_a_live_room_is_streamed_as_hls_with_captions_and_archived(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert resolve_asr_model("tiny.en", ModelDirs(models)) is not None
    config = CaptionConfig(models_dir=models, asr_model="tiny.en", asr_threads=1)
    async with running_hub(tmp_path / "data", captions=config) as hub:
        assert hub.captions is not None and hub.live is not None
        await hub.captions.ready()
        ana = HubClient(hub.url, "rally", "Ana", video=encode_test_video(seconds=4, width=640, height=480),
                        audio=encode_wav_audio(str(SPEECH / "jfk.wav")))
        folder = hub.live.folder("rally")
        try:
            await ana.join()
            joined = next(d for e, d in ana.events if e == "joined")
            assert joined["live"] == {"on": False, "url": "/live/rally", "available": True, "push": None}
            await ana.sio.emit("live", {"on": True})
            await until(lambda: any(e == "live" and d["on"] for e, d in ana.events), 10)
            master = (folder / "index.m3u8").read_text()
            assert 'TYPE=SUBTITLES,GROUP-ID="subs"' in master and 'LANGUAGE="en"' in master
            await until(lambda: len(re.findall(r"seg-[0-9a-f]{8}\d+\.m4s", (folder / "video.m3u8").read_text())
                                    if (folder / "video.m3u8").is_file() else "") >= 3, 60)
            # a segment plays: H.264 video and AAC audio
            playlist = (folder / "video.m3u8").read_text()
            segment = re.findall(r"seg-[0-9a-f]{8}\d+\.m4s", playlist)[1]
            init = re.search(r'#EXT-X-MAP:URI="(init-[0-9a-f]{8}\.mp4)"', playlist)
            assert init is not None  # per-stream names: a cache never mixes two streams
            joined_file = tmp_path / "check.mp4"
            joined_file.write_bytes((folder / init.group(1)).read_bytes() + (folder / segment).read_bytes())
            with av.open(str(joined_file)) as media:
                assert {s.codec_context.name for s in media.streams} == {"h264", "aac"}
                assert sum(1 for _ in media.decode(video=0)) >= 20
            # the master playlist's CODECS say what the init segment holds (avcC profile/level)
            init_bytes = (folder / init.group(1)).read_bytes()
            avcc = init_bytes.find(b"avcC") + 4
            codecs = f"avc1.{init_bytes[avcc + 1:avcc + 4].hex()},mp4a.40.2"
            assert f'CODECS="{codecs}"' in (folder / "index.m3u8").read_text(), codecs
            # viewers fetch files and a status API; they never touch the SFU
            async with aiohttp.ClientSession() as http:
                for viewer in ("v1", "v2"):
                    async with http.get(f"{hub.url}/api/live/rally", params={"viewer": viewer}) as r:
                        status = await r.json()
                assert status["live"] and status["viewers"] == 2 and "en" in status["languages"]
                async with http.get(f"{hub.url}/live/rally/hls/index.m3u8") as r:
                    assert r.status == 200 and r.content_type == "application/vnd.apple.mpegurl"
                async with http.get(f"{hub.url}/live/rally/hls/..%2F..%2Funionhub.sqlite3") as r:
                    assert r.status == 404
            peers_before = hub.server.sfu.stats()["peers"]
            # live caption cues arrive in the English rendition
            def cues() -> str:
                return "".join(p.read_text() for p in folder.glob("sub_en-*_*.vtt"))
            await until(lambda: "<v Ana>" in cues(), 90)
            assert "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000" in cues()
            assert hub.server.sfu.stats()["peers"] == peers_before
            await ana.sio.emit("live", {"on": False})
            await until(lambda: any(e == "live" and not d["on"] for e, d in ana.events), 30)
            # the playlists end (the worker flushes its last segment first)
            await until(lambda: (folder / "video.m3u8").read_text().rstrip().endswith("#EXT-X-ENDLIST"), 30)
            await until(lambda: "#EXT-X-ENDLIST" in (folder / "sub_en.m3u8").read_text(), 30)
        finally:
            await ana.close()
        assert hub.recordings is not None
        recordings = await hub.archive.list()
        assert [r.room for r in recordings] == ["rally"]  # the stream was archived
