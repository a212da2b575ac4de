"""The cluster's background loops stop when asked, even when redis-py turns the cancellation of
a call in progress into an error (its timeouts are ``OSError``s, which the loops outlive on
purpose): a node's shutdown must not hang on its heartbeat or its lease renewals."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from cluster.leases import RoomLeases
from cluster.nodes import Load, NodeRegistry


class Unreachable:
    """Stands in for the Redis client: nothing may reach it after close()."""

    async def delete(self, *keys: Any) -> int:
        raise OSError("no redis here")

    async def srem(self, *args: Any) -> int:
        raise OSError("no redis here")

    def register_script(self, script: str) -> Any:
        return None  # (the lease scripts are never run here)


async def swallowing_call() -> None:
    """A Redis call in progress when the task is cancelled, as redis-py answers it."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        raise TimeoutError("Timeout reading from socket") from None


async def closes(close: Coroutine[Any, Any, None]) -> None:
    """``close`` returns within a few seconds (not ``wait_for``: a close() stuck awaiting its own
    loop would swallow wait_for's cancellation too and hang the test instead of failing it)."""
    task = asyncio.ensure_future(close)
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done, "close() did not return: its loop outlived the cancellation"


async def test_lease_renewal_stops_although_redis_py_swallowed_the_cancellation() -> None:
    leases = RoomLeases(Unreachable(), "n1", ttl=0.15)  # type: ignore[arg-type]
    calls = 0

    async def renew_all() -> None:
        nonlocal calls
        calls += 1
        await swallowing_call()

    leases.renew_all = renew_all  # type: ignore[method-assign]
    leases.start()
    while calls == 0:
        await asyncio.sleep(0.01)
    await closes(leases.close())


async def test_the_heartbeat_stops_although_redis_py_swallowed_the_cancellation() -> None:
    registry = NodeRegistry(Unreachable(), "n1", "http://n1", lambda: Load(), interval=0.05)  # type: ignore[arg-type]
    calls = 0

    async def beat() -> None:
        nonlocal calls
        calls += 1
        await swallowing_call()

    registry.beat = beat  # type: ignore[method-assign]
    registry.start()
    while calls == 0:
        await asyncio.sleep(0.01)
    await closes(registry.close())
