"""Janus VideoRoom as a third SFU in the forwarding bench (Debian's ``janus`` 1.1.2 package).

:class:`JanusServer` starts ``/usr/bin/janus`` on this machine with a generated config folder
(only the VideoRoom plugin and the plain-HTTP transport; no STUN, no event handlers), so the
bench measures Janus's own forwarding work and nothing else. :class:`JanusPublisher` and
:class:`JanusSubscriber` speak Janus's HTTP REST API (long-poll GET for events) and use
aiortc like :class:`testkit.rtc_client.HubClient` does: the publisher sends the same
pre-encoded VP8 + Opus packets, subscribers receive encoded frames through the same
:class:`~media_server.forwarding.ReceiverTap` without decoding. Both expose ``pc``,
``tracks`` and ``received`` so ``bench/sfu_forwarding.py`` measures them like hub clients.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import av
from aioice.ice import get_host_addresses
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from media_server.forwarding import EncodedFrame, ReceiverTap, route_keyframe_requests
from testkit.rtc_client import PreEncodedTrack, Received

logger = logging.getLogger(__name__)

JANUS_BINARY = Path("/usr/bin/janus")
JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
VIDEOROOM = "janus.plugin.videoroom"

OnFrame = Callable[[Received, EncodedFrame], None]
_transactions = itertools.count(1)


class JanusError(RuntimeError):
    """Janus answered a request with an error (core or plugin)."""


def _disable_all_but(folder: Path, keep: set[str]) -> str:
    """Comma-separated list of the shared objects in ``folder`` that Janus must not load."""
    if not folder.is_dir():
        return ""
    names = sorted(p.name for p in folder.glob("*.so") if p.name not in keep)
    return ",".join(names)


def _host_address() -> str | None:
    """The IPv4 address aiortc gathers host candidates on (aioice skips 127.0.0.1)."""
    addresses = [a for a in get_host_addresses(use_ipv4=True, use_ipv6=False) if ":" not in a]
    return addresses[0] if addresses else None


def write_config(folder: Path, port: int, lib: Path = JANUS_LIB) -> Path:
    """Write a minimal janus.jcfg (+ http transport, videoroom) into ``folder``; return it.

    Every other plugin, transport, logger and event handler is disabled, so their threads
    and timers do not count against Janus's CPU.
    """
    enforce = _host_address()
    nat = [
        "nice_debug = false",
        "full_trickle = false",  # candidates go in Janus's SDP; aiortc sends full SDP too
        "ice_lite = false",
    ]
    if enforce:
        nat.append(f'ice_enforce_list = "{enforce}"')
    main = f"""general: {{
	configs_folder = "{folder}"
	plugins_folder = "{lib / 'plugins'}"
	transports_folder = "{lib / 'transports'}"
	events_folder = "{lib / 'events'}"
	loggers_folder = "{lib / 'loggers'}"
	debug_level = 3
	session_timeout = 60
	server_name = "unionhub-bench"
}}
certificates: {{
}}
media: {{
}}
nat: {{
	{chr(10).join(nat)}
}}
plugins: {{
	disable = "{_disable_all_but(lib / 'plugins', {'libjanus_videoroom.so'})}"
}}
transports: {{
	disable = "{_disable_all_but(lib / 'transports', {'libjanus_http.so'})}"
}}
loggers: {{
	disable = "{_disable_all_but(lib / 'loggers', set())}"
}}
events: {{
	broadcast = false
	disable = "{_disable_all_but(lib / 'events', set())}"
}}
"""
    (folder / "janus.jcfg").write_text(main)
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {port}
	interface = "lo"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
cors: {{
}}
"""
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")
    return folder / "janus.jcfg"


class JanusServer:
    """A Janus process with a throwaway config; same shape as the bench's hub ``Server``."""

    mode = "janus"

    def __init__(self, port: int, binary: Path = JANUS_BINARY) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/janus"
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    async def __aenter__(self) -> JanusServer:
        if not self.binary.exists():
            raise FileNotFoundError(f"{self.binary} not found: apt-get install janus (make test-deps)")
        self._dir = Path(tempfile.mkdtemp(prefix="janus-bench-"))
        config = write_config(self._dir, self.port)
        log = self._dir / "janus.log"
        self.proc = subprocess.Popen(
            [str(self.binary), "-C", str(config), "-F", str(self._dir), "-o", "-N", "-L", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                if self.proc.poll() is not None:
                    break
                try:
                    async with http.get(self.url + "/info") as r:
                        if r.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        await self.__aexit__()
        raise RuntimeError(f"janus did not start:\n{tail}")

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


class JanusSession:
    """One Janus API session over HTTP, with a long-poll task delivering async events.

    Plugin replies to ``message`` requests arrive as events carrying the request's
    transaction, so each request waits on a future keyed by its transaction.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = aiohttp.ClientSession()
        self.id: int | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self.events: list[dict[str, Any]] = []

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.url + path, json=body) as r:
            reply: dict[str, Any] = await r.json(content_type=None)
        if reply.get("janus") == "error":
            raise JanusError(str(reply.get("error")))
        return reply

    async def create(self) -> None:
        reply = await self._post("", {"janus": "create", "transaction": self._tx()})
        self.id = int(reply["data"]["id"])
        self._poller = asyncio.create_task(self._poll(), name=f"janus-poll-{self.id}")

    async def attach(self, plugin: str = VIDEOROOM) -> int:
        reply = await self._post(f"/{self.id}", {"janus": "attach", "plugin": plugin, "transaction": self._tx()})
        return int(reply["data"]["id"])

    async def request(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (create, exists, ...): the plugin's reply data."""
        reply = await self._post(f"/{self.id}/{handle}", {"janus": "message", "body": body, "transaction": self._tx()})
        data: dict[str, Any] = reply["plugindata"]["data"]
        if "error" in data:
            raise JanusError(f"{data.get('error_code')}: {data['error']}")
        return data

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, str] | None = None, timeout: float = 30.0
    ) -> tuple[dict[str, Any], dict[str, str] | None]:
        """An asynchronous plugin request: waits for its event; (plugin data, jsep or None)."""
        tx = self._tx()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[tx] = future
        msg: dict[str, Any] = {"janus": "message", "body": body, "transaction": tx}
        if jsep is not None:
            msg["jsep"] = jsep
        try:
            await self._post(f"/{self.id}/{handle}", msg)
            event = await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(tx, None)
        data: dict[str, Any] = event.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(f"{data.get('error_code')}: {data['error']}")
        return data, event.get("jsep")

    async def trickle_done(self, handle: int) -> None:
        """Tell Janus our candidates are all in the SDP already (aiortc does not trickle)."""
        await self._post(f"/{self.id}/{handle}", {"janus": "trickle", "candidate": {"completed": True},
                                                 "transaction": self._tx()})

    async def _poll(self) -> None:
        while True:
            try:
                async with self.http.get(f"{self.url}/{self.id}", params={"maxev": "10"}) as r:
                    payload = await r.json(content_type=None)
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, ValueError) as exc:
                logger.debug("janus long-poll failed: %s", exc)
                await asyncio.sleep(0.2)
                continue
            for event in payload if isinstance(payload, list) else [payload]:
                self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("janus")
        if kind == "keepalive":
            return
        self.events.append(event)
        self._changed.set()
        future = self._pending.get(str(event.get("transaction")))
        if kind == "event" and future is not None and not future.done():
            future.set_result(event)
        elif kind in ("hangup", "detached"):
            logger.info("janus session %s: %s %s", self.id, kind, event.get("reason", ""))

    async def wait_event(self, kind: str, handle: int, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for a core event (``webrtcup``, ``media``...) on one handle."""
        async def seen() -> dict[str, Any]:
            while True:
                for e in self.events:
                    if e.get("janus") == kind and e.get("sender") == handle:
                        return e
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(seen(), timeout)

    async def destroy(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        if self.id is not None:
            try:
                await self._post(f"/{self.id}", {"janus": "destroy", "transaction": self._tx()})
            except (aiohttp.ClientError, JanusError) as exc:
                logger.debug("janus destroy failed: %s", exc)
        await self.http.close()

    @staticmethod
    def _tx() -> str:
        return f"t{next(_transactions)}"


def room_number(room: str) -> int:
    """Janus rooms have numeric ids by default; the bench names rooms with strings."""
    return zlib.crc32(room.encode()) & 0x7FFFFFFF or 1


def _peer_connection() -> RTCPeerConnection:
    """No STUN: everything is on this machine, and a STUN lookup would only stall gathering."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class JanusPublisher:
    """Joins a VideoRoom as a publisher and sends pre-encoded VP8 + Opus (no encoding)."""

    def __init__(
        self, url: str, room: str, name: str, video: list[av.Packet], audio: list[av.Packet],
        max_publishers: int = 16,
    ) -> None:
        self.url = url
        self.room = room_number(room)
        self.name = name
        self.max_publishers = max_publishers
        self.session = JanusSession(url)
        self.pc = _peer_connection()
        self.tracks: dict[str, MediaStreamTrack] = {
            "camera": PreEncodedTrack("video", video, 90000),
            "mic": PreEncodedTrack("audio", audio, 48000),
        }
        self.received: dict[str, Received] = {}  # publishers subscribe to nobody here
        self.feed: int | None = None

    async def join(self, timeout: float = 30.0) -> None:
        await self.session.create()
        handle = await self.session.attach()
        if not (await self.session.request(handle, {"request": "exists", "room": self.room}))["exists"]:
            try:
                await self.session.request(handle, {
                    "request": "create", "room": self.room, "publishers": self.max_publishers,
                    "videocodec": "vp8", "audiocodec": "opus", "bitrate": 0, "fir_freq": 0,
                    "notify_joining": False,
                })
            except JanusError as exc:  # another publisher created it meanwhile
                if not str(exc).startswith("427"):
                    raise
        data, _ = await self.session.message(
            handle, {"request": "join", "ptype": "publisher", "room": self.room, "display": self.name}, timeout=timeout
        )
        self.feed = int(data["id"])
        for track in self.tracks.values():
            sender = self.pc.addTransceiver(track, direction="sendonly").sender
            # PLI/FIR from Janus: the pre-encoded clip has a keyframe every second anyway
            if isinstance(track, PreEncodedTrack):
                route_keyframe_requests(sender, track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {"type": "offer", "sdp": self.pc.localDescription.sdp}
        data, jsep = await self.session.message(handle, {"request": "publish", "audio": True, "video": True},
                                                jsep=offer, timeout=timeout)
        if jsep is None:
            raise JanusError(f"publish got no answer: {data}")
        await self.pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "answer"))
        await self.session.trickle_done(handle)
        # Janus accepts subscriptions to a feed only once its PeerConnection is up
        await self.session.wait_event("webrtcup", handle, timeout)

    async def close(self) -> None:
        await self.pc.close()
        await self.session.destroy()


class JanusSubscriber:
    """Subscribes to feeds in one PeerConnection (Janus's multistream) and never decodes."""

    def __init__(self, url: str, room: str, feeds: list[int], name: str, on_frame: OnFrame | None = None) -> None:
        self.url = url
        self.room = room_number(room)
        self.feeds = feeds
        self.name = name
        self.session = JanusSession(url)
        self.pc = _peer_connection()
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.received: dict[str, Received] = {}  # by mid
        self._on_frame = on_frame

    async def join(self, timeout: float = 30.0) -> None:
        await self.session.create()
        handle = await self.session.attach()
        data, jsep = await self.session.message(handle, {
            "request": "join", "ptype": "subscriber", "room": self.room,
            "streams": [{"feed": f} for f in self.feeds],
        }, timeout=timeout)
        if jsep is None:
            raise JanusError(f"subscribe got no offer: {data}")
        streams = {str(s.get("mid")): s for s in data.get("streams", [])}
        await self.pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "offer"))
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid or ""
            info = streams.get(mid, {})
            kind = transceiver.kind
            if kind not in ("audio", "video"):
                continue
            transceiver.direction = "recvonly"
            rec = Received(str(info.get("feed_id", "")), "camera" if kind == "video" else "mic", kind)
            self.received[mid] = rec
            ReceiverTap(transceiver.receiver, self._sink(rec))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        answer = {"type": "answer", "sdp": self.pc.localDescription.sdp}
        await self.session.message(handle, {"request": "start"}, jsep=answer, timeout=timeout)
        await self.session.trickle_done(handle)

    def _sink(self, rec: Received) -> Callable[[EncodedFrame], None]:
        def sink(frame: EncodedFrame) -> None:
            rec.add(frame)
            if self._on_frame is not None:
                self._on_frame(rec, frame)

        return sink

    async def close(self) -> None:
        await self.pc.close()
        await self.session.destroy()
