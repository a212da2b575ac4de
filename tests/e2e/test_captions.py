"""Live captions end to end: a browser whose microphone plays a speech clip is captioned at the
others, in English and (through the hub's tiny en→es Argos model) in Spanish; a hub without a
speech model says so."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from e2e_helpers import (
    CAPTION_WAIT_MS,
    EN_ES,
    PHRASE,
    UTTERANCES_JS,
    WAIT_MS,
    join,
    normalise,
    transcript,
    unique_room,
    wait_captions_ready,
    wait_finals,
    wait_joined,
)

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

def tile_caption(page, participant_id: str):
    return page.locator(
        f'.tile[data-source="camera"][data-participant="{participant_id}"] [data-testid="tile-caption"]'
    )


def test_speech_is_captioned_for_the_others(hub, new_page, speaking_browser):
    wait_captions_ready(hub)
    room = unique_room("captions")
    listener = join(new_page(), hub.url, room, "Bo", video=False, audio=False)
    expect(listener.get_by_test_id("captions")).to_be_visible()
    expect(listener.get_by_test_id("captions-status")).to_be_hidden()
    expect(listener.get_by_test_id("captions-toggle")).to_have_attribute("aria-pressed", "true")

    speaker = join(new_page(on=speaking_browser), hub.url, room, "Ana", video=False)
    ana = wait_joined(speaker)

    # Bo reads what Ana says: final captions, in order, attributed to her.
    finals = wait_finals(listener, lambda f: PHRASE in transcript(f))
    assert finals and all(f["name"] == "Ana" and f["speaker"] == ana for f in finals), finals
    assert all(f["lang"] == "en" for f in finals), finals
    caption = listener.locator(f'[data-testid="caption"][data-speaker="{ana}"]').first
    expect(caption).to_have_attribute("data-speaker-name", "Ana")
    expect(caption).to_contain_text("Ana")

    # ... also under Ana's tile, and not under anyone else's.
    under_tile = tile_caption(listener, ana)
    expect(under_tile).to_be_visible(timeout=CAPTION_WAIT_MS)
    expect(under_tile).to_have_text(re.compile(r"\w"))
    expect(listener.locator('.tile.local [data-testid="tile-caption"]')).to_have_count(0)

    # Untranslated captions have no separate original, even with "show original" on.
    show_original = listener.get_by_test_id("show-original")
    expect(show_original).to_have_attribute("aria-pressed", "false")
    show_original.click()
    expect(show_original).to_have_attribute("aria-pressed", "true")
    expect(listener.get_by_test_id("caption-original")).to_have_count(0)
    show_original.click()
    expect(show_original).to_have_attribute("aria-pressed", "false")

    # Hiding captions hides them (under the tiles too); showing brings them back.
    listener.get_by_test_id("captions-toggle").click()
    expect(listener.get_by_test_id("captions-toggle")).to_have_attribute("aria-pressed", "false")
    expect(listener.get_by_test_id("caption").first).to_be_hidden()
    expect(under_tile).to_be_hidden()
    listener.get_by_test_id("captions-toggle").click()
    expect(listener.get_by_test_id("caption").first).to_be_visible()

    # When Ana stops talking, her last caption leaves her tile a few seconds after its final.
    speaker.get_by_test_id("mic-toggle").click()
    expect(under_tile).to_be_hidden(timeout=CAPTION_WAIT_MS)


def test_spanish_listener_reads_translated_captions_and_can_switch(hub, new_page, speaking_browser):
    status = wait_captions_ready(hub, translation=True)
    assert {"en", "es"} <= set(status["languages"]), status
    room = unique_room("captions-es")
    carla = join(new_page(), hub.url, room, "Carla", lang="es", video=False, audio=False)
    picker = carla.get_by_test_id("caption-language")
    expect(picker).to_be_enabled()
    expect(picker).to_have_value("es")
    show_original = carla.get_by_test_id("show-original")
    expect(show_original).to_have_attribute("aria-pressed", "false")

    speaker = join(new_page(on=speaking_browser), hub.url, room, "Ana", video=False)
    ana = wait_joined(speaker)

    # Chat is translated too; the original is a hover away until "show original" is on.
    speaker.get_by_test_id("chat-input").fill("Ask not what your country can do for you")
    speaker.get_by_test_id("chat-input").press("Enter")
    message = carla.get_by_test_id("chat-message").filter(has_text="Ana")
    expect(message).to_have_count(1, timeout=WAIT_MS)
    expect(message.locator(".chat-text")).to_have_text("Pregunta no qué tu país puede hacer por ti")
    expect(message.locator(".chat-text")).to_have_attribute("title", re.compile("your country"))
    expect(message.get_by_test_id("chat-original")).to_be_hidden()

    # Captions arrive in Spanish.
    finals = wait_finals(carla, lambda f: "país" in transcript(f, "es"))
    spanish = [f for f in finals if f["lang"] == "es"]
    assert all(f["name"] == "Ana" and f["speaker"] == ana for f in spanish), finals
    assert "tu país" in transcript(finals, "es"), finals
    assert any(f["original"] and "your country" in normalise(f["original"]) for f in spanish), finals
    expect(tile_caption(carla, ana)).to_be_visible(timeout=CAPTION_WAIT_MS)
    originals = carla.locator('[data-testid="caption"][data-lang="es"] [data-testid="caption-original"]')
    expect(originals).not_to_have_count(0)
    assert not any(o.is_visible() for o in originals.all())

    # "Show original": the English words beside the Spanish captions, and under the chat message.
    show_original.click()
    expect(show_original).to_have_attribute("aria-pressed", "true")
    expect(message.get_by_test_id("chat-original")).to_be_visible()
    expect(message.get_by_test_id("chat-original")).to_contain_text(
        "Ask not what your country can do for you")
    shown_original = carla.locator(
        '[data-testid="caption"][data-lang="es"][data-final="true"]',
        has=carla.locator('[data-testid="caption-text"]', has_text="país"),
    ).locator('[data-testid="caption-original"]')
    expect(shown_original.first).to_be_visible(timeout=CAPTION_WAIT_MS)
    expect(shown_original.first).to_have_attribute("data-lang", "en")
    expect(shown_original.first).to_contain_text("country")
    show_original.click()
    expect(show_original).to_have_attribute("aria-pressed", "false")
    expect(shown_original.first).to_be_hidden()
    expect(message.get_by_test_id("chat-original")).to_be_hidden()

    # Switching the caption language to English: the next utterances arrive in English.
    before = set(carla.evaluate(UTTERANCES_JS)) | {f["utterance"] for f in finals}
    picker.select_option("en")
    expect(picker).to_have_value("en")
    english = wait_finals(
        carla, lambda f: any(x["lang"] == "en" and x["utterance"] not in before for x in f)
    )
    new = [f for f in english if f["utterance"] not in before]
    assert new and all(f["lang"] == "en" for f in new), new
    assert not any(f["original"] for f in new), new  # English captions of English speech
    spanish_words = set(EN_ES.values()) - set(EN_ES)
    assert not spanish_words & set(transcript(new).split()), new
    assert re.search(r"\b(and|so|my|fellow|ask|not|what|your|country|can|do|you)\b", transcript(new)), new


def test_status_line_goes_when_the_models_finish_loading(hub, new_page):
    """A participant who joined while the models were loading gets `captions-status` later.

    The hub here has long finished loading, so the page's `joined` is rewritten to what a hub
    still loading sends, and then the hub's real status is delivered as `captions-status`.
    """
    status = wait_captions_ready(hub, translation=True)
    status = {key: status[key] for key in ("available", "translation", "languages", "message")}
    page = new_page()
    routes: list[Any] = []

    def route(ws) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            if isinstance(message, str) and message.startswith('42["joined",'):
                event, payload = json.loads(message[2:])
                payload["captions"] = {"available": False, "translation": False, "languages": [],
                                       "message": "Captions are starting…"}
                message = "42" + json.dumps([event, payload])
            ws.send(message)

        server.on_message(to_page)
        routes.append(ws)

    page.route_web_socket(re.compile(r"/socket\.io/"), route)
    join(page, hub.url, unique_room("status"), "Ana", lang="es", video=False)
    expect(page.get_by_test_id("captions-status")).to_be_visible()
    expect(page.get_by_test_id("captions-status")).to_have_text("Captions are starting…")
    expect(page.get_by_test_id("caption-language")).to_be_disabled()
    expect(page.get_by_test_id("captions-toggle")).to_be_disabled()

    assert len(routes) == 1
    routes[0].send("42" + json.dumps(["captions-status", status]))
    expect(page.get_by_test_id("captions-status")).to_be_hidden()
    expect(page.get_by_test_id("caption-language")).to_be_enabled()
    expect(page.get_by_test_id("caption-language")).to_have_value("es")
    expect(page.get_by_test_id("caption-language").locator("option")).to_have_count(2)
    expect(page.get_by_test_id("captions-toggle")).to_be_enabled()
    expect(page.get_by_test_id("captions-toggle")).to_have_attribute("aria-pressed", "true")


def test_hub_without_speech_model_says_captions_are_off(hub_factory, new_page):
    quiet = hub_factory("--asr-model", "none")
    page = join(new_page(), quiet.url, unique_room("nocaptions"), "Ana", video=False)
    expect(page.get_by_test_id("captions-status")).to_be_visible()
    expect(page.get_by_test_id("captions-status")).not_to_be_empty()
    expect(page.get_by_test_id("captions-toggle")).to_be_disabled()
