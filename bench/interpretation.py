"""Simultaneous interpretation (issue #14): what a channel costs the hub, and how long a listener
waits between picking a channel and hearing it.

1. **CPU per channel** (aiortc clients, the hub a ``unionhub serve`` subprocess): a floor
   publisher, ``--per-lang`` listeners for each of three languages (light receivers: counted, not
   decoded) and, for K = 0..3, K live interpreters (one per language, a continuous tone). The
   hub's CPU (its process's user + system time over ``--seconds``) at each K; what a channel adds
   is the slope. Listeners of a language without a channel hear the floor only.
2. **Switching delay in Chromium**: three browsers — the floor (440 Hz tone), a live Spanish
   interpreter (880 Hz), an English listener. The listener picks "es" in its channel menu ``--runs``
   times (and "floor" again in between); measured in the page from the ``change`` to the first
   animation frame whose Web Audio mix (the page's AnalyserNode) holds the 880 Hz tone: the
   hub's renegotiation, ICE/DTLS-free track start on the existing connection, the first packets
   and the analyser's window.

    .venv/bin/python bench/interpretation.py --runs 20 --seconds 20

Writes docs/bench/interpretation.json; results in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from join_time import CHROMIUM_ARGS, start_server  # noqa: E402
from sfu_forwarding import free_port, hardware  # noqa: E402
from testkit.rtc_client import HubClient, encode_test_audio  # noqa: E402

LANGS = ("es", "pt", "ar")
TICKS = os.sysconf("SC_CLK_TCK")

HEAR_JS = """async () => {
  const mod = await import('/static/interpretation.js');
  const select = document.querySelector('[data-testid="audio-channel"]');
  select.value = 'es';
  const t0 = performance.now();
  select.dispatchEvent(new Event('change'));
  const analyser = mod.mixAnalyser();
  const bins = new Float32Array(analyser.frequencyBinCount);
  const bin = Math.round(880 / (analyser.context.sampleRate / analyser.fftSize));
  return await new Promise((resolve) => {
    const look = () => {
      analyser.getFloatFrequencyData(bins);
      if (Math.max(...bins.slice(bin - 2, bin + 3)) > -60) resolve(performance.now() - t0);
      else if (performance.now() - t0 > 10000) resolve(null);
      else requestAnimationFrame(look);
    };
    look();
  });
}"""

BACK_TO_FLOOR_JS = """async (id) => {
  const select = document.querySelector('[data-testid="audio-channel"]');
  select.value = 'floor';
  select.dispatchEvent(new Event('change'));
  const t0 = performance.now();
  while (document.querySelector(`#audio-sink audio[data-participant="${id}"]`)) {
    if (performance.now() - t0 > 10000) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 500));
  return true;
}"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def cpu_per_channel(url: str, pid: int, per_lang: int, seconds: float) -> list[dict[str, Any]]:
    floor_tone = encode_test_audio(seconds=4, hz=440)
    tone = encode_test_audio(seconds=4, hz=880)
    floor = HubClient(url, "bench-interp", "Floor", audio=floor_tone)
    clients = [floor]
    await floor.join()
    listeners = [HubClient(url, "bench-interp", f"{lang}-{i}", lang=lang, light=True)
                 for lang in LANGS for i in range(per_lang)]
    for listener in listeners:
        await listener.join()
        clients.append(listener)
    results = []
    try:
        for k in range(len(LANGS) + 1):
            if k:
                interpreter = HubClient(url, "bench-interp", f"Interpreter {LANGS[k - 1]}", lang=LANGS[k - 1], audio=tone)
                await interpreter.join()
                clients.append(interpreter)
                await floor.sio.call("interpreter", {"id": interpreter.id, "lang": LANGS[k - 1]}, timeout=10)
                await interpreter.sio.call("booth", {"action": "live"}, timeout=10)
            await asyncio.sleep(3.0)  # renegotiated, flowing
            before, t0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(seconds)
            used = (cpu_seconds(pid) - before) / (time.monotonic() - t0)
            results.append({"channels": k, "listeners": len(listeners), "hub_cpu": round(used, 4)})
            print(f"{k} channels: hub CPU {100 * used:.1f} % of a core", flush=True)
    finally:
        for client in clients:
            await client.close()
    return results


def write_tone(path: Path, hz: float, seconds: float = 30.0) -> Path:
    t = np.arange(int(48_000 * seconds)) / 48_000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes((0.25 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16).tobytes())
    return path


def switching_delay(url: str, chromium: str, runs: int, tmp: Path) -> list[float]:
    from playwright.sync_api import sync_playwright

    def joined(page: Any) -> str:
        page.wait_for_function("() => window.unionhub && window.unionhub.state.myId", timeout=30_000)
        return str(page.evaluate("() => window.unionhub.state.myId"))

    delays: list[float] = []
    with sync_playwright() as pw:
        def browser(hz: float | None) -> Any:
            extra = [f"--use-file-for-fake-audio-capture={write_tone(tmp / f'{hz}.wav', hz)}"] if hz else []
            return pw.chromium.launch(executable_path=chromium, args=[*CHROMIUM_ARGS, *extra])

        floor = browser(440).new_context().new_page()
        floor.goto(f"{url}/r/switch?name=Floor&lang=en&video=0")
        joined(floor)
        lucia = browser(880).new_context().new_page()
        lucia.goto(f"{url}/r/switch?name=Lucia&lang=es&video=0")
        lucia_id = joined(lucia)
        listener = browser(None).new_context().new_page()
        listener.goto(f"{url}/r/switch?name=Ed&lang=en&audio=0&video=0")
        joined(listener)
        floor.locator('[data-testid="participant"][data-name="Lucia"] [data-testid="host-interpreter"]').select_option("es")
        lucia.get_by_test_id("booth-live").click()
        listener.wait_for_function(  # the channel exists and Lucia is live in it
            """() => [...document.querySelectorAll('[data-testid="audio-channel"] option')]
                .some((o) => o.value === 'es' && o.textContent.endsWith('Lucia'))""", timeout=30_000)
        listener.wait_for_timeout(2000)
        for _ in range(runs):
            delay = listener.evaluate(HEAR_JS)
            if delay is None:
                raise RuntimeError("the interpreter was not heard within 10 s")
            delays.append(round(float(delay), 1))
            print(f"switch: {delay:.0f} ms", flush=True)
            if not listener.evaluate(BACK_TO_FLOOR_JS, lucia_id):
                raise RuntimeError("the interpreter's audio did not stop on the floor")
    return delays


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--per-lang", type=int, default=4, help="listeners per language")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="unionhub-bench-interp-") as tmp:
        server = start_server(port, Path(tmp) / "data")
        url = f"http://127.0.0.1:{port}"
        try:
            cpu = asyncio.run(cpu_per_channel(url, server.pid, args.per_lang, args.seconds))
            delays = switching_delay(url, args.chromium, args.runs, Path(tmp))
        finally:
            server.terminate()
            server.wait(10)
    slope = (cpu[-1]["hub_cpu"] - cpu[0]["hub_cpu"]) / (len(cpu) - 1)
    result = {
        "hardware": hardware(),
        "cpu": cpu,
        "cpu_per_channel": round(slope, 4),
        "switch_ms": delays,
        "switch_p50_ms": statistics.median(delays),
        "switch_p95_ms": percentile(delays, 95),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "interpretation.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"per channel (with {args.per_lang} listeners): +{100 * slope:.1f} % of a core; "
          f"switching p50 {result['switch_p50_ms']:.0f} ms, p95 {result['switch_p95_ms']:.0f} ms")


if __name__ == "__main__":
    main()
