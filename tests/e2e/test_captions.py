"""Live captions end to end: a browser whose microphone plays a speech clip is captioned at the
others; a hub without a speech model says so."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from e2e_helpers import join, unique_room

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.browser

SPEECH = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech"
CLIP = SPEECH / "jfk.wav"  # "… ask not what your country can do for you, ask what you can do for your country."
CAPTION_WAIT_MS = 120_000  # speech recognition shares 2 cores with the browsers


@pytest.fixture(scope="module")
def speaking_browser(launch_browser):
    """A Chromium whose fake microphone plays the speech clip (in a loop)."""
    if not CLIP.exists():
        pytest.skip(f"speech clip {CLIP} is missing")
    return launch_browser(f"--use-file-for-fake-audio-capture={CLIP}")


def wait_captions_ready(hub, timeout: float = 90.0) -> dict:
    """The hub loads its speech model in the background; wait for it (via /healthz)."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(hub.url + "/healthz", timeout=5) as response:
            status = json.load(response).get("captions") or {}
        if status.get("available") or time.monotonic() > deadline:
            return status
        if "starting" not in str(status.get("message", "")).lower():
            return status  # off for good (no model installed)
        time.sleep(0.5)


def captions_text(page) -> str:
    texts = page.get_by_test_id("caption").all_text_contents()
    return " ".join(re.sub(r"[^\w\s]", " ", t).lower() for t in texts)


def test_speech_is_captioned_for_the_others(hub, new_page, speaking_browser):
    status = wait_captions_ready(hub)
    if not status.get("available"):
        pytest.skip(f"captions are not available on this hub: {status.get('message')}")
    room = unique_room("captions")
    listener = join(new_page(), hub.url, room, "Bo", video=False, audio=False)
    expect(listener.get_by_test_id("captions")).to_be_visible()
    expect(listener.get_by_test_id("captions-toggle")).to_have_attribute("aria-pressed", "true")

    join(new_page(on=speaking_browser), hub.url, room, "Ana", video=False)
    caption = listener.get_by_test_id("caption").filter(has_text="Ana").first
    expect(caption).to_be_visible(timeout=CAPTION_WAIT_MS)
    listener.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="caption"]')]
                 .some((c) => /your\\s+country/i.test(c.textContent))""",
        timeout=CAPTION_WAIT_MS,
    )
    assert "country" in captions_text(listener)

    # Hiding captions hides them; showing brings them back.
    listener.get_by_test_id("captions-toggle").click()
    expect(listener.get_by_test_id("caption").first).to_be_hidden()
    listener.get_by_test_id("captions-toggle").click()
    expect(listener.get_by_test_id("caption").first).to_be_visible()


def test_hub_without_speech_model_says_captions_are_off(hub_factory, new_page):
    quiet = hub_factory("--asr-model", "none")
    page = join(new_page(), quiet.url, unique_room("nocaptions"), "Ana", video=False)
    expect(page.get_by_test_id("captions-status")).to_be_visible()
    expect(page.get_by_test_id("captions-status")).not_to_be_empty()
    expect(page.get_by_test_id("captions-toggle")).to_be_disabled()
