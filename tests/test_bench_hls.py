"""The live-stream (HLS) benchmark's smoke run (--quick --no-browser) works end to end."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_frame_code_reads_back_from_scaled_letterboxed_pictures() -> None:
    import numpy as np

    saved = list(sys.path)  # bench/hls.py puts bench/ on the path for its sibling sfu_forwarding
    try:
        spec = importlib.util.spec_from_file_location("bench_hls", ROOT / "bench" / "hls.py")
        assert spec is not None and spec.loader is not None
        hls = importlib.util.module_from_spec(spec)
        sys.modules["bench_hls"] = hls  # its dataclasses look their module up
        spec.loader.exec_module(hls)
    finally:
        sys.path[:] = saved
    SRC_H, SRC_W, draw_number, read_number = hls.SRC_H, hls.SRC_W, hls.draw_number, hls.read_number

    for n in (0, 1, 77, 899, 4095):
        img = np.zeros((SRC_H, SRC_W), np.uint8)
        draw_number(img, n)
        assert read_number(img) == n
        boxed = np.zeros((480, 854), np.uint8)  # the live stream's composed frame: 640x480 centred
        boxed[:, 107:747] = img
        assert read_number(boxed) == n
        assert read_number(boxed[::4, ::4]) == n  # the player's quarter-size canvas
    assert read_number(np.zeros((480, 854), np.uint8)) is None
    assert read_number(np.full((480, 854), 128, np.uint8)) is None


@pytest.mark.timeout(360)
@pytest.mark.parametrize("served_by", ["hub", "nginx"])
def test_quick_hls_bench_writes_well_formed_results(tmp_path: Path, served_by: str) -> None:
    assert shutil.which("wrk") or Path("/usr/bin/wrk").exists(), "wrk is needed (make test-deps installs it)"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hls.py"), "--quick", "--no-browser", "--out", str(tmp_path),
         "--serve-with", served_by],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert (tmp_path / "hls.png").stat().st_size > 0
    data = json.loads((tmp_path / "hls.json").read_text())

    for key in ("command", "date", "hardware", "config", "cpu", "latency", "viewers"):
        assert key in data, key
    assert {"cpu", "cores", "python", "machine"} <= set(data["hardware"])
    assert "--quick" in data["command"]

    cpu = data["cpu"]
    for key in ("hub_not_live_percent", "hub_live_percent", "worker_percent"):
        assert cpu[key] >= 0, key
    assert cpu["worker_percent"] > 0, "the live worker did no work"

    seg = data["latency"]["segment"]
    assert seg["n"] >= 1 and seg["frames_read"] > 0, "no frame number read from the HLS segments"
    assert len(seg["samples_s"]) == seg["n"]
    assert seg["p50_s"] <= seg["p95_s"] <= seg["max_s"]
    assert all(s > 0 for s in seg["samples_s"]), "a segment listed before its frames were sent"
    assert data["latency"]["player"]["skipped"] is True

    viewers = data["viewers"]
    assert [r["connections"] for r in viewers["runs"]] == [200]
    run = viewers["runs"][0]
    assert run["requests"] > 0 and run["requests_per_s"] > 0
    assert run["playlist_responses"] > 0 and run["segment_responses"] > 0
    assert viewers["viewers_per_node"] == run["viewers_per_node"]
    assert "1 request/s" in viewers["assumption"]
    assert viewers["served_by"] == run["served_by"] == served_by
    assert run["errors"] == 0, run["errors_detail"]  # e.g. nginx refusing to read the live folder
