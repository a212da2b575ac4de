"""Opus DTX and FEC from a real browser: audio packets a Chromium microphone sends, per second.

A Chromium whose fake microphone plays a WAV file joins a room (no camera), and its own
``outbound-rtp`` audio stats are read over a window: packets per second and the Opus
parameters it sends with (``sdpFmtpLine``). Run against this tree's hub and, with
``--old-tree``, an earlier checkout's, in the same run, for silence and for speech:

    .venv/bin/python bench/dtx.py --old-tree /tmp/old --seconds 15

(``git archive REV | tar -x -C /tmp/old`` makes the old tree; it needs web_client/node_modules.)
Writes docs/bench/dtx.json; results in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from join_time import CHROMIUM_ARGS, start_server  # noqa: E402
from sfu_forwarding import free_port, hardware  # noqa: E402

SPEECH = ROOT.parent / "shared" / "data" / "speech" / "jfk.wav"

AUDIO_OUT_JS = """async () => {
  const pc = window.unionhub && window.unionhub.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let out = null;
  stats.forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'audio') out = s; });
  if (!out || !out.packetsSent) return null;
  const codec = out.codecId ? stats.get(out.codecId) : null;
  return {packets: out.packetsSent, bytes: out.bytesSent, fmtp: codec ? codec.sdpFmtpLine || '' : ''};
}"""


def silent_wav(path: Path, seconds: float = 10.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(bytes(2 * int(48000 * seconds)))
    return path


def measure(chromium: str, wav: Path, tree: Path | None, seconds: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = start_server(port, Path(tempfile.mkdtemp(prefix="unionhub-bench-dtx-")), tree)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium, args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"]
            )
            page = browser.new_context().new_page()
            page.goto(f"http://127.0.0.1:{port}/r/dtx?name=Mic&lang=en&video=0")
            deadline = time.monotonic() + 30
            while (first := page.evaluate(AUDIO_OUT_JS)) is None:  # (getStats is async: poll here)
                if time.monotonic() > deadline:
                    raise RuntimeError("the browser never sent audio")
                time.sleep(0.2)
            time.sleep(2.0)  # past the first second, when the encoder settles
            start = page.evaluate(AUDIO_OUT_JS)
            t0 = time.monotonic()
            time.sleep(seconds)
            end = page.evaluate(AUDIO_OUT_JS)
            elapsed = time.monotonic() - t0
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    return {
        "packets_per_s": round((end["packets"] - start["packets"]) / elapsed, 1),
        "kbit_per_s": round(8 * (end["bytes"] - start["bytes"]) / elapsed / 1000, 1),
        "fmtp": end["fmtp"] or first["fmtp"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-tree", type=Path, help="an earlier checkout to compare with")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = parser.parse_args()

    silence = silent_wav(Path(tempfile.mkdtemp()) / "silence.wav")
    trees: dict[str, Path | None] = {"new": None}
    if args.old_tree is not None:
        trees["old"] = args.old_tree
    runs: dict[str, list[dict[str, Any]]] = {}
    for repeat in range(args.repeats):
        for clip_name, wav in (("silence", silence), ("speech", SPEECH)):
            for tree_name, tree in trees.items():  # interleaved: the same machine load for both
                result = measure(args.chromium, wav, tree, args.seconds)
                runs.setdefault(f"{tree_name}/{clip_name}", []).append(result)
                print(f"{repeat + 1} {tree_name:3} {clip_name:7} {result}", flush=True)
    summary = {
        key: {"packets_per_s": statistics.median(r["packets_per_s"] for r in rs),
              "kbit_per_s": statistics.median(r["kbit_per_s"] for r in rs), "fmtp": rs[-1]["fmtp"]}
        for key, rs in runs.items()
    }
    for key, value in summary.items():
        print(f"median {key:14} {value}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dtx.json").write_text(json.dumps({
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": hardware(),
        "runs": runs,
        "summary": summary,
    }, indent=2))


if __name__ == "__main__":
    main()
