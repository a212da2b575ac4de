"""A room's durable state in Redis, written by both halves when the room spans.

Every node saves the ``Room.durable()`` state of its rooms (settings, revoked links, admitted
browsers' roles, bans, interpreters' browsers) for the node that owns the room next. A spanned
room has two writers: a ban made on the relay and a role granted on the owner must both survive,
and each half must decide joins on both. So for a spanned room a node does not overwrite the
state: it merges what it changed since it last read or wrote it (its *base*) into what Redis
holds now (three-way, in a WATCH transaction), and takes the result back. Bans and revoked links
only grow; admitted roles and interpreters' browsers merge key by key (a browser a host removed
here stays removed); settings are the last ones a host changed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

logger = logging.getLogger(__name__)

#: How long a room's durable state is kept in Redis after its last change.
STATE_TTL_S = 24 * 3600
#: Lists that only grow (nothing lifts a ban or un-revokes a link).
GROWING = ("revoked", "banned_clients", "banned_names")
#: Mappings merged key by key.
KEYED = ("admitted", "interpreting")
#: Attempts at a merged write while the other half writes too.
ATTEMPTS = 5


def state_key(room: str) -> str:
    return f"uh:room:{room}:state"


def merge(base: dict[str, Any], local: dict[str, Any], remote: dict[str, Any]) -> dict[str, Any]:
    """``remote`` with what changed from ``base`` to ``local`` applied on top."""
    merged = {**remote, **{k: v for k, v in local.items() if k not in remote}}
    for key in GROWING:
        merged[key] = sorted(set(remote.get(key) or ()) | set(local.get(key) or ()))
    for key in KEYED:
        was, now = dict(base.get(key) or {}), dict(local.get(key) or {})
        result = dict(remote.get(key) or {})
        result.update({k: v for k, v in now.items() if was.get(k) != v})
        for gone in set(was) - set(now):
            result.pop(gone, None)
        merged[key] = result
    if local.get("settings") != base.get("settings"):
        merged["settings"] = local.get("settings")
    return merged


class SharedState:
    """The durable state of this node's rooms in Redis (``spanned(room)``: merged, not
    overwritten — the room has people on another node too)."""

    def __init__(self, redis: Redis, spanned: Callable[[str], bool]) -> None:
        self.redis = redis
        self.spanned = spanned
        self._base: dict[str, dict[str, Any]] = {}  # room -> the state last read or written here

    async def load(self, room: str) -> dict[str, Any] | None:
        """What Redis holds for ``room`` (None: nothing)."""
        saved = await self.redis.get(state_key(room))
        return json.loads(saved) if saved else None

    async def pull(self, room: str, local: dict[str, Any] | None) -> dict[str, Any] | None:
        """Before a join in a spanned room: the state to decide it on — Redis's, with what
        changed here since (``local``: the room's state here, None if it has none)."""
        saved = await self.load(room)
        if saved is None:
            return None
        # no base: nothing was changed here that Redis does not hold (a change here is pushed,
        # which sets the base), so the settings are Redis's — not this half's defaults
        base = self._base.get(room) or {"settings": local.get("settings") if local is not None else None}
        merged = merge(base, local, saved) if local is not None else saved
        self._base[room] = merged
        return merged

    async def push(self, room: str, local: dict[str, Any]) -> dict[str, Any]:
        """Save the room's state; what it is now (for a spanned room, merged with the other
        half's: the room here takes it back)."""
        key = state_key(room)
        if not self.spanned(room):
            await self.redis.set(key, json.dumps(local), ex=STATE_TTL_S)
            self._base[room] = local
            return local
        for _ in range(ATTEMPTS):
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    await pipe.watch(key)
                    saved = await pipe.get(key)
                    merged = merge(self._base.get(room, {}), local, json.loads(saved)) if saved else local
                    pipe.multi()  # type: ignore[no-untyped-call]  # (redis-py leaves it untyped)
                    pipe.set(key, json.dumps(merged), ex=STATE_TTL_S)
                    await pipe.execute()
                self._base[room] = merged
                return merged
            except WatchError:
                continue  # the other half wrote meanwhile: merge again with what it wrote
        logger.warning("room %s: state not merged after %d attempts; saved as it is here", room, ATTEMPTS)
        await self.redis.set(key, json.dumps(local), ex=STATE_TTL_S)
        self._base[room] = local
        return local

    def forget(self, room: str) -> None:
        self._base.pop(room, None)
