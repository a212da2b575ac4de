"""One node of a hub cluster: its heartbeat, the rooms it owns, and where a room's people go.

The node is a :class:`~signalling.features.Feature` of its signalling server — a client of every
room, like recordings — so signalling never imports it: before anyone joins a room here it checks
that this node owns the room (else the join is refused with ``moved`` and the page, reloaded,
is redirected to the owner), holds the room's lease while people are in it, and lets it go when
the room ends. Browsers are routed at ``GET /r/<room>`` (:meth:`ClusterNode.route`): the owner's
page, or a redirect to the owner's public URL; a room without an owner is placed on the better
of two live nodes (``placement.py``) and its lease claimed for that node at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import socketio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from signalling.errors import SignallingError
from signalling.features import Feature
from signalling.server import SignallingServer

from .leases import Lease, RoomLeases
from .nodes import Load, NodeRegistry
from .placement import Placement
from .pubsub import ResilientRedisManager

logger = logging.getLogger(__name__)

#: The Redis Pub/Sub channel python-socketio's manager uses between nodes.
SOCKETIO_CHANNEL = "uh:socketio"
#: Seconds any call to Redis may take before it counts as unreachable.
REDIS_TIMEOUT = 2.0
#: How long a room's durable state is kept in Redis after its last change.
STATE_TTL_S = 24 * 3600


def state_key(room: str) -> str:
    return f"uh:room:{room}:state"


@dataclass(frozen=True)
class ClusterConfig:
    """``unionhub serve --redis URL --node-id NAME --public-url URL``."""

    redis_url: str
    node_id: str
    public_url: str
    heartbeat: float = 1.0  # seconds between heartbeats
    node_ttl: float = 5.0  # a node silent this long is not used
    lease_ttl: float = 6.0  # a dead owner's rooms are free again after this long


class Unavailable(SignallingError):
    """Redis cannot be reached: no new room can be placed (HTTP 503)."""


class ClusterNode(Feature):
    """This process as a node of the cluster (see the module docstring)."""

    name = "cluster"

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.redis: Redis = Redis.from_url(
            config.redis_url, decode_responses=True, socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
        self.registry = NodeRegistry(
            self.redis, config.node_id, config.public_url, self._load, config.heartbeat, config.node_ttl
        )
        self.leases = RoomLeases(self.redis, config.node_id, config.lease_ttl)
        self.placement = Placement()
        self._server: SignallingServer | None = None
        self._cpu_at = (time.monotonic(), time.process_time())
        self.redirects = 0
        self.placed = 0
        self.restored = 0
        self.manager: ResilientRedisManager | None = None

    def client_manager(self) -> socketio.AsyncRedisManager:
        """python-socketio's Redis manager (``pubsub.py``): emits reach sockets on every node."""
        self.manager = ResilientRedisManager(
            self.config.redis_url, channel=SOCKETIO_CHANNEL,
            redis_options={"socket_connect_timeout": REDIS_TIMEOUT},
        )
        return self.manager

    def bind(self, server: SignallingServer) -> None:
        """Attach to the node's signalling server (its load is reported; it calls us back)."""
        self._server = server
        server.add(self)

    async def start(self) -> None:
        self.registry.start()
        self.leases.start()

    # -- load -------------------------------------------------------------------------------

    def _load(self) -> Load:
        now, cpu = time.monotonic(), time.process_time()
        then, cpu_then = self._cpu_at
        self._cpu_at = (now, cpu)
        share = (cpu - cpu_then) / (now - then) if now > then else 0.0
        server = self._server
        if server is None:
            return Load(cpu=share)
        rooms = server.sfu.rooms.values()
        streams = sum(p.subscribers for r in rooms for p in r.publications.values())
        return Load(server.store.count(), sum(len(r.peers) for r in rooms), streams, share)

    # -- routing ----------------------------------------------------------------------------

    async def route(self, room: str) -> str | None:
        """Where people of ``room`` go: None (this node), or the owner's public base URL.
        Raises :class:`Unavailable` when Redis cannot say."""
        try:
            return await self._route(room)
        except (RedisError, OSError) as exc:
            raise Unavailable("unavailable", "The hub cannot reach its cluster store; try again in a few "
                                             "seconds.") from exc

    async def _route(self, room: str) -> str | None:
        lease = await self.leases.owner(room)
        if lease is not None:
            if lease.node == self.node_id:
                self.leases.hold(lease)
                return None
            url = await self.registry.url_of(lease.node)
            if url is not None:
                return url
            # the owner stopped beating (killed): take its room over
            logger.warning("room %s: owner %s is gone; placing the room again", room, lease.node)
            lease = await self._place(room, replacing=lease)
        else:
            lease = await self._place(room)
        if lease.node == self.node_id:
            return None
        return await self.registry.url_of(lease.node)

    async def _place(self, room: str, replacing: Lease | None = None) -> Lease:
        nodes = await self.registry.live()
        if not any(n.id == self.node_id for n in nodes):
            nodes = [n for n in nodes if n.id != self.node_id]
        target = self.placement.choose(nodes).id if nodes else self.node_id
        lease = await self.leases.claim(room, target, replacing)
        if lease.node == target:
            self.placed += 1
            logger.info("room %s placed on %s (epoch %d)", room, target, lease.epoch)
        return lease

    # -- Feature: a client of every room -----------------------------------------------------

    def state(self, room: str) -> dict[str, Any]:
        return {"node": self.node_id}

    async def before_join(self, room: str) -> None:
        store = self._server.store if self._server is not None else None
        local = store is not None and store.room(room) is not None
        try:
            url = await self._route(room)
            if url is None and store is not None and store.find(room) is None:
                # the room is new here: it may have lived on another node (settings, bans, roles)
                saved = await self.redis.get(state_key(room))
                if saved:
                    store.stage(room, json.loads(saved))
                    self.restored += 1
                    logger.info("room %s: state restored from the cluster", room)
        except (RedisError, OSError) as exc:
            if local:
                return  # a meeting in progress carries on while Redis is away
            raise Unavailable("unavailable", "The hub cannot reach its cluster store; try again in a few "
                                             "seconds.") from exc
        if url is not None:
            self.redirects += 1
            raise SignallingError("moved", "This meeting is hosted by another server of this hub; "
                                           "reload the page to follow it.")

    async def room_changed(self, room: str, state: dict[str, Any]) -> None:
        """Keep the room's durable state in Redis (the passcode only hashed: ``Room.durable``),
        for the node that owns it next."""
        try:
            await self.redis.set(state_key(room), json.dumps(state), ex=STATE_TTL_S)
        except (RedisError, OSError) as exc:
            logger.warning("room %s: state not saved in the cluster (%s)", room, exc)

    async def room_ended(self, room: str) -> None:
        await self.leases.release(room)

    def stats(self) -> dict[str, Any]:
        return {
            "node": self.node_id, "redis": self.registry.healthy, "rooms_owned": len(self.leases.held),
            "placed": self.placed, "redirects": self.redirects, "restored": self.restored,
        }

    async def close(self) -> None:
        """Leave the cluster: hand rooms on (leases released) and stop the heartbeat."""
        await self.leases.close()
        await self.registry.close()
        await self.redis.aclose()
        # python-socketio starts the manager's Redis listener and never stops it (shutdown()
        # stops engine.io's tasks only): it is ours to end with the node
        listener = getattr(self.manager, "thread", None)
        if isinstance(listener, asyncio.Task) and not listener.done():
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
