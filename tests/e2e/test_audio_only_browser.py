"""Audio only ("data saver") in real browsers: no video in or out, the audio goes on.

Two participants with Chromium's fake camera and microphone. What a user notices is read from
the page: the button's pressed state, the tiles, the camera light (a live camera track), and the
bytes the browser's own WebRTC stats say it received.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from e2e_helpers import (
    WAIT_MS,
    join,
    participant,
    room_url,
    unique_room,
    wait_frames_not_black,
    wait_joined,
    wait_remote_videos,
    wait_until,
    wait_videos_advance,
)

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

WAIT_S = WAIT_MS / 1000

# Bytes received so far, by kind, over every inbound RTP stream of the page's peer connection.
RECEIVED_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    const out = {audio: 0, video: 0};
    if (!pc) return out;
    (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind in out) out[s.kind] += s.bytesReceived || 0;
    });
    return out;
}
"""

# Whether a camera is capturing: a live local video track (the camera light is on).
CAMERA_LIVE_JS = """
() => {
    const st = window.unionhub.state;
    const senders = window.unionhub.pc ? window.unionhub.pc.getSenders() : [];
    const tracks = [st.camera, ...senders.map((s) => s.track)];
    return tracks.some((t) => t && t.kind === 'video' && t.readyState === 'live');
}
"""

#: Opus from the fake microphone is a few kB a second: this much more audio is a few seconds.
AUDIO_MORE = 8_000


def received(page: Any) -> dict[str, int]:
    return page.evaluate(RECEIVED_JS)


def audio_plays_but_no_video_arrives(page: Any) -> None:
    """Audio bytes keep growing over a few seconds while video bytes do not grow at all."""
    before = received(page)
    after = wait_until(lambda: received(page), lambda now: now["audio"] >= before["audio"] + AUDIO_MORE,
                       WAIT_S, "audio keeps arriving", page=page)
    assert after["video"] <= before["video"], (before, after)


def expect_audio_only(page: Any) -> None:
    """The page is in audio-only mode, as its user sees it."""
    button = page.get_by_test_id("audio-only")
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(button).to_be_enabled()
    expect(page.get_by_test_id("remote-video")).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator(".tile.remote.no-video")).to_have_count(1)  # the other's name and avatar
    expect(page.locator('.tile.local[data-source="camera"]')).to_have_class(re.compile(r"\bno-video\b"))
    expect(page.get_by_test_id("camera-toggle")).to_be_disabled()
    expect(page.get_by_test_id("screen-share")).to_be_disabled()
    wait_until(lambda: page.evaluate(CAMERA_LIVE_JS), lambda live: not live, WAIT_S,
               "the camera is off", page=page)


def test_switching_to_audio_only_stops_video_both_ways_and_survives_a_reload(hub, new_page):
    room = unique_room("saver")
    ana = join(new_page(), hub.url, room, "Ana")
    ben = join(new_page(), hub.url, room, "Ben")
    for page in (ana, ben):
        wait_remote_videos(page, 1)
        wait_videos_advance(page)
    button = ben.get_by_test_id("audio-only")
    expect(button).to_have_attribute("aria-pressed", "false")
    expect(button).to_have_text("Audio only")

    button.click()

    expect_audio_only(ben)
    expect(ben.get_by_test_id("remote-audio")).to_have_count(1)
    audio_plays_but_no_video_arrives(ben)
    # Ana sees Ben's name on an avatar instead of his video, and still hears him.
    expect(participant(ana, "Ben")).to_have_attribute("data-video", "false")
    wait_remote_videos(ana, 0)
    expect(ana.locator(".tile.remote.no-video .label").filter(has_text="Ben")).to_have_count(1)
    expect(ana.get_by_test_id("remote-audio")).to_have_count(1)

    # A reload (a new connection) comes back audio only: no camera prompt, no video.
    old_id = wait_joined(ben)
    ben.reload()  # (its load event can come before the page's script ran: wait_joined waits for that too)
    assert wait_joined(ben) != old_id
    expect_audio_only(ben)
    audio_plays_but_no_video_arrives(ben)
    assert received(ben)["video"] == 0
    expect(participant(ana, "Ben")).to_have_attribute("data-video", "false")

    # Switched off with the keyboard: video comes back both ways, Ben's camera starts again.
    button.focus()
    ben.keyboard.press("Space")
    expect(button).to_have_attribute("aria-pressed", "false")
    wait_remote_videos(ben, 1)
    wait_videos_advance(ben)
    wait_frames_not_black(ben)
    expect(ben.get_by_test_id("camera-toggle")).to_be_enabled()
    assert ben.evaluate(CAMERA_LIVE_JS)
    wait_remote_videos(ana, 1)
    wait_videos_advance(ana)
    expect(participant(ana, "Ben")).to_have_attribute("data-video", "true")
    for page in (ana, ben):
        expect(page.get_by_test_id("error")).to_be_hidden()

    # The choice (off, now) is this browser's: a fresh link to another room starts with video.
    other = unique_room("saver-next")
    ben.goto(room_url(hub.url, other, "Ben"))
    wait_joined(ben)
    expect(ben.get_by_test_id("audio-only")).to_have_attribute("aria-pressed", "false")


def test_audio_only_link_joins_without_video(hub, new_page):
    room = unique_room("saver-link")
    ana = join(new_page(), hub.url, room, "Ana")
    ben = new_page()
    ben.goto(room_url(hub.url, room, "Ben") + "&audioOnly=1")
    wait_joined(ben)

    expect_audio_only(ben)
    expect(ben.get_by_test_id("remote-audio")).to_have_count(1, timeout=WAIT_MS)
    audio_plays_but_no_video_arrives(ben)
    assert received(ben)["video"] == 0
    # Ana gets Ben's audio, not video (he never published any), and her own video is unaffected.
    expect(ana.get_by_test_id("remote-audio")).to_have_count(1, timeout=WAIT_MS)
    expect(participant(ana, "Ben")).to_have_attribute("data-video", "false")
    expect(ana.locator(".tile.remote.no-video .label").filter(has_text="Ben")).to_have_count(1)
    expect(ana.get_by_test_id("remote-video")).to_have_count(0)

    # The link chose for this call only; the browser's own choice (never made: off) is unchanged.
    ben.goto(room_url(hub.url, unique_room("saver-again"), "Ben"))
    wait_joined(ben)
    expect(ben.get_by_test_id("audio-only")).to_have_attribute("aria-pressed", "false")
    wait_until(lambda: ben.evaluate(CAMERA_LIVE_JS), bool, WAIT_S, "the camera is on", page=ben)


def test_the_join_form_offers_audio_only(hub, new_page):
    room = unique_room("saver-form")
    ana = join(new_page(), hub.url, room, "Ana")
    ben = new_page()
    ben.goto(f"{hub.url}/r/{room}")
    checkbox = ben.get_by_test_id("join-audio-only")
    expect(checkbox).not_to_be_checked()
    expect(ben.get_by_label("Audio only (data saver)")).to_have_count(1)
    ben.get_by_test_id("join-name").fill("Ben")
    checkbox.check()
    ben.get_by_test_id("join-submit").click()
    wait_joined(ben)

    expect_audio_only(ben)
    audio_plays_but_no_video_arrives(ben)
    expect(participant(ana, "Ben")).to_have_attribute("data-video", "false")

    # The form remembers it too.
    ben.goto(f"{hub.url}/")
    expect(ben.get_by_test_id("join-audio-only")).to_be_checked()
