"""bench/meeting.py in brief: a 3-person meeting on this tree's hub and on f510ced's (a git
worktree the bench makes and removes), a few seconds each, writes sane figures (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worktrees() -> list[str]:
    out = subprocess.run(["git", "-C", str(ROOT), "worktree", "list", "--porcelain"], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if line.startswith("worktree ")]


def test_a_small_meeting_before_and_after(tmp_path: Path) -> None:
    before = worktrees()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "meeting.py"), "--modes", "forward,forward-old", "--sizes", "3",
         "--seconds", "3", "--warmup", "1", "--repeats", "1", "--retries", "0", "--wait-quiet", "0",
         "--clip-seconds", "4", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert not set(worktrees()) - set(before), "the bench left its git worktree behind"
    result = json.loads((tmp_path / "meeting.json").read_text())
    assert result["command"].endswith("--out " + str(tmp_path))
    assert len(result["load_average_before"]) == 3 and result["hardware"]["cores"] >= 1
    assert {(t["mode"], t["participants"]) for t in result["trials"]} == {("forward", 3), ("forward-old", 3)}
    assert result["trees"]["forward-old"]["commit"].startswith("f510ced")
    for t in result["trials"]:
        assert t["flowing"], t  # everyone received both others' video before the window
        # 30 fps cameras; a receiver that was behind when the window opened catches up inside it
        # (32.4 in a 3 s window at load 6), while counting packets instead of frames would read 60+
        assert t["videos_received_mean"] == 2 and 0 < t["video_fps_per_stream"] <= 40
        assert 0 <= t["loss_percent"] <= 100 and 0 <= t["video_frames_missing_percent"] <= 100
        assert t["delay_samples"] > 0 and t["delay_p50_ms"] is not None and t["delay_p50_ms"] < t["delay_p99_ms"] + 1e-9
        # two VGA videos of ~600 kbit/s plus speech: about 1.3 Mbit/s down and 0.6 up on a quiet
        # machine (less when a loaded one starves the processes, never more)
        assert 100 < t["download_kbps_mean"] < 2000 and 100 < t["upload_kbps_mean"] < 1000
        assert 0 < t["hub_cpu_percent"] < 200 and t["participants_per_core"] > 0
        assert t["client_cpu_percent"] > 0 and t["load_average"] >= 0
    new = next(t for t in result["trials"] if t["mode"] == "forward")
    old = next(t for t in result["trials"] if t["mode"] == "forward-old")
    # silent participants' DTX packets carry level 127: the hub suppresses them, f510ced forwards them
    assert new["hub_stats"]["audio_frames_suppressed"] > 0
    assert "audio_frames_suppressed" not in old["hub_stats"]
    # the cameras send temporal layers: this hub sends the non-speaker's tile half of them, f510ced all
    assert new["hub_stats"]["frames_thinned"] > 0
    assert "frames_thinned" not in old["hub_stats"]
    assert set(result["summary"]["modes"]) == {"forward", "forward-old"}
    assert "ratio_max_participants" in result["summary"] or result["summary"]["modes"]["forward-old"]["max_participants"] == 0
    assert "largest N meeting the criteria" in proc.stdout
