"""Shared fixtures: the real hub (aiohttp + Socket.IO + SFU) running in the test's event loop.

``hub`` is a hub with default limits; ``make_hub(**options)`` starts others with
``create_app`` options such as ``max_participants=2``. Both listen on 127.0.0.1 on a free port
and are shut down (participants leave, peers close) when the test ends.

(tests/e2e/conftest.py defines its own session-scoped ``hub``, a ``unionhub serve`` subprocess,
which takes precedence inside tests/e2e/.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubtest import RunningHub, running_hub
from redistest import RedisServer, redis_server
from sigclient import Client, Connect


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    """The hub with default limits."""
    async with running_hub(tmp_path / "hub") as running:
        yield running


@pytest.fixture
async def make_hub(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[RunningHub]]]:
    """``await make_hub(max_participants=2)``: another hub with ``create_app`` options."""
    async with contextlib.AsyncExitStack() as stack:
        count = 0

        async def start(**options: Any) -> RunningHub:
            nonlocal count
            count += 1
            return await stack.enter_async_context(
                running_hub(tmp_path / f"hub-{count}", **options)
            )

        yield start


@pytest.fixture
async def connect(
    hub: RunningHub, make_hub: Callable[..., Awaitable[RunningHub]]
) -> AsyncIterator[Connect]:
    """``await connect(url)``: a connected client, disconnected before the hubs stop."""
    clients: list[Client] = []

    async def factory(url: str, http_session: aiohttp.ClientSession | None = None) -> Client:
        client = Client(url, http_session)
        clients.append(client)
        return await client.connect()

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of the test's own (see redistest.py)."""
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def redis_url(redis: RedisServer) -> str:
    return redis.url
