"""SFU forwarding cost: unionhub's encoded forwarding vs aiortc MediaRelay (decode + re-encode).

Starts the hub as a subprocess per mode, joins N publishers (pre-encoded VP8 + Opus, nothing
encoded at run time) and M subscribers (receive encoded frames, never decode) from this process,
and measures over a window: the server's CPU seconds per forwarded stream-second, packet loss
(RTCP-style counts from each subscriber's receiver), one-way delay (send → arrival of the same
frame, same machine clock) and server memory.

    .venv/bin/python bench/sfu_forwarding.py --subscribers 1,2,4,8,16,32 --seconds 10

Writes docs/bench/sfu_forwarding.json and .png. Results: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from media_server.client import HubClient, Received, encode_test_audio, encode_test_video  # noqa: E402
from media_server.forwarding import EncodedFrame  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Trial:
    mode: str
    publishers: int
    subscribers: int
    streams: int  # forwarded media streams (each subscriber × publisher × kind)
    seconds: float
    server_cpu_s: float
    cpu_per_stream_second: float
    server_cpu_percent: float
    loadgen_cpu_percent: float
    packets_expected: int
    packets_lost: int
    loss_percent: float
    delay_p50_ms: float | None
    delay_p99_ms: float | None
    video_fps_received: float
    server_rss_mb: float
    rss_per_participant_mb: float


class Server:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Server:
        exe = Path(sys.executable).with_name("unionhub")
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(self.port), "--data-dir", "/tmp/unionhub-bench",
             "--media-mode", self.mode, "--log-level", "warning", "--max-participants", "500",
             "--asr-model", "none"],  # captions would compete for the CPU being measured
            stdout=subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(self.url + "/healthz") as r:
                        if r.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("server did not start")

    async def health(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url + "/healthz") as r:
                return dict(await r.json())

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)


async def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def receiver_packets(clients: list[HubClient]) -> tuple[int, int]:
    """(packets received, packets lost) summed over every subscriber's receivers."""
    received = lost = 0
    for c in clients:
        for t in c.pc.getTransceivers():
            if t.direction != "recvonly":
                continue
            stats = await t.receiver.getStats()
            for s in stats.values():
                if s.type == "inbound-rtp":
                    received += s.packetsReceived
                    lost += max(0, s.packetsLost)
    return received, lost


async def run_trial(
    server: Server, publishers: int, subscribers: int, seconds: float, clip: tuple[Any, Any]
) -> Trial:
    video, audio = clip
    room = f"bench{publishers}x{subscribers}"
    delays: list[float] = []
    measuring = False
    video_frames = 0
    pubs: list[HubClient] = []

    def on_frame(rec: Received, frame: EncodedFrame) -> None:
        nonlocal video_frames
        if not measuring:
            return
        digest = hashlib.sha1(frame.data).hexdigest()
        for p in pubs:
            track = p.tracks["camera" if rec.kind == "video" else "mic"]
            sent = track.sent.get(digest)  # type: ignore[attr-defined]
            if sent is not None:
                delays.append(time.monotonic() - sent)
                break
        if rec.kind == "video":
            video_frames += 1

    pubs = [HubClient(server.url, room, f"pub{i}", video=video, audio=audio) for i in range(publishers)]
    subs = [HubClient(server.url, room, f"sub{i}", on_frame=on_frame) for i in range(subscribers)]
    everyone = [*pubs, *subs]
    base_rss = proc_rss_mb(server.proc.pid)  # type: ignore[union-attr]
    for c in everyone:
        await c.join(timeout=30)
    per_client = publishers * 2
    ok = await wait_for(
        lambda: all(
            sum(1 for r in c.received.values() if r.frames) >= per_client - (2 if c in pubs else 0)
            for c in everyone
        ),
        timeout=60,
    )
    if not ok:
        print(f"  warning: not every stream flowing after 60 s ({room})", file=sys.stderr)
    for c in everyone:
        for rec in c.received.values():
            rec.keep = 0
            rec.frames.clear()
            rec.arrival.clear()
    await asyncio.sleep(2.0)  # warm-up
    pid = server.proc.pid  # type: ignore[union-attr]
    recv0, lost0 = await receiver_packets(everyone)
    cpu0, load0, t0 = proc_cpu_seconds(pid), time.process_time(), time.monotonic()
    measuring = True
    await asyncio.sleep(seconds)
    measuring = False
    cpu1, load1, t1 = proc_cpu_seconds(pid), time.process_time(), time.monotonic()
    recv1, lost1 = await receiver_packets(everyone)
    rss = proc_rss_mb(pid)
    elapsed = t1 - t0
    streams = publishers * 2 * (subscribers + publishers - 1)
    received, lost = recv1 - recv0, lost1 - lost0
    expected = received + lost
    for c in everyone:
        await c.close()
    for _ in range(100):
        if (await server.health())["peers"] == 0:
            break
        await asyncio.sleep(0.1)
    delays.sort()
    cpu = cpu1 - cpu0
    return Trial(
        mode=server.mode,
        publishers=publishers,
        subscribers=subscribers,
        streams=streams,
        seconds=round(elapsed, 2),
        server_cpu_s=round(cpu, 3),
        cpu_per_stream_second=cpu / (streams * elapsed),
        server_cpu_percent=round(100 * cpu / elapsed, 1),
        loadgen_cpu_percent=round(100 * (load1 - load0) / elapsed, 1),
        packets_expected=expected,
        packets_lost=lost,
        loss_percent=round(100 * lost / expected, 3) if expected else 100.0,
        delay_p50_ms=round(1000 * statistics.median(delays), 2) if delays else None,
        delay_p99_ms=round(1000 * delays[int(0.99 * (len(delays) - 1))], 2) if delays else None,
        video_fps_received=round(video_frames / elapsed / max(1, publishers * (subscribers + publishers - 1)), 1),
        server_rss_mb=round(rss, 1),
        rss_per_participant_mb=round((rss - base_rss) / (publishers + subscribers), 2),
    )


def hardware() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "machine": platform.machine()}


def plot(trials: list[Trial], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for mode in sorted({t.mode for t in trials}):
        ts = [t for t in trials if t.mode == mode]
        ax1.plot([t.subscribers for t in ts], [t.server_cpu_percent for t in ts], "o-", label=mode)
        ax2.plot([t.subscribers for t in ts], [1000 * t.cpu_per_stream_second for t in ts], "o-", label=mode)
    ax1.set_xlabel("subscribers")
    ax1.set_ylabel("server CPU (% of one core)")
    ax2.set_xlabel("subscribers")
    ax2.set_ylabel("CPU ms per forwarded stream-second")
    ax2.set_yscale("log")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("unionhub forwarding vs aiortc MediaRelay (VP8 + Opus, 1 room)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--publishers", type=int, default=1)
    parser.add_argument("--subscribers", default="1,2,4,8,16")
    parser.add_argument("--relay-max", type=int, default=8, help="largest M for the MediaRelay baseline")
    parser.add_argument("--modes", default="forward,relay")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--bitrate", type=int, default=600_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--name", default="sfu_forwarding")
    args = parser.parse_args()

    # what a browser sends for a VGA camera: 640x480, 30 fps, ~600 kbit/s, plus 32 kbit/s Opus
    clip = (encode_test_video(seconds=4, width=args.width, height=args.height, bit_rate=args.bitrate),
            encode_test_audio(seconds=4))
    trials: list[Trial] = []
    header = f"{'mode':8} {'subs':>4} {'streams':>7} {'srv CPU%':>8} {'ms/stream-s':>11} {'loss%':>6} {'p50 ms':>7} {'p99 ms':>7} {'fps':>5} {'MB/part':>7} {'gen CPU%':>8}"
    print(header)
    for mode in args.modes.split(","):
        async with Server(mode) as server:
            for m in [int(x) for x in args.subscribers.split(",")]:
                if mode == "relay" and m > args.relay_max:
                    continue
                t = await run_trial(server, args.publishers, m, args.seconds, clip)
                trials.append(t)
                print(f"{t.mode:8} {t.subscribers:>4} {t.streams:>7} {t.server_cpu_percent:>8} "
                      f"{1000 * t.cpu_per_stream_second:>11.3f} {t.loss_percent:>6} {t.delay_p50_ms!s:>7} "
                      f"{t.delay_p99_ms!s:>7} {t.video_fps_received:>5} {t.rss_per_participant_mb:>7} "
                      f"{t.loadgen_cpu_percent:>8}", flush=True)

    ratios = []
    for t in trials:
        if t.mode != "forward":
            continue
        base = next((b for b in trials if b.mode == "relay" and b.subscribers == t.subscribers), None)
        if base is not None and t.cpu_per_stream_second > 0:
            ratios.append(base.cpu_per_stream_second / t.cpu_per_stream_second)
    summary = {
        "median_relay_over_forward": round(statistics.median(ratios), 1) if ratios else None,
        "ratios": [round(r, 1) for r in ratios],
    }
    if ratios:
        print(f"MediaRelay / unionhub CPU per forwarded stream-second: median {summary['median_relay_over_forward']}x "
              f"(per M: {summary['ratios']})")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": hardware(),
        "trials": [asdict(t) for t in trials],
        "summary": summary,
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    plot(trials, args.out / f"{args.name}.png")
    print(f"wrote {args.out / (args.name + '.json')} and .png")


if __name__ == "__main__":
    asyncio.run(main())
