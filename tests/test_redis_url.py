"""core/redis.py: one ``--redis`` URL for every Redis client of a node, Redis Sentinel included
(``redis+sentinel://host:port/db/service``, python-socketio's format). Real redis-server, and a
real Sentinel (``redis-server --sentinel``) watching it; a cluster node started on the Sentinel
URL announces itself, claims a room and carries Socket.IO emits."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import ClusterConfig
from core.redis import connect
from hubtest import running_hub
from redistest import REDIS_SERVER
from sigclient import Client, until
from unionhub.app import CLUSTER_KEY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start", pytrace=False)
        time.sleep(0.05)


@contextlib.contextmanager
def sentinel_watching_a_master(root: Path) -> Iterator[str]:
    """Yields ``redis+sentinel://127.0.0.1:PORT/0/hubmaster``."""
    root.mkdir(parents=True, exist_ok=True)
    master_port, sentinel_port = free_port(), free_port()
    master = subprocess.Popen([REDIS_SERVER, "--port", str(master_port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(root)], stdout=subprocess.DEVNULL)
    conf = root / "sentinel.conf"
    conf.write_text(f"port {sentinel_port}\nbind 127.0.0.1\ndir {root}\n"
                    f"sentinel monitor hubmaster 127.0.0.1 {master_port} 1\n")
    sentinel = subprocess.Popen([REDIS_SERVER, str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        wait_port(master_port, master, "redis-server")
        wait_port(sentinel_port, sentinel, "redis sentinel")
        yield f"redis+sentinel://127.0.0.1:{sentinel_port}/0/hubmaster"
    finally:
        for proc in (sentinel, master):
            proc.kill()
            proc.wait(10)


async def test_a_sentinel_url_reaches_the_master_it_names(tmp_path: Path) -> None:
    with sentinel_watching_a_master(tmp_path / "redis") as url:
        client = connect(url, decode_responses=True, socket_timeout=2.0)
        try:
            await client.set("uh:probe", "solidarity")
            assert await client.get("uh:probe") == "solidarity"
            assert (await client.info("server"))["tcp_port"] != int(url.split(":")[2].split("/")[0]), \
                "the data went to the master, not the Sentinel"
        finally:
            await client.aclose()


async def test_a_cluster_node_runs_on_a_sentinel_url(tmp_path: Path) -> None:
    with sentinel_watching_a_master(tmp_path / "redis") as url:
        port = free_port()
        config = ClusterConfig(url, "s1", f"http://127.0.0.1:{port}", heartbeat=0.2, node_ttl=1.0, lease_ttl=1.5)
        async with running_hub(tmp_path / "s1", port=port, cluster=config, recordings=False, live=False) as hub:
            node = hub.app[CLUSTER_KEY]
            await until(lambda: node.registry.beats > 0)
            assert [n.id for n in await node.registry.live()] == ["s1"]
            ana = await Client(hub.url).connect()
            bo = await Client(hub.url).connect()
            await ana.join("on-sentinel", "Ana")
            await bo.join("on-sentinel", "Bo")
            assert (await node.leases.owner("on-sentinel")).node == "s1"  # type: ignore[union-attr]
            await bo.send("chat", {"text": "through the Sentinel's master"})
            await ana.wait_for("chat", lambda m: m["text"] == "through the Sentinel's master")
            for c in (ana, bo):
                await c.close()


@pytest.mark.parametrize("url", ["redis+sentinel://127.0.0.1/0/m", "redis+sentinel://127.0.0.1:1/m",
                                 "redis+sentinel://127.0.0.1:1/x/m", "redis+sentinel://127.0.0.1:1/0"])
def test_a_malformed_sentinel_url_is_refused_with_its_format(url: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        connect(url)
