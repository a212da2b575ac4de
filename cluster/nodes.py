"""The nodes of a cluster: each one announces itself in Redis with a heartbeat and its load.

A node writes ``uh:node:<id>`` (a hash: public URL, load figures, time) every
:attr:`NodeRegistry.interval` seconds with an expiry of :attr:`NodeRegistry.ttl`, and adds its id
to the set ``uh:nodes``. A node whose key expired (no heartbeat for ``ttl``, e.g. after
``kill -9``) is not used: :meth:`NodeRegistry.live` skips it and drops it from the set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.tasks import cancel, cancelled

logger = logging.getLogger(__name__)

NODES_KEY = "uh:nodes"


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client decodes replies; its types allow bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def node_key(node_id: str) -> str:
    return f"uh:node:{node_id}"


@dataclass(frozen=True, slots=True)
class Load:
    """What a node reports about itself with each heartbeat."""

    rooms: int = 0
    peers: int = 0
    streams: int = 0  # forwarded streams (subscriptions)
    cpu: float = 0.0  # share of one core the process used since the last heartbeat

    @property
    def score(self) -> float:
        """One number to compare nodes by (lower: less loaded): forwarded streams dominate the
        cost of a node (docs/BENCHMARKS.md), then peers; CPU catches whatever else is busy."""
        return self.streams + 2 * self.peers + 100 * self.cpu


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: str
    url: str  # its public base URL, e.g. https://hub2.example.org
    load: Load
    at: float  # when it last reported (its own clock)


class NodeRegistry:
    """This node's heartbeat, and the list of live nodes."""

    def __init__(
        self, redis: Redis, node_id: str, public_url: str, load: Callable[[], Load],
        interval: float = 1.0, ttl: float = 5.0,
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.public_url = public_url.rstrip("/")
        self._load = load
        self.interval = interval
        self.ttl = ttl
        self._task: asyncio.Task[None] | None = None
        self.beats = 0
        self.healthy = False  # whether the last heartbeat reached Redis

    async def beat(self) -> None:
        """Announce this node now."""
        load = self._load()
        key = node_key(self.node_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "url": self.public_url, "rooms": load.rooms, "peers": load.peers,
                "streams": load.streams, "cpu": f"{load.cpu:.3f}", "at": f"{time.time():.3f}",
            })
            pipe.pexpire(key, int(self.ttl * 1000))
            pipe.sadd(NODES_KEY, self.node_id)
            await pipe.execute()
        self.beats += 1

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"heartbeat-{self.node_id}")

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
                if not self.healthy:
                    logger.info("node %s announced at %s", self.node_id, self.public_url)
                self.healthy = True
            except (RedisError, OSError) as exc:
                if cancelled():  # redis-py turned our cancellation into an error: stop, as asked
                    raise asyncio.CancelledError from exc
                if self.healthy:
                    logger.warning("node %s: heartbeat failed (%s)", self.node_id, exc)
                self.healthy = False
            if cancelled():  # ... or swallowed it and returned
                raise asyncio.CancelledError
            await asyncio.sleep(self.interval)

    async def live(self) -> list[NodeInfo]:
        """The nodes whose heartbeat has not expired."""
        ids = sorted(text(v) for v in await self.redis.smembers(NODES_KEY))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for node_id in ids:
                pipe.hgetall(node_key(node_id))
            found = await pipe.execute()
        nodes: list[NodeInfo] = []
        gone: list[str] = []
        for node_id, fields in zip(ids, found, strict=True):
            if not fields:
                gone.append(node_id)
                continue
            got = {text(k): text(v) for k, v in fields.items()}
            load = Load(int(got["rooms"]), int(got["peers"]), int(got["streams"]), float(got["cpu"]))
            nodes.append(NodeInfo(node_id, got["url"], load, float(got["at"])))
        if gone:
            await self.redis.srem(NODES_KEY, *gone)
        return nodes

    async def url_of(self, node_id: str) -> str | None:
        """The public URL of a live node (None: no heartbeat)."""
        url = await self.redis.hget(node_key(node_id), "url")
        return text(url) if url is not None else None

    async def close(self) -> None:
        """Stop the heartbeat and leave the cluster at once (others stop sending people here)."""
        await cancel(self._task)
        self._task = None
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(node_key(self.node_id))
            await self.redis.srem(NODES_KEY, self.node_id)
