"""A camera nobody receives rests (issue #12): in Chromium, the page of a participant in nobody's
last-N stops encoding its camera (its own WebRTC stats), keeps its own preview, and starts again
as soon as someone pins it — the pinning host then sees that camera play.

Three publishers with Chromium's fake camera (no microphone: who is shown does not depend on
fake beeps) and a listening host who sets the room's N to 1: the host and Chiara get Ana's
video, Ana gets Ben's, Ben gets Ana's — Chiara's camera reaches nobody.
"""

from __future__ import annotations

from typing import Any

import pytest

from e2e_helpers import WAIT_MS, get_json, join, unique_room, wait_remote_videos, wait_until

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

WAIT_S = WAIT_MS / 1000

# Frames the page's camera encoder produced so far (outbound-rtp), and whether it is active.
ENCODED_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    let frames = 0;
    if (!pc) return frames;
    (await pc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') frames += s.framesEncoded || 0;
    });
    return frames;
}
"""

# The page's own camera preview: time advancing means the user still sees themselves.
PREVIEW_JS = """
() => {
    const v = document.querySelector('.tile.local[data-source="camera"] video');
    return v ? v.currentTime : -1;
}
"""

TILE_JS = """
(name) => {
    const t = document.querySelector(`.tile.remote[data-source="camera"][data-name="${name}"]`);
    const v = t && t.querySelector('video');
    return v && v.checkVisibility() && v.videoWidth > 0 && !v.paused ? v.currentTime : -1;
}
"""


def encoding(page: Any, seconds: float = 1.5) -> int:
    """Frames the page's camera encoded over ``seconds``."""
    before = page.evaluate(ENCODED_JS)
    page.wait_for_timeout(int(seconds * 1000))
    return int(page.evaluate(ENCODED_JS) - before)


def test_a_camera_nobody_receives_stops_encoding_and_a_pin_brings_it_back(hub, new_page):
    room = unique_room("unseen")
    host = join(new_page(), hub.url, room, "Host", audio=False, video=False)
    pages = {name: join(new_page(), hub.url, room, name, audio=False) for name in ("Ana", "Ben", "Chiara")}
    wait_remote_videos(host, 3)
    chiara = pages["Chiara"]
    wait_until(lambda: encoding(chiara), lambda k: k > 10, WAIT_S,
               "Chiara's camera encodes (everyone's camera is received)", page=chiara)

    n = host.get_by_test_id("room-last-n")
    n.fill("1")
    n.press("Tab")
    expect(host.get_by_test_id("host-controls")).to_have_attribute("data-last-n", "1", timeout=WAIT_MS)

    wait_until(lambda: encoding(chiara), lambda k: k == 0, WAIT_S, "Chiara's camera stops encoding", page=chiara)
    for name in ("Ana", "Ben"):  # received cameras go on
        wait_until(lambda name=name: encoding(pages[name]), lambda k: k > 10, WAIT_S,
                   f"{name}'s camera encodes", page=pages[name])
    preview = chiara.evaluate(PREVIEW_JS)
    wait_until(lambda: chiara.evaluate(PREVIEW_JS), lambda t: t > preview + 0.5, WAIT_S,
               "Chiara still sees herself (her preview plays)", page=chiara)

    tile = host.locator('.tile.remote[data-source="camera"][data-name="Chiara"]')
    tile.get_by_test_id("pin").click()
    wait_until(lambda: encoding(chiara), lambda k: k > 10, WAIT_S, "Chiara's camera encodes again", page=chiara)
    start = host.evaluate(TILE_JS, "Chiara")
    wait_until(lambda: host.evaluate(TILE_JS, "Chiara"), lambda t: t > max(start, 0) + 1.0, WAIT_S,
               "the host sees Chiara's video play", page=host)


# A browser that cannot stop one encoding (refuses `active: false`), as some do. It counts the
# parameters it applied after a refusal (window.__appliedAfterRefusal): the page has dealt with it.
REFUSE_ACTIVE_JS = """
const setParameters = RTCRtpSender.prototype.setParameters;
let refused = false;
RTCRtpSender.prototype.setParameters = function (params) {
    if (params && params.encodings && params.encodings.some((e) => e.active === false)) {
        refused = true;
        return Promise.reject(new DOMException('cannot stop one encoding', 'InvalidModificationError'));
    }
    const applied = setParameters.call(this, params);
    if (refused) {
        applied.then(() => { window.__appliedAfterRefusal = (window.__appliedAfterRefusal || 0) + 1; },
                     () => {});
    }
    return applied;
};
"""


def test_a_browser_that_cannot_rest_its_camera_keeps_sending_without_an_error(hub, new_page):
    """Resting a camera is a saving, never an error: the page keeps sending, the user sees no
    "media problem", and the camera still gets the room's cap and layers."""
    room = unique_room("unpausable")
    host = join(new_page(), hub.url, room, "Host", audio=False, video=False)
    for name in ("Ana", "Ben"):
        join(new_page(), hub.url, room, name, audio=False)
    chiara = new_page()
    chiara.add_init_script(REFUSE_ACTIVE_JS)
    join(chiara, hub.url, room, "Chiara", audio=False)
    wait_remote_videos(host, 3)
    released = get_json(hub.url + "/healthz")["camera_releases"]

    n = host.get_by_test_id("room-last-n")
    n.fill("1")
    n.press("Tab")
    expect(host.get_by_test_id("host-controls")).to_have_attribute("data-last-n", "1", timeout=WAIT_MS)
    wait_until(lambda: get_json(hub.url + "/healthz")["camera_releases"], lambda k: k > released, WAIT_S,
               "the hub asks Chiara to rest her camera", page=chiara)
    wait_until(lambda: chiara.evaluate("() => window.__appliedAfterRefusal || 0"), bool, WAIT_S,
               "Chiara's page, refused a rest, sends its camera on", page=chiara)
    expect(chiara.get_by_test_id("error")).to_be_hidden()
    wait_until(lambda: encoding(chiara), lambda k: k > 10, WAIT_S,
               "Chiara's camera encodes on (it could not stop)", page=chiara)
    # and when someone wants her again, the host sees her
    host.locator('.tile.remote[data-source="camera"][data-name="Chiara"]').get_by_test_id("pin").click()
    start = host.evaluate(TILE_JS, "Chiara")
    wait_until(lambda: host.evaluate(TILE_JS, "Chiara"), lambda t: t > max(start, 0) + 1.0, WAIT_S,
               "the host sees Chiara's video play", page=host)
    expect(chiara.get_by_test_id("error")).to_be_hidden()
