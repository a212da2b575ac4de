"""Thumbnails at a lower frame rate, in real browsers (#12): Chromium sends its camera in three
VP8 temporal layers (the page asks for ``scalabilityMode: 'L1T3'``), and a listener receives the
active speaker's video at the full frame rate and another participant's, a thumbnail, at a lower
one (half, with so few tiles) — both playing.

Three participants in one Chromium: Ana speaks (the fake microphone's beeps), Bo has a camera and
no microphone, Lee (the listener) neither. What a user would notice is read from Lee's page: its
own RTCPeerConnection's frames decoded per video tile, and that both tiles play.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from e2e_helpers import WAIT_MS, join, unique_room, wait_remote_videos, wait_until

pytestmark = pytest.mark.browser

WAIT_S = WAIT_MS / 1000
WINDOW_S = 4.0

# Frames decoded so far per camera tile (by the participant's name), from the page's getStats.
FRAMES_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    const byTrack = {};
    if (pc) (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') byTrack[s.trackIdentifier] = s.framesDecoded || 0;
    });
    const out = {};
    for (const t of document.querySelectorAll('.tile.remote[data-source="camera"]')) {
        const v = t.querySelector('video');
        const track = v && v.srcObject ? v.srcObject.getVideoTracks()[0] : null;
        if (track && track.id in byTrack) out[t.dataset.name] = byTrack[track.id];
    }
    return out;
}
"""

# What this page's camera sender sends: the scalability mode its encoder runs (outbound-rtp).
CAMERA_MODE_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    let mode = null;
    if (pc) (await pc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video' && s.framesEncoded > 0) mode = s.scalabilityMode || null;
    });
    return mode;
}
"""

SPEAKING_JS = """
() => { const t = document.querySelector('.tile.remote.speaking'); return t ? t.dataset.name : null; }
"""


def frames(page: Any) -> dict[str, int]:
    return page.evaluate(FRAMES_JS)


def thinned(hub: Any) -> int:
    with urllib.request.urlopen(hub.url + "/healthz", timeout=5) as response:
        return int(json.load(response)["frames_thinned"])


def test_the_speaker_plays_at_a_higher_frame_rate_than_a_thumbnail(hub, new_page):
    room = unique_room("layers")
    lee = join(new_page(), hub.url, room, "Lee", audio=False, video=False)
    ana = join(new_page(), hub.url, room, "Ana")
    bo = join(new_page(), hub.url, room, "Bo", audio=False)
    wait_remote_videos(lee, 2)
    # the browser took the page's request for temporal layers
    for name, page in (("Ana", ana), ("Bo", bo)):  # (each encoder reports it once it has sent frames)
        wait_until(lambda page=page: page.evaluate(CAMERA_MODE_JS), lambda mode: mode == "L1T3", WAIT_S,
                   f"{name}'s camera in L1T3", page=page)
    wait_until(lambda: lee.evaluate(SPEAKING_JS), lambda who: who == "Ana", WAIT_S, "Ana highlighted as speaking",
               page=lee)
    time.sleep(1.0)  # past Ana's switch to every layer (at her next base-layer frame)

    before, hub_before = frames(lee), thinned(hub)
    time.sleep(WINDOW_S)
    after, hub_after = frames(lee), thinned(hub)
    ana_frames = after["Ana"] - before["Ana"]
    bo_frames = after["Bo"] - before["Bo"]
    assert bo_frames > 0, f"Bo's thumbnail froze: {before} -> {after}"
    assert ana_frames / bo_frames > 1.5, f"speaker {ana_frames} frames vs thumbnail {bo_frames} in {WINDOW_S} s"
    assert hub_after > hub_before  # the hub left out frames of Bo's upper layer
    wait_remote_videos(lee, 2)  # both still playing
