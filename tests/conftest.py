"""Shared fixtures: the real hub (aiohttp + Socket.IO + SFU) running in the test's event loop.

``hub`` is a hub with default limits; ``make_hub(**options)`` starts others with
``create_app`` options such as ``max_participants=2``. Both listen on 127.0.0.1 on a free port
and are shut down (participants leave, peers close) when the test ends.

(tests/e2e/conftest.py defines its own session-scoped ``hub``, a ``unionhub serve`` subprocess,
which takes precedence inside tests/e2e/.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from signalling import SignallingServer
from unionhub.app import SIGNALLING_KEY, create_app

#: Bounds teardown if a test leaves a websocket open.
SHUTDOWN_TIMEOUT = 5.0


@dataclass
class RunningHub:
    """A hub listening on ``url``; ``server`` is its :class:`SignallingServer`."""

    url: str
    app: web.Application
    server: SignallingServer
    runner: web.AppRunner


@contextlib.asynccontextmanager
async def running_hub(data_dir: Path, **options: Any) -> AsyncIterator[RunningHub]:
    app = create_app(data_dir, **options)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield RunningHub(f"http://127.0.0.1:{port}", app, app[SIGNALLING_KEY], runner)
    finally:
        await runner.cleanup()


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
