"""Where browsers reach the hub's media: its port policy and, behind 1:1 NAT, its public address.

``unionhub serve --public-ip ADDR`` is for clouds that map a public address onto the machine's
private one (AWS, GCP, Azure): the hub sees only the private address, so its offers would carry
only that. With ``--public-ip auto`` the address is asked of a STUN server (``--stun-server``)
once at start-up, as Jitsi's ``STUN_MAPPING_HARVESTER`` and LiveKit's ``use_external_ip`` do.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any

from aioice import stun

from .ports import MediaPorts, PortLease
from .sdp import with_public_address

logger = logging.getLogger(__name__)

#: STUN's retransmission times (RFC 5389 §7.2.1 starts at 500 ms; a start-up check can be brisk).
RETRANSMISSIONS = (0.25, 0.5, 1.0, 2.0)


class StunError(OSError):
    """The STUN server gave no usable answer."""


@dataclass
class MediaNetwork:
    """How the SFU's peers bind and announce their media sockets (defaults: as aiortc does)."""

    ports: MediaPorts | None = None
    public_ip: str | None = None

    def reserve(self) -> PortLease | None:
        """A new peer's ports; raises ``MediaPortsError`` when none is free."""
        return self.ports.reserve() if self.ports is not None else None

    def announce(self, sdp: str) -> str:
        """The SDP as sent to a browser: with the public address when there is one."""
        return with_public_address(sdp, self.public_ip) if self.public_ip else sdp

    def close(self) -> None:
        if self.ports is not None:
            self.ports.close()


def parse_host_port(text: str, default_port: int = 3478) -> tuple[str, int]:
    """``host[:port]`` (``[v6]:port`` for IPv6) as a pair; ValueError when malformed."""
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = int(port_text)
    if not host or not 0 < port < 65536:
        raise ValueError(f"not host:port: {text!r}")
    return host, port


def check_public_ip(text: str) -> str:
    """``text`` if it is an IPv4 address (the candidates it is added to are IPv4)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"--public-ip needs an IPv4 address or 'auto', not {text!r}") from None
    if address.version != 4:
        raise ValueError(f"--public-ip needs an IPv4 address: {text!r}")
    return text


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[stun.Message] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        with contextlib.suppress(ValueError):  # not STUN: not for us
            self.answers.put_nowait(stun.parse_message(data))


async def discover_public_ip(server: tuple[str, int]) -> str:
    """The address ``server`` sees this machine's UDP packets come from (a STUN Binding)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(server[0], server[1], type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise StunError(f"STUN server {server[0]}: {exc}") from exc
    family, _, _, _, address = infos[0]
    transport, client = await loop.create_datagram_endpoint(
        _Client, family=family, remote_addr=(str(address[0]), int(address[1]))
    )
    try:
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        for wait in RETRANSMISSIONS:
            transport.sendto(bytes(request))
            try:
                deadline = loop.time() + wait
                while True:
                    answer = await asyncio.wait_for(client.answers.get(), max(0.0, deadline - loop.time()))
                    if answer.transaction_id == request.transaction_id:
                        break
            except TimeoutError:
                continue
            mapped = answer.attributes.get("XOR-MAPPED-ADDRESS") or answer.attributes.get("MAPPED-ADDRESS")
            if answer.message_class != stun.Class.RESPONSE or not mapped:
                raise StunError(f"STUN server {server[0]}:{server[1]} refused the binding request")
            logger.info("STUN server %s:%d sees this host as %s", server[0], server[1], mapped[0])
            return str(mapped[0])
        raise StunError(f"no answer from STUN server {server[0]}:{server[1]}")
    finally:
        transport.close()
