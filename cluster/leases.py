"""Room ownership: one node owns a room, by a lease in Redis that it renews.

``uh:room:<name>:owner`` holds ``"<node id> <epoch>"`` with an expiry (``SET … PX``, set only if
absent, inside a Lua script so that claiming is atomic). Each new owner gets the next *epoch*
(``INCR uh:room:<name>:epoch``): a fencing token, so an owner that was partitioned away and comes
back can tell that the room moved on (its renewal, a compare-and-expire, fails). The owner renews
its leases every ``ttl / 3``; when it dies they expire and the next join places the room again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.tasks import cancel, cancelled

from .nodes import text

logger = logging.getLogger(__name__)

#: Epoch counters outlive leases (a day) so a room that comes back gets a higher epoch.
EPOCH_TTL_MS = 24 * 3600 * 1000

# KEYS: owner, epoch. ARGV: node, ttl ms, expected ("" = only if free).
# Returns the owner value after the call (ours if we got it).
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[3] then return current end
local epoch = redis.call('INCR', KEYS[2])
if current then
  local old = tonumber(string.match(current, '(%d+)$')) or 0
  if epoch <= old then
    epoch = old + 1
    redis.call('SET', KEYS[2], epoch)
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local value = ARGV[1] .. ' ' .. epoch
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
"""
# KEYS: owner. ARGV: value, ttl ms. 1 if renewed, 0 if the lease is not ours any more.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS: owner. ARGV: value.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def owner_key(room: str) -> str:
    return f"uh:room:{room}:owner"


def epoch_key(room: str) -> str:
    return f"uh:room:{room}:epoch"


@dataclass(frozen=True, slots=True)
class Lease:
    room: str
    node: str
    epoch: int

    @property
    def value(self) -> str:
        return f"{self.node} {self.epoch}"

    @classmethod
    def parse(cls, room: str, value: str) -> Lease:
        node, _, epoch = value.rpartition(" ")
        return cls(room, node, int(epoch))


class RoomLeases:
    """Claims, renews and releases this node's room leases."""

    def __init__(self, redis: Redis, node_id: str, ttl: float = 6.0,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.redis = redis
        self.node_id = node_id
        self.ttl = ttl
        self._on_lost = on_lost
        self.held: dict[str, Lease] = {}
        self._task: asyncio.Task[None] | None = None
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def owner(self, room: str) -> Lease | None:
        value = await self.redis.get(owner_key(room))
        return Lease.parse(room, text(value)) if value else None

    async def claim(self, room: str, node: str, replacing: Lease | None = None) -> Lease:
        """Make ``node`` the owner if nobody is (or if ``replacing`` still is: a dead owner's
        lease taken over); returns the owner after the call, whoever it is."""
        value = await self._claim(
            keys=[owner_key(room), epoch_key(room)],
            args=[node, int(self.ttl * 1000), replacing.value if replacing else "", EPOCH_TTL_MS],
        )
        lease = Lease.parse(room, text(value))
        if lease.node == self.node_id:
            self.held[room] = lease
        return lease

    def hold(self, lease: Lease) -> None:
        """Keep renewing ``lease`` (one another node placed here for us)."""
        if lease.node == self.node_id:
            self.held[lease.room] = lease

    async def hand_over(self, room: str, node: str) -> Lease | None:
        """Give a room this node holds to ``node`` in one step (a new epoch, no moment without an
        owner); the lease after the call (None: this node did not hold it)."""
        lease = self.held.get(room)
        if lease is None:
            return None
        after = await self.claim(room, node, replacing=lease)
        if after.node != self.node_id:
            self.held.pop(room, None)
        return after

    async def release(self, room: str) -> None:
        lease = self.held.pop(room, None)
        if lease is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._release(keys=[owner_key(room)], args=[lease.value])

    async def renew_all(self) -> None:
        for room, lease in list(self.held.items()):
            renewed = await self._renew(keys=[owner_key(room)], args=[lease.value, int(self.ttl * 1000)])
            if renewed or self.held.get(room) != lease:
                continue
            # expired while Redis was unreachable (nobody could take it then): ours again if free
            now = await self.claim(room, self.node_id)
            if now.node == self.node_id:
                logger.info("room %s: lease expired while Redis was away; claimed again (epoch %d)", room, now.epoch)
                continue
            self.held.pop(room, None)
            logger.warning("room %s: lease lost (epoch %d): %s owns it now (epoch %d)",
                           room, lease.epoch, now.node, now.epoch)
            if self._on_lost is not None:
                self._on_lost(room)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"leases-{self.node_id}")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.renew_all()
            except (RedisError, OSError) as exc:
                if cancelled():  # redis-py turned our cancellation into an error: stop, as asked
                    raise asyncio.CancelledError from exc
                logger.warning("lease renewal failed (%s)", exc)
            if cancelled():  # ... or swallowed it and returned
                raise asyncio.CancelledError

    async def close(self) -> None:
        """Stop renewing and release every lease (a clean shutdown hands rooms on at once)."""
        await cancel(self._task)
        self._task = None
        for room in list(self.held):
            await self.release(room)
