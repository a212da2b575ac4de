"""The people of a spanned room across its two nodes: who is on which half, and host controls.

A room that spans (``spanning.py``) has participants on its owner and on its relay; each node's
signalling knows only its own. While a room spans, each node keeps its participants' public
view in one Redis hash per room (``uh:room:<room>:people``: participant id → ``{node, public}``),
written on every join, change and leave, so that ``joined`` on either half lists everyone (later
joins, changes and leaves already reach both halves through the Socket.IO Redis manager).

A host's control for someone on the other half (mute, stop camera, remove) is published on the
Pub/Sub channel :data:`CONTROLS_CHANNEL`; every node listens, and the node that serves the
target acts on it as if its own host had (``SignallingServer.apply_control``). The host was
checked on the node it is on; Redis is the cluster's trusted store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.tasks import cancel, cancelled
from signalling.features import Control
from signalling.server import SignallingServer

logger = logging.getLogger(__name__)

#: Where host controls for the other half of a spanned room go.
CONTROLS_CHANNEL = "uh:host-controls"
#: How long a spanned room's list of people lives without a change (the room's state TTL).
PEOPLE_TTL_S = 24 * 3600
#: Seconds between attempts to listen again after Redis went away.
RETRY_S = 1.0
#: Seconds the subscription may take to close.
CLOSE_S = 2.0


def people_key(room: str) -> str:
    """Everyone of a spanned room, on both halves: ``{participant id: {node, public}}``."""
    return f"uh:room:{room}:people"


class SpannedPeople:
    """This node's share of the people of the rooms that span (``spanned(room)``: owned here and
    spanning, or relayed here)."""

    def __init__(self, redis: Redis, node_id: str, spanned: Callable[[str], bool]) -> None:
        self.redis = redis
        self.node_id = node_id
        self.spanned = spanned
        self._server: SignallingServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.listening = False  # subscribed to the controls channel now
        self.carried = 0  # controls sent to the other half
        self.applied = 0  # controls from the other half acted on here

    def bind(self, server: SignallingServer) -> None:
        self._server = server

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name=f"host-controls-{self.node_id}")

    # -- who is where --------------------------------------------------------------------------

    async def changed(self, room: str, participant_id: str, public: dict[str, Any] | None) -> None:
        """Someone here joined or changed (``public``), or left (None)."""
        if not self.spanned(room):
            return
        key = people_key(room)
        try:
            if public is None:
                await self.redis.hdel(key, participant_id)
            else:
                await self.redis.hset(key, participant_id, json.dumps({"node": self.node_id, "public": public}))
                await self.redis.expire(key, PEOPLE_TTL_S)
        except (RedisError, OSError) as exc:
            logger.warning("room %s: the other half was not told of %s (%s)", room, participant_id, exc)

    async def publish_room(self, room: str, people: list[dict[str, Any]]) -> None:
        """The room just spanned from here: everyone already in it, for the relay's ``joined``."""
        if not people:
            return
        mapping = {p["id"]: json.dumps({"node": self.node_id, "public": p}) for p in people}
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hset(people_key(room), mapping=mapping)
            await self.redis.expire(people_key(room), PEOPLE_TTL_S)

    async def forget(self, room: str) -> None:
        """The room no longer spans from here."""
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(people_key(room))

    async def elsewhere(self, room: str) -> dict[str, dict[str, Any]]:
        """``{participant id: public view}`` of the room's people on other nodes ({}: Redis
        cannot say, or the room does not span)."""
        if not self.spanned(room):
            return {}
        try:
            found = await self.redis.hgetall(people_key(room))
        except (RedisError, OSError) as exc:
            logger.warning("room %s: the other half's people are unknown (%s)", room, exc)
            return {}
        people: dict[str, dict[str, Any]] = {}
        for participant_id, value in found.items():
            entry = json.loads(value)
            if entry.get("node") != self.node_id:
                people[str(participant_id)] = entry["public"]
        return people

    # -- host controls -------------------------------------------------------------------------

    async def carry(self, control: Control) -> bool:
        """Send a host's control to the other half, if its target is there (always, for a mute
        of everyone or the meeting's end)."""
        if not self.spanned(control.room):
            return False
        knock = control.action in ("admit", "reject")  # (knockers are not listed: the knock was shown)
        if control.target is not None and not knock and control.target not in await self.elsewhere(control.room):
            return False
        message = json.dumps({"node": self.node_id, "control": control.to_json()})
        try:
            await self.redis.publish(CONTROLS_CHANNEL, message)
        except (RedisError, OSError) as exc:
            logger.warning("room %s: a host's %s did not reach the other half (%s)", control.room, control.action, exc)
            return False
        self.carried += 1
        return True

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(CONTROLS_CHANNEL)
                self.listening = True
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if cancelled():  # (redis-py may answer a cancellation with "no message")
                        raise asyncio.CancelledError
                    if message is not None:
                        await self._received(message["data"])
            except (RedisError, OSError) as exc:
                logger.debug("host controls unreadable (%s)", exc)
            finally:
                self.listening = False
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    async with asyncio.timeout(CLOSE_S):  # (never hold up the node's shutdown)
                        await pubsub.aclose()  # type: ignore[no-untyped-call]  # (redis-py leaves it untyped)
            if cancelled():  # (a cancellation redis-py turned into an error above)
                raise asyncio.CancelledError
            await asyncio.sleep(RETRY_S)

    async def _received(self, data: Any) -> None:
        try:
            message = json.loads(data)
            if message.get("node") == self.node_id:
                return
            control = Control.from_json(message["control"])
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("an unreadable host control on %s", CONTROLS_CHANNEL)
            return
        if self._server is None:
            return
        try:
            if await self._server.apply_control(control):
                self.applied += 1
                logger.info("room %s: %s's %s from another node applied here", control.room, control.by,
                            control.action)
        except Exception:  # one failed control must not stop this node hearing the next
            logger.exception("room %s: a host's %s from another node failed", control.room, control.action)

    def stats(self) -> dict[str, int]:
        return {"controls_carried": self.carried, "controls_applied": self.applied}

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
