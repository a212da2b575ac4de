"""A room bigger than one node (issue #13 item 4), with real Chromium: two `unionhub serve
--redis --room-capacity 1` nodes on a real redis-server. Ana opens the room; when Ben opens the
same link the room is full on its owner, so his page is sent to the other node, which relays
the room: each sees the other's camera, carried between the nodes by the pipe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import HubServer, start_server
from e2e_helpers import join, unique_room, wait_remote_videos
from redistest import redis_server

pytestmark = pytest.mark.browser


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[HubServer, HubServer]]:
    with redis_server(tmp_path / "redis") as redis:
        common = ("--redis", redis.url, "--asr-model", "none", "--no-recordings", "--no-live", "--room-capacity", "1")
        n1 = start_server(tmp_path / "n1", *common, "--node-id", "n1")
        n2 = start_server(tmp_path / "n2", *common, "--node-id", "n2")
        try:
            yield n1, n2
        finally:
            n1.stop()
            n2.stop()


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_past_capacity_the_next_person_is_sent_to_a_relay_and_both_see_each_other(two_nodes, new_page):
    n1, n2 = two_nodes
    room = unique_room("span")
    ana = join(new_page(), n1.url, room, "Ana", audio=False)
    ben = join(new_page(), n1.url, room, "Ben", audio=False)
    assert origin(ana.url) != origin(ben.url), "the second person is served by the relay node"
    assert {origin(ana.url), origin(ben.url)} == {n1.url, n2.url}
    try:
        wait_remote_videos(ben, 1)  # the owner's publisher, piped to the relay
        wait_remote_videos(ana, 1)  # the relay's publisher, piped back to the owner
    except Exception:
        print(f"--- n1:\n{n1.log_tail()}\n--- n2:\n{n2.log_tail()}")
        raise
