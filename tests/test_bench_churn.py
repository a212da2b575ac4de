"""Smoke test: bench/churn.py runs briefly against a real `unionhub serve` and writes well-formed
results (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_churn_bench_writes_well_formed_results(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "churn.py"), "--clients", "6", "--rooms", "2", "--seconds", "3",
         "--ramp", "0.5", "--data-dir", str(tmp_path / "hub"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "Signalling churn" in proc.stdout
    result = json.loads((tmp_path / "churn.json").read_text())
    assert (tmp_path / "churn.png").stat().st_size > 0

    assert result["command"].endswith("--out " + str(tmp_path))
    assert result["hardware"]["cores"] >= 1
    assert result["params"] == {"clients": 6, "rooms": 2, "seconds": 3.0, "ramp_s": 0.5, "seed": 6}
    s = result["summary"]
    for key in ("joins", "leaves", "reconnects", "events_sent", "errors"):
        assert isinstance(s[key], int) and s[key] >= 0, key
    assert s["joins"] > 0, "no client ever joined"
    assert s["errors"] == sum(s["errors_by_kind"].values())
    assert len(result["join_ms"]) == len(result["join_at_s"]) == s["joins"]
    assert all(ms > 0 for ms in result["join_ms"])
    assert s["join_ms_p50"] <= s["join_ms_p99"] <= s["join_ms_max"]
    assert s["joins_per_s"] > 0 and s["hub_cpu_percent"] >= 0 and s["hub_rss_mb_end"] > 0
    assert set(s["left_on_hub_after"]) == {"rooms", "peers"}
    assert all({"t", "hub_cpu_percent", "hub_rss_mb"} <= set(x) for x in result["samples"])
