"""Rooms bigger than one process: past its owner's capacity, a room spans onto relay nodes.

``unionhub serve --redis URL --room-capacity N``: once N participants of a room are on its owner,
the owner asks the least-loaded other live node to relay the room and sends every new page load
and join of the room there (the ``moved`` routing the cluster already uses); once that relay holds
N too, the owner asks another live node (least loaded, not yet a relay of the room), and so on. A
new person goes to the owner while it has room, else to the first relay with room in the order
they were added, else (no further live node) to the last relay. Each relay is joined to the owner
by a :class:`~media_server.pipe.Pipe` (plain RTP over UDP, on ``--pipe-host``: loopback or the
private network), both ways; the owner is the hub of the star: its publishers, and those one relay
pipes in, reach every other relay; a relay's publishers reach the owner and, through it, the others.

The handshake goes through Redis, with no secret in it — each pipe end accepts datagrams only
from the address the other end published:

1. the owner opens its end and writes its address into the relay's requests
   (``HSET uh:node:<relay>:relay-requests <room> host:port``);
2. the relay, polling its requests every :data:`POLL_S`, opens its end, connects it to the owner's
   and answers with its own address (``uh:room:<room>:pipe:<relay>``);
3. the owner connects its end and names the room's latest relay (``uh:room:<room>:relay``). A full
   relay sends new people to the owner, which places them — unless it is that latest relay (there
   was no further node: it takes everyone new). When the room ends on the owner, the requests go
   and the relays' ends close; a relay that stops beating is dropped at the next page load past
   capacity; an owner killed leaves pipes that fall silent, which the relays close after
   :data:`OWNER_SILENT_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.tasks import cancel, cancelled
from media_server.pipe import Address, Pipe
from signalling.server import SignallingServer

from .nodes import NodeRegistry, text
from .people import SpannedPeople

logger = logging.getLogger(__name__)

#: Seconds between a relay's looks at the rooms it is asked to relay.
POLL_S = 0.25
#: Seconds an owner waits for a relay to answer before serving the room itself, past capacity.
ANSWER_S = 5.0
#: How long the routing key lives without the owner renewing it (the room's state TTL).
RELAY_TTL_S = 24 * 3600
#: A relay whose owner's end of the pipe has been silent this long (the owner was killed) lets
#: the room go: people who open it again are placed wherever the room is placed next.
OWNER_SILENT_S = 10.0


def requests_key(node_id: str) -> str:
    """The rooms ``node_id`` is asked to relay: ``{room: owner's pipe address}``."""
    return f"uh:node:{node_id}:relay-requests"


def pipe_key(room: str, node_id: str) -> str:
    """The relay's pipe address for ``room``."""
    return f"uh:room:{room}:pipe:{node_id}"


def relay_key(room: str) -> str:
    """The latest node asked to relay ``room``: the one that takes everyone new once every node of
    the room is full."""
    return f"uh:room:{room}:relay"


def format_address(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


def parse_address(value: str) -> Address:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass
class Span:
    """One relay of an owned room that spans: the relay node and this node's end of its pipe."""

    relay: str
    pipe: Pipe


class Spanning:
    """Both roles of a node in spanned rooms: owner (:meth:`relay_for`) and relay (:meth:`relays`)."""

    def __init__(
        self, redis: Redis, registry: NodeRegistry, capacity: int | None, pipe_host: str = "127.0.0.1",
        people: SpannedPeople | None = None,
    ) -> None:
        self.redis = redis
        self.people = people
        self.registry = registry
        self.node_id = registry.node_id
        self.capacity = capacity
        self.pipe_host = pipe_host
        self._server: SignallingServer | None = None
        self._spans: dict[str, list[Span]] = {}  # rooms owned here that span: their relays, in order
        self._relayed: dict[str, tuple[Address, Pipe]] = {}  # rooms relayed here: (owner's end, ours)
        self._locks: dict[str, asyncio.Lock] = {}
        self._task: asyncio.Task[None] | None = None
        self.spanned = 0  # relays this node asked for, in all

    def bind(self, server: SignallingServer) -> None:
        self._server = server

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._relay_loop(), name=f"relay-requests-{self.node_id}")

    # -- the owner's side ----------------------------------------------------------------------

    def spans(self, room: str) -> bool:
        """Whether ``room`` is owned here and spans onto a relay."""
        return bool(self._spans.get(room))

    def relays_of(self, room: str) -> list[str]:
        """The relays of ``room`` (owned here), in the order they were added."""
        return [span.relay for span in self._spans.get(room, [])]

    def full(self, room: str) -> bool:
        """Whether ``room`` has as many participants here as this node takes in one room."""
        if self.capacity is None or self._server is None:
            return False
        found = self._server.store.room(room)
        return found is not None and len(found.participants) >= self.capacity

    async def relay_for(self, room: str) -> str | None:
        """The relay where the next person of ``room`` (owned here and full) goes: the first with
        room, else one asked now (a live node not yet relaying it), else the last one; None: no
        relay, and no other live node or none answered within :data:`ANSWER_S`."""
        lock = self._locks.setdefault(room, asyncio.Lock())
        async with lock:
            for span in list(self._spans.get(room, [])):
                if await self.registry.url_of(span.relay) is None:
                    logger.warning("room %s: relay %s is gone", room, span.relay)
                    await self._drop(room, span)
            spans = self._spans.get(room, [])
            if spans and self.capacity is not None:
                counts = await self.people.counts(room) if self.people is not None else {}
                for span in spans:
                    if counts.get(span.relay, 0) < self.capacity:
                        return span.relay
            elif spans:
                return spans[-1].relay
            added = await self._span(room)
            if added is not None:
                return added
            spans = self._spans.get(room, [])
            return spans[-1].relay if spans else None

    async def _span(self, room: str) -> str | None:
        server = self._server
        taken = {self.node_id, *self.relays_of(room)}
        others = [n for n in await self.registry.live() if n.id not in taken]
        if server is None or not others:
            return None
        relay = min(others, key=lambda n: (n.load.score, n.id)).id
        pipe = Pipe(server.sfu, room, host=self.pipe_host)
        ours = await pipe.open()
        answered: str | None = None
        try:
            await self.redis.hset(requests_key(relay), room, format_address(ours))
            for _ in range(int(ANSWER_S / POLL_S * 2)):
                found = await self.redis.get(pipe_key(room, relay))
                if found is not None:
                    answered = text(found)
                    break
                await asyncio.sleep(POLL_S / 2)
        except (RedisError, OSError):
            answered = None
        if answered is None:
            logger.warning("room %s: node %s did not answer a relay request", room, relay)
            await pipe.close()
            with contextlib.suppress(RedisError, OSError):
                await self.redis.hdel(requests_key(relay), room)
            return None
        pipe.connect(parse_address(answered))
        first = not self.spans(room)
        self._spans.setdefault(room, []).append(Span(relay, pipe))
        self.spanned += 1
        here = server.store.room(room)
        if first and self.people is not None and here is not None:  # (the relays' joined lists them)
            await self.people.publish_room(room, [p.public() for p in here.participants.values()],
                                           [k.public() for k in here.lobby.values()])
        with contextlib.suppress(RedisError, OSError):  # (routing works from memory here)
            await self.redis.set(relay_key(room), relay, ex=RELAY_TTL_S)
        logger.info("room %s spans onto %s (relay %d; pipe %s <-> %s)", room, relay, len(self._spans[room]),
                    format_address(ours), answered)
        return relay

    async def _drop(self, room: str, span: Span) -> None:
        """Let one relay of ``room`` go (it stopped beating, or the room ended here); with the
        last one, the room no longer spans (its lists of people in Redis go)."""
        spans = self._spans.get(room, [])
        if span in spans:
            spans.remove(span)
        if not spans:
            self._spans.pop(room, None)
        await span.pipe.close()
        if not spans and self.people is not None:
            await self.people.forget(room)
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hdel(requests_key(span.relay), room)
            if spans:
                await self.redis.set(relay_key(room), spans[-1].relay, ex=RELAY_TTL_S)
            else:
                await self.redis.delete(relay_key(room))

    async def _end_span(self, room: str) -> None:
        for span in list(self._spans.get(room, [])):
            await self._drop(room, span)

    async def room_ended(self, room: str) -> None:
        """The room ended here: if it spanned from here, its relays let their halves go."""
        await self._end_span(room)
        self._locks.pop(room, None)

    # -- the relay's side ------------------------------------------------------------------------

    def relays(self, room: str) -> bool:
        """Whether this node relays ``room`` (its people past the owner's capacity come here)."""
        return room in self._relayed

    async def last_relay(self, room: str) -> bool:
        """Whether this node is the latest relay of ``room`` (a full relay that is not sends new
        people to the owner, which places them; the latest takes them: there was no further node)."""
        return text(await self.redis.get(relay_key(room)) or "") in ("", self.node_id)

    async def _relay_loop(self) -> None:
        while True:
            try:
                await self.serve_requests()
            except (RedisError, OSError) as exc:  # calls in progress keep their pipes meanwhile
                logger.debug("relay requests unreadable (%s)", exc)
            except Exception:  # a bad request must not stop this node relaying the others
                logger.exception("relay requests failed")
            if cancelled():
                raise asyncio.CancelledError
            await asyncio.sleep(POLL_S)

    async def serve_requests(self) -> None:
        """Open a pipe end for each room this node is newly asked to relay, close those no
        longer asked (the room ended on its owner, or the owner's end changed)."""
        server = self._server
        if server is None:
            return
        asked = {text(k): parse_address(text(v)) for k, v in (await self.redis.hgetall(requests_key(self.node_id))).items()}
        for room, (owner_end, pipe) in list(self._relayed.items()):
            if pipe.silent_for > OWNER_SILENT_S and asked.get(room) == owner_end:
                logger.warning("room %s: its owner's end of the pipe went silent", room)
                await self.redis.hdel(requests_key(self.node_id), room)  # (a killed owner cannot)
                asked.pop(room)
            if asked.get(room) != owner_end:
                del self._relayed[room]
                server.store.set_relayed(room, False)
                await pipe.close()
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.delete(pipe_key(room, self.node_id))
                logger.info("room %s: no longer relayed here", room)
        for room, owner_end in asked.items():
            if room in self._relayed:
                continue
            pipe = Pipe(server.sfu, room, host=self.pipe_host)
            ours = await pipe.open()
            pipe.connect(owner_end)
            self._relayed[room] = (owner_end, pipe)
            server.store.set_relayed(room, True)  # nobody hosts this half by walking into it
            await self.redis.set(pipe_key(room, self.node_id), format_address(ours), ex=RELAY_TTL_S)
            logger.info("room %s: relayed here (pipe %s <-> %s)", room, format_address(ours),
                        format_address(owner_end))

    # -- both ----------------------------------------------------------------------------------

    def rooms(self) -> list[str]:
        """The rooms that span from here or are relayed here."""
        return [*self._spans, *self._relayed]

    def stats(self) -> dict[str, int]:
        return {"spanning": len(self._spans), "relays": sum(len(s) for s in self._spans.values()),
                "relaying": len(self._relayed), "spanned": self.spanned}

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
        for room in list(self._spans):
            await self._end_span(room)
        for room, (_, pipe) in list(self._relayed.items()):
            if self._server is not None:
                self._server.store.set_relayed(room, False)
            await pipe.close()
            with contextlib.suppress(RedisError, OSError):
                await self.redis.delete(pipe_key(room, self.node_id))
        self._relayed.clear()
