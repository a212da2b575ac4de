"""The caption benchmark's smoke run (--quick) works end to end and writes sane figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(360)
def test_quick_caption_bench_writes_well_formed_results(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "captions.py"), "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert (tmp_path / "captions.png").stat().st_size > 0
    data = json.loads((tmp_path / "captions.json").read_text())

    for key in ("command", "date", "hardware", "config", "clips", "models", "openai_whisper"):
        assert key in data, key
    assert {"cpu", "cores", "python", "machine"} <= set(data["hardware"])
    assert "--quick" in data["command"]
    assert list(data["models"]) == ["tiny.en"]
    assert len(data["clips"]) == 1

    m = data["models"]["tiny.en"]
    for kind in ("partial", "final"):
        lat = m["latency"][kind]
        assert lat["words"] > 0, kind
        assert lat["words"] <= lat["words_total"]
        assert 0 < lat["p50"] <= lat["p95"], (kind, lat)

    for row in m["wer"]["per_clip"]:
        assert 0 <= row["streaming"] <= 1 and 0 <= row["offline"] <= 1, row
    assert 0 <= m["wer"]["overall"]["streaming"] <= 1
    assert 0 <= m["wer"]["overall"]["offline"] <= 1

    rtf = m["rtf"]
    assert rtf["audio_s"] > 0 and rtf["compute_s"] > 0 and rtf["rtf"] > 0
    assert rtf["calls"]["final"] >= 1 and rtf["calls"]["partial"] >= 0

    assert [r["k"] for r in m["speakers"]] == [1]
    k1 = m["speakers"][0]
    assert k1["final"]["p95"] > 0 and k1["finals_dropped"] >= 0 and k1["partials_skipped"] >= 0
    assert isinstance(k1["keeps_up"], bool)
    assert m["max_speakers_realtime"] in (0, 1)

    # where the latency goes: a final's decode starts early in the pause that ends its utterance
    # (``early_final``, 0.25 s in, of which 0.2 s is kept as the utterance's end), not after its
    # whole second, then decodes
    profile = m["profile"]
    assert 0 < profile["finals"]["detect"]["p50"] < 0.5 and profile["finals"]["decode"]["p50"] > 0
    assert sum(profile["words_first_shown_by"].values()) == m["latency"]["partial"]["words"]
    assert data["variants"] == {"default": {"options": {"drafts": True, "pack_finals": False}, "models": data["models"]}}

    ow = data["openai_whisper"]
    assert isinstance(ow["measured"], bool)
    if not ow["measured"]:
        assert ow["status"] == "not measured: no openai-whisper weights offline"


def test_a_variant_naming_an_unknown_option_is_refused_before_any_model_loads() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "captions.py"), "--quick", "--variant", "x:partial_intreval=0.4"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "'partial_intreval' is not an option of SpeakerStream or AsrScheduler" in proc.stderr
