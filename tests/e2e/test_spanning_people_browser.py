"""The people of a room bigger than one node, with real Chromium (two `unionhub serve --redis
--room-capacity 1` nodes, as in test_spanning_browser.py): Ben, sent to the relay, is not its
host; each lists the other; the host on the owner mutes and removes Ben on the relay; and when
Ben knocks on the relay, the host on the owner sees him waiting and, opening the room, lets him in."""

from __future__ import annotations

import pytest

from e2e_helpers import WAIT_MS, join, joined_id, participant, room_url, unique_room
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


def test_opening_the_lobby_on_the_owner_lets_in_a_knocker_on_the_relay(two_nodes, new_page):
    n1, n2 = two_nodes
    room = unique_room("span-lobby")
    ana = join(new_page(), n1.url, room, "Ana", video=False)
    try:
        ana.get_by_test_id("room-access").select_option("lobby")
        expect(ana.get_by_test_id("host-controls")).to_have_attribute("data-access", "lobby")
        ben = new_page()
        ben.goto(room_url(n1.url, room, "Ben", video=False))
        expect(ben.get_by_test_id("lobby-waiting")).to_be_visible(timeout=WAIT_MS)
        assert origin(ana.url) != origin(ben.url), "Ben knocks on the relay node"
        # Ana, on the owner, sees Ben waiting on the other node; she opens the room
        expect(ana.locator('[data-testid="lobby-entry"][data-name="Ben"]')).to_have_count(1, timeout=WAIT_MS)
        ana.get_by_test_id("room-access").select_option("open")
        # Ben is let in on the relay, and each lists the other
        joined_id(ben)
        expect(ben.get_by_test_id("lobby-waiting")).to_be_hidden()
        expect(participant(ben, "Ana")).to_be_visible(timeout=WAIT_MS)
        expect(participant(ana, "Ben")).to_be_visible(timeout=WAIT_MS)
        expect(ana.get_by_test_id("lobby-entry")).to_have_count(0)
    except Exception:
        print(f"--- n1:\n{n1.log_tail()}\n--- n2:\n{n2.log_tail()}")
        raise
