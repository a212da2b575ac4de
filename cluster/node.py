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
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import socketio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.redis import connect as redis_connect
from core.tasks import cancelled
from signalling.errors import SignallingError
from signalling.features import Control, Distributed
from signalling.server import SignallingServer

from .leases import Lease, RoomLeases
from .nodes import Load, NodeRegistry
from .people import SpannedPeople
from .placement import Placement
from .pubsub import ResilientRedisManager
from .roomstate import SharedState
from .spanning import Spanning

logger = logging.getLogger(__name__)

#: The Redis Pub/Sub channel python-socketio's manager uses between nodes.
SOCKETIO_CHANNEL = "uh:socketio"
#: Seconds any call to Redis may take before it counts as unreachable.
REDIS_TIMEOUT = 2.0
#: Seconds a draining node (SIGTERM) spends handing its rooms on before it lets them end.
DRAIN_SECONDS = 10.0
#: Seconds a room placed here may stay empty before its lease is let go (a page opened, nobody
#: joined: a link checker, a closed tab), so that leases do not pile up.
UNUSED_LEASE_S = 30.0

MOVING = "This meeting is moving to another server of this hub; you will be back in a moment."
RESTARTING = "This server is restarting; the page will reconnect in a few seconds."


@dataclass(frozen=True)
class ClusterConfig:
    """``unionhub serve --redis URL --node-id NAME --public-url URL``."""

    redis_url: str
    node_id: str
    public_url: str
    #: every node shares the front proxy's origin (``public_url``) and the proxy routes on the
    #: ``node`` query parameter (docs/DEPLOYMENT.md); False: each node has an origin of its own
    front: bool = False
    heartbeat: float = 1.0  # seconds between heartbeats
    node_ttl: float = 5.0  # a node silent this long is not used
    lease_ttl: float = 6.0  # a dead owner's rooms are free again after this long
    #: participants of one room on its owner before the room spans onto a relay node
    #: (``spanning.py``; None: never)
    room_capacity: int | None = None
    #: where this node's pipes to other nodes listen (loopback, or a private network address)
    pipe_host: str = "127.0.0.1"


@dataclass(frozen=True)
class Owner:
    """Another node that owns a room: its id and public base URL."""

    node: str
    url: str


class Unavailable(SignallingError):
    """Redis cannot be reached: no new room can be placed (HTTP 503)."""


class ClusterNode(Distributed):
    """This process as a node of the cluster (see the module docstring)."""

    name = "cluster"

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.redis: Redis = redis_connect(
            config.redis_url, decode_responses=True, socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
        self.registry = NodeRegistry(
            self.redis, config.node_id, config.public_url, self._load, config.heartbeat, config.node_ttl
        )
        self.leases = RoomLeases(self.redis, config.node_id, config.lease_ttl, on_lost=self._lease_lost)
        self.placement = Placement()
        self.people = SpannedPeople(self.redis, config.node_id, self._spans, self._take_shared)
        self.states = SharedState(self.redis, self._spans)
        self.spanning = Spanning(self.redis, self.registry, config.room_capacity, config.pipe_host, self.people)
        self._server: SignallingServer | None = None
        self._cpu_at = (time.monotonic(), time.process_time())
        self.redirects = 0
        self.placed = 0
        self.restored = 0
        self.moved = 0
        self.draining = False
        self.manager: ResilientRedisManager | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._empty_since: dict[str, float] = {}
        self.unused_released = 0

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
        self.spanning.bind(server)
        self.people.bind(server)
        server.add(self)

    async def start(self) -> None:
        self.registry.start()
        self.leases.start()
        self.spanning.start()
        self.people.start()
        for loop, name in ((self._sweep_loop, "lease-sweep"), (self._gone_loop, "gone-nodes")):
            task = asyncio.create_task(loop(), name=f"{name}-{self.node_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.lease_ttl)
            await self.release_unused(UNUSED_LEASE_S)
            if cancelled():  # (redis-py may swallow our cancellation and return)
                raise asyncio.CancelledError

    async def _gone_loop(self) -> None:
        """A spanned room's people on a node that was killed leave its lists here."""
        while True:
            await asyncio.sleep(self.config.heartbeat)
            rooms = self.spanning.rooms()
            if not rooms:
                continue
            try:
                live = {n.id for n in await self.registry.live()}
                await self.people.sweep(rooms, live, self.config.heartbeat + REDIS_TIMEOUT)
            except (RedisError, OSError, ValueError) as exc:
                logger.debug("gone nodes not looked for (%s)", exc)
            if cancelled():  # (redis-py may turn our cancellation into an error, or swallow it)
                raise asyncio.CancelledError

    async def release_unused(self, after: float) -> list[str]:
        """Let go of the leases of rooms placed here that nobody has been in for ``after`` s."""
        server = self._server
        if server is None:
            return []
        now = time.monotonic()
        released = []
        for room in list(self.leases.held):
            if server.store.room(room) is not None:
                self._empty_since.pop(room, None)
                continue
            if now - self._empty_since.setdefault(room, now) >= after:
                self._empty_since.pop(room, None)
                await self.leases.release(room)
                released.append(room)
        for room in [r for r in self._empty_since if r not in self.leases.held]:
            del self._empty_since[room]
        self.unused_released += len(released)
        return released

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

    async def route(self, room: str) -> Owner | None:
        """Where people of ``room`` go: None (this node), or the node that owns it.
        Raises :class:`Unavailable` when Redis cannot say."""
        try:
            return await self._route(room)
        except (RedisError, OSError) as exc:
            raise Unavailable("unavailable", "The hub cannot reach its cluster store; try again in a few "
                                             "seconds.") from exc

    async def location(self, room: str, query: dict[str, str]) -> str | None:
        """Where ``GET /r/<room>?<query>`` is sent (None: the page is served here). Behind a front
        proxy the owner is named by the ``node`` parameter, which the proxy routes on: the
        Socket.IO connection of the page then reaches the same node."""
        owner = await self.route(room)
        if not self.config.front:
            return self.room_url(room, owner, query) if owner is not None else None
        if owner is None and query.get("node") == self.node_id:
            return None
        return self.room_url(room, owner, query)

    async def viewer_location(self, room: str, query: dict[str, str]) -> str | None:
        """Behind a front proxy, where ``GET /live/<room>`` is sent: the live stream's HLS files
        are on the room's owner, so its page names the owner (None: serve it here — no owner,
        or already named). Nothing is placed: a viewer does not open a room."""
        if not self.config.front:
            return None
        try:
            lease = await self.leases.owner(room)
            alive = lease is not None and (lease.node == self.node_id or await self.registry.url_of(lease.node))
        except (RedisError, OSError):
            return None
        if lease is None or not alive or query.get("node") == lease.node:
            return None
        return f"/live/{quote(room, safe='')}?{urlencode({**query, 'node': lease.node})}"

    def room_url(self, room: str, owner: Owner | None, query: dict[str, str] | None = None) -> str:
        """The page of ``room`` on ``owner`` (None: this node), with ``query`` kept."""
        params = dict(query or {})
        path = f"/r/{quote(room, safe='')}"
        if self.config.front:
            params["node"] = owner.node if owner is not None else self.node_id
            base = ""  # one origin: the proxy's
        else:
            params.pop("node", None)
            base = owner.url if owner is not None else self.registry.public_url
        return f"{base}{path}?{urlencode(params)}" if params else f"{base}{path}"

    async def _route(self, room: str) -> Owner | None:
        lease = await self.leases.owner(room)
        if lease is not None:
            if lease.node == self.node_id:
                if self.draining:
                    return await self._hand_over(room)
                self.leases.hold(lease)
                return await self._relay(room) if self.spanning.full(room) else None
            url = await self.registry.url_of(lease.node)
            if url is not None:
                # a room this node relays: its owner sends people past its capacity here; once
                # full, this relay sends them to the owner, which places them (on another relay),
                # unless it is the room's latest relay (there was no further node)
                if not self.spanning.relays(room):
                    return Owner(lease.node, url)
                if self.spanning.full(room) and not await self.spanning.last_relay(room):
                    return Owner(lease.node, url)
                return None
            # the owner stopped beating (killed): take its room over
            logger.warning("room %s: owner %s is gone; placing the room again", room, lease.node)
            lease = await self._place(room, replacing=lease)
        else:
            lease = await self._place(room)
        if lease.node == self.node_id:
            return None
        url = await self.registry.url_of(lease.node)
        return Owner(lease.node, url) if url is not None else None

    async def _relay(self, room: str) -> Owner | None:
        """Where people of a full room owned here go: a relay with room, a new relay, or the last
        one (None: here after all, past capacity — there is no other node, or it did not answer)."""
        relay = await self.spanning.relay_for(room)
        url = await self.registry.url_of(relay) if relay is not None else None
        return Owner(relay, url) if relay is not None and url is not None else None

    async def _place(self, room: str, replacing: Lease | None = None) -> Lease:
        nodes = await self.registry.live()
        if self.draining:
            nodes = [n for n in nodes if n.id != self.node_id]
        elif not any(n.id == self.node_id for n in nodes):
            nodes = [n for n in nodes if n.id != self.node_id]
        target = self.placement.choose(nodes).id if nodes else self.node_id
        lease = await self.leases.claim(room, target, replacing)
        if lease.node == target:
            self.placed += 1
            logger.info("room %s placed on %s (epoch %d)", room, target, lease.epoch)
        return lease

    # -- moving rooms: a draining node, a lost lease ----------------------------------------

    async def _hand_over(self, room: str) -> Owner | None:
        """Give an owned room to the better of the other live nodes (None: there is no other
        node, or Redis cannot say)."""
        nodes = [n for n in await self.registry.live() if n.id != self.node_id]
        if not nodes:
            return None
        target = self.placement.choose(nodes)
        lease = await self.leases.hand_over(room, target.id)
        if lease is None or lease.node == self.node_id:
            return None
        logger.info("room %s handed over to %s (epoch %d)", room, lease.node, lease.epoch)
        if lease.node == target.id:
            return Owner(target.id, target.url)
        url = await self.registry.url_of(lease.node)
        return Owner(lease.node, url) if url is not None else None

    async def drain(self, deadline: float = DRAIN_SECONDS) -> None:
        """SIGTERM: take no new rooms, hand each owned room to another node and send its people
        there (``moved``); what cannot be handed on within ``deadline`` seconds ends here, its
        people told to reload (the room comes back wherever it is placed next, with its state)."""
        self.draining = True
        server = self._server
        with contextlib.suppress(RedisError, OSError):
            await asyncio.wait_for(self.registry.close(), REDIS_TIMEOUT)  # no more rooms placed here
        rooms = list(self.leases.held)
        if server is not None:
            rooms += [r for r in server.store.names() if r not in self.leases.held]
        started = time.monotonic()
        for room in rooms:
            owner: Owner | None = None
            left = deadline - (time.monotonic() - started)
            if left > 0:
                with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                    owner = await asyncio.wait_for(self._hand_over(room), left)
            if server is not None:
                url = self.room_url(room, owner) if owner is not None else None
                self.moved += await server.move(room, url, MOVING if url else RESTARTING)
        logger.info("node %s drained: %d rooms in %.1f s", self.node_id, len(rooms), time.monotonic() - started)

    def _lease_lost(self, room: str) -> None:
        """Another node owns the room now (this one was cut off from Redis longer than a lease):
        two owners must not serve it, so its people here follow the new owner."""
        task = asyncio.ensure_future(self._follow_owner(room))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow_owner(self, room: str) -> None:
        url: str | None = None
        with contextlib.suppress(RedisError, OSError):
            lease = await self.leases.owner(room)
            if lease is not None and lease.node != self.node_id:
                found = await self.registry.url_of(lease.node)
                url = self.room_url(room, Owner(lease.node, found)) if found is not None else None
        if self._server is not None:
            self.moved += await self._server.move(room, url, MOVING)

    # -- Feature: a client of every room -----------------------------------------------------

    def state(self, room: str) -> dict[str, Any]:
        return {"node": self.node_id}

    async def before_join(self, room: str) -> None:
        store = self._server.store if self._server is not None else None
        local = store is not None and store.room(room) is not None
        try:
            owner = await self._route(room)
            if owner is None and store is not None and self._spans(room):
                # both halves change the room's state (roles, bans, the lock): each join is
                # decided on both halves' changes
                here = store.find(room)
                merged = await self.states.pull(room, here.durable() if here is not None else None)
                if merged is not None:
                    self._take(room, merged)
            elif owner is None and store is not None and store.find(room) is None:
                # the room is new here: it may have lived on another node (settings, bans, roles)
                saved = await self.states.load(room)
                if saved:
                    store.stage(room, saved)
                    self.restored += 1
                    logger.info("room %s: state restored from the cluster", room)
        except (RedisError, OSError) as exc:
            if local:
                return  # a meeting in progress carries on while Redis is away
            raise Unavailable("unavailable", "The hub cannot reach its cluster store; try again in a few "
                                             "seconds.") from exc
        if owner is not None:
            self.redirects += 1
            raise SignallingError("moved", "This meeting is hosted by another server of this hub; "
                                           "reload the page to follow it.")

    async def room_changed(self, room: str, state: dict[str, Any]) -> None:
        """Keep the room's durable state in Redis (the passcode only hashed: ``Room.durable``),
        for the node that owns it next."""
        try:
            merged = await self.states.push(room, state)
        except (RedisError, OSError) as exc:
            logger.warning("room %s: state not saved in the cluster (%s)", room, exc)
            return
        if merged != state:  # the other half of a spanned room changed it too
            self._take(room, merged)

    async def _take_shared(self, room: str) -> None:
        """A host on the other half of a spanned room changed its settings: take the room's
        state as both halves made it (what changed here since is kept)."""
        server = self._server
        if server is None:
            return
        here = server.store.find(room)
        merged = await self.states.pull(room, here.durable() if here is not None else None)
        if merged is not None:
            self._take(room, merged)

    def _take(self, room: str, state: dict[str, Any]) -> None:
        """The room's durable state as both halves of a spanned room made it, here."""
        server = self._server
        if server is None:
            return
        here = server.store.room(room)
        last_n = here.settings.last_n if here is not None else None
        server.store.refresh(room, state)
        here = server.store.room(room)
        if here is not None and here.settings.last_n != last_n:
            server.sfu.set_last_n(room, here.settings.last_n)

    def _spans(self, room: str) -> bool:
        """Whether ``room`` has people on another node too (it spans from here, or is relayed here)."""
        return self.spanning.spans(room) or self.spanning.relays(room)

    async def participant_changed(self, room: str, participant_id: str, public: dict[str, Any] | None) -> None:
        await self.people.changed(room, participant_id, public)

    async def remote_participants(self, room: str) -> list[dict[str, Any]]:
        return list((await self.people.elsewhere(room)).values())

    async def control(self, control: Control) -> bool:
        return await self.people.carry(control)

    async def knocker_changed(self, room: str, knock_id: str, public: dict[str, Any] | None) -> None:
        await self.people.knocker_changed(room, knock_id, public)

    async def remote_knockers(self, room: str) -> list[dict[str, Any]]:
        return await self.people.knocking_elsewhere(room)

    async def room_ended(self, room: str) -> None:
        self.states.forget(room)
        await self.spanning.room_ended(room)
        await self.leases.release(room)

    def stats(self) -> dict[str, Any]:
        return {
            "node": self.node_id, "redis": self.registry.healthy, "rooms_owned": len(self.leases.held),
            "placed": self.placed, "redirects": self.redirects, "restored": self.restored,
            "moved": self.moved, "draining": self.draining, **self.spanning.stats(), **self.people.stats(),
        }

    async def close(self) -> None:
        """Leave the cluster: hand rooms on (leases released) and stop the heartbeat."""
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.spanning.close()
        await self.people.close()
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
