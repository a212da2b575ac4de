"""A spanned room's relay speakers in its captions and recordings (issue #13): two nodes of a
cluster in this process on a real redis-server, each with live captions as deployed; the room
spans, a participant on the relay speaks (JFK's clip) and the owner, which captions and records
the room for both halves, hears them through the pipe; once the owner's half has left, the relay
captions its own people again.

Real parts: redis-server, the pipe, the packaged tiny.en Whisper weights and a tiny Argos
English→Spanish model on both nodes, aiortc participants, the recorder and the composer, the
archive's WebVTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import pytest

import test_service
from captioning.service import CaptionConfig
from cluster import ClusterConfig
from hubtest import RunningHub, running_hub
from test_manager import speech_spans, vtt_cues
from test_spanning import FAST, cluster, free_port, page
from testkit.rtc_client import HubClient, encode_test_video, encode_wav_audio

#: the captions tests' fixtures: tiny.en and a tiny en→es Argos model, HOME kept in tmp
models_dir = test_service.models_dir
private_home = test_service.private_home
SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
WORDS = "ask not what your country can do for you"


@contextlib.asynccontextmanager
async def captioned_node(tmp_path: Path, redis_url: str, models: Path, node_id: str, record: bool,
                         **options: Any) -> AsyncIterator[RunningHub]:
    """A node of the cluster with live captions (and recordings and live streams, if ``record``),
    models loaded."""
    port = free_port()
    config = ClusterConfig(redis_url, node_id, f"http://127.0.0.1:{port}", **FAST, **options)  # type: ignore[arg-type]
    captions = CaptionConfig(models_dir=models, asr_model="tiny.en", asr_threads=1)
    async with running_hub(tmp_path / node_id, port=port, cluster=config, captions=captions, recordings=record,
                           live=record) as hub:
        assert hub.captions is not None
        await hub.captions.ready()
        await until(lambda: cluster(hub).registry.beats > 0, 10)
        yield hub


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.2)


def finals_from(reader: HubClient, speaker: HubClient) -> list[dict[str, Any]]:
    return [d for e, d in reader.events if e == "caption" and d["speaker"] == speaker.id and d["final"]]


def live_cues(folder: Path) -> str:
    return "".join(p.read_text() for p in folder.glob("sub_en-*_*.vtt"))


def live_media(folder: Path, into: Path) -> Path:
    """The live stream's segments so far, joined after their init segment into one MP4 file."""
    playlist = (folder / "video.m3u8").read_text()
    init = re.search(r'#EXT-X-MAP:URI="(init-[0-9a-f]{8}\.mp4)"', playlist)
    assert init is not None
    segments = re.findall(r"seg-[0-9a-f]{8}\d+\.m4s", playlist)
    into.write_bytes(b"".join((folder / name).read_bytes() for name in (init.group(1), *segments)))
    return into


def words(captions: list[dict[str, Any]]) -> str:
    return " ".join(w.strip(",.!?;:").lower() for c in captions for w in c["text"].split())


@pytest.mark.timeout(600)  # two nodes' caption models on a loaded machine
async def test_the_owner_captions_and_records_a_speaker_on_the_relay_for_both_halves_until_its_half_ends(
    tmp_path: Path, redis_url: str, models_dir: Path
) -> None:
    async with captioned_node(tmp_path, redis_url, models_dir, "owner", True, room_capacity=2) as owner, \
            captioned_node(tmp_path, redis_url, models_dir, "relay", False) as relay:
        assert (await cluster(owner).leases.claim("congress", "owner")).node == "owner"
        ana = HubClient(owner.url, "congress", "Ana", lang="en")  # hosts; reads English
        bo = HubClient(owner.url, "congress", "Bo", lang="en")
        cy = HubClient(relay.url, "congress", "Cy", lang="en", video=encode_test_video(seconds=2),
                       audio=encode_wav_audio(str(SPEECH / "jfk.wav"), silence_after=20.0))  # plays every 31 s
        dee = HubClient(relay.url, "congress", "Dee", lang="es")  # reads Spanish, on the relay's half only
        try:
            await ana.join()
            await bo.join()
            assert await page(owner, "congress") == (307, f"{relay.url}/r/congress")  # full: it spans
            await ana.sio.emit("record", {"on": True})
            await until(lambda: any(e == "recording" and d["on"] for e, d in ana.events), 10)
            rec_id = next(d["id"] for e, d in ana.events if e == "recording" and d["on"])
            assert owner.live is not None
            folder = owner.live.folder("congress")
            await ana.sio.emit("live", {"on": True})
            await until(lambda: any(e == "live" and d["on"] for e, d in ana.events), 10)
            await dee.join()
            await cy.join()
            # both halves read what Cy says on the relay, each in their language
            await until(lambda: WORDS in words(finals_from(ana, cy)) and "país" in words(finals_from(dee, cy)), 150)
            await asyncio.sleep(3.0)  # (the clip's last words)
            said = words(finals_from(ana, cy))
            assert said.count(WORDS) == 1, said  # captioned once for the room, not once per half
            assert {(c["name"], c["lang"]) for c in finals_from(ana, cy)} == {("Cy", "en")}
            assert {(c["name"], c["lang"]) for c in finals_from(dee, cy)} == {("Cy", "es")}
            assert words(finals_from(dee, cy)).count("país") == 1
            # the live stream has Cy's captions and Cy's voice (nobody on the owner speaks)
            await until(lambda: "<v Cy>" in live_cues(folder), 30)
            await ana.sio.emit("live", {"on": False})
            await until(lambda: (folder / "video.m3u8").read_text().rstrip().endswith("#EXT-X-ENDLIST"), 60)
            assert speech_spans(live_media(folder, tmp_path / "live.mp4"))
            await ana.sio.emit("record", {"on": False})
            await until(lambda: any(e == "recording" and not d["on"] for e, d in ana.events), 10)
            # the owner's half leaves: the relay's half, a room of its own again, captions Cy itself
            await ana.close()
            await bo.close()
            await until(lambda: not cluster(relay).spanning.relays("congress"), 20)
            await asyncio.sleep(2.0)  # (the owner's last captions on their way)
            before = len(finals_from(dee, cy))
            await until(lambda: "país" in words(finals_from(dee, cy)[before:]), 90)  # (Cy's clip plays again)
        finally:
            for c in (cy, dee, bo, ana):
                await c.close()
        deadline = time.monotonic() + 180
        while (rec := await owner.archive.get(rec_id)) is None or rec.status not in ("ready", "failed"):
            assert time.monotonic() < deadline, "composition did not finish"
            await asyncio.sleep(0.5)
        assert rec.status == "ready", rec
        assert owner.recordings is not None
        folder = owner.recordings.root / rec_id
        manifest = json.loads((folder / "manifest.json").read_text())
        assert {(t["participant"], t["source"]) for t in manifest["tracks"]} >= {(cy.id, "mic"), (cy.id, "camera")}
        # the recording has Cy's voice (nobody on the owner spoke) and Cy's camera
        assert speech_spans(folder / "audio.m4a")
        with av.open(str(folder / "playback.mp4")) as container:
            assert any(True for _ in container.decode(video=0))
        # and the captions of the recording (the owner's caption session) have Cy's words, by name
        vtt = await owner.archive.webvtt(rec_id, "en")
        assert vtt is not None
        cues = vtt_cues(vtt)
        assert cues and all(text.startswith("<v Cy>") for _, _, text in cues)
        assert WORDS in words([{"text": text.removeprefix("<v Cy>")} for _, _, text in cues])
