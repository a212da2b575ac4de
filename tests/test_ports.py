"""The hub's media on fixed UDP ports: one shared port (``--udp-port``) or a range (``--udp-ports``)."""

from __future__ import annotations

import random
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import av
import pytest

from hubtest import RunningHub as Hub
from media_server.network import MediaNetwork
from media_server.ports import MediaPortsError, PortRange, PortRangePool, UdpMux
from sigclient import until
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video
from unionhub.cli import main

MakeHub = Callable[..., Awaitable[Hub]]
_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ (\w+)", re.MULTILINE)


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=2)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=2)


def free_ports(count: int) -> PortRange:
    """``count`` consecutive UDP ports free on every address now (below the ephemeral range)."""
    for _ in range(200):
        low = random.randint(20000, 30000)
        socks: list[socket.socket] = []
        try:
            for port in range(low, low + count):
                for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                    s = socket.socket(family, socket.SOCK_DGRAM)
                    socks.append(s)
                    if family == socket.AF_INET6:
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s.bind((host, port))
            return PortRange(low, low + count - 1)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free UDP ports")


def offered_candidates(client: HubClient) -> list[tuple[str, int, str]]:
    """(address, port, type) of every candidate in the hub's latest offer to ``client``."""
    return [(m.group(1), int(m.group(2)), m.group(3)) for m in _CANDIDATE.finditer(client.pc.remoteDescription.sdp)]


def frames(client: HubClient, publisher: HubClient, kind: str) -> int:
    assert publisher.id is not None
    return sum(len(r.frames) for r in client.received_from(publisher.id, kind))


async def three_in_a_call(hub: Hub, room: str, video: list[Any], audio: list[Any]) -> list[HubClient]:
    """A publisher and two subscribers, joined, each receiving the publisher's media."""
    pub = HubClient(hub.url, room, "Ana", video=video, audio=audio)
    subs = [HubClient(hub.url, room, f"Sub{i}", audio=audio) for i in range(2)]
    clients = [pub, *subs]
    for c in clients:
        await c.join()
    await until(lambda: all(frames(s, pub, "video") >= 30 and frames(s, pub, "audio") >= 30 for s in subs))
    await until(lambda: all(frames(c, subs[0], "audio") >= 30 for c in (pub, subs[1])))
    return clients


async def test_all_media_of_three_participants_on_one_udp_port(
    make_hub: MakeHub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    port = free_ports(1).low
    mux = UdpMux(port)
    hub = await make_hub(sfu_options={"network": MediaNetwork(mux)})
    clients = await three_in_a_call(hub, "mux", video, audio)
    try:
        for c in clients:
            candidates = offered_candidates(c)
            assert candidates, "the hub offered no candidate"
            assert {p for _, p, _ in candidates} == {port}
        # every participant's connection is on the shared socket(s) (once per local address)
        assert mux.connections() >= 3
    finally:
        for c in clients:
            await c.close()
    await until(lambda: mux.connections() == 0)


async def test_media_sockets_bound_inside_the_port_range(
    make_hub: MakeHub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    ports = free_ports(10)
    hub = await make_hub(sfu_options={"network": MediaNetwork(PortRangePool(ports))})
    clients = await three_in_a_call(hub, "range", video, audio)
    try:
        seen: set[int] = set()
        for c in clients:
            candidates = offered_candidates(c)
            assert candidates
            assert all(ports.low <= p <= ports.high for _, p, _ in candidates), candidates
            seen |= {p for _, p, _ in candidates}
        assert len(seen) >= 3  # each participant its own socket(s)
    finally:
        for c in clients:
            await c.close()


async def test_a_full_port_range_refuses_the_join_with_a_code(make_hub: MakeHub, audio: list[av.Packet]) -> None:
    ports = free_ports(1)
    hub = await make_hub(sfu_options={"network": MediaNetwork(PortRangePool(ports))})
    first = HubClient(hub.url, "full", "Ana", audio=audio)
    second = HubClient(hub.url, "full", "Ben", audio=audio)
    third = HubClient(hub.url, "full", "Cy", audio=audio)
    try:
        await first.join()
        with pytest.raises(TimeoutError):
            await second.join(timeout=3)
        assert second.errors == [{
            "code": "media-ports-exhausted",
            "message": second.errors[0]["message"],
            "event": "join",
        }]
        assert str(ports) in second.errors[0]["message"]
        room = hub.server.store.room("full")
        assert room is not None and [p.name for p in room.participants.values()] == ["Ana"]
        assert not any(e == "participant-joined" for e, _ in first.events)
        await first.close()
        await until(lambda: hub.server.store.room("full") is None)
        await third.join()  # the port is free again once the first participant left
    finally:
        for c in (first, second, third):
            await c.close()


def test_port_range_exhausted_when_every_port_is_taken() -> None:
    ports = free_ports(2)
    pool = PortRangePool(ports)
    leases = [pool.reserve(), pool.reserve()]
    with pytest.raises(MediaPortsError) as refused:
        pool.reserve()
    assert refused.value.code == "media-ports-exhausted"
    leases[0].release()
    pool.reserve().release()  # one is free again
    leases[1].release()


@pytest.mark.parametrize("text", ["1000-2000", "30000-20000", "a-b", "70000"])
def test_bad_port_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        PortRange.parse(text)


def test_serve_refuses_a_udp_port_already_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_ports(1).low
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("0.0.0.0", port))
    try:
        assert main(["serve", "--udp-port", str(port), "--asr-model", "none"]) == 2
    finally:
        taken.close()
    assert f"UDP port {port} is already in use" in capsys.readouterr().err


def test_serve_refuses_a_bad_port_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--udp-ports", "9-3", "--asr-model", "none"]) == 2
    assert "port range" in capsys.readouterr().err
