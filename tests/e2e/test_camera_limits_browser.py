"""Camera limits in real browsers (issue #12 item 4): a host turns on "low bandwidth room" and
every camera in the call is capped — the browser's own sender parameters say 200 kbit/s at half
resolution, and the other participants receive at most 320×240 instead of the fake camera's 640×480;
turned off, full resolution comes back. (When the cap follows the number of cameras is
tests/test_bandwidth.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from e2e_helpers import WAIT_MS, join, unique_room, wait_remote_videos, wait_until

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

WAIT_S = WAIT_MS / 1000

# The encodings of this page's camera sender (what it asked its encoder for).
CAMERA_ENCODINGS_JS = """
() => {
    const pc = window.unionhub && window.unionhub.pc;
    if (!pc) return null;
    const sender = pc.getSenders().find((s) => s.track && s.track.kind === 'video');
    if (!sender) return null;
    return sender.getParameters().encodings.map((e) => ({
        maxBitrate: e.maxBitrate ?? null, scale: e.scaleResolutionDownBy ?? 1,
    }));
}
"""

# The width of the video frames this page receives, per stream.
INBOUND_WIDTHS_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    const out = [];
    if (!pc) return out;
    (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && s.frameWidth) out.push(s.frameWidth);
    });
    return out.sort();
}
"""


def widths(page: Any) -> list[int]:
    return page.evaluate(INBOUND_WIDTHS_JS)


def test_a_low_bandwidth_room_caps_every_camera_and_lifts_it(hub, new_page):
    room = unique_room("caps")
    host = join(new_page(), hub.url, room, "Host", audio=False)
    ana = join(new_page(), hub.url, room, "Ana", audio=False)
    wait_remote_videos(host, 1)
    wait_until(lambda: widths(host), lambda w: w == [640], WAIT_S, "Ana's full-size video", page=host)
    assert ana.evaluate(CAMERA_ENCODINGS_JS) == [{"maxBitrate": None, "scale": 1}]

    low = host.get_by_test_id("room-low-bandwidth")
    expect(low).not_to_be_checked()
    low.check()
    expect(host.get_by_test_id("host-controls")).to_have_attribute("data-low-bandwidth", "true", timeout=WAIT_MS)
    wait_until(lambda: ana.evaluate(CAMERA_ENCODINGS_JS), lambda e: e == [{"maxBitrate": 200000, "scale": 2}],
               WAIT_S, "Ana's browser caps her camera", page=ana)
    wait_until(lambda: host.evaluate(CAMERA_ENCODINGS_JS), lambda e: e == [{"maxBitrate": 200000, "scale": 2}],
               WAIT_S, "the host's own camera is capped too", page=host)
    # half the 640 at most: under a 200 kbit/s cap Chromium may lower it further on its own
    # (its bandwidth/CPU adaptation, e.g. 240 wide with temporal layers), never above
    wait_until(lambda: widths(host), lambda w: len(w) == 1 and 0 < w[0] <= 320, WAIT_S,
               "the host receives at most 320 wide", page=host)
    wait_until(lambda: widths(ana), lambda w: len(w) == 1 and 0 < w[0] <= 320, WAIT_S,
               "Ana receives at most 320 wide", page=ana)

    low.uncheck()
    wait_until(lambda: ana.evaluate(CAMERA_ENCODINGS_JS), lambda e: e == [{"maxBitrate": None, "scale": 1}],
               WAIT_S, "Ana's cap lifted", page=ana)
    # (the browser climbs back in steps, 480 then 640, as its bandwidth estimate grows)
    wait_until(lambda: widths(host), lambda w: len(w) == 1 and w[0] > 320, WAIT_S, "bigger again", page=host)
