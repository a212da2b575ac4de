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

    def __init__(self, node_id: str, redis_url: str, root: Path) -> None:
        self.id = node_id
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
             "--node-id", self.id, "--public-url", self.url],
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
    (args.out / "cluster.json").write_text(json.dumps(result, indent=1))
    print("| measure | p50 s | p95 s | max s |\n|---|---:|---:|---:|")
    for kind in ("sigkill", "sigterm"):
        for key, s in result[kind]["summary"].items():
            print(f"| {kind} {key} | {s['p50']} | {s['p95']} | {s['max']} |")
    print(f"placement of {args.burst} rooms on {args.nodes} nodes: {result['placement']['rooms_per_node']} "
          f"(max {result['placement']['max_over_ideal']}× the even share)")


if __name__ == "__main__":
    main()
