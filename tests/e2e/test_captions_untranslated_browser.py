"""A listener whose caption language no installed translation model reaches is told why they read
the original: "No Portuguese translation installed — showing the original (English)". The shared
hub only has a tiny en→es Argos model, so Portuguese is unreachable and Spanish is reachable."""

from __future__ import annotations

import pytest

from e2e_helpers import PHRASE, WAIT_MS, join, transcript, unique_room, wait_captions_ready, wait_finals, wait_joined

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

NOTICE = "No Portuguese translation installed — showing the original (English)"


def test_portuguese_reader_is_told_no_translation_is_installed(hub, new_page, speaking_browser):
    wait_captions_ready(hub, translation=True)
    room = unique_room("captions-pt")
    joao = join(new_page(), hub.url, room, "João", lang="pt", video=False, audio=False)
    expect(joao.get_by_test_id("caption-language")).to_have_value("pt")
    notice = joao.get_by_test_id("captions-notice")
    expect(notice).to_be_hidden()  # nothing to explain before anyone speaks

    speaker = join(new_page(on=speaking_browser), hub.url, room, "Ana", video=False)
    wait_joined(speaker)

    # João reads Ana's English words, with the reason right above them.
    finals = wait_finals(joao, lambda f: PHRASE in transcript(f))
    assert finals and all(f["lang"] == "en" for f in finals), finals
    expect(notice).to_be_visible(timeout=WAIT_MS)
    expect(notice).to_have_text(NOTICE)

    # Spanish is installed: switching to it drops the notice, and it stays away while Spanish
    # captions arrive.
    joao.get_by_test_id("caption-language").select_option("es")
    expect(notice).to_be_hidden()
    wait_finals(joao, lambda f: any(x["lang"] == "es" for x in f))
    expect(notice).to_be_hidden()

    # Back to Portuguese: the notice returns with the next caption.
    joao.get_by_test_id("caption-language").select_option("pt")
    expect(notice).to_have_text(NOTICE, timeout=WAIT_MS * 3)
