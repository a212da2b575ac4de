"""Behind 1:1 NAT: the hub announces its public address (``--public-ip``, ``--public-ip auto``)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aioice import stun

from hubtest import RunningHub as Hub
from media_server.network import MediaNetwork, StunError, discover_public_ip, parse_host_port
from media_server.sdp import with_public_address
from sigclient import until
from testkit.rtc_client import HubClient, encode_test_audio
from unionhub.cli import main

MakeHub = Callable[..., Awaitable[Hub]]
PUBLIC = "203.0.113.7"
_CANDIDATE = re.compile(r"^a=candidate:(\S+) 1 udp (\d+) (\S+) (\d+) typ (\w+)(.*)$", re.MULTILINE)


class NattingStun(asyncio.DatagramProtocol):
    """A STUN server that answers every Binding with ``mapped`` (what a NAT's far side would see)."""

    def __init__(self, mapped: str | None) -> None:
        self.mapped = mapped
        self.transport: asyncio.DatagramTransport | None = None
        self.requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        request = stun.parse_message(data)
        self.requests += 1
        if self.mapped is None:
            return  # a server that never answers
        response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE, request.transaction_id)
        response.attributes["XOR-MAPPED-ADDRESS"] = (self.mapped, addr[1])
        assert self.transport is not None
        self.transport.sendto(bytes(response), addr)


@pytest.fixture
async def stun_server() -> AsyncIterator[Callable[[str | None], Awaitable[tuple[str, int]]]]:
    transports: list[asyncio.BaseTransport] = []

    async def start(mapped: str | None) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: NattingStun(mapped), local_addr=("127.0.0.1", 0))
        transports.append(transport)
        return transport.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]

    yield start
    for t in transports:
        t.close()


async def test_offers_carry_the_public_address_on_each_host_port_and_media_flows(make_hub: MakeHub) -> None:
    audio = encode_test_audio(seconds=2)
    hub = await make_hub(sfu_options={"network": MediaNetwork(public_ip=PUBLIC)})
    ana = HubClient(hub.url, "nat", "Ana", audio=audio)
    ben = HubClient(hub.url, "nat", "Ben", audio=audio)
    try:
        for c in (ana, ben):
            await c.join()
        assert ana.id is not None
        await until(lambda: sum(len(r.frames) for r in ben.received_from(ana.id, "audio")) >= 30)  # type: ignore[arg-type]
        sdp = ben.pc.remoteDescription.sdp
        candidates = [m.groups() for m in _CANDIDATE.finditer(sdp)]
        host = {(ip, port) for _, _, ip, port, kind, _ in candidates if kind == "host" and ":" not in ip}
        public = {(ip, port, extra.strip()) for _, _, ip, port, kind, extra in candidates if kind == "srflx"}
        assert host
        # the same port at the public address, related to the private one, for every IPv4 host candidate
        assert public == {(PUBLIC, port, f"raddr {ip} rport {port}") for ip, port in host}
        host_priority = min(int(p) for _, p, _, _, kind, _ in candidates if kind == "host")
        assert all(int(p) < host_priority for _, p, _, _, kind, _ in candidates if kind == "srflx")
    finally:
        for c in (ana, ben):
            await c.close()


def test_public_address_added_once_per_port_and_media_section() -> None:
    sdp = "\r\n".join([
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=candidate:aa 1 udp 2130706431 10.0.0.5 40000 typ host",
        "a=candidate:bb 1 udp 2130706431 fd00::5 40000 typ host",
        "a=candidate:cc 1 udp 2130706431 172.17.0.1 40000 typ host",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=candidate:aa 1 udp 2130706431 10.0.0.5 40000 typ host",
        "",
    ])
    out = with_public_address(sdp, PUBLIC)
    added = [line for line in out.split("\r\n") if " typ srflx " in line]
    # one per media section (the mux's one port on two IPv4 addresses is one public address)
    assert len(added) == 2
    assert all(f" {PUBLIC} 40000 typ srflx raddr 10.0.0.5 rport 40000" in line for line in added)
    assert all(len(line.split(":", 1)[1].split()[0]) <= 32 for line in added)  # a valid foundation
    assert with_public_address(sdp, "10.0.0.5") == sdp  # already public: nothing to add


async def test_auto_discovers_the_mapped_address(stun_server: Callable[..., Awaitable[tuple[str, int]]]) -> None:
    server = await stun_server("198.51.100.20")
    assert await discover_public_ip(server) == "198.51.100.20"


async def test_auto_with_a_silent_stun_server_fails(stun_server: Callable[..., Awaitable[tuple[str, int]]]) -> None:
    server = await stun_server(None)
    with pytest.raises(StunError, match="no answer"):
        await discover_public_ip(server)


def test_serve_public_ip_auto_needs_a_stun_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--public-ip", "auto", "--asr-model", "none"]) == 2
    assert "--stun-server" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["example.org", "2001:db8::1"])
def test_serve_public_ip_must_be_ipv4(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--public-ip", text, "--asr-model", "none"]) == 2
    assert "IPv4" in capsys.readouterr().err


def test_parse_host_port() -> None:
    assert parse_host_port("stun.example.org") == ("stun.example.org", 3478)
    assert parse_host_port("127.0.0.1:3479") == ("127.0.0.1", 3479)
    assert parse_host_port("[::1]:3479") == ("::1", 3479)
    with pytest.raises(ValueError):
        parse_host_port("host:0")
