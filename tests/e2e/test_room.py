"""Room features end to end: join form, chat, participant list, hands, errors."""

from __future__ import annotations

import re

import pytest

from e2e_helpers import (
    WAIT_MS,
    join,
    participant,
    room_url,
    unique_room,
    wait_joined,
    wait_remote_videos,
    wait_videos_advance,
)

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser


def chat_message(page, text):
    return page.get_by_test_id("chat-message").filter(has_text=text)


def test_chat_reaches_everyone(hub, new_page):
    room = unique_room("chat")
    ana = join(new_page(), hub.url, room, "Ana")
    ben = join(new_page(), hub.url, room, "Ben")
    chiara = join(new_page(), hub.url, room, "Chiara", audio=False, video=False)
    pages = (ana, ben, chiara)

    ana.get_by_test_id("chat-input").fill("Solidarity from Lisbon ✊")
    ana.get_by_test_id("chat-input").press("Enter")
    for page in pages:
        expect(chat_message(page, "Solidarity from Lisbon ✊")).to_have_count(1, timeout=WAIT_MS)
        expect(chat_message(page, "Solidarity from Lisbon ✊")).to_contain_text("Ana")
    expect(ana.get_by_test_id("chat-input")).to_have_value("")

    # The Send button works too; markup is shown as text, never interpreted.
    chiara.get_by_test_id("chat-input").fill("<b>strike</b> vote at 5")
    chiara.get_by_test_id("chat-send").click()
    for page in pages:
        expect(chat_message(page, "<b>strike</b> vote at 5")).to_contain_text("Chiara")
        expect(page.locator('[data-testid="chat-message"] b')).to_have_count(0)

    # Blank messages are not sent: Ben's next message is the next everyone gets (the chat keeps
    # its order, so a blank one sent before it would have arrived first).
    ben.get_by_test_id("chat-input").fill("   ")
    ben.get_by_test_id("chat-send").click()
    ben.get_by_test_id("chat-input").fill("Seconded")
    ben.get_by_test_id("chat-send").click()
    for page in pages:
        expect(chat_message(page, "Seconded")).to_have_count(1)
        expect(page.get_by_test_id("chat-message")).to_have_count(3)
        expect(page.get_by_test_id("error")).to_be_hidden()


def test_participant_list_hands_and_media_state(hub, new_page):
    room = unique_room("people")
    ana = join(new_page(), hub.url, room, "Ana", lang="pt")
    ben = join(new_page(), hub.url, room, "Ben", lang="ar")
    ana_id = ana.evaluate("() => window.unionhub.state.myId")

    for page in (ana, ben):
        expect(page.get_by_test_id("participant")).to_have_count(2)
        expect(participant(page, "Ana")).to_contain_text("pt")
        expect(participant(page, "Ben")).to_contain_text("ar")
    expect(participant(ana, "Ben")).to_have_attribute("data-audio", "true")
    expect(participant(ana, "Ben")).to_have_attribute("data-hand", "false")

    ben.get_by_test_id("raise-hand").click()
    expect(ben.get_by_test_id("raise-hand")).to_have_attribute("aria-pressed", "true")
    expect(participant(ana, "Ben")).to_have_attribute("data-hand", "true")
    expect(participant(ben, "Ben")).to_have_attribute("data-hand", "true")
    ben.get_by_test_id("raise-hand").click()
    expect(participant(ana, "Ben")).to_have_attribute("data-hand", "false")

    ana.get_by_test_id("mic-toggle").click()
    expect(ana.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "true")
    expect(participant(ben, "Ana")).to_have_attribute("data-audio", "false")
    ana.get_by_test_id("mic-toggle").click()
    expect(participant(ben, "Ana")).to_have_attribute("data-audio", "true")

    wait_remote_videos(ben, 1)
    ana_tile = ben.locator(f'.tile[data-participant="{ana_id}"][data-source="camera"]')
    ana.get_by_test_id("camera-toggle").click()
    expect(participant(ben, "Ana")).to_have_attribute("data-video", "false")
    expect(ana_tile).to_have_class(re.compile(r"\bno-video\b"))
    expect(ana_tile.locator(".avatar")).to_be_visible()
    ana.get_by_test_id("camera-toggle").click()
    expect(participant(ben, "Ana")).to_have_attribute("data-video", "true")
    expect(ana_tile).not_to_have_class(re.compile(r"\bno-video\b"))
    wait_remote_videos(ben, 1)
    wait_videos_advance(ben)


def test_active_speaker_is_highlighted(hub, new_page):
    room = unique_room("speaker")
    ana = join(new_page(), hub.url, room, "Ana")
    ana_id = ana.evaluate("() => window.unionhub.state.myId")
    # Ana's fake microphone beeps: she becomes the active speaker (highlighted on her own tile).
    expect(ana.locator(f'.tile.local.speaking[data-participant="{ana_id}"]')).to_have_count(
        1, timeout=WAIT_MS
    )
    # Someone joining while Ana keeps speaking sees her highlighted too.
    ben = join(new_page(), hub.url, room, "Ben")
    ben.get_by_test_id("mic-toggle").click()  # only Ana's microphone is live
    wait_remote_videos(ben, 1)
    expect(ben.locator(f'.tile.speaking[data-participant="{ana_id}"]')).to_have_count(
        1, timeout=WAIT_MS
    )
    expect(participant(ben, "Ana")).to_have_class(re.compile(r"\bspeaking\b"))


def test_bad_room_name_in_url_shows_an_error(hub, new_page):
    page = new_page()
    page.goto(f"{hub.url}/r/bad!room?name=Ana&lang=en")
    expect(page.get_by_test_id("error")).to_be_visible()
    expect(page.get_by_test_id("error")).to_contain_text("not a valid room name")
    expect(page.get_by_test_id("join-submit")).to_be_visible()
    assert page.evaluate("() => window.unionhub.socket") is None  # nothing was sent

    page.goto(room_url(hub.url, "x" * 65, "Ana"))
    expect(page.get_by_test_id("error")).to_contain_text("not a valid room name")


def test_join_form(hub, browser):
    context = browser.new_context(locale="es-ES")
    try:
        page = context.new_page()
        page.goto(hub.url + "/")
        expect(page.get_by_test_id("join-lang")).to_have_value("es")

        page.get_by_test_id("join-room").fill("not a room")
        page.get_by_test_id("join-name").fill("Ana María")
        page.get_by_test_id("join-submit").click()
        # (in the browser's language: web_client/locales/es.json)
        expect(page.get_by_test_id("join-message")).to_contain_text("letras, cifras")
        assert page.url == hub.url + "/"

        room = unique_room("form")
        page.get_by_test_id("join-room").fill(room)
        page.get_by_test_id("join-lang").select_option("pt")
        page.get_by_test_id("join-video").uncheck()
        page.get_by_test_id("join-submit").click()
        page.wait_for_url(re.compile(rf"/r/{room}\?name=Ana\+Mar%C3%ADa&lang=pt&video=0$"))
        wait_joined(page)
        expect(participant(page, "Ana María")).to_have_attribute("data-video", "false")
        expect(participant(page, "Ana María")).to_have_attribute("data-audio", "true")
        expect(page.get_by_test_id("local-video")).to_have_count(0)

        # A room link without a name asks for one, with the room filled in.
        other = context.new_page()
        other.goto(room_url(hub.url, room))
        expect(other.get_by_test_id("join-room")).to_have_value(room)
        expect(other.get_by_test_id("join-name")).to_be_visible()
        expect(other.get_by_test_id("join-name")).to_have_value("")
    finally:
        context.close()


def test_full_room_says_so(hub_factory, new_page):
    small = hub_factory("--max-participants", "1")
    room = unique_room("full")
    join(new_page(), small.url, room, "Ana")
    ben = new_page()
    ben.goto(room_url(small.url, room, "Ben"))
    expect(ben.get_by_test_id("error")).to_have_text("This room is full.", timeout=WAIT_MS)
    assert ben.evaluate("() => window.unionhub.state.myId") is None
