"""A Socket.IO test participant for the real hub (no browser, no media unless asked).

``Client.send`` uses a Socket.IO ack as a barrier: the server acks only after the handler
finished, so every ``error`` the event caused has arrived when ``send`` returns. ``Client.sync``
is a no-op round trip that makes sure a client has received every broadcast sent before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import socketio
from aiortc import RTCPeerConnection, RTCSessionDescription

TIMEOUT = 10.0


class Client:
    """One participant's socket, recording every event the server sends it."""

    def __init__(self, url: str, http_session: aiohttp.ClientSession | None = None) -> None:
        self.url = url
        options: dict[str, Any] = {"http_session": http_session} if http_session else {}
        self.sio = socketio.AsyncClient(reconnection=False, **options)
        self.events: list[tuple[str, Any]] = []
        self.pcs: list[RTCPeerConnection] = []
        self._arrived = asyncio.Event()
        self.sio.on("*", self._record)

    async def _record(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))
        self._arrived.set()

    async def connect(self) -> Client:
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=TIMEOUT)
        return self

    async def send(self, event: str, data: Any = None) -> list[dict[str, Any]]:
        """Emit and wait until the server handled it; the errors it answered with."""
        before = len(self.events)
        await self.sio.call(event, data, timeout=TIMEOUT)
        return [payload for name, payload in self.events[before:] if name == "error"]

    async def sync(self) -> None:
        """A round trip through the server; its own (unknown-event) error is forgotten."""
        before = len(self.events)
        await self.sio.call("sync-barrier", {}, timeout=TIMEOUT)
        self.events[before:] = [
            (name, data) for name, data in self.events[before:]
            if not (name == "error" and data.get("code") == "unknown-event")
        ]

    async def join(
        self, room: str, name: str, audio: bool = False, video: bool = False, lang: str = "en", **extra: Any
    ) -> dict[str, Any]:
        payload = {"room": room, "name": name, "lang": lang, "audio": audio, "video": video, **extra}
        since = len(self.events)
        errors = await self.send("join", payload)
        assert errors == [], errors
        return await self.wait_for("joined", since=since)

    async def wait_for(
        self, event: str, where: Callable[[Any], bool] = lambda data: True, since: int = 0
    ) -> Any:
        """The first ``event`` (from the ``since``-th recorded on) matching ``where``."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                for name, data in self.events[since:]:
                    if name == event and where(data):
                        return data
                self._arrived.clear()
                await self._arrived.wait()

    def received(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def answer(self, offer: dict[str, Any]) -> list[dict[str, Any]]:
        """Answer an offer like a client without devices (every m-line inactive)."""
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        for transceiver in pc.getTransceivers():
            transceiver.direction = "inactive"
        await pc.setLocalDescription(await pc.createAnswer())
        return await self.send("sdp", {"type": "answer", "sdp": pc.localDescription.sdp})

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        for pc in self.pcs:
            await pc.close()


Connect = Callable[..., Awaitable[Client]]


async def eventually(condition: Callable[[], bool], timeout: float = TIMEOUT, interval: float = 0.05) -> bool:
    """Whether ``condition`` becomes true within ``timeout`` (for cleanup done in background)."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(interval)
    except TimeoutError:
        return False
    return True


async def until(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> None:
    """Wait until ``predicate`` holds; a failed assertion if it does not within ``timeout``."""
    if not await eventually(predicate, timeout, interval):
        raise AssertionError(f"condition not reached in {timeout} s")
