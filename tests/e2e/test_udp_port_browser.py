"""One media port in real browsers (issue #18): with ``unionhub serve --udp-port P`` three
Chromium participants see each other, and every candidate pair that carries their media, as each
page's own ``getStats()`` reports it, has the hub's end on port P."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import start_server
from e2e_helpers import join, unique_room, wait_remote_videos, wait_until

pytestmark = pytest.mark.browser

#: The hub-side ports of every candidate pair that carried bytes, and the bytes received so far.
PAIRS_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    if (!pc) return null;
    const stats = await pc.getStats();
    const ports = [];
    let bytes = 0;
    stats.forEach((s) => {
        if (s.type === 'candidate-pair' && (s.bytesReceived > 0 || s.bytesSent > 0)) {
            ports.push(stats.get(s.remoteCandidateId).port);
            bytes += s.bytesReceived;
        }
    });
    return {ports, bytes};
}
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def test_three_browsers_media_all_on_the_one_udp_port(
    tmp_path: Path, new_page: Callable[..., Any]
) -> None:
    port = free_udp_port()
    hub = start_server(tmp_path, "--udp-port", str(port))
    try:
        room = unique_room("udp-port")
        pages = [join(new_page(), hub.url, room, name) for name in ("Ana", "Ben", "Cy")]
        for page in pages:
            wait_remote_videos(page, 2)
        for page in pages:
            first = wait_until(lambda p=page: p.evaluate(PAIRS_JS), lambda s: bool(s and s["ports"]),
                               20, "a candidate pair carrying media", page=page)
            later = wait_until(lambda p=page: p.evaluate(PAIRS_JS),
                               lambda s, f=first: s["bytes"] > f["bytes"] + 20_000, 20, "more media", page=page)
            assert set(later["ports"]) == {port}, later
    finally:
        hub.stop()
