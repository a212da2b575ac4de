"""Join time in Chromium: opening a room link → first frame of a remote video on screen.

One browser publishes its fake camera in a room; a second browser opens the room link N times
(a fresh context each time). Measured in the joining page, from navigation start to the first
remote <video> with decoded frames (videoWidth > 0, currentTime > 0), polled every animation frame.

    .venv/bin/python bench/join_time.py --runs 10

Writes docs/bench/join_time.json and .png; results in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from sfu_forwarding import free_port, hardware  # noqa: E402

CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--no-sandbox",
    "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
]

FIRST_FRAME_JS = """() => {
  const v = [...document.querySelectorAll('[data-testid="remote-video"]')]
      .find((el) => el.videoWidth > 0 && el.currentTime > 0);
  return v ? performance.now() : null;
}"""


def start_server(port: int, data: Path, tree: Path | None = None) -> subprocess.Popen[bytes]:
    """`unionhub serve` without captions; ``tree``: run an earlier checkout's code instead."""
    exe = Path(sys.executable).with_name("unionhub")
    env = {**os.environ, "PYTHONPATH": str(tree)} if tree is not None else None  # ahead of this tree
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port), "--data-dir", str(data), "--asr-model", "none",
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL, env=env,
    )
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    port = free_port()
    server = start_server(port, Path("/tmp/unionhub-bench-join"))
    url = f"http://127.0.0.1:{port}"
    times: list[float] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            host = browser.new_context().new_page()
            host.goto(f"{url}/r/jointime?name=Host&lang=en")
            host.wait_for_selector('[data-testid="participant"]', timeout=30_000)
            for i in range(args.runs):
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{url}/r/jointime?name=Guest{i}&lang=en&audio=0")
                handle = page.wait_for_function(FIRST_FRAME_JS, polling="raf", timeout=30_000)
                ms = float(handle.json_value())
                times.append(ms)
                print(f"run {i + 1}: {ms:.0f} ms", flush=True)
                context.close()
                time.sleep(0.5)
            browser.close()
    finally:
        server.terminate()
        server.wait(10)

    times_sorted = sorted(times)
    summary = {
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(times_sorted[int(0.9 * (len(times) - 1))], 1),
        "min_ms": round(times_sorted[0], 1),
        "max_ms": round(times_sorted[-1], 1),
    }
    print(f"join → first remote frame: median {summary['median_ms']} ms, p90 {summary['p90_ms']} ms "
          f"({len(times)} runs)")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": hardware(),
        "runs_ms": times,
        "summary": summary,
    }
    (args.out / "join_time.json").write_text(json.dumps(result, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(range(1, len(times) + 1), times, "o-")
    ax.axhline(summary["median_ms"], color="grey", linestyle="--", label=f"median {summary['median_ms']} ms")
    ax.set_xlabel("run")
    ax.set_ylabel("ms to first remote frame")
    ax.set_title("Chromium: open room link → first remote video frame")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out / "join_time.png", dpi=90)


if __name__ == "__main__":
    main()
