"""The people of a spanned room across its nodes: who is on which half, and host controls.

A room that spans (``spanning.py``) has participants on its owner and on its relays; each node's
signalling knows only its own. While a room spans, each node keeps its participants' public
view in one Redis hash per room (``uh:room:<room>:people``: participant id → ``{node, public}``),
written on every join, change and leave, so that ``joined`` on either half lists everyone (later
joins, changes and leaves already reach both halves through the Socket.IO Redis manager); and
the same of the people knocking on it (``uh:room:<room>:lobby``), for a host's ``joined.lobby``.
The people of a node that was killed (its heartbeat expired) are taken off both lists by the
other half (:meth:`SpannedPeople.sweep`), which tells its people they left.

A host's control for someone on the other half (mute, stop camera, remove) is published on the
Pub/Sub channel :data:`CONTROLS_CHANNEL`; every node listens, and the node that serves the
target acts on it as if its own host had (``SignallingServer.apply_control``); a change of the
room's settings goes the same way, so that the other half takes the room's state from Redis and
its media and lobby follow at once. The host was checked on the node it is on; Redis is the
cluster's trusted store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
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


def lobby_key(room: str) -> str:
    """Everyone knocking on a spanned room, on both halves: ``{knock id: {node, public}}``."""
    return f"uh:room:{room}:lobby"


class SpannedPeople:
    """This node's share of the people of the rooms that span (``spanned(room)``: owned here and
    spanning, or relayed here)."""

    def __init__(
        self, redis: Redis, node_id: str, spanned: Callable[[str], bool],
        take_state: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.spanned = spanned
        #: takes the room's state as the other half saved it, before a host's "settings" from
        #: there is applied here
        self.take_state = take_state
        self._server: SignallingServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._unseen: dict[str, float] = {}  # node -> when it was first seen without a heartbeat
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
        await self._write(people_key(room), room, participant_id, public)

    async def knocker_changed(self, room: str, knock_id: str, public: dict[str, Any] | None) -> None:
        """Someone knocks here (``public``), or no longer does (None)."""
        await self._write(lobby_key(room), room, knock_id, public)

    async def _write(self, key: str, room: str, entry_id: str, public: dict[str, Any] | None) -> None:
        if not self.spanned(room):
            return
        try:
            if public is None:
                await self.redis.hdel(key, entry_id)
            else:
                await self.redis.hset(key, entry_id, json.dumps({"node": self.node_id, "public": public}))
                await self.redis.expire(key, PEOPLE_TTL_S)
        except (RedisError, OSError) as exc:
            logger.warning("room %s: the other half was not told of %s (%s)", room, entry_id, exc)

    async def publish_room(self, room: str, people: list[dict[str, Any]], lobby: list[dict[str, Any]]) -> None:
        """The room just spanned from here: everyone already in it and knocking on it, for the
        relay's ``joined``."""
        for key, entries in ((people_key(room), people), (lobby_key(room), lobby)):
            if not entries:
                continue
            mapping = {e["id"]: json.dumps({"node": self.node_id, "public": e}) for e in entries}
            with contextlib.suppress(RedisError, OSError):
                await self.redis.hset(key, mapping=mapping)
                await self.redis.expire(key, PEOPLE_TTL_S)

    async def forget(self, room: str) -> None:
        """The room no longer spans from here."""
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(people_key(room), lobby_key(room))

    async def elsewhere(self, room: str) -> dict[str, dict[str, Any]]:
        """``{participant id: public view}`` of the room's people on other nodes ({}: Redis
        cannot say, or the room does not span)."""
        return await self._read(people_key(room), room)

    async def counts(self, room: str) -> dict[str, int]:
        """How many of the room's people each node serves (``{}``: Redis cannot say): where the
        owner of a room spanning onto several relays finds one with room."""
        try:
            found = await self.redis.hvals(people_key(room))
        except (RedisError, OSError) as exc:
            logger.warning("room %s: its relays' people are unknown (%s)", room, exc)
            return {}
        counts: dict[str, int] = {}
        for value in found:
            node = str(json.loads(value).get("node"))
            counts[node] = counts.get(node, 0) + 1
        return counts

    async def knocking_elsewhere(self, room: str) -> list[dict[str, Any]]:
        """The public view of the people knocking on the room on other nodes."""
        return list((await self._read(lobby_key(room), room)).values())

    async def _read(self, key: str, room: str) -> dict[str, dict[str, Any]]:
        if not self.spanned(room):
            return {}
        try:
            found = await self.redis.hgetall(key)
        except (RedisError, OSError) as exc:
            logger.warning("room %s: the other half is unknown (%s)", room, exc)
            return {}
        entries: dict[str, dict[str, Any]] = {}
        for entry_id, value in found.items():
            entry = json.loads(value)
            if entry.get("node") != self.node_id:
                entries[str(entry_id)] = entry["public"]
        return entries

    async def sweep(self, rooms: Iterable[str], live: set[str], grace: float) -> list[str]:
        """The people of ``rooms`` served (or knocking) on a node that has not been ``live`` for
        ``grace`` seconds (killed: its heartbeat expired) leave the lists, as a disconnect would
        have them leave (``participant-left``, ``knock-left``); their ids. (``grace``: the
        heartbeats of every node may expire at once when Redis comes back from a pause, and live
        nodes beat again within it.)"""
        now = time.monotonic()
        seen: set[str] = set()
        left: list[str] = []
        for room in rooms:
            for key, event in ((people_key(room), "participant-left"), (lobby_key(room), "knock-left")):
                for entry_id, value in (await self.redis.hgetall(key)).items():
                    node = str(json.loads(value).get("node"))
                    if node == self.node_id or node in live:
                        continue
                    seen.add(node)
                    if now - self._unseen.setdefault(node, now) < grace:
                        continue
                    if await self.redis.hdel(key, entry_id):  # (the node that removed it tells the room)
                        left.append(str(entry_id))
                        if self._server is not None:
                            self._server.notify(event, {"id": str(entry_id)}, room)
                        logger.info("room %s: %s gone with its node %s", room, entry_id, node)
        self._unseen = {node: since for node, since in self._unseen.items() if node in seen}
        return left

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
        if control.action == "settings" and not self.spanned(control.room):
            return  # (no half of the room here: a room of that name here is another meeting)
        try:
            if control.action == "settings" and self.take_state is not None:
                await self.take_state(control.room)
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
