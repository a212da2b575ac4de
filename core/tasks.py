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


def cancelled() -> bool:
    """Whether the current task is being cancelled. A loop that outlives errors checks it after
    catching them: redis-py may turn the cancellation of a call in progress into a TimeoutError
    (an OSError), which such a loop swallows — and would then never end, nor its owner's close()."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
