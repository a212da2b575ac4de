"""Signalling churn: many Socket.IO clients joining and leaving rooms, no media.

Starts ``unionhub serve`` as a subprocess on loopback and runs N python-socketio clients from this
process for a fixed time. Each client connects, then loops: join a random one of R rooms as a
listener (``audio: false, video: false``), stay a moment (sometimes chatting or raising a hand),
then leave — or, one time in five, drop the whole connection and reconnect. Every client stays
far below the server's per-socket rate limit (20 events/s): about two events a second at most.

Measured: errors (any ``error`` event, connect failure or join without ``joined`` — the goal is
0), join time (emit ``join`` → ``joined`` received) p50/p90/p99, joins/s, the hub's CPU (all
threads, % of one core) and memory, and whether anything is left on the hub afterwards.

    .venv/bin/python bench/churn.py --clients 200 --seconds 60

Writes docs/bench/churn.json and .png. Results: docs/BENCHMARKS.md ("Signalling churn").
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sfu_forwarding import free_port, proc_cpu_seconds, proc_rss_mb  # noqa: E402

JOIN_TIMEOUT = 10.0


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "python": platform.python_version(),
                            "machine": platform.machine()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Hypervisor vendor"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
    return info


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# -- the hub -------------------------------------------------------------------------------------


class Hub:
    def __init__(self, data_dir: Path, max_participants: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.max_participants = max_participants
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Hub:
        exe = Path(sys.executable).with_name("unionhub")
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
             "--log-level", "warning", "--max-participants", str(self.max_participants),
             "--asr-model", "none"],  # no speech model: signalling is what is measured
            stdout=subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"unionhub serve exited with {self.proc.returncode}")
                try:
                    async with session.get(self.url + "/healthz") as r:
                        if r.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("server did not start")

    async def health(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.get(self.url + "/healthz") as r:
            return dict(await r.json())

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# -- the clients -----------------------------------------------------------------------------


@dataclass
class Stats:
    joins: int = 0
    leaves: int = 0
    reconnects: int = 0
    chats: int = 0
    events_sent: int = 0
    join_ms: list[float] = field(default_factory=list)
    join_at: list[float] = field(default_factory=list)  # seconds since start, per completed join
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    error_examples: list[str] = field(default_factory=list)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_examples) < 20:
            self.error_examples.append(f"{kind}: {detail}"[:300])


class ChurnClient:
    def __init__(self, index: int, url: str, rooms: int, stats: Stats, rng: random.Random, t0: float) -> None:
        self.index = index
        self.url = url
        self.rooms = rooms
        self.stats = stats
        self.rng = rng
        self.t0 = t0
        self.sio: socketio.AsyncClient | None = None
        self.joined: asyncio.Future[Any] | None = None

    def _new_socket(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False)

        async def on_joined(data: Any) -> None:
            if self.joined is not None and not self.joined.done():
                self.joined.set_result(data)

        async def on_error(data: Any) -> None:
            code = data.get("code") if isinstance(data, dict) else repr(data)
            self.stats.error(f"error:{code}", f"client {self.index}: {data}")

        sio.on("joined", on_joined)
        sio.on("error", on_error)
        return sio

    async def _emit(self, event: str, data: Any) -> None:
        assert self.sio is not None
        self.stats.events_sent += 1
        await self.sio.emit(event, data)

    async def connect(self) -> bool:
        self.sio = self._new_socket()
        try:
            await self.sio.connect(self.url, transports=["websocket"], wait_timeout=JOIN_TIMEOUT)
            return True
        except Exception as exc:  # any failure to connect is counted
            self.stats.error("connect", f"client {self.index}: {exc!r}")
            return False

    async def run(self, deadline: float) -> None:
        while time.monotonic() < deadline and not await self.connect():
            await asyncio.sleep(1.0)
        while time.monotonic() < deadline:
            assert self.sio is not None
            room = f"churn-{self.rng.randrange(self.rooms)}"
            self.joined = asyncio.get_running_loop().create_future()
            start = time.perf_counter()
            await self._emit("join", {"room": room, "name": f"Client {self.index}", "lang": "en",
                                      "audio": False, "video": False})
            try:
                await asyncio.wait_for(self.joined, JOIN_TIMEOUT)
            except TimeoutError:
                self.stats.error("join-timeout", f"client {self.index} in {room}")
                await self._reconnect()
                continue
            self.stats.join_ms.append((time.perf_counter() - start) * 1000)
            self.stats.join_at.append(time.monotonic() - self.t0)
            self.stats.joins += 1
            await self._pause(self.rng.uniform(0.3, 2.0), deadline)  # in the room
            if self.rng.random() < 0.3:
                await self._emit("chat", {"text": f"hello from {self.index}"})
                self.stats.chats += 1
            if self.rng.random() < 0.2:
                await self._emit("hand", {"raised": True})
            await self._pause(self.rng.uniform(0.1, 0.5), deadline)
            if self.rng.random() < 0.2 and time.monotonic() < deadline:
                await self._reconnect()  # the tab closes / the network drops
            else:
                await self._emit("leave", {})
                self.stats.leaves += 1
            await self._pause(self.rng.uniform(0.1, 0.5), deadline)  # between meetings

    @staticmethod
    async def _pause(seconds: float, deadline: float) -> None:
        await asyncio.sleep(max(0.0, min(seconds, deadline - time.monotonic())))

    async def _reconnect(self) -> None:
        await self.close()
        self.stats.reconnects += 1
        while not await self.connect():
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self.sio is not None and self.sio.connected:
            try:
                await self.sio.disconnect()
            except Exception as exc:
                self.stats.error("disconnect", repr(exc))


# -- the run ---------------------------------------------------------------------------------


async def churn(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir)
    async with Hub(data_dir, max_participants=max(50, args.clients)) as hub:
        assert hub.proc is not None
        pid = hub.proc.pid
        rng = random.Random(args.seed)
        stats = Stats()
        t0 = time.monotonic()
        deadline = t0 + args.seconds
        clients = [ChurnClient(i, hub.url, args.rooms, stats, random.Random(rng.random()), t0)
                   for i in range(args.clients)]
        rss0 = proc_rss_mb(pid)
        loadavg0 = os.getloadavg()
        cpu0, load0 = proc_cpu_seconds(pid), time.process_time()
        samples: list[dict[str, float]] = []

        async def sample() -> None:
            last_cpu, last_t = cpu0, time.monotonic()
            while True:
                await asyncio.sleep(1.0)
                cpu, now = proc_cpu_seconds(pid), time.monotonic()
                samples.append({"t": round(now - t0, 2),
                                "hub_cpu_percent": round(100 * (cpu - last_cpu) / (now - last_t), 1),
                                "hub_rss_mb": round(proc_rss_mb(pid), 1)})
                last_cpu, last_t = cpu, now

        async def start(client: ChurnClient) -> None:
            await asyncio.sleep(args.ramp * client.index / max(1, args.clients))  # stagger the first connects
            await client.run(deadline)

        health_ms: list[float] = []

        async def probe() -> None:
            """/healthz round trips: how responsive the hub's event loop is under the churn."""
            async with aiohttp.ClientSession() as session:
                while True:
                    start = time.perf_counter()
                    try:
                        async with session.get(hub.url + "/healthz") as r:
                            await r.read()
                        health_ms.append((time.perf_counter() - start) * 1000)
                    except aiohttp.ClientError as exc:
                        stats.error("healthz", repr(exc))
                    await asyncio.sleep(0.2)

        sampler = asyncio.create_task(sample())
        prober = asyncio.create_task(probe())
        await asyncio.gather(*(start(c) for c in clients))
        elapsed = time.monotonic() - t0
        cpu1, load1 = proc_cpu_seconds(pid), time.process_time()
        sampler.cancel()
        prober.cancel()
        rss1 = proc_rss_mb(pid)
        loadavg1 = os.getloadavg()
        await asyncio.gather(*(c.close() for c in clients))
        left: dict[str, Any] = {}
        for _ in range(100):  # the hub cleans up after disconnects
            left = await hub.health()
            if left.get("rooms") == 0 and left.get("peers") == 0:
                break
            await asyncio.sleep(0.1)

    join_ms = stats.join_ms
    errors = sum(stats.errors.values())
    result = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "hardware": hardware(),
        "params": {"clients": args.clients, "rooms": args.rooms, "seconds": args.seconds, "ramp_s": args.ramp,
                   "seed": args.seed},
        "summary": {
            "seconds": round(elapsed, 2),
            "joins": stats.joins,
            "leaves": stats.leaves,
            "reconnects": stats.reconnects,
            "chats": stats.chats,
            "events_sent": stats.events_sent,
            "joins_per_s": round(stats.joins / elapsed, 1) if elapsed else 0.0,
            "events_per_s": round(stats.events_sent / elapsed, 1) if elapsed else 0.0,
            "join_ms_p50": _r(percentile(join_ms, 0.50)),
            "join_ms_p90": _r(percentile(join_ms, 0.90)),
            "join_ms_p99": _r(percentile(join_ms, 0.99)),
            "join_ms_max": _r(max(join_ms) if join_ms else None),
            "join_ms_mean": _r(statistics.fmean(join_ms) if join_ms else None),
            "healthz_ms_p50": _r(percentile(health_ms, 0.50)),
            "healthz_ms_p99": _r(percentile(health_ms, 0.99)),
            "errors": errors,
            "errors_by_kind": dict(stats.errors),
            "hub_cpu_percent": round(100 * (cpu1 - cpu0) / elapsed, 1) if elapsed else 0.0,
            "hub_cpu_percent_max_1s": max((s["hub_cpu_percent"] for s in samples), default=None),
            "loadgen_cpu_percent": round(100 * (load1 - load0) / elapsed, 1) if elapsed else 0.0,
            "hub_rss_mb_start": round(rss0, 1),
            "hub_rss_mb_end": round(rss1, 1),
            "left_on_hub_after": {k: left.get(k) for k in ("rooms", "peers")},
            # the machine's 1-minute load average before/after: other work on it skews the figures
            "loadavg_1min_before_after": [round(loadavg0[0], 2), round(loadavg1[0], 2)],
        },
        "error_examples": stats.error_examples,
        "samples": samples,
        "join_ms": [round(v, 2) for v in join_ms],
        "join_at_s": [round(v, 2) for v in stats.join_at],
    }
    return result


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def print_table(result: dict[str, Any]) -> None:
    s = result["summary"]
    p = result["params"]
    rows = [
        ("clients × rooms", f"{p['clients']} × {p['rooms']}"),
        ("duration", f"{s['seconds']} s"),
        ("joins (leaves, reconnects)", f"{s['joins']} ({s['leaves']}, {s['reconnects']})"),
        ("joins/s", f"{s['joins_per_s']}"),
        ("events/s sent", f"{s['events_per_s']}"),
        ("join → joined p50 / p90 / p99 / max", f"{s['join_ms_p50']} / {s['join_ms_p90']} / {s['join_ms_p99']} / "
                                                f"{s['join_ms_max']} ms"),
        ("GET /healthz meanwhile p50 / p99", f"{s['healthz_ms_p50']} / {s['healthz_ms_p99']} ms"),
        ("errors", f"{s['errors']} {s['errors_by_kind'] or ''}"),
        ("hub CPU (mean / max 1 s)", f"{s['hub_cpu_percent']} % / {s['hub_cpu_percent_max_1s']} % of one core"),
        ("load generator CPU", f"{s['loadgen_cpu_percent']} % of one core"),
        ("hub RSS start → end", f"{s['hub_rss_mb_start']} → {s['hub_rss_mb_end']} MB"),
        ("left on the hub after", f"{s['left_on_hub_after']}"),
        ("machine load average before → after", " → ".join(map(str, s["loadavg_1min_before_after"]))),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nSignalling churn")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


def to_json(result: dict[str, Any]) -> str:
    """Indented, with the long per-join and per-second series on one line each."""
    series = ("samples", "join_ms", "join_at_s")
    head = json.dumps({k: v for k, v in result.items() if k not in series}, indent=1)
    tail = ",\n".join(f' "{k}": {json.dumps(result[k], separators=(",", ":"))}' for k in series if k in result)
    return head[:-2] + ",\n" + tail + "\n}\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["summary"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    at, ms = result["join_at_s"], result["join_ms"]
    if at:
        bins = max(1, int(result["summary"]["seconds"]))
        counts = collections.Counter(int(t) for t in at)
        xs = list(range(bins + 1))
        left.bar(xs, [counts.get(x, 0) for x in xs], width=1.0, color="tab:blue", alpha=0.6, label="joins/s")
    left.set_xlabel("seconds")
    left.set_ylabel("joins per second")
    cpu = left.twinx()
    cpu.plot([x["t"] for x in result["samples"]], [x["hub_cpu_percent"] for x in result["samples"]],
             color="tab:red", label="hub CPU %")
    cpu.set_ylabel("hub CPU (% of one core)")
    cpu.set_ylim(bottom=0)
    left.set_title(f"{result['params']['clients']} clients, {result['params']['rooms']} rooms: joins/s and hub CPU")
    handles = left.get_legend_handles_labels()[0] + cpu.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + cpu.get_legend_handles_labels()[1]
    left.legend(handles, labels, loc="lower right")
    if ms:
        ordered = sorted(ms)
        right.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], color="tab:blue")
        for q, style in (("p50", "--"), ("p99", ":")):
            value = s[f"join_ms_{q}"]
            right.axvline(value, color="grey", linestyle=style, label=f"{q} {value} ms")
        right.set_xscale("log")
        right.legend(loc="lower right")
    right.set_xlabel("join → joined (ms, log)")
    right.set_ylabel("fraction of joins")
    right.set_title(f"join time ({s['joins']} joins, {s['errors']} errors)")
    right.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which the clients first connect")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--data-dir", default="/tmp/unionhub-bench-churn")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = parser.parse_args()
    if args.clients < 1 or args.rooms < 1 or args.seconds <= 0:
        parser.error("--clients, --rooms and --seconds must be positive")

    result = asyncio.run(churn(args))
    print_table(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "churn.json").write_text(to_json(result))
    plot(result, args.out / "churn.png")
    print(f"\nwrote {args.out / 'churn.json'} and churn.png")


if __name__ == "__main__":
    main()
