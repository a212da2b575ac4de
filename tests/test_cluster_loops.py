"""The cluster's background loops stop when asked, even when redis-py turns the cancellation of
a call in progress into an error (its timeouts are ``OSError``s, which the loops outlive on
purpose) or swallows it and returns: a node's shutdown must not hang on its heartbeat or its
lease renewals."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

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


async def erring_call() -> None:
    """A Redis call in progress when the task is cancelled, as redis-py may answer it: an error."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        raise TimeoutError("Timeout reading from socket") from None


async def silent_call() -> None:
    """... or as if nothing had happened (the cancellation swallowed, the call returns)."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)


async def closes(close: Coroutine[Any, Any, None]) -> None:
    """``close`` returns within a few seconds (not ``wait_for``: a close() stuck awaiting its own
    loop would swallow wait_for's cancellation too and hang the test instead of failing it)."""
    task = asyncio.ensure_future(close)
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done, "close() did not return: its loop outlived the cancellation"


def leases() -> Any:
    return RoomLeases(Unreachable(), "n1", ttl=0.15)  # type: ignore[arg-type]


def registry() -> Any:
    return NodeRegistry(Unreachable(), "n1", "http://n1", lambda: Load(), interval=0.05)  # type: ignore[arg-type]


@pytest.mark.parametrize("answer", [erring_call, silent_call], ids=["as-an-error", "silently"])
@pytest.mark.parametrize(("make", "call"), [(leases, "renew_all"), (registry, "beat")], ids=["leases", "heartbeat"])
async def test_the_loop_stops_although_redis_py_swallowed_the_cancellation(
    make: Callable[[], Any], call: str, answer: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    loop_owner = make()
    calls = 0

    async def redis_call() -> None:
        nonlocal calls
        calls += 1
        await answer()

    setattr(loop_owner, call, redis_call)
    loop_owner.start()
    while calls == 0:
        await asyncio.sleep(0.01)
    await closes(loop_owner.close())
