"""Media end to end: real browsers publish fake camera/mic through the SFU to each other."""

from __future__ import annotations

import pytest

from e2e_helpers import (
    DROP_NOTICED_MS,
    WAIT_MS,
    join,
    participant,
    remote_videos,
    unique_room,
    wait_frames_not_black,
    wait_joined,
    wait_remote_videos,
    wait_videos_advance,
)

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser


def test_three_participants_see_and_hear_each_other_and_one_leaves(hub, new_page):
    room = unique_room("three")
    names = ("Ana", "Ben", "Chiara")
    pages = {name: join(new_page(), hub.url, room, name) for name in names}

    for name, page in pages.items():
        wait_remote_videos(page, 2)
        wait_videos_advance(page)
        wait_frames_not_black(page)
        expect(page.get_by_test_id("remote-audio")).to_have_count(2)
        expect(page.get_by_test_id("participant")).to_have_count(3)
        for other in names:
            if other != name:
                expect(page.locator(".tile.remote .label").filter(has_text=other)).to_have_count(1)
        expect(page.get_by_test_id("error")).to_be_hidden()

    pages["Chiara"].get_by_test_id("leave").click()
    expect(pages["Chiara"].get_by_test_id("remote-video")).to_have_count(0)

    for name in ("Ana", "Ben"):
        page = pages[name]
        expect(participant(page, "Chiara")).to_have_count(0, timeout=WAIT_MS)
        wait_remote_videos(page, 1)
        wait_videos_advance(page)
        expect(page.get_by_test_id("remote-audio")).to_have_count(1)
        expect(page.get_by_test_id("participant")).to_have_count(2)


def test_screen_share_appears_as_an_extra_video(hub, new_page):
    room = unique_room("screen")
    ana = join(new_page(), hub.url, room, "Ana")
    ben = join(new_page(), hub.url, room, "Ben")
    wait_remote_videos(ben, 1)

    ana.get_by_test_id("screen-share").click()
    expect(ana.get_by_test_id("local-screen")).to_have_count(1)
    expect(ana.get_by_test_id("screen-share")).to_have_attribute("aria-pressed", "true")
    wait_remote_videos(ben, 2)
    expect(ben.locator('.tile[data-source="screen"] [data-testid="remote-video"]')).to_have_count(1)
    expect(participant(ben, "Ana")).to_have_attribute("data-screen", "true")

    # Someone joining during the share gets it too (the SFU asks the sharer for a keyframe).
    chiara = join(new_page(), hub.url, room, "Chiara")
    wait_remote_videos(chiara, 3)

    ana.get_by_test_id("screen-share").click()  # stop sharing
    expect(ana.get_by_test_id("local-screen")).to_have_count(0)
    for page in (ben, chiara):
        expect(page.locator('.tile[data-source="screen"]')).to_have_count(0, timeout=WAIT_MS)
        expect(participant(page, "Ana")).to_have_attribute("data-screen", "false")
    wait_remote_videos(ben, 2)

    # Share again, then end it the way the browser's own "Stop sharing" bar does.
    ana.get_by_test_id("screen-share").click()
    wait_remote_videos(ben, 3)
    ana.evaluate(
        "() => window.unionhub.state.screen.dispatchEvent(new Event('ended'))"
    )
    expect(ana.get_by_test_id("screen-share")).to_have_attribute("aria-pressed", "false")
    expect(ben.locator('.tile[data-source="screen"]')).to_have_count(0, timeout=WAIT_MS)
    for page in (ana, ben, chiara):
        expect(page.get_by_test_id("error")).to_be_hidden()


def test_cut_connection_rejoins_and_media_flows_again(hub, new_page):
    room = unique_room("reconnect")
    ana = join(new_page(), hub.url, room, "Ana")
    ben = join(new_page(), hub.url, room, "Ben")
    wait_remote_videos(ana, 1)
    wait_remote_videos(ben, 1)
    old_id = ana.evaluate("() => window.unionhub.state.myId")
    ana.get_by_test_id("raise-hand").click()
    ana.get_by_test_id("mic-toggle").click()
    expect(participant(ben, "Ana")).to_have_attribute("data-hand", "true")

    # Cut Ana off: the network goes away and her signalling connection drops.
    ana.context.set_offline(True)
    ana.evaluate("() => window.unionhub.socket.io.engine.close()")
    expect(ana.get_by_test_id("status")).to_have_text("Reconnecting…")
    expect(ana.get_by_test_id("error")).to_contain_text("Cannot reach the unionhub server")
    # The hub sees her go at once if her close reached it, else after its ping timeout.
    expect(participant(ben, "Ana")).to_have_count(0, timeout=DROP_NOTICED_MS)
    wait_remote_videos(ben, 0)

    ana.context.set_offline(False)
    ana.wait_for_function(
        "(old) => { const id = window.unionhub.state.myId; return !!id && id !== old; }",
        arg=old_id,
        timeout=30_000,
    )
    new_id = wait_joined(ana)
    expect(ana.get_by_test_id("status")).to_be_hidden()
    expect(ana.get_by_test_id("error")).to_be_hidden()

    wait_remote_videos(ana, 1, timeout=30_000)
    wait_videos_advance(ana)
    wait_frames_not_black(ana)
    wait_remote_videos(ben, 1, timeout=30_000)
    wait_videos_advance(ben)
    wait_frames_not_black(ben)
    assert [v["participant"] for v in remote_videos(ben)] == [new_id]
    # She is the same person to the others: still muted, hand still raised.
    expect(participant(ben, "Ana")).to_have_count(1)
    expect(participant(ben, "Ana")).to_have_attribute("data-hand", "true")
    expect(participant(ben, "Ana")).to_have_attribute("data-audio", "false")
    expect(ana.get_by_test_id("participant")).to_have_count(2)


def test_listener_sees_others_and_publishes_nothing(hub, new_page):
    room = unique_room("listener")
    ana = join(new_page(), hub.url, room, "Ana")
    lena = join(new_page(), hub.url, room, "Lena", audio=False, video=False)

    wait_remote_videos(lena, 1)
    wait_videos_advance(lena)
    wait_frames_not_black(lena)
    expect(lena.get_by_test_id("remote-audio")).to_have_count(1)
    expect(lena.get_by_test_id("error")).to_be_hidden()

    expect(participant(ana, "Lena")).to_have_count(1)
    expect(participant(ana, "Lena")).to_have_attribute("data-audio", "false")
    expect(participant(ana, "Lena")).to_have_attribute("data-video", "false")
    # Ana sees Lena's name on an avatar tile, but no video and no audio from her.
    expect(ana.locator(".tile.remote.no-video .label").filter(has_text="Lena")).to_have_count(1)
    ana.wait_for_timeout(1500)
    expect(ana.get_by_test_id("remote-video")).to_have_count(0)
    expect(ana.get_by_test_id("remote-audio")).to_have_count(0)

    sending = lena.evaluate(
        """() => window.unionhub.pc.getTransceivers()
                 .filter((t) => t.sender.track || (t.currentDirection || '').includes('send'))
                 .length"""
    )
    assert sending == 0
    expect(lena.get_by_test_id("mic-toggle")).to_be_disabled()
    expect(lena.get_by_test_id("camera-toggle")).to_be_disabled()
    expect(lena.get_by_test_id("screen-share")).to_be_disabled()


def test_denied_camera_continues_audio_only(hub, new_page):
    room = unique_room("denied")
    ana = join(new_page(), hub.url, room, "Ana")
    ben = new_page()
    # Ben's browser refuses the camera (as if he clicked "Block") but allows the microphone.
    ben.context.add_init_script(
        """(() => {
            const md = navigator.mediaDevices;
            const original = md.getUserMedia.bind(md);
            md.getUserMedia = async (constraints) => {
                if (constraints && constraints.video) {
                    throw new DOMException('Permission denied', 'NotAllowedError');
                }
                return original(constraints);
            };
        })()"""
    )
    join(ben, hub.url, room, "Ben")

    expect(ben.get_by_test_id("error")).to_contain_text("Camera access was denied")
    wait_remote_videos(ben, 1)
    wait_videos_advance(ben)
    expect(ben.get_by_test_id("camera-toggle")).to_be_disabled()
    expect(ben.get_by_test_id("mic-toggle")).to_be_enabled()

    expect(participant(ana, "Ben")).to_have_attribute("data-audio", "true")
    expect(participant(ana, "Ben")).to_have_attribute("data-video", "false")
    expect(ana.get_by_test_id("remote-audio")).to_have_count(1, timeout=WAIT_MS)
    expect(ana.locator(".tile.remote.no-video .label").filter(has_text="Ben")).to_have_count(1)
    expect(ana.get_by_test_id("remote-video")).to_have_count(0)
