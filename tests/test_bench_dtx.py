"""bench/dtx.py in brief, with Debian's Chromium: the hub's offer makes a real browser send
Opus with DTX and FEC, so a silent microphone sends a few packets a second instead of 50."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_silent_browser_microphone_sends_a_few_packets_a_second(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dtx.py"), "--seconds", "4", "--repeats", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads((tmp_path / "dtx.json").read_text())
    silence, speech = result["summary"]["new/silence"], result["summary"]["new/speech"]
    for sent in (silence, speech):  # what Chromium applied from the hub's offer
        assert {"useinbandfec=1", "usedtx=1"} <= set(sent["fmtp"].split(";")), sent["fmtp"]
    # 20 ms Opus frames are 50 packets/s; with DTX silence is a packet every ~400 ms (plus a few)
    assert silence["packets_per_s"] < 15 < speech["packets_per_s"]
    assert result["command"].endswith("--out " + str(tmp_path))
