"""Last-N video in real browsers: a host sets the room's N, a page receives that many videos and
shows the others' names; pinning a placeholder brings its video back.

Three publishers with Chromium's fake camera (no microphone: nobody speaks, so who is shown
does not depend on the fake beeps; audio is covered by tests/test_last_n_hub.py) and a
listening host (four pages on two cores). What a user notices is read from the page: tiles
playing video or showing a name, the pin toggle's pressed state, and the video frames the
browser's own WebRTC stats say it received.
"""

from __future__ import annotations

from typing import Any

import pytest

from e2e_helpers import WAIT_MS, join, unique_room, wait_remote_videos, wait_until, wait_videos_advance

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

WAIT_S = WAIT_MS / 1000

# Video frames received so far on each inbound video stream of the page's peer connection.
FRAMES_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    const out = {};
    if (!pc) return out;
    (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') out[s.mid || s.id] = s.framesReceived || 0;
    });
    return out;
}
"""

# The remote camera tiles as the user sees them: a video playing, or the name/avatar placeholder.
TILES_JS = """
() => [...document.querySelectorAll('.tile.remote[data-source="camera"]')].map((t) => {
    const v = t.querySelector('video');
    const avatar = t.querySelector('.avatar');
    return {
        name: t.dataset.name,
        playing: !!v && v.checkVisibility() && v.videoWidth > 0 && v.readyState >= 2 && !v.paused,
        placeholder: !!avatar && avatar.checkVisibility(),
        time: v ? v.currentTime : 0,
    };
})
"""


def tiles(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(TILES_JS)


def streams_receiving(page: Any) -> int:
    """How many video streams get new frames over a second or so."""
    before = page.evaluate(FRAMES_JS)
    page.wait_for_timeout(1500)
    after = page.evaluate(FRAMES_JS)
    return sum(1 for mid, n in after.items() if n > before.get(mid, 0) + 5)


def wait_tiles(page: Any, playing: set[str], placeholders: set[str]) -> None:
    def shown() -> tuple[set[str], set[str]]:
        now = tiles(page)
        return ({t["name"] for t in now if t["playing"] and not t["placeholder"]},
                {t["name"] for t in now if t["placeholder"] and not t["playing"]})
    wait_until(shown, lambda s: s == (playing, placeholders), WAIT_S,
               f"{sorted(playing)} play, {sorted(placeholders)} show their names", page=page)


def test_the_host_sets_n_and_a_pin_brings_a_placeholder_back(hub, new_page):
    room = unique_room("lastn")
    host = join(new_page(), hub.url, room, "Host", audio=False, video=False)
    names = ("Ana", "Ben", "Chiara")
    for name in names:  # cameras only: nobody speaks, so the order is the order they joined
        join(new_page(), hub.url, room, name, audio=False)
    wait_remote_videos(host, 3)
    wait_videos_advance(host)

    n = host.get_by_test_id("room-last-n")
    expect(n).to_have_value("8")
    n.fill("2")
    n.press("Tab")
    expect(host.get_by_test_id("host-controls")).to_have_attribute("data-last-n", "2", timeout=WAIT_MS)

    wait_tiles(host, {"Ana", "Ben"}, {"Chiara"})
    chiara = host.locator('.tile.remote[data-source="camera"][data-name="Chiara"]')
    expect(chiara.locator(".label")).to_have_text("Chiara")
    wait_until(lambda: streams_receiving(host), lambda k: k == 2, WAIT_S, "two videos arrive", page=host)

    pin = chiara.get_by_test_id("pin")
    expect(pin).to_have_attribute("aria-pressed", "false")
    pin.click()
    expect(pin).to_have_attribute("aria-pressed", "true")
    played = {t["name"]: t["time"] for t in tiles(host)}
    wait_tiles(host, {"Chiara", "Ana"}, {"Ben"})  # the pin first, then the first to join
    wait_until(lambda: {t["name"]: t["time"] for t in tiles(host)},
               lambda now: now["Chiara"] > played["Chiara"] + 1.0, WAIT_S, "Chiara's video plays", page=host)
    wait_until(lambda: streams_receiving(host), lambda k: k == 2, WAIT_S, "still two videos", page=host)
