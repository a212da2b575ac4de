"""SFU forwarding cost: unionhub's encoded forwarding vs aiortc MediaRelay vs Janus VideoRoom.

Starts each server as a subprocess (the hub once per media mode: ``forward`` is unionhub,
``relay`` is aiortc MediaRelay decoding and re-encoding; ``janus`` is Debian's Janus 1.1.2
VideoRoom, see ``bench/janus.py``), joins N publishers (pre-encoded VP8 + Opus, nothing encoded
at run time) and M subscribers (receive encoded frames, never decode) from this process, and
measures over a window: the server's CPU seconds per forwarded stream-second, packet loss
(RTCP-style counts from each subscriber's receiver), one-way delay (send → arrival of the same
frame, same machine clock) and server memory. With ``--repeats R`` every (M, mode) trial runs R
times, modes interleaved, and the table, plot and summary use per-(mode, M) medians. Mode
``forward-old`` runs the hub from another checkout (``--old-tree``) beside this one, for
before/after comparisons of a change under the same machine load.

    .venv/bin/python bench/sfu_forwarding.py --subscribers 1,2,4,8,16,32,64 --relay-max 8 --seconds 10 --repeats 3

Writes docs/bench/sfu_forwarding.json and .png. Results: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
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

from bench.janus import JanusPublisher, JanusServer, JanusSubscriber  # noqa: E402
from media_server.forwarding import EncodedFrame  # noqa: E402
from testkit.rtc_client import HubClient, Received, encode_test_audio, encode_test_video  # noqa: E402

logger = logging.getLogger(__name__)
Participant = HubClient | JanusPublisher | JanusSubscriber

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
    repeat: int
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
    flowing: bool = True  # every stream delivered frames before the window (else the trial is void)
    load_average: float = 0.0  # 1-minute load average at the end of the window (shared machine)


class Server:
    """The hub as a subprocess. ``tree``: run another checkout's code (A/B against an old commit)."""

    def __init__(self, mode: str, tree: Path | None = None) -> None:
        self.mode = mode if tree is None else f"{mode}-old"
        self.media_mode = mode
        self.tree = tree
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Server:
        exe = Path(sys.executable).with_name("unionhub")
        env = dict(os.environ)
        if self.tree is not None:
            env["PYTHONPATH"] = str(self.tree)  # ahead of the editable install of this tree
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(self.port), "--data-dir", f"/tmp/unionhub-bench-{self.mode}",
             "--media-mode", self.media_mode, "--log-level", "warning", "--max-participants", "500",
             "--asr-model", "none"],  # captions would compete for the CPU being measured
            env=env,
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


async def receiver_packets(clients: list[Participant]) -> tuple[int, int]:
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


async def join_all(
    server: Server | JanusServer, room: str, publishers: int, subscribers: int, clip: tuple[Any, Any],
    on_frame: Any,
) -> tuple[list[Participant], list[Participant]]:
    """Create and join publishers, then subscribers (Janus subscribers need the feed ids)."""
    video, audio = clip
    if isinstance(server, JanusServer):
        jpubs = [JanusPublisher(server.url, room, f"pub{i}", video, audio) for i in range(publishers)]
        for p in jpubs:
            await p.join(timeout=30)
        feeds = [p.feed for p in jpubs if p.feed is not None]
        jsubs = [JanusSubscriber(server.url, room, feeds, f"sub{i}", on_frame) for i in range(subscribers)]
        for s in jsubs:
            await s.join(timeout=30)
        return list(jpubs), list(jsubs)
    pubs = [HubClient(server.url, room, f"pub{i}", video=video, audio=audio) for i in range(publishers)]
    subs = [HubClient(server.url, room, f"sub{i}", on_frame=on_frame) for i in range(subscribers)]
    for c in [*pubs, *subs]:
        await c.join(timeout=30)
    return list(pubs), list(subs)


async def run_trial(
    server: Server | JanusServer, publishers: int, subscribers: int, seconds: float, clip: tuple[Any, Any],
    repeat: int = 0,
) -> Trial:
    room = f"bench{publishers}x{subscribers}r{repeat}"
    delays: list[float] = []
    measuring = False
    video_frames = 0
    pubs: list[Participant] = []

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

    janus = isinstance(server, JanusServer)
    base_rss = proc_rss_mb(server.proc.pid)  # type: ignore[union-attr]
    pubs, subs = await join_all(server, room, publishers, subscribers, clip, on_frame)
    everyone = [*pubs, *subs]
    # unionhub publishers also receive each other; in Janus they subscribe to nobody here
    receivers = subscribers if janus else subscribers + publishers - 1
    per_client = publishers * 2
    ok = await wait_for(
        lambda: all(
            sum(1 for r in c.received.values() if r.frames)
            >= (0 if janus and c in pubs else per_client - (2 if c in pubs else 0))
            for c in everyone
        ),
        timeout=60,
    )
    if not ok:
        print(f"  warning: not every stream flowing after 60 s ({room}); trial void", file=sys.stderr)
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
    streams = publishers * 2 * receivers
    received, lost = recv1 - recv0, lost1 - lost0
    expected = received + lost
    for c in everyone:
        await c.close()
    if isinstance(server, Server):
        for _ in range(100):
            if (await server.health())["peers"] == 0:
                break
            await asyncio.sleep(0.1)
    else:
        await asyncio.sleep(1.0)  # Janus tears handles down asynchronously
    delays.sort()
    cpu = cpu1 - cpu0
    return Trial(
        mode=server.mode,
        repeat=repeat,
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
        video_fps_received=round(video_frames / elapsed / max(1, publishers * receivers), 1),
        server_rss_mb=round(rss, 1),
        rss_per_participant_mb=round((rss - base_rss) / (publishers + subscribers), 2),
        flowing=ok,
        load_average=round(os.getloadavg()[0], 2),
    )


def hardware() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "machine": platform.machine()}


MODE_LABELS = {"forward": "unionhub", "relay": "aiortc MediaRelay", "janus": "Janus 1.1.2 VideoRoom",
               "forward-old": "unionhub (--old-tree)"}


def median_trial(ts: list[Trial]) -> Trial:
    """Per-field median of repeated trials of one (mode, M): the noise on 2 shared vCPUs is large."""
    first = asdict(ts[0])
    out: dict[str, Any] = {}
    for key, value in first.items():
        values = [getattr(t, key) for t in ts]
        if key in ("mode", "publishers", "subscribers", "streams") or isinstance(value, str):
            out[key] = value
        elif key == "flowing":
            out[key] = all(values)
        elif key == "repeat":
            out[key] = len(ts)  # in the medians: how many repeats went into them
        else:
            present = [v for v in values if v is not None]
            out[key] = statistics.median(present) if present else None
    return Trial(**out)


def medians(trials: list[Trial]) -> list[Trial]:
    """Per (mode, M) medians over the trials whose streams all flowed (void ones only if all are)."""
    groups: dict[tuple[str, int], list[Trial]] = {}
    for t in trials:
        groups.setdefault((t.mode, t.subscribers), []).append(t)
    return [median_trial([t for t in ts if t.flowing] or ts) for ts in groups.values()]


def mode_summary(ts: list[Trial]) -> dict[str, Any]:
    """Capacity figures for one mode from its per-M medians."""
    ts = sorted(ts, key=lambda t: t.subscribers)
    out: dict[str, Any] = {"subscribers": [t.subscribers for t in ts]}
    if len(ts) >= 2:
        # marginal cost: slope of server cores used against forwarded streams
        slope = statistics.linear_regression([t.streams for t in ts], [t.server_cpu_percent / 100 for t in ts]).slope
        out["streams_per_core_marginal"] = round(1 / slope) if slope > 0 else None
    out["streams_per_core_at_max_m"] = round(1 / ts[-1].cpu_per_stream_second) if ts[-1].cpu_per_stream_second else None
    p99 = [t.delay_p99_ms for t in ts if t.delay_p99_ms is not None]
    out["delay_p99_ms_median_over_m"] = round(statistics.median(p99), 1) if p99 else None
    out["delay_p99_ms_max"] = max(p99) if p99 else None
    ok = None
    for t in ts:
        if t.loss_percent > 1.0 or not t.flowing:
            break
        ok = t
    out["max_subscribers_loss_le_1pct"] = ok.subscribers if ok else 0
    out["first_m_over_1pct_loss"] = next((t.subscribers for t in ts if t.loss_percent > 1.0 or not t.flowing), None)
    if ok is not None and ok.server_cpu_percent > 0:
        # how many such subscribers one core would carry at that per-subscriber cost
        out["subscribers_per_core_at_that_m"] = round(ok.subscribers / (ok.server_cpu_percent / 100))
    return out


def ratio_list(table: list[Trial], num: str, den: str) -> list[tuple[int, float]]:
    """Per M: num's CPU per stream-second over den's, where both ran."""
    out = []
    for t in table:
        if t.mode != num:
            continue
        base = next((b for b in table if b.mode == den and b.subscribers == t.subscribers), None)
        if base is not None and base.cpu_per_stream_second > 0:
            out.append((t.subscribers, t.cpu_per_stream_second / base.cpu_per_stream_second))
    return out


def summarize(table: list[Trial]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    relay = [(m, 1 / r) for m, r in ratio_list(table, "forward", "relay") if r > 0]
    summary["median_relay_over_forward"] = round(statistics.median([r for _, r in relay]), 1) if relay else None
    summary["ratios"] = [round(r, 1) for _, r in relay]
    janus = ratio_list(table, "forward", "janus")
    summary["median_forward_over_janus"] = round(statistics.median([r for _, r in janus]), 2) if janus else None
    summary["forward_over_janus_by_m"] = {str(m): round(r, 2) for m, r in janus}
    old = ratio_list(table, "forward", "forward-old")
    if old:
        summary["median_forward_over_old"] = round(statistics.median([r for _, r in old]), 2)
        summary["forward_over_old_by_m"] = {str(m): round(r, 2) for m, r in old}
    summary["modes"] = {mode: mode_summary([t for t in table if t.mode == mode])
                        for mode in sorted({t.mode for t in table})}
    fwd = summary["modes"].get("forward", {})
    summary["goals"] = {
        "forward_over_janus_le_2": None if not janus else summary["median_forward_over_janus"] <= 2.0,
        "forward_over_relay_le_1_30": None if not relay else summary["median_relay_over_forward"] >= 30,
        "streams_per_core_ge_300": None if fwd.get("streams_per_core_marginal") is None
        else fwd["streams_per_core_marginal"] >= 300,
        "delay_p99_le_40ms": None if fwd.get("delay_p99_ms_max") is None else fwd["delay_p99_ms_max"] <= 40,
    }
    return summary


def plot(trials: list[Trial], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
    for mode in sorted({t.mode for t in trials}):
        ts = sorted((t for t in trials if t.mode == mode), key=lambda t: t.subscribers)
        label = MODE_LABELS.get(mode, mode)
        m = [t.subscribers for t in ts]
        ax1.plot(m, [t.server_cpu_percent for t in ts], "o-", label=label)
        ax2.plot(m, [1000 * t.cpu_per_stream_second for t in ts], "o-", label=label)
        delays = [(t.subscribers, t.delay_p99_ms) for t in ts if t.delay_p99_ms is not None]
        if delays:
            ax3.plot([d[0] for d in delays], [d[1] for d in delays], "o-", label=label)
    ax1.set_ylabel("server CPU (% of one core)")
    ax2.set_ylabel("CPU ms per forwarded stream-second")
    ax2.set_yscale("log")
    ax3.set_ylabel("one-way delay p99 (ms)")
    ax3.set_yscale("log")
    for ax in (ax1, ax2, ax3):
        ax.set_xlabel("subscribers")
        ax.set_xscale("log", base=2)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("SFU forwarding: unionhub vs aiortc MediaRelay vs Janus VideoRoom (VP8 + Opus, 1 publisher, medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def row(t: Trial) -> str:
    return (f"{t.mode:8} {t.subscribers:>4} {t.streams:>7} {t.server_cpu_percent:>8.1f} "
            f"{1000 * t.cpu_per_stream_second:>11.3f} {t.loss_percent:>6.2f} {t.delay_p50_ms!s:>7} "
            f"{t.delay_p99_ms!s:>7} {t.video_fps_received:>5} {t.rss_per_participant_mb:>7} "
            f"{t.loadgen_cpu_percent:>8} {t.load_average:>5}{'' if t.flowing else ' VOID'}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--publishers", type=int, default=1)
    parser.add_argument("--subscribers", default="1,2,4,8,16")
    parser.add_argument("--relay-max", type=int, default=8, help="largest M for the MediaRelay baseline")
    parser.add_argument("--modes", default="forward,relay,janus",
                        help="comma-separated: forward, relay, janus, forward-old (needs --old-tree)")
    parser.add_argument("--old-tree", type=Path,
                        help="for mode forward-old: a checkout of an earlier commit (git archive REV | tar -x -C DIR)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=1, help="runs per (mode, M); results use the medians")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--bitrate", type=int, default=600_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--name", default="sfu_forwarding")
    parser.add_argument("--from-json", type=Path, help="re-summarize a previous run's trials instead of running")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODE_LABELS)
    if unknown:
        parser.error(f"unknown modes: {sorted(unknown)}")
    if "forward-old" in modes and args.old_tree is None:
        parser.error("mode forward-old needs --old-tree")

    if args.from_json is not None:
        previous = json.loads(args.from_json.read_text())
        fields = set(Trial.__dataclass_fields__)
        trials = [Trial(**({"flowing": t["packets_expected"] > 0} | {k: v for k, v in t.items() if k in fields}))
                  for t in previous["trials"]]
        modes = list(dict.fromkeys(t.mode for t in trials))
        report(trials, modes, args, previous["command"], previous["date"], previous.get("repeats", 1))
        return

    # what a browser sends for a VGA camera: 640x480, 30 fps, ~600 kbit/s, plus 32 kbit/s Opus
    clip = (encode_test_video(seconds=4, width=args.width, height=args.height, bit_rate=args.bitrate),
            encode_test_audio(seconds=4))
    trials: list[Trial] = []
    header = (f"{'mode':8} {'subs':>4} {'streams':>7} {'srv CPU%':>8} {'ms/stream-s':>11} {'loss%':>6} "
              f"{'p50 ms':>7} {'p99 ms':>7} {'fps':>5} {'MB/part':>7} {'gen CPU%':>8} {'load':>5}")
    print(header)
    async with contextlib.AsyncExitStack() as stack:
        # every server stays up for the whole run so repeats interleave modes under the same load
        servers: dict[str, Server | JanusServer] = {}
        for mode in modes:
            server: Server | JanusServer = (
                JanusServer(free_port()) if mode == "janus"
                else Server("forward", args.old_tree) if mode == "forward-old" else Server(mode)
            )
            servers[mode] = await stack.enter_async_context(server)
        for repeat in range(args.repeats):
            for m in [int(x) for x in args.subscribers.split(",")]:
                for mode in modes if repeat % 2 == 0 else modes[::-1]:  # no mode always goes first
                    if mode == "relay" and m > args.relay_max:
                        continue
                    t = await run_trial(servers[mode], args.publishers, m, args.seconds, clip, repeat)
                    trials.append(t)
                    print(row(t), flush=True)
    report(trials, modes, args, " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
           time.strftime("%Y-%m-%d %H:%M:%S %Z"), args.repeats)


def markdown(table: list[Trial]) -> str:
    """The per-M table for docs/BENCHMARKS.md: every mode side by side."""
    by = {(t.mode, t.subscribers): t for t in table}
    modes = [m for m in MODE_LABELS if any(t.mode == m for t in table)]
    head = ["M subs", "streams"]
    for m in modes:
        head += [f"{m} CPU %", f"{m} ms CPU / stream-s"]
    head += ["unionhub / Janus", "forward delay p50 / p99 ms", "janus delay p50 / p99 ms", "forward loss %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for m in sorted({t.subscribers for t in table}):
        f, j = by.get(("forward", m)), by.get(("janus", m))
        cells = [str(m), str((f or j or table[0]).streams)]
        for mode in modes:
            t = by.get((mode, m))
            cells += [f"{t.server_cpu_percent:.1f}", f"{1000 * t.cpu_per_stream_second:.2f}"] if t else ["—", "—"]
        cells.append(f"{f.cpu_per_stream_second / j.cpu_per_stream_second:.2f}×" if f and j else "")
        for t in (f, j):
            cells.append(f"{t.delay_p50_ms:.1f} / {t.delay_p99_ms:.0f}" if t and t.delay_p50_ms is not None else "")
        cells.append(f"{f.loss_percent:.2f}" if f else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(trials: list[Trial], modes: list[str], args: argparse.Namespace, command: str, date: str,
           repeats: int) -> None:
    """Medians, summary, JSON and plot for a finished run."""
    table = sorted(medians(trials), key=lambda t: (modes.index(t.mode), t.subscribers))
    if repeats > 1:
        print(f"medians over {repeats} repeats:")
        for t in table:
            print(row(t))
    summary = summarize(table)
    if summary["ratios"]:
        print(f"MediaRelay / unionhub CPU per forwarded stream-second: median {summary['median_relay_over_forward']}x "
              f"(per M: {summary['ratios']})")
    if summary["median_forward_over_janus"] is not None:
        print(f"unionhub / Janus CPU per forwarded stream-second: median {summary['median_forward_over_janus']}x "
              f"(per M: {summary['forward_over_janus_by_m']})")
    if "median_forward_over_old" in summary:
        print(f"unionhub / unionhub --old-tree CPU per forwarded stream-second: median "
              f"{summary['median_forward_over_old']}x (per M: {summary['forward_over_old_by_m']})")
    for mode, ms in summary["modes"].items():
        print(f"{mode}: {ms}")
    print(f"goals: {summary['goals']}")
    print(markdown(table))
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "command": command,
        "date": date,
        "hardware": hardware(),
        "repeats": repeats,
        "table": [asdict(t) for t in table],
        "trials": [asdict(t) for t in trials],
        "summary": summary,
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    plot(table, args.out / f"{args.name}.png")
    print(f"wrote {args.out / (args.name + '.json')} and .png")


if __name__ == "__main__":
    asyncio.run(main())
