"""python-socketio's Redis manager, made to keep a meeting going while Redis is away.

:class:`socketio.AsyncRedisManager` delivers an emit to this node's own sockets first and then
publishes it for the other nodes, awaiting Redis. With Redis paused (SIGSTOP, a failover, a
network partition) that await does not end, and every emit of the node — chat, presence, offers
— would stall behind it. :meth:`_publish` is the hook python-socketio's pub/sub managers are
built on (``AsyncPubSubManager`` leaves it to subclasses); ours bounds it to
:data:`PUBLISH_TIMEOUT`: local delivery is unaffected, other nodes miss what was emitted while
Redis was away (rooms live on one node, so in this version they had nobody there to tell).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio

logger = logging.getLogger(__name__)

#: Seconds an emit may wait for Redis before giving up on the other nodes.
PUBLISH_TIMEOUT = 0.5


class ResilientRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]  # (socketio is untyped)
    """:class:`socketio.AsyncRedisManager` whose publishing never blocks an emit for long."""

    skipped = 0

    async def _publish(self, data: Any) -> Any:
        try:
            return await asyncio.wait_for(super()._publish(data), PUBLISH_TIMEOUT)
        except TimeoutError:
            self.connected = False  # (the manager reconnects on the next publish)
            ResilientRedisManager.skipped += 1
            if ResilientRedisManager.skipped == 1 or ResilientRedisManager.skipped % 100 == 0:
                logger.warning("Redis did not take a Socket.IO message in %.1f s: other nodes miss it "
                               "(%d so far)", PUBLISH_TIMEOUT, ResilientRedisManager.skipped)
            return None
