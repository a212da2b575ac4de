"""The real hub (aiohttp + Socket.IO + SFU) running in the test's event loop, for tests to share.

A module of its own (not conftest.py): tests/e2e has a conftest too, and two modules named
``conftest`` cannot both be imported by name in one run.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from captioning.service import CaptionService
from recordings.archive import Archive
from recordings.live import LiveManager
from recordings.manager import RecordingManager
from signalling import SignallingServer
from unionhub.app import ARCHIVE_KEY, CAPTIONS_KEY, LIVE_KEY, RECORDINGS_KEY, SIGNALLING_KEY, create_app

#: Bounds teardown if a test leaves a websocket open.
SHUTDOWN_TIMEOUT = 5.0


@dataclass
class RunningHub:
    """A hub listening on ``url``; ``server`` is its :class:`SignallingServer`."""

    url: str
    app: web.Application
    server: SignallingServer
    runner: web.AppRunner

    @property
    def captions(self) -> CaptionService | None:
        feature = self.app.get(CAPTIONS_KEY)
        return feature.service if feature is not None else None

    @property
    def recordings(self) -> RecordingManager | None:
        feature = self.app.get(RECORDINGS_KEY)
        return feature.manager if feature is not None else None

    @property
    def live(self) -> LiveManager | None:
        feature = self.app.get(LIVE_KEY)
        return feature.manager if feature is not None else None

    @property
    def archive(self) -> Archive:
        return self.app[ARCHIVE_KEY]


@contextlib.asynccontextmanager
async def running_hub(data_dir: Path, port: int = 0, **options: Any) -> AsyncIterator[RunningHub]:
    """A hub on 127.0.0.1 (``port`` 0: a free one) with ``create_app`` options."""
    app = create_app(data_dir, **options)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield RunningHub(f"http://127.0.0.1:{port}", app, app[SIGNALLING_KEY], runner)
    finally:
        await runner.cleanup()
