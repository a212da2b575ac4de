"""Graceful stop: on SIGTERM (``systemctl stop``, ``docker stop``) the hub finishes its work first.

aiohttp's ``run_app`` turns SIGTERM/SIGINT into a shutdown: it stops listening, then runs the
app's ``on_shutdown`` hooks while connections are still open. Without this module the meeting
layer would end every room and the recordings manager would stop its composition worker, so a
recording in progress would be left "processing" until the next start-up recomposed it, and a
live stream's viewers would wait for segments that never come. :func:`install` puts one hook
first: end every live stream (its HLS playlists get ``#EXT-X-ENDLIST``: players stop cleanly),
stop every recording, and wait — at most ``timeout`` seconds — until each one is composed and
ready in the archive; then close every Socket.IO connection, so that the process exits at once.
What the deadline cuts off is recovered at the next start, as after a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from recordings.archive import Archive
from recordings.feature import LiveFeature, RecordingFeature
from signalling import SignallingServer

logger = logging.getLogger(__name__)

#: Seconds between two looks at the archive while compositions finish.
POLL = 0.2
#: Archive statuses after which nothing more happens to a recording.
DONE = ("ready", "failed")
#: Seconds aiohttp then gives requests still open (``run_app``'s ``shutdown_timeout``; it waits
#: that long twice: for handlers to finish, then after cancelling them). The work is done by
#: then; what is left are websockets, which engine.io keeps until its ping timeout (20 s) even
#: after their Socket.IO session was closed. Measured from SIGTERM to exit with one connected
#: client: 20 s with aiohttp's default (60 s), about 3 s with this (Chromium or python-socketio).
CONNECTIONS_GRACE = 1.0


async def finish_work(server: SignallingServer, archive: Archive | None, timeout: float) -> dict[str, object]:
    """End live streams and recordings, wait for compositions; a summary for the log."""
    started = time.monotonic()
    recordings = next((f for f in server.features if isinstance(f, RecordingFeature)), None)
    live = next((f for f in server.features if isinstance(f, LiveFeature)), None)
    rooms = list(server.sfu.rooms)
    streaming = [room for room in rooms if live is not None and live.manager.is_live(room)]
    ids = [str(state["id"]) for room in rooms
           if recordings is not None and (state := recordings.manager.state(room))["on"]]
    logger.info("stopping: ending %d live streams and %d recordings", len(streaming), len(ids),
                extra={"live_streams": streaming, "recordings": ids})
    if live is not None:  # a stream first: its recording is stopped with it
        _log_failures("ending a live stream", await asyncio.gather(
            *(live.switch(room, False) for room in streaming), return_exceptions=True))
    if recordings is not None:
        _log_failures("stopping a recording", await asyncio.gather(
            *(recordings.switch(room, False) for room in rooms), return_exceptions=True))
    pending: set[str] = set(ids)
    if archive is not None:
        pending |= {r.id for r in await archive.list() if r.status == "processing"}  # stopped just before
        deadline = started + timeout
        while pending and time.monotonic() < deadline:
            for rec_id in list(pending):
                rec = await archive.get(rec_id)
                if rec is None or rec.status in DONE:  # None: a recording without media, discarded
                    pending.discard(rec_id)
            if pending:
                await asyncio.sleep(POLL)
    summary: dict[str, object] = {"seconds": round(time.monotonic() - started, 2), "live_streams": streaming,
                                  "recordings": ids, "unfinished": sorted(pending)}
    if pending:
        logger.warning("stopping: %d recordings not composed within %.0f s (finished at the next start)",
                       len(pending), timeout, extra=summary)
    else:
        logger.info("stopping: work finished in %.1f s", summary["seconds"], extra=summary)
    return summary


def _log_failures(what: str, results: list[object]) -> None:
    """One room's failure must not stop the others from finishing: log it and go on."""
    for result in results:
        if isinstance(result, BaseException):
            logger.error("stopping: %s failed", what, exc_info=result)


async def close_connections(server: SignallingServer) -> int:
    """Close every Socket.IO session: clients are told the server disconnected them (the web
    client retries by itself, so it comes back to a restarted hub) and leave their rooms now.
    Returns how many there were."""
    sio = server.sio
    sessions = [(namespace, sid) for namespace in list(sio.manager.get_namespaces())
                for sid, _ in list(sio.manager.get_participants(namespace, None))]
    for namespace, sid in sessions:
        await sio.disconnect(sid, namespace=namespace)
    # connections that never opened a namespace: engine.io ends them (python-socketio cannot)
    if sio.eio.sockets:
        await sio.eio.disconnect()
    return len(sessions)


def install(app: web.Application, server: SignallingServer, archive: Archive | None, timeout: float,
            handover: Callable[[], Awaitable[None]] | None = None) -> None:
    """Finish the hub's work before anything else shuts down (call before the app starts).
    ``handover``: a cluster node's drain, which sends each room's people to another node before
    the connections close."""

    async def drain(app: web.Application) -> None:
        await finish_work(server, archive, timeout)
        if handover is not None:
            await handover()
        closed = await close_connections(server)
        logger.info("stopping: closed %d Socket.IO connections", closed, extra={"connections": closed})

    app.on_shutdown.insert(0, drain)
