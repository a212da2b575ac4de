"""bench/interpretation.py in brief: the hub's CPU is read with 0..3 interpreter channels, and a
Chromium listener hears the interpreter after each pick of the channel (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_interpretation_bench_measures_cpu_per_channel_and_switching(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "interpretation.py"), "--runs", "2", "--seconds", "2",
         "--per-lang", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads((tmp_path / "interpretation.json").read_text())
    assert [row["channels"] for row in result["cpu"]] == [0, 1, 2, 3]
    assert all(row["hub_cpu"] > 0 and row["listeners"] == 3 for row in result["cpu"])
    assert len(result["switch_ms"]) == 2 and all(ms > 0 for ms in result["switch_ms"])
