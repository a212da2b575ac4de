"""A cluster behind one nginx origin (issue #13; `unionhub front-config`, nodes with
`--front-proxy`), with real Chromium: people who open the room link on the front meet on the
room's owner, and when that node is killed (SIGKILL) their pages find the room's new owner by
themselves and are back in the call, with video, and the first one still hosts it (same origin:
the browser is recognised by the room's state the cluster kept)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import HubServer, start_server
from e2e_helpers import WAIT_MS, join, unique_room, wait_remote_videos
from nginxkit import free_port, running_nginx
from redistest import redis_server
from unionhub.front import Node, nginx_config

pytestmark = pytest.mark.browser

@pytest.fixture
def front(tmp_path: Path) -> Iterator[tuple[str, dict[str, HubServer]]]:
    """(the front's URL, the nodes by id)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with redis_server(tmp_path / "redis") as redis:
        common = ("--redis", redis.url, "--public-url", url, "--front-proxy", "--asr-model", "none",
                  "--no-recordings", "--no-live")
        nodes = {node_id: start_server(tmp_path / node_id, *common, "--node-id", node_id) for node_id in ("n1", "n2")}
        try:
            front_nodes = [Node(i, urlsplit(n.url).netloc) for i, n in nodes.items()]
            root = tmp_path / "nginx"
            with running_nginx(root, nginx_config(front_nodes, f"127.0.0.1:{port}", root), port):
                yield url, nodes
        finally:
            for n in nodes.values():
                n.stop()


def node_of(page_url: str) -> str:
    return parse_qs(urlsplit(page_url).query)["node"][0]


HOST_JS = "() => !document.querySelector('[data-testid=\"host-controls\"]').hidden"


def wait_host(page) -> None:
    page.wait_for_function(HOST_JS, timeout=WAIT_MS)


def test_pages_behind_the_front_follow_a_killed_owner_to_the_new_one(front, new_page):
    url, nodes = front
    room = unique_room("front")
    ana = join(new_page(), url, room, "Ana", audio=False)
    ben = join(new_page(), url, room, "Ben", audio=False)
    owner = node_of(ana.url)
    assert node_of(ben.url) == owner and ana.url.startswith(url + "/r/"), "one origin, the owner named"
    assert "name=Ana" in ana.url, "the link's query goes along"
    wait_remote_videos(ana, 1)
    wait_remote_videos(ben, 1)
    wait_host(ana)  # the first one in hosts
    assert not ben.evaluate(HOST_JS)

    dead = nodes[owner]
    survivor = next(i for i in nodes if i != owner)
    dead.process.send_signal(signal.SIGKILL)
    dead.process.wait(timeout=10)
    killed = time.monotonic()
    for page in (ana, ben):
        page.wait_for_url(lambda u: "node=" + survivor in u, timeout=30_000)
    wait_remote_videos(ana, 1, timeout=30_000)
    wait_remote_videos(ben, 1, timeout=WAIT_MS)
    print(f"both back with video on {survivor} {time.monotonic() - killed:.1f} s after SIGKILL of {owner}")
    wait_host(ana)  # the browser that hosted the meeting hosts it on the new owner
    assert not ben.evaluate(HOST_JS)
