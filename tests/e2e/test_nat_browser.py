"""Behind 1:1 NAT in a real browser (issue #18): ``--public-ip`` makes the browser connect to
the hub's public address.

The cloud's 1:1 NAT is played by stateless nftables rules on this side of a veth pair: datagrams
to the public address 198.51.100.77 have their destination rewritten to the hub's private one
(10.231.81.1), and the hub's media datagrams leave with their source rewritten to the public
address, as AWS/GCP do. Chromium runs in a network namespace (10.231.81.2) that has a route to the
public address only and whose firewall drops UDP to the private address: its HTTP (TCP) reaches the
hub, its media only through the NAT. The hub runs ``--udp-port P --public-ip 198.51.100.77``. Each
page's own ``getStats()`` shows its call going to the public address (the candidate the hub
announced: ``srflx``, port P) with media flowing. Needs root, like CI; all is removed at the end.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import HubServer, start_server
from e2e_helpers import join, unique_room, wait_remote_videos, wait_until
from netnskit import chromium_in, remove_namespace, require_root, sh, veth_namespace

pytestmark = pytest.mark.browser

NS = f"uh-nat-{os.getpid()}"
HOST_IF, NS_IF = f"uhn{os.getpid() % 100000}a", f"uhn{os.getpid() % 100000}b"
HOST_IP, NS_IP = "10.231.81.1", "10.231.81.2"
PUBLIC = "198.51.100.77"
TABLE = f"uhnat{os.getpid()}"

#: The remote (hub) end of the page's selected candidate pair, and bytes received by its transport.
SELECTED_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    if (!pc) return null;
    const stats = await pc.getStats();
    let transport = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) transport = s; });
    if (!transport) return null;
    const remote = stats.get(stats.get(transport.selectedCandidatePairId).remoteCandidateId);
    return {type: remote.candidateType, address: remote.address || remote.ip, port: remote.port,
            bytesReceived: transport.bytesReceived};
}
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def one_to_one_nat(port: int) -> str:
    """Stateless 1:1 NAT of the hub's media port between PUBLIC and HOST_IP, on HOST_IF."""
    return f"""
table ip {TABLE} {{
    chain inbound {{
        type filter hook prerouting priority -300; policy accept;
        iifname "{HOST_IF}" ip daddr {PUBLIC} ip daddr set {HOST_IP} notrack
    }}
    chain outbound {{
        type filter hook output priority -300; policy accept;
        oifname "{HOST_IF}" ip saddr {HOST_IP} udp sport {port} ip saddr set {PUBLIC} notrack
    }}
}}
"""


NS_FIREWALL = f"""
table inet uhnat {{
    chain output {{
        type filter hook output priority 0; policy accept;
        ip daddr {HOST_IP} meta l4proto udp counter drop
    }}
}}
"""


@pytest.fixture
def natted(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The namespace behind the NAT; yields (a Chromium launcher inside it, the hub's UDP port)."""
    require_root("nftables")
    port = free_udp_port()
    try:
        veth_namespace(NS, HOST_IF, NS_IF, HOST_IP, NS_IP)
        sh("ip", "netns", "exec", NS, "ip", "route", "add", f"{PUBLIC}/32", "via", HOST_IP)
        sh("ip", "netns", "exec", NS, "nft", "-f", "-", stdin=NS_FIREWALL)
        sh("nft", "-f", "-", stdin=one_to_one_nat(port))
        script = chromium_in(NS, tmp_path)
        yield script, port
    finally:
        subprocess.run(["nft", "delete", "table", "ip", TABLE], capture_output=True)
        remove_namespace(NS, HOST_IF)


@pytest.fixture
def nat_hub(natted: tuple[Path, int], tmp_path: Path) -> Iterator[HubServer]:
    server = start_server(tmp_path / "hub", "--udp-port", str(natted[1]), "--public-ip", PUBLIC, host=HOST_IP)
    yield server
    server.stop()


def test_browser_behind_the_nat_reaches_the_hub_at_its_public_address(
    natted: tuple[Path, int], nat_hub: HubServer, launch_browser: Callable[..., Any],
    new_page: Callable[..., Any],
) -> None:
    chromium, port = natted
    browser = launch_browser(f"--unsafely-treat-insecure-origin-as-secure={nat_hub.url}", executable=str(chromium))
    room = unique_room("nat")
    pages = [join(new_page(browser), nat_hub.url, room, name) for name in ("Ana", "Ben")]
    for page in pages:
        wait_remote_videos(page, 1)
    for page in pages:
        first = wait_until(lambda p=page: p.evaluate(SELECTED_JS), lambda s: bool(s and s["bytesReceived"]),
                           20, "a selected candidate pair", page=page)
        print("selected:", first)
        # the candidate --public-ip added: the public address, the hub's one port
        assert (first["type"], first["address"], first["port"]) == ("srflx", PUBLIC, port), first
        wait_until(lambda p=page: p.evaluate(SELECTED_JS),
                   lambda s, f=first: s["bytesReceived"] > f["bytesReceived"] + 20_000, 20, "more media", page=page)
    dropped = sum(int(n) for n in re.findall(r"counter packets (\d+)",
                                             sh("ip", "netns", "exec", NS, "nft", "list", "table", "inet", "uhnat")))
    print("datagrams to the private address dropped:", dropped)
