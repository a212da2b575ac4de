"""TURN proven in a real browser (issue #18): Chromium that cannot reach the hub over UDP calls
through Debian's coturn, with the credentials the hub minted for it.

A network namespace joined to this machine by a veth pair (10.231.79.1 here, .2 inside) holds
Chromium; nftables inside it drops every UDP datagram between it and this side except those to
and from coturn's port, so the browser reaches the hub's HTTP (TCP) but none of its media
candidates. The hub (``unionhub serve --ice-server turn:…``, ``UNIONHUB_TURN_SECRET``) and coturn
(``use-auth-secret``) run on this side. Two participants in that Chromium see each other's
camera, and each page's own ``getStats()`` shows its selected candidate pair using a ``relay``
candidate with bytes received growing. Needs root, like CI; everything is removed at the end.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import HubServer, start_server
from e2e_helpers import join, unique_room, wait_remote_videos, wait_until
from netnskit import chromium_in, remove_namespace, require_root, sh, veth_namespace
from turnkit import Coturn, coturn

pytestmark = pytest.mark.browser

NS = f"uh-turn-{os.getpid()}"
HOST_IF, NS_IF = f"uht{os.getpid() % 100000}a", f"uht{os.getpid() % 100000}b"
HOST_IP, NS_IP = "10.231.79.1", "10.231.79.2"

#: The page's ICE transport: its selected pair's local candidate, the bytes it received, and the
#: local candidate types of every pair that carried anything (Chromium may receive on another
#: succeeded pair than the one it sends on).
SELECTED_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    if (!pc) return null;
    const stats = await pc.getStats();
    let transport = null;
    const carrying = [];
    stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) transport = s;
        if (s.type === 'candidate-pair' && (s.bytesReceived > 0 || s.bytesSent > 0)) {
            carrying.push(stats.get(s.localCandidateId).candidateType);
        }
    });
    if (!transport) return null;
    const local = stats.get(stats.get(transport.selectedCandidatePairId).localCandidateId);
    return {local: local.candidateType, localAddress: local.address || local.ip,
            bytesReceived: transport.bytesReceived, carrying};
}
"""


def nft_rules(turn_port: int) -> str:
    return f"""
table inet uhturn {{
    chain output {{
        type filter hook output priority 0; policy accept;
        ip daddr {HOST_IP} udp dport != {turn_port} counter drop
    }}
    chain input {{
        type filter hook input priority 0; policy accept;
        ip saddr {HOST_IP} udp sport != {turn_port} counter drop
    }}
}}
"""


@pytest.fixture
def firewalled(tmp_path: Path) -> Iterator[Path]:
    """The namespace and its veth pair; yields a Chromium launcher script inside it."""
    require_root("nftables")
    try:
        veth_namespace(NS, HOST_IF, NS_IF, HOST_IP, NS_IP)
        script = chromium_in(NS, tmp_path)
        yield script
    finally:
        remove_namespace(NS, HOST_IF)


@pytest.fixture
def turn_server(firewalled: Path, tmp_path: Path) -> Iterator[Coturn]:
    with coturn(tmp_path, host=HOST_IP) as server:
        sh("ip", "netns", "exec", NS, "nft", "-f", "-", stdin=nft_rules(server.port))
        yield server


@pytest.fixture
def turn_hub(turn_server: Coturn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    monkeypatch.setenv("UNIONHUB_TURN_SECRET", turn_server.secret)
    server = start_server(tmp_path / "hub", "--ice-server", turn_server.url, host=HOST_IP)
    yield server
    server.stop()


def selected(page: Any) -> dict[str, Any] | None:
    return page.evaluate(SELECTED_JS)  # type: ignore[no-any-return]


def dropped_direct() -> int:
    """Datagrams the namespace's firewall dropped (the browser's and hub's direct attempts)."""
    counters = re.findall(r"counter packets (\d+)", sh("ip", "netns", "exec", NS, "nft", "list", "table", "inet", "uhturn"))
    return sum(int(n) for n in counters)


def test_browser_without_udp_to_the_hub_calls_through_turn_with_minted_credentials(
    firewalled: Path, turn_server: Coturn, turn_hub: HubServer, launch_browser: Callable[..., Any],
    new_page: Callable[..., Any],
) -> None:
    browser = launch_browser(f"--unsafely-treat-insecure-origin-as-secure={turn_hub.url}",
                             executable=str(firewalled))
    room = unique_room("turn")
    ana = join(new_page(browser), turn_hub.url, room, "Ana")
    ben = join(new_page(browser), turn_hub.url, room, "Ben")
    for page in (ana, ben):
        wait_remote_videos(page, 1)
    for page in (ana, ben):
        first = wait_until(lambda p=page: selected(p), lambda s: s is not None and s["bytesReceived"] > 0,
                           20, "a selected candidate pair", page=page)
        print("selected:", first)
        assert first["local"] == "relay", first
        assert first["localAddress"] == HOST_IP  # coturn's relayed address
        later = wait_until(lambda p=page: selected(p), lambda s, f=first: s["bytesReceived"] > f["bytesReceived"] + 20_000,
                           20, "more bytes through the relay", page=page)
        assert later["local"] == "relay"
        assert set(later["carrying"]) == {"relay"}, later  # nothing went any other way
    print("direct datagrams dropped by the firewall:", dropped_direct())
    assert dropped_direct() > 0  # direct paths were tried, and could not be used
    log = turn_server.log_text()
    assert len(re.findall(r"user <\d+:\w+>: .*ALLOCATE processed, success", log)) >= 2, log[-3000:]
