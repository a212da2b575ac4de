"""Owned background tasks: stopping one is always the same three steps, written once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (None: nothing to do) and wait until it has finished, swallowing only
    its own cancellation — an owner's ``close()`` returns once its task is really gone."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
