"""Smoke tests: each benchmark runs briefly and writes well-formed results (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args, "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_sfu_forwarding_bench_measures_both_paths(tmp_path: Path) -> None:
    stdout = run("sfu_forwarding.py", "--subscribers", "1,2", "--relay-max", "1", "--seconds", "2", out=tmp_path)
    result = json.loads((tmp_path / "sfu_forwarding.json").read_text())
    assert (tmp_path / "sfu_forwarding.png").stat().st_size > 0
    trials = result["trials"]
    assert {(t["mode"], t["subscribers"]) for t in trials} == {("forward", 1), ("forward", 2), ("relay", 1)}
    for t in trials:
        assert t["server_cpu_s"] >= 0 and t["streams"] > 0
        assert t["packets_expected"] > 0, "no media flowed"
        assert 0 <= t["loss_percent"] <= 100
    assert result["summary"]["median_relay_over_forward"] is not None
    assert "MediaRelay / unionhub" in stdout


@pytest.mark.browser
def test_join_time_bench_sees_a_remote_frame(tmp_path: Path) -> None:
    run("join_time.py", "--runs", "1", out=tmp_path)
    result = json.loads((tmp_path / "join_time.json").read_text())
    assert len(result["runs_ms"]) == 1 and result["runs_ms"][0] > 0
    assert (tmp_path / "join_time.png").stat().st_size > 0
