"""kill -9 of the hub mid-recording: on restart the recording is recovered and playable."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import av

from testkit.rtc_client import HubClient, encode_test_video, encode_wav_audio

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("unionhub")
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port), "--data-dir", str(data), "--asr-model", "none"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("hub did not start: " + log.read_text()[-2000:])


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


async def test_recording_survives_kill_9(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "hub.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    hub = start(data, port, log)
    ana = HubClient(url, "crash", "Ana", video=encode_test_video(seconds=4, width=640, height=480),
                    audio=encode_wav_audio(str(SPEECH / "jfk.wav")))
    try:
        await ana.join()
        await asyncio.sleep(1.0)
        await ana.sio.emit("record", {"on": True})
        for _ in range(100):
            state = [d for e, d in ana.events if e == "recording" and d["on"]]
            if state:
                break
            await asyncio.sleep(0.05)
        assert state, "recording did not start"
        recording_id = state[0]["id"]
        await asyncio.sleep(6.0)
        recorded_for = 6.0
        os.kill(hub.pid, signal.SIGKILL)  # no shutdown, no file finalisation
        hub.wait(10)
    finally:
        await ana.close()

    hub = start(data, port, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            rec = get(f"{url}/api/recordings/{recording_id}")
            rec = rec.get("recording", rec)
            if rec["status"] in ("ready", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert rec["status"] == "ready", rec
        library = get(f"{url}/api/recordings")
        items = library.get("recordings", library)
        assert recording_id in [r["id"] for r in items]
        playback = data / "recordings" / recording_id / "playback.mp4"
        with av.open(str(playback)) as container:
            assert sorted(s.type for s in container.streams) == ["audio", "video"]
            duration = container.duration / 1e6
            assert sum(1 for _ in container.decode(video=0)) > 0
        # at most ~2 s lost at the end
        assert duration >= recorded_for - 2.5, duration
    finally:
        hub.terminate()
        hub.wait(10)
