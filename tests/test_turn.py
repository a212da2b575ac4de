"""TURN proven: media through Debian's coturn with the credentials the hub mints, expired ones refused."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aioice import stun, turn
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from hubtest import RunningHub as Hub
from sigclient import until
from signalling.auth import IceConfig, IceServer, Security, turn_rest_credentials
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video
from turnkit import Coturn, coturn

MakeHub = Callable[..., Awaitable[Hub]]
_CANDIDATE_TYPE = re.compile(r"^a=candidate:.* typ (\w+)", re.MULTILINE)


@pytest.fixture
def turn_server(tmp_path: Path) -> Iterator[Coturn]:
    with coturn(tmp_path) as server:
        yield server


class RelayOnlyClient(HubClient):
    """A participant that, like a browser behind a firewall allowing only its TURN server, uses
    the ICE servers of its ``joined`` event with ``iceTransportPolicy: relay``."""

    ice_servers: list[dict[str, Any]]

    async def _joined(self, data: dict[str, Any]) -> None:
        # (before anything awaits: the first offer is handled after this event, on this pc)
        self.ice_servers = data["iceServers"]
        servers = [RTCIceServer(s["urls"], s.get("username"), s.get("credential")) for s in self.ice_servers]
        old = self.pc
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy.RELAY))
        await old.close()
        await super()._joined(data)


async def test_media_flows_through_coturn_with_credentials_the_hub_minted(
    make_hub: MakeHub, turn_server: Coturn
) -> None:
    security = Security(ice=IceConfig([IceServer.parse(turn_server.url)], turn_server.secret, ttl=600))
    hub = await make_hub(security=security)
    pub = RelayOnlyClient(hub.url, "turn", "Ana", video=encode_test_video(seconds=2), audio=encode_test_audio(2))
    sub = RelayOnlyClient(hub.url, "turn", "Ben", audio=encode_test_audio(2))
    try:
        for c in (pub, sub):
            await c.join()
        assert pub.id is not None and sub.id is not None
        # each participant got its own REST credential for the configured server
        assert pub.ice_servers[0]["urls"] == turn_server.url
        assert pub.ice_servers[0]["username"].endswith(f":{pub.id}")
        assert sub.ice_servers[0]["username"].endswith(f":{sub.id}")
        await until(lambda: sum(len(r.frames) for r in sub.received_from(pub.id, "video")) >= 30)  # type: ignore[arg-type]
        await until(lambda: sum(len(r.frames) for r in pub.received_from(sub.id, "audio")) >= 30)  # type: ignore[arg-type]
        # the participants offered only relayed candidates: all media went through coturn
        for c in (pub, sub):
            kinds = set(_CANDIDATE_TYPE.findall(c.pc.localDescription.sdp))
            assert kinds == {"relay"}, kinds
        log = turn_server.log_text()
        for c in (pub, sub):
            assert re.search(rf"user <\d+:{c.id}>: .*ALLOCATE processed, success", log), log[-3000:]
    finally:
        for c in (pub, sub):
            await c.close()


async def allocate(server: Coturn, credentials: dict[str, str]) -> tuple[str, int]:
    """A TURN allocation on ``server`` with ``credentials``: the relayed address."""
    transport, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol, server_addr=(server.host, server.port),
        username=credentials["username"], password=credentials["credential"],
    )
    try:
        return transport.get_extra_info("sockname")  # type: ignore[no-any-return]
    finally:
        transport.close()


async def test_coturn_refuses_expired_credentials(turn_server: Coturn) -> None:
    fresh = IceConfig([IceServer.parse(turn_server.url)], turn_server.secret, ttl=600).for_participant("p1")[0]
    relayed = await allocate(turn_server, fresh)
    assert relayed[0] == turn_server.host  # (the control: the same server allocates for valid ones)

    expired = turn_rest_credentials(turn_server.secret, "p1", ttl=600, now=time.time() - 3600)
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(turn_server, expired)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401

    forged = turn_rest_credentials("not-the-secret-" + "x" * 20, "p1", ttl=600)
    with pytest.raises(stun.TransactionFailed):
        await allocate(turn_server, forged)
