"""The people of a room bigger than one node, with real Chromium (two `unionhub serve --redis
--room-capacity 1` nodes, as in test_spanning_browser.py): Ben, sent to the relay, is not its
host; each lists the other; the host on the owner mutes and removes Ben on the relay."""

from __future__ import annotations

import pytest

from e2e_helpers import WAIT_MS, join, participant, unique_room
from test_spanning_browser import origin, two_nodes

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

__all__ = ["two_nodes"]  # (the fixture, used by name)


def test_the_relay_half_lists_everyone_and_obeys_the_owners_host(two_nodes, new_page):
    n1, n2 = two_nodes
    room = unique_room("span-people")
    ana = join(new_page(), n1.url, room, "Ana", video=False)
    ben = join(new_page(), n1.url, room, "Ben", video=False)
    assert origin(ana.url) != origin(ben.url), "Ben is served by the relay node"
    try:
        # Ben walked into the empty relay half: he is no host there
        expect(ben.get_by_test_id("host-controls")).to_be_hidden()
        expect(ana.get_by_test_id("host-controls")).to_be_visible()
        # both see both
        expect(participant(ben, "Ana")).to_be_visible(timeout=WAIT_MS)
        expect(participant(ana, "Ben")).to_be_visible(timeout=WAIT_MS)
        # the owner's host mutes Ben, on the other node
        expect(participant(ana, "Ben")).to_have_attribute("data-audio", "true", timeout=WAIT_MS)
        participant(ana, "Ben").get_by_test_id("host-mute").click()
        expect(ben.get_by_test_id("notice")).to_contain_text("muted you", timeout=WAIT_MS)
        expect(participant(ana, "Ben")).to_have_attribute("data-audio", "false", timeout=WAIT_MS)
        # and removes him
        participant(ana, "Ben").get_by_test_id("host-remove").click()
        ana.get_by_test_id("remove-confirm-button").click()
        expect(ben.get_by_test_id("removed")).to_be_visible(timeout=WAIT_MS)
        expect(participant(ana, "Ben")).to_have_count(0, timeout=WAIT_MS)
    except Exception:
        print(f"--- n1:\n{n1.log_tail()}\n--- n2:\n{n2.log_tail()}")
        raise
