"""A recorded call with live captions: the archive's caption cues line up with the speech.

Real parts: aiortc participant publishing the JFK clip, tiny.en captions, the recorder, the
composer in its worker process, the archive's WebVTT.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from captioning.models import ModelDirs, resolve_asr_model
from captioning.service import CaptionConfig
from captioning.vad import StreamingVad
from hubtest import running_hub
from testkit.rtc_client import HubClient, encode_test_video, encode_wav_audio

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
CUE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$")


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


def speech_spans(path: Path) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in a composed audio file, by the same Silero VAD."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
    with av.open(str(path)) as container:
        pcm = np.concatenate([
            f.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
            for f in resampler.resample(frame)
        ])
    probs = StreamingVad().process(pcm)
    spans: list[tuple[float, float]] = []
    start = None
    for i, p in enumerate([*probs, 0.0]):
        t = i * 512 / 16000
        if p >= 0.5 and start is None:
            start = t
        elif p < 0.35 and start is not None:
            spans.append((start, t))
            start = None
    return spans


def vtt_cues(text: str) -> list[tuple[float, float, str]]:
    assert text.startswith("WEBVTT")
    cues = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = CUE.match(line)
        if m:
            h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, m.groups())
            cues.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000, lines[i + 1]))
    return cues


async def test_recorded_captions_line_up_with_the_speech(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert resolve_asr_model("tiny.en", ModelDirs(models)) is not None
    config = CaptionConfig(models_dir=models, asr_model="tiny.en", asr_threads=2)
    async with running_hub(tmp_path / "data", captions=config) as hub:
        assert hub.captions is not None and hub.recordings is not None
        await hub.captions.ready()
        ana = HubClient(hub.url, "minutes", "Ana", video=encode_test_video(seconds=2),
                        audio=encode_wav_audio(str(SPEECH / "jfk.wav"), silence_after=2.0))
        try:
            await ana.join()
            await asyncio.sleep(2.0)  # recording starts mid-session: cue times must be shifted
            await ana.sio.emit("record", {"on": True})
            await until(lambda: any(e == "recording" and d["on"] for e, d in ana.events), 10)
            rec_id = next(d["id"] for e, d in ana.events if e == "recording" and d["on"])
            await asyncio.sleep(14.0)
            await ana.sio.emit("record", {"on": False})
            await until(lambda: any(e == "recording" and not d["on"] for e, d in ana.events), 10)
        finally:
            await ana.close()
        archive = hub.archive
        deadline = time.monotonic() + 120
        while (rec := await archive.get(rec_id)) is None or rec.status not in ("ready", "failed"):
            assert time.monotonic() < deadline, "composition did not finish"
            await asyncio.sleep(0.5)
        assert rec.status == "ready", rec
        vtt = await archive.webvtt(rec_id, "en")
        assert vtt is not None
        cues = vtt_cues(vtt)
        assert cues and all(text.startswith("<v Ana>") for _, _, text in cues)
        spans = speech_spans(hub.recordings.root / rec_id / "audio.m4a")
        assert spans
        for start, end, text in cues:
            assert 0 <= start < end <= rec.duration + 0.5
            # every caption sits on speech that is really in the recording at that time
            overlap = sum(max(0.0, min(end, e) - max(start, s)) for s, e in spans)
            assert overlap >= min(0.3, 0.3 * (end - start)), (start, end, text, spans)
        # and the speech in the recording is covered by captions (nothing left uncaptioned)
        spoken = sum(e - s for s, e in spans)
        covered = sum(max(0.0, min(end, e) - max(start, s)) for s, e in spans for start, end, _ in cues)
        assert covered >= 0.6 * spoken, (covered, spoken)
