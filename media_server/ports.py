"""Where the hub's media sockets live: a fixed UDP port range, or one UDP port for everyone.

aioice (under aiortc) binds one socket per local address per connection on an ephemeral port the
kernel picks, so a firewall in front of the hub must open every ephemeral UDP port. Two
policies narrow that, chosen with ``unionhub serve --udp-ports A-B`` or ``--udp-port P``:

* :class:`PortRangePool` — each connection still has its own sockets, bound inside ``A-B``. The
  sockets are bound when the participant joins (:meth:`MediaPorts.reserve`), so a full range
  fails the join at once with ``media-ports-exhausted`` instead of an offer that never comes.
* :class:`UdpMux` — one socket per local address on port ``P`` carries every connection (as
  LiveKit's UDP mux and Jitsi's port 10000 do). A datagram is routed by what ICE puts in it: a
  STUN request names its connection in the USERNAME (our ufrag before the colon), a STUN
  response answers a transaction one connection is waiting for, and both teach the sender's
  address, so DTLS and SRTP from that address then go to the same connection without parsing.

ICE-TCP (RFC 6544) is not possible: aioice 0.13 gathers and pairs UDP candidates only (the
transport is hard-coded "udp"). Where UDP is blocked, browsers reach the hub through TURN over
TLS (``--ice-server turns:…``).

The seam (aiortc/aioice internals, isolated here; :func:`check` fails at start-up if they moved):

* ``RTCIceGatherer._connection`` — the aioice ``Connection`` of a peer's (bundled) transport,
  reached through public properties from the first transceiver;
* ``Connection.get_component_candidates`` — replaced on that *instance*: host candidates come
  from our sockets, then the original runs with no addresses (so STUN/TURN gathering still works);
* ``Connection._protocols`` — our host protocols are appended, as aioice appends its own
  (pairing, sending and closing all go through that list);
* ``Connection._local_username`` — with the mux, replaced before the first offer by a longer
  ufrag unique among the hub's connections (aioice's four random characters may collide);
* ``aioice.ice.StunProtocol`` and its public ``transactions`` / ``local_candidate`` / ``connection_made``.
"""

from __future__ import annotations

import abc
import asyncio
import errno
import inspect
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aioice import stun
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import Connection, StunProtocol, get_host_addresses
from aioice.turn import UDP_SOCKET_BUFFER_SIZE
from aiortc import RTCPeerConnection
from aiortc.rtcicetransport import RTCIceGatherer

from core.errors import HubError

logger = logging.getLogger(__name__)

#: STUN's magic cookie (RFC 5389 §6): with a first byte below 4 (RFC 7983), a datagram is STUN.
_MAGIC = b"\x21\x12\xa4\x42"

BindHost = Callable[[Connection, int, str], Awaitable[StunProtocol | None]]


class MediaPortsError(HubError):
    """No media port is free for a new participant (``media-ports-exhausted``)."""


def check() -> None:
    """Raise RuntimeError now, at start-up, if the aioice/aiortc internals used here moved."""
    params = list(inspect.signature(Connection.get_component_candidates).parameters)
    connection = Connection(ice_controlling=False)
    gatherer = RTCIceGatherer(iceServers=[])
    missing = [
        name for name, ok in (
            ("Connection.get_component_candidates(component, addresses, timeout)",
             params == ["self", "component", "addresses", "timeout"]),
            ("Connection._protocols", isinstance(getattr(connection, "_protocols", None), list)),
            ("Connection._local_username", isinstance(getattr(connection, "_local_username", None), str)),
            ("RTCIceGatherer._connection", isinstance(getattr(gatherer, "_connection", None), Connection)),
            ("StunProtocol.transactions", "self.transactions" in inspect.getsource(StunProtocol.__init__)),
        ) if not ok
    ]
    if missing:
        raise RuntimeError(f"unsupported aiortc/aioice version for --udp-port(s): {', '.join(missing)} changed")


@dataclass(frozen=True)
class PortRange:
    """An inclusive range of UDP ports, ``A-B`` on the command line."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        low_text, sep, high_text = text.partition("-")
        try:
            low, high = int(low_text), int(high_text if sep else low_text)
        except ValueError:
            raise ValueError(f"not a port range (A-B): {text!r}") from None
        if not 1024 <= low <= high <= 65535:
            raise ValueError(f"a port range needs 1024 <= A <= B <= 65535: {text!r}")
        return cls(low, high)

    def __len__(self) -> int:
        return self.high - self.low + 1

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _attach_host(protocol: StunProtocol, component: int, sockname: tuple[Any, ...]) -> Candidate:
    """Give ``protocol`` the host candidate aioice would have made for ``sockname``."""
    host, port = sockname[0], sockname[1]
    protocol.local_candidate = Candidate(
        foundation=candidate_foundation("host", "udp", host),
        component=component,
        transport="udp",
        priority=candidate_priority(component, "host"),
        host=host,
        port=port,
        type="host",
    )
    return protocol.local_candidate


def _gatherer_connection(pc: RTCPeerConnection) -> Connection | None:
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is not None:
            connection = transport.transport.iceGatherer._connection
            assert isinstance(connection, Connection)
            return connection
    return None


def _install(connection: Connection, bind_host: BindHost) -> None:
    original = connection.get_component_candidates

    async def get_component_candidates(component: int, addresses: list[str], timeout: int = 5) -> list[Candidate]:
        hosts = [p for p in [await bind_host(connection, component, a) for a in addresses] if p is not None]
        connection._protocols += hosts
        others = await original(component=component, addresses=[], timeout=timeout)
        return [p.local_candidate for p in hosts] + others

    connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]


class PortLease:
    """One peer's claim on the hub's media ports: :meth:`install` before its first offer."""

    def __init__(self, bind_host: BindHost, release: Callable[[], None] = lambda: None,
                 prepare: Callable[[Connection], None] = lambda c: None) -> None:
        self._bind_host = bind_host
        self._release = release
        self._prepare = prepare
        self.installed = False

    def install(self, pc: RTCPeerConnection) -> None:
        """Make ``pc`` gather its host candidates on these ports (call before ``createOffer``)."""
        connection = _gatherer_connection(pc)
        if connection is None or self.installed:
            return
        self.installed = True
        self._prepare(connection)
        _install(connection, self._bind_host)

    def release(self) -> None:
        """Give back what was reserved but never used (the connection closes its own sockets)."""
        self._release()


class MediaPorts(abc.ABC):
    """A port policy: each joining participant takes a :class:`PortLease`."""

    @abc.abstractmethod
    def reserve(self) -> PortLease: ...

    def close(self) -> None:  # noqa: B027 (most policies hold nothing of their own)
        """Close what the policy itself holds (the mux's shared sockets)."""

    @abc.abstractmethod
    def describe(self) -> str: ...


class PortRangePool(MediaPorts):
    """Host candidates bound inside a fixed port range, one socket per address per connection."""

    def __init__(self, ports: PortRange) -> None:
        check()
        self.ports = ports
        self._cursor: dict[str, int] = {}

    def describe(self) -> str:
        return f"UDP ports {self.ports}"

    def _bind(self, address: str) -> socket.socket | None:
        """A socket on ``address`` inside the range; None if the address cannot be bound at all.

        Raises :class:`MediaPortsError` when every port of the range is taken on ``address``.
        """
        start = self._cursor.get(address, self.ports.low)
        for i in range(len(self.ports)):
            port = self.ports.low + (start - self.ports.low + i) % len(self.ports)
            sock = socket.socket(_family(address), socket.SOCK_DGRAM)
            try:
                sock.bind((address, port))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    continue
                logger.info("cannot bind %s: %s", address, exc)
                return None
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER_SIZE)
            self._cursor[address] = port + 1 if port < self.ports.high else self.ports.low
            return sock
        raise MediaPortsError(
            "media-ports-exhausted",
            f"The hub has no free media port ({self.ports}) for another participant; try again later.",
        )

    def reserve(self) -> PortLease:
        socks: dict[str, socket.socket] = {}
        try:
            for address in get_host_addresses(use_ipv4=True, use_ipv6=True):
                sock = self._bind(address)
                if sock is not None:
                    socks[address] = sock
        except MediaPortsError:
            for sock in socks.values():
                sock.close()
            logger.warning("media ports %s exhausted: a join was refused", self.ports)
            raise

        async def bind_host(connection: Connection, component: int, address: str) -> StunProtocol | None:
            sock = socks.pop(address, None)
            if sock is None:  # an address that appeared since the join
                try:
                    sock = self._bind(address)
                except MediaPortsError:
                    logger.warning("media ports %s exhausted: no candidate on %s", self.ports, address)
                    return None
            if sock is None:
                return None
            loop = asyncio.get_running_loop()
            _, protocol = await loop.create_datagram_endpoint(lambda: StunProtocol(connection), sock=sock)
            _attach_host(protocol, component, sock.getsockname())
            return protocol

        def release() -> None:
            for sock in socks.values():
                sock.close()
            socks.clear()

        return PortLease(bind_host, release)


class _MuxTransport(asyncio.DatagramTransport):
    """One connection's view of a shared socket: it sends through it and closes only itself."""

    def __init__(self, endpoint: _MuxEndpoint, protocol: StunProtocol) -> None:
        super().__init__()
        self._endpoint = endpoint
        self._protocol = protocol
        self._closing = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not self._closing and self._endpoint.transport is not None:
            self._endpoint.transport.sendto(data, addr)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket" or self._endpoint.transport is None:
            return default  # (the socket is everyone's: nobody may close or tune it)
        return self._endpoint.transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        transport: Any = self._endpoint.transport  # (a selector transport: it has the method)
        return int(transport.get_write_buffer_size()) if transport is not None else 0

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._endpoint.unregister(self._protocol)
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


class _MuxEndpoint(asyncio.DatagramProtocol):
    """The shared socket of one local address, routing datagrams to connections."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self._by_ufrag: dict[str, StunProtocol] = {}
        self._by_addr: dict[tuple[str, int], StunProtocol] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def register(self, ufrag: str, protocol: StunProtocol) -> None:
        self._by_ufrag[ufrag] = protocol

    def unregister(self, protocol: StunProtocol) -> None:
        for ufrag in [u for u, p in self._by_ufrag.items() if p is protocol]:
            del self._by_ufrag[ufrag]
        for addr in [a for a, p in self._by_addr.items() if p is protocol]:
            del self._by_addr[addr]

    @property
    def connections(self) -> int:
        return len(self._by_ufrag)

    def has_ufrag(self, ufrag: str) -> bool:
        return ufrag in self._by_ufrag

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        addr = (addr[0], addr[1])
        protocol = self._by_addr.get(addr)
        if len(data) >= 20 and data[0] < 4 and data[4:8] == _MAGIC:
            protocol = self._route_stun(data, addr) or protocol
        if protocol is not None:
            protocol.datagram_received(data, addr)

    def _route_stun(self, data: bytes, addr: tuple[str, int]) -> StunProtocol | None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return None
        protocol: StunProtocol | None = None
        if message.message_class == stun.Class.REQUEST:
            username = message.attributes.get("USERNAME")
            if isinstance(username, str):
                protocol = self._by_ufrag.get(username.split(":", 1)[0])
        elif message.message_class in (stun.Class.RESPONSE, stun.Class.ERROR):
            protocol = next(
                (p for p in self._by_ufrag.values() if message.transaction_id in p.transactions), None
            )
        if protocol is not None:
            self._by_addr[addr] = protocol  # DTLS and media from there are this connection's
        return protocol


class UdpMux(MediaPorts):
    """Every connection's host candidates on one UDP port, one shared socket per local address."""

    def __init__(self, port: int) -> None:
        check()
        if not 1 <= port <= 65535:
            raise ValueError(f"not a UDP port: {port}")
        self.port = port
        self._socks: dict[str, socket.socket] = {}
        self._endpoints: dict[str, _MuxEndpoint] = {}
        self._lock = asyncio.Lock()
        for address in get_host_addresses(use_ipv4=True, use_ipv6=True):
            sock = self._open(address)
            if sock is not None:
                self._socks[address] = sock
        if not self._socks:
            raise OSError(f"cannot bind UDP port {port} on any local address")

    def describe(self) -> str:
        return f"UDP port {self.port} (shared)"

    def _open(self, address: str) -> socket.socket | None:
        sock = socket.socket(_family(address), socket.SOCK_DGRAM)
        try:
            sock.bind((address, self.port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise OSError(f"UDP port {self.port} is already in use on {address}") from exc
            logger.info("cannot bind %s: %s", address, exc)
            return None
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER_SIZE)
        return sock

    async def _endpoint(self, address: str) -> _MuxEndpoint | None:
        async with self._lock:
            endpoint = self._endpoints.get(address)
            if endpoint is not None:
                return endpoint
            sock = self._socks.pop(address, None)
            if sock is None:
                try:
                    sock = self._open(address)  # an address that appeared since start-up
                except OSError as exc:
                    logger.warning("%s", exc)
                    return None
            if sock is None:
                return None
            loop = asyncio.get_running_loop()
            _, endpoint = await loop.create_datagram_endpoint(_MuxEndpoint, sock=sock)
            self._endpoints[address] = endpoint
            return endpoint

    def connections(self) -> int:
        """Connections registered on the shared sockets (each local address counts)."""
        return sum(e.connections for e in self._endpoints.values())

    def _unique_ufrag(self) -> str:
        while True:
            ufrag = secrets.token_hex(8)
            if not any(e.has_ufrag(ufrag) for e in self._endpoints.values()):
                return ufrag

    def reserve(self) -> PortLease:
        def prepare(connection: Connection) -> None:
            connection._local_username = self._unique_ufrag()

        async def bind_host(connection: Connection, component: int, address: str) -> StunProtocol | None:
            endpoint = await self._endpoint(address)
            if endpoint is None or endpoint.transport is None:
                return None
            protocol = StunProtocol(connection)
            protocol.connection_made(_MuxTransport(endpoint, protocol))
            _attach_host(protocol, component, endpoint.transport.get_extra_info("sockname"))
            endpoint.register(connection.local_username, protocol)
            return protocol

        return PortLease(bind_host, prepare=prepare)

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        for endpoint in self._endpoints.values():
            if endpoint.transport is not None:
                endpoint.transport.close()
        self._endpoints.clear()
