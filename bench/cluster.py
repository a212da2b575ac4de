"""A hub cluster on Redis (issue #13): where a burst of new rooms lands, and how long a room
takes to come back when its owner is killed (SIGKILL) or stopped (SIGTERM).

Starts Debian's ``redis-server`` (unix socket) and ``--nodes`` ``unionhub serve --redis`` nodes
on loopback, then:

* **placement**: ``--burst`` new rooms opened at once (``GET /r/<room>``, the way browsers
  arrive), each on a random node; the owner of each (200 = the node asked, 307 = another) gives
  how many rooms each node took — the better of two random choices with a penalty for nodes that
  just took rooms (``cluster/placement.py``), against a perfect spread;
* **failover after SIGKILL** (``--trials`` times): a room with one participant joined on its
  owner; the owner is killed; the clock runs until another node serves the room's page (its
  lease taken over: the dead node's heartbeat must expire first) and until a participant's
  ``join`` there is answered ``joined``. The killed node is started again between trials;
* **drain on SIGTERM** (``--trials`` times): the owner of a room with one participant gets
  SIGTERM; the clock runs until the participant is told ``moved`` (to another node), until it
  is ``joined`` there, and until the stopped process exits.

No media: these are signalling and Redis times (a browser adds its reload and ICE, ~1 s; see
tests/e2e/test_cluster_*_browser.py for Chromium figures).

    .venv/bin/python bench/cluster.py --nodes 3 --burst 60 --trials 8

Writes docs/bench/cluster.json and prints the tables; results in docs/BENCHMARKS.md.

``--spanned M`` measures instead a room bigger than one process (``cluster/spanning.py``): one
publisher (pre-encoded VGA VP8 ~600 kbit/s and Opus) and M subscribers (aiortc peers in this
process that count packets and frames and never decode, ``testkit/lightreceive.py``), first on
one node alone (``--room-capacity`` 1 + M/2, but no other node to span onto: everyone stays),
then with a second node (the room spans: M/2 subscribers on each). Each node's CPU is its
process's utime + stime over ``--seconds`` (``/proc/<pid>/stat``). These machines cannot run a
room until a process saturates, so what a spanned room carries against one process is
extrapolated with a linear cost model, each process costing ``fixed + c × its subscribers``:
one process is measured with M/2 and with M subscribers, which gives ``c`` (the difference over
M/2 subscribers) and its ``fixed`` (the publisher's ingest, the node's own work); each spanned
process's ``fixed`` is its CPU less ``c × its subscribers`` (the owner's includes sending the
pipe, the relay's receiving it). A process saturates at ``(100 - fixed) / c`` subscribers; the
spanned room carries the sum of its two processes', one process its own: the gain is their
ratio. The raw figures are in the table too. The subscribers' CPU (this process) shares the
machine's cores with the nodes.

    .venv/bin/python bench/cluster.py --spanned 16 --seconds 15

Writes docs/bench/cluster_spanned.json.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video  # noqa: E402

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Node:
    """One ``unionhub serve --redis`` subprocess (started again with the same id and port)."""

    def __init__(self, node_id: str, redis_url: str, root: Path, extra: tuple[str, ...] = ()) -> None:
        self.id = node_id
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis_url = redis_url
        self.data = root / node_id
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        exe = Path(sys.executable).with_name("unionhub")
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(self.port), "--data-dir", str(self.data), "--asr-model", "none",
             "--no-recordings", "--no-live", "--log-level", "warning", "--redis", self.redis_url,
             "--node-id", self.id, "--public-url", self.url, *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.url + "/healthz") as r:
                        if r.status == 200 and (await r.json()).get("cluster", {}).get("redis"):
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"node {self.id} did not start")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


async def owner_of(http: aiohttp.ClientSession, nodes: list[Node], room: str, asked: Node) -> Node | None:
    """Open the room's page on ``asked``: the node that serves it (None: not served)."""
    async with http.get(f"{asked.url}/r/{room}", allow_redirects=False) as r:
        if r.status == 200:
            return asked
        if r.status == 307:
            location = r.headers["Location"]
            return next((n for n in nodes if location.startswith(n.url + "/")), None)
        return None


async def join(url: str, room: str, name: str) -> tuple[socketio.AsyncClient, asyncio.Queue[tuple[str, Any]]]:
    """A participant without media; its events arrive in the queue."""
    client = socketio.AsyncClient(reconnection=False)
    events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    for name_ in ("joined", "moved", "error"):
        client.on(name_, lambda data, n=name_: events.put_nowait((n, data)))
    await client.connect(url, transports=["websocket"])
    await client.emit("join", {"room": room, "name": name, "lang": "en", "audio": False, "video": False})
    while True:
        event, data = await asyncio.wait_for(events.get(), 10)
        if event == "joined":
            return client, events
        if event == "error":
            await client.disconnect()
            raise RuntimeError(f"join refused: {data}")


async def placement(nodes: list[Node], burst: int) -> dict[str, Any]:
    rooms = [f"burst-{os.getpid()}-{i}" for i in range(burst)]
    async with aiohttp.ClientSession() as http:
        owners = await asyncio.gather(*(owner_of(http, nodes, room, random.choice(nodes)) for room in rooms))
    counts = collections.Counter(o.id for o in owners if o is not None)
    per_node = {n.id: counts.get(n.id, 0) for n in nodes}
    ideal = burst / len(nodes)
    return {"burst": burst, "rooms_per_node": per_node, "unplaced": sum(o is None for o in owners),
            "max_over_ideal": round(max(per_node.values()) / ideal, 2),
            "min_over_ideal": round(min(per_node.values()) / ideal, 2)}


async def failover_trial(nodes: list[Node], trial: int) -> dict[str, float]:
    room = f"kill-{os.getpid()}-{trial}"
    async with aiohttp.ClientSession() as http:
        owner = await owner_of(http, nodes, room, random.choice(nodes))
        assert owner is not None
        client, _ = await join(owner.url, room, "Ana")
        others = [n for n in nodes if n is not owner]
        owner.signal(signal.SIGKILL)
        killed = time.monotonic()
        leaving = asyncio.ensure_future(client.disconnect())  # (its node is dead: not on the clock)
        served: Node | None = None
        while served is None:
            for other in others:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{other.url}/r/{room}", allow_redirects=False) as r:
                        if r.status == 200:
                            served = other
                            break
            if time.monotonic() - killed > 30:
                raise RuntimeError("the room did not come back within 30 s")
            await asyncio.sleep(0.05)
        placed = time.monotonic() - killed
        again, _ = await join(served.url, room, "Ana")
        joined = time.monotonic() - killed
        await again.disconnect()
        with contextlib.suppress(Exception):
            await leaving
    assert owner.proc is not None
    owner.proc.wait(10)
    await owner.start()
    return {"placed_s": round(placed, 3), "joined_s": round(joined, 3)}


async def drain_trial(nodes: list[Node], trial: int) -> dict[str, float]:
    room = f"term-{os.getpid()}-{trial}"
    async with aiohttp.ClientSession() as http:
        owner = await owner_of(http, nodes, room, random.choice(nodes))
    assert owner is not None and owner.proc is not None
    client, events = await join(owner.url, room, "Ana")
    owner.signal(signal.SIGTERM)
    stopped = time.monotonic()
    while True:
        event, data = await asyncio.wait_for(events.get(), 30)
        if event == "moved":
            break
    told = time.monotonic() - stopped
    leaving = asyncio.ensure_future(client.disconnect())  # (the old node is closing: not on the clock)
    url = str(data["url"]).rsplit("/r/", 1)[0]
    again, _ = await join(url, room, "Ana")
    joined = time.monotonic() - stopped
    await again.disconnect()
    with contextlib.suppress(Exception):
        await leaving
    while owner.proc.poll() is None:
        if time.monotonic() - stopped > 60:
            raise RuntimeError("the stopped node did not exit within 60 s")
        await asyncio.sleep(0.05)
    exited = time.monotonic() - stopped
    await owner.start()
    return {"moved_s": round(told, 3), "joined_s": round(joined, 3), "exited_s": round(exited, 3)}


def summarize(trials: list[dict[str, float]]) -> dict[str, dict[str, float | None]]:
    keys = trials[0].keys() if trials else []
    return {k: {"p50": percentile([t[k] for t in trials], 0.5), "p95": percentile([t[k] for t in trials], 0.95),
                "max": max(t[k] for t in trials)} for k in keys}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def node_of_page(http: aiohttp.ClientSession, nodes: list[Node], room: str) -> Node:
    """Where a new participant of ``room`` is sent (the owner, or its relay past capacity)."""
    found = await owner_of(http, nodes, room, nodes[0])
    if found is None:
        raise RuntimeError(f"room {room} is served nowhere")
    return found


def video_frames(client: HubClient) -> tuple[int, int, int]:
    """(video frames, RTP packets, packets expected) the subscriber received so far."""
    assert client.light is not None
    frames = packets = expected = 0
    for _, kind, c in client.light.counters().values():
        packets += c.packets
        expected += c.expected
        if kind == "video":
            frames += c.frames
    return frames, packets, expected


async def spanned_trial(nodes: list[Node], subscribers: int, seconds: float, clip: tuple[Any, Any]) -> dict[str, Any]:
    """One publisher and ``subscribers`` subscribers in a new room on ``nodes`` (the first the
    owner, if the room lands there); each node's CPU over ``seconds``."""
    room = f"span-{len(nodes)}-{os.getpid()}"
    clients: list[HubClient] = []
    where: list[Node] = []
    try:
        async with aiohttp.ClientSession() as http:
            target = await node_of_page(http, nodes, room)
            publisher = HubClient(target.url, room, "pub", video=clip[0], audio=clip[1])
            await publisher.join(timeout=60)
            clients.append(publisher)
            for i in range(subscribers):
                target = await node_of_page(http, nodes, room)
                sub = HubClient(target.url, room, f"s{i}", light=True)
                await sub.join(timeout=60)
                clients.append(sub)
                where.append(target)
        await asyncio.sleep(4.0)  # every subscriber past its first keyframe
        subs = clients[1:]
        before = [video_frames(s) for s in subs]
        cpu_before = {n.id: cpu_seconds(n.proc.pid) for n in nodes if n.proc is not None}
        started = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - started
        cpu = {n.id: round(100 * (cpu_seconds(n.proc.pid) - cpu_before[n.id]) / elapsed, 1)
               for n in nodes if n.proc is not None}
        after = [video_frames(s) for s in subs]
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()
    fps = sorted((a[0] - b[0]) / elapsed for a, b in zip(after, before, strict=True))
    got = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    expected = sum(a[2] - b[2] for a, b in zip(after, before, strict=True))
    counts = collections.Counter(n.id for n in where)
    return {
        "processes": len(nodes), "subscribers": subscribers,
        "publisher_on": next(n.id for n in nodes if n.url == clients[0].url),
        "subscribers_per_node": {n.id: counts.get(n.id, 0) for n in nodes},
        "cpu_percent_per_node": cpu, "busiest_cpu_percent": max(cpu.values()),
        "video_fps_per_subscriber": {"min": round(fps[0], 1), "p50": round(fps[len(fps) // 2], 1)},
        "loss_percent": round(100 * max(0, expected - got) / expected, 2) if expected else None,
    }


async def spanned(args: argparse.Namespace, redis_url: str, root: Path) -> dict[str, Any]:
    """One process, then two: the same room's subscribers (see the module docstring)."""
    video = encode_test_video(seconds=4, width=640, height=480, bit_rate=600_000, gop=60)
    clip = (video, encode_test_audio(seconds=4))
    capacity = ("--room-capacity", str(1 + args.spanned // 2))
    nodes = [Node("n1", redis_url, root, capacity)]
    m, half = args.spanned, args.spanned // 2
    try:
        await nodes[0].start()
        await asyncio.sleep(1.5)
        one_half = await spanned_trial(nodes, half, args.seconds, clip)
        print(f"one process, {half} subscribers: {one_half}", flush=True)
        one = await spanned_trial(nodes, m, args.seconds, clip)
        print(f"one process, {m} subscribers: {one}", flush=True)
        nodes.append(Node("n2", redis_url, root, capacity))
        await nodes[1].start()
        await asyncio.sleep(1.5)  # both have beaten
        two = await spanned_trial(nodes, m, args.seconds, clip)
        print(f"two processes: {two}", flush=True)
    finally:
        for n in nodes:
            n.stop()
    cpu_one, cpu_half = one["busiest_cpu_percent"], one_half["busiest_cpu_percent"]
    per_subscriber = (cpu_one - cpu_half) / (m - half)
    model: dict[str, Any] = {"cpu_percent_per_subscriber": round(per_subscriber, 3)}
    if per_subscriber > 0:
        fixed_one = cpu_one - per_subscriber * m
        fixed_two = {node: cpu - per_subscriber * two["subscribers_per_node"][node]
                     for node, cpu in two["cpu_percent_per_node"].items()}
        one_max = (100 - fixed_one) / per_subscriber
        two_max = sum((100 - f) / per_subscriber for f in fixed_two.values())
        model.update({
            "fixed_cpu_percent_one_process": round(fixed_one, 2),
            "fixed_cpu_percent_spanned": {k: round(v, 2) for k, v in fixed_two.items()},
            "subscribers_at_saturation_one_process": round(one_max),
            "subscribers_at_saturation_spanned": round(two_max),
            "gain": round(two_max / one_max, 2),
        })
    return {"one_process_half": one_half, "one_process": one, "two_processes": two, "model": model}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="unionhub-cluster-bench-"))
    sock = root / "redis.sock"
    redis = subprocess.Popen([REDIS_SERVER, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
                              "--dir", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes: list[Node] = []
    try:
        for _ in range(100):
            if sock.exists():
                break
            await asyncio.sleep(0.05)
        if args.spanned:
            return {"spanned": await spanned(args, f"unix://{sock}", root)}
        nodes = [Node(f"n{i + 1}", f"unix://{sock}", root) for i in range(args.nodes)]
        await asyncio.gather(*(n.start() for n in nodes))
        await asyncio.sleep(1.5)  # every node has beaten at least once
        placed = await placement(nodes, args.burst)
        print(f"placement: {placed}", flush=True)
        kills = []
        for trial in range(args.trials):
            kills.append(await failover_trial(nodes, trial))
            print(f"SIGKILL trial {trial}: {kills[-1]}", flush=True)
        drains = []
        for trial in range(args.trials):
            drains.append(await drain_trial(nodes, trial))
            print(f"SIGTERM trial {trial}: {drains[-1]}", flush=True)
    finally:
        for n in nodes:
            n.stop()
        redis.kill()
        redis.wait(10)
        shutil.rmtree(root, ignore_errors=True)
    return {"placement": placed, "sigkill": {"trials": kills, "summary": summarize(kills)},
            "sigterm": {"trials": drains, "summary": summarize(drains)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--burst", type=int, default=60, help="new rooms opened at once")
    parser.add_argument("--trials", type=int, default=8, help="kills and drains, each")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--spanned", type=int, default=0, metavar="M",
                        help="measure instead a room of one publisher and M subscribers on one process, then spanned")
    parser.add_argument("--seconds", type=float, default=15.0, help="--spanned: the measuring window")
    args = parser.parse_args()
    random.seed(args.seed)
    started = time.time()
    load_before = os.getloadavg()
    result = asyncio.run(run(args))
    result.update({
        "command": " ".join([".venv/bin/python", "bench/cluster.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "hardware": {"cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    })
    args.out.mkdir(parents=True, exist_ok=True)
    if args.spanned:
        (args.out / "cluster_spanned.json").write_text(json.dumps(result, indent=1))
        span = result["spanned"]
        print("| processes | subscribers per node | CPU % per node | video fps/subscriber min, p50 | loss % |")
        print("|---|---|---|---|---:|")
        for t in (span["one_process_half"], span["one_process"], span["two_processes"]):
            fps = t["video_fps_per_subscriber"]
            print(f"| {t['processes']} | {t['subscribers_per_node']} | {t['cpu_percent_per_node']} | "
                  f"{fps['min']}, {fps['p50']} | {t['loss_percent']} |")
        print(f"model: {span['model']}")
        return
    (args.out / "cluster.json").write_text(json.dumps(result, indent=1))
    print("| measure | p50 s | p95 s | max s |\n|---|---:|---:|---:|")
    for kind in ("sigkill", "sigterm"):
        for key, s in result[kind]["summary"].items():
            print(f"| {kind} {key} | {s['p50']} | {s['p95']} | {s['max']} |")
    print(f"placement of {args.burst} rooms on {args.nodes} nodes: {result['placement']['rooms_per_node']} "
          f"(max {result['placement']['max_over_ideal']}× the even share)")


if __name__ == "__main__":
    main()
