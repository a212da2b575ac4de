"""The interface in the member's language, and usable by keyboard and screen reader, in Chromium.

Each test starts its own hub whose archive holds one ready, published recording (a real two-second
H.264 video written with PyAV, captions in English and Spanish), started 2026-03-15 12:00 UTC.
Browser contexts get a `locale` (what navigator.languages says) and a time zone; on 127.0.0.1 the
client is in development mode, so a message missing from a catalogue would be shown marked ⟦…⟧.
axe-core (npm, served from /vendor/axe.min.js) checks the pages against WCAG 2.2 A and AA.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from captioning.store import CaptionStore, StoredCaption
from core.database import Database
from e2e_helpers import unique_room
from i18nkit import (
    VISIBLE_TEXTS_JS,
    catalogue,
    english_fragments,
    locale_pages,
    missing_messages,
    run_axe,
    wait_translated,
)
from recordings.archive import Archive
from test_i18n_catalogues import LOCALES, PLURAL_CATEGORIES

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

STARTED_AT = 1_773_576_000.0  # 2026-03-15 12:00 UTC: 09:00 in São Paulo (UTC−3 all year)
TITLE = "Assembleia da seção metalúrgica"


# ---- the hub and its archive --------------------------------------------------------------------

def write_video(path: Path) -> None:
    """Two seconds of H.264 that Chromium plays (the composer's output format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 90, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 10)
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((90, 160, 3), i * 12, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


async def _seed(data_dir: Path) -> str:
    database = Database(data_dir / "unionhub.sqlite3")
    try:
        store = CaptionStore(database)
        archive = Archive(database, data_dir / "recordings")
        session = await store.start_session("metal")
        rec = await archive.create("metal", session, 0.0, STARTED_AT)
        await archive.finish(rec.id, STARTED_AT + 2, 2.0, ["Ana", "Bo"])
        await archive.set_status(rec.id, "ready")
        await archive.rename(rec.id, TITLE)
        await archive.set_published(rec.id, True)
        await store.add([
            StoredCaption(session, "u1", "p1", "Ana", "en", "en", "Solidarity forever", 0.2, 1.5),
            StoredCaption(session, "u1", "p1", "Ana", "en", "es", "Solidaridad para siempre", 0.2, 1.5),
        ])
        return rec.id
    finally:
        database.close()


@pytest.fixture
def archive_hub(hub_factory: Callable[..., Any], tmp_path: Path) -> tuple[Any, str]:
    """A hub (its data directory is hub_factory's first) whose archive holds one recording."""
    data_dir = tmp_path / "hub0" / "data"
    data_dir.mkdir(parents=True)
    # (in a thread of its own: Playwright's sync API runs an event loop in this one)
    with ThreadPoolExecutor(1) as pool:
        rec_id = pool.submit(asyncio.run, _seed(data_dir)).result()
    write_video(data_dir / "recordings" / rec_id / "playback.mp4")
    return hub_factory(), rec_id


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """`open_page(locale, timezone)`: a page in a browser speaking `locale`, in São Paulo's time
    zone unless told otherwise (i18nkit.locale_pages)."""
    with locale_pages(browser, 1000, 700, timezone="America/Sao_Paulo") as factory:
        yield factory


# ---- languages ----------------------------------------------------------------------------------

def test_arabic_join_page_is_right_to_left_and_all_arabic(archive_hub: tuple[Any, str],
                                                         open_page: Callable[..., Any]) -> None:
    hub, _ = archive_hub
    ar = catalogue("ar")
    page = open_page("ar-EG", "Africa/Cairo")
    page.goto(f"{hub.url}/")
    wait_translated(page, "ar")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    expect(page.locator("#join-view h1")).to_have_text(ar["join.title"])
    expect(page.get_by_test_id("join-submit")).to_have_text(ar["join.submit"])
    expect(page.get_by_test_id("join-library-link")).to_have_text(ar["join.libraryLink"])
    assert page.get_by_test_id("join-name").get_attribute("placeholder") == ar["join.nameExample"]
    assert page.get_by_test_id("join-lang").input_value() == "ar"  # captions in Arabic too

    texts = page.evaluate(VISIBLE_TEXTS_JS)
    english = english_fragments()
    left = sorted({f for f in english for text in texts if f in text})
    assert not left, f"English left on the Arabic join page: {left}"
    assert not [text for text in texts if "⟦" in text], texts
    assert missing_messages(page) == []

    # Mirrored: a label's words start at the right edge of the form.
    form = page.locator("#join-form").bounding_box()
    words = page.evaluate("""() => {
      const range = document.createRange();
      range.selectNodeContents(document.querySelector('#join-form [data-i18n="join.name"]'));
      const box = range.getBoundingClientRect();
      return { left: box.left, right: box.right };
    }""")
    assert form
    assert abs(words["right"] - (form["x"] + form["width"])) < 4, (words, form)
    assert words["left"] > form["x"] + form["width"] / 2, (words, form)


def test_portuguese_pages_and_dates_in_the_locale(archive_hub: tuple[Any, str],
                                                 open_page: Callable[..., Any]) -> None:
    hub, rec_id = archive_hub
    pt = catalogue("pt-BR")
    page = open_page("pt-BR", "America/Sao_Paulo")
    page.goto(f"{hub.url}/")
    wait_translated(page, "pt-BR")
    assert page.evaluate("document.documentElement.dir") == "ltr"
    expect(page.locator("#join-view h1")).to_have_text(pt["join.title"])
    expect(page.get_by_test_id("join-submit")).to_have_text("Entrar")
    assert page.get_by_test_id("join-lang").input_value() == "pt"
    assert page.get_by_test_id("locale-picker").input_value() == "pt-BR"
    texts = page.evaluate(VISIBLE_TEXTS_JS)
    left = sorted({f for f in english_fragments() for text in texts if f in text})
    assert not left, f"English left on the Portuguese join page: {left}"

    page.goto(f"{hub.url}/recordings")
    expect(page.locator("h1")).to_have_text("Gravações")
    expect(page.get_by_test_id("recording-count")).to_have_text("1 gravação")
    date = page.get_by_test_id("recording-date")
    # Brazilian order and month, in São Paulo's time (12:00 UTC is 09:00 there)
    expect(date).to_have_text(re.compile(r"^15 de mar\.? de 2026,? 09:00$"))
    expect(page.get_by_test_id("recording-status")).to_have_text("Pronta")
    expect(page.get_by_test_id("recording-publish")).to_have_text("Despublicar")
    assert page.title() == "Gravações — unionhub"

    page.goto(f"{hub.url}/recordings/{rec_id}")
    expect(page.get_by_test_id("recording-title")).to_have_text(TITLE)
    expect(page.get_by_test_id("recording-meta")).to_contain_text("15 de mar")
    expect(page.get_by_test_id("recording-meta")).to_contain_text("Ana e Bo")
    menu = page.get_by_test_id("caption-language-menu")
    expect(menu.locator("option")).to_have_text(["Desativadas", "English (en)", "Español (es)"])
    expect(page.locator('[data-testid="download-vtt"][data-lang="es"]').locator("..")).to_contain_text(
        "Legendas, Español:")
    expect(page.get_by_test_id("transcript-line").first.locator("button")).to_have_attribute(
        "aria-label", "Reproduzir a partir de 0:00")
    assert missing_messages(page) == []


def test_picked_language_wins_over_the_browsers_and_is_remembered(archive_hub: tuple[Any, str],
                                                                  open_page: Callable[..., Any]) -> None:
    hub, _ = archive_hub
    fr = catalogue("fr")
    page = open_page("en-US")
    page.goto(f"{hub.url}/")
    wait_translated(page, "en")
    expect(page.locator("#join-view h1")).to_have_text("Join a call")
    page.get_by_test_id("join-name").fill("Ana")
    page.get_by_test_id("locale-picker").select_option("fr")
    # at once, without reloading (what was typed stays)
    expect(page.locator("#join-view h1")).to_have_text(fr["join.title"])
    assert page.get_by_test_id("join-name").input_value() == "Ana"
    assert page.get_by_test_id("join-lang").input_value() == "fr"
    # choosing a language the interface speaks in the join form switches the interface too
    page.get_by_test_id("join-lang").select_option("es")
    expect(page.locator("#join-view h1")).to_have_text(catalogue("es")["join.title"])
    page.get_by_test_id("locale-picker").select_option("fr")
    page.goto(f"{hub.url}/recordings")
    wait_translated(page, "fr")
    expect(page.locator("h1")).to_have_text("Enregistrements")
    expect(page.get_by_test_id("recording-count")).to_have_text("1 enregistrement")


def test_server_errors_are_shown_in_the_members_language(archive_hub: tuple[Any, str],
                                                        open_page: Callable[..., Any]) -> None:
    hub, rec_id = archive_hub
    pt = catalogue("pt-BR")
    page = open_page("pt-BR")
    page.goto(f"{hub.url}/recordings")
    expect(page.get_by_test_id("recording-item")).to_have_count(1)
    # deleted elsewhere meanwhile: the server answers not-found (its message is English)
    response = page.request.delete(f"{hub.url}/api/recordings/{rec_id}")
    assert response.status == 204
    page.get_by_test_id("recording-delete").click()
    page.get_by_test_id("recording-delete-confirm").click()
    error = page.get_by_test_id("error")
    expect(error).to_have_text(
        pt["library.deleteFailed"].replace("{title}", TITLE).replace("{reason}", pt["errors.not-found"]))


def test_missing_translation_is_marked_in_development_and_english_in_production(
        archive_hub: tuple[Any, str], open_page: Callable[..., Any]) -> None:
    hub, _ = archive_hub
    broken = catalogue("fr")
    del broken["join.title"]
    page = open_page("fr-FR")
    page.route("**/static/locales/fr.json", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(broken)))
    page.goto(f"{hub.url}/?i18n=debug")
    wait_translated(page, "fr")
    expect(page.locator("#join-view h1")).to_have_text("⟦Join a call⟧")
    assert missing_messages(page) == ["join.title"]
    expect(page.get_by_test_id("join-submit")).to_have_text(broken["join.submit"])
    # a key no catalogue has, English included (tests/test_i18n_catalogues.py keeps that from shipping)
    lookup = "async () => (await import('/static/i18n.js')).t('no.such.key')"
    assert page.evaluate(lookup) == "⟦no.such.key⟧"

    page.goto(f"{hub.url}/?i18n=off")  # what a member on a real hub sees
    wait_translated(page, "fr")
    expect(page.locator("#join-view h1")).to_have_text("Join a call")
    expect(page.get_by_test_id("join-submit")).to_have_text(broken["join.submit"])
    assert page.evaluate(lookup) == ""  # never the raw key


def test_plurals_follow_each_languages_cldr_rules(archive_hub: tuple[Any, str],
                                                 open_page: Callable[..., Any]) -> None:
    hub, _ = archive_hub
    page = open_page("ar")
    page.goto(f"{hub.url}/recordings")
    wait_translated(page, "ar")
    categories = page.evaluate(
        "(ls) => Object.fromEntries(ls.map((l) => [l, new Intl.PluralRules(l).resolvedOptions().pluralCategories]))",
        LOCALES)
    assert {k: set(v) for k, v in categories.items()} == PLURAL_CATEGORIES
    counts, digits = page.evaluate("""async () => {
      const { t } = await import('/static/i18n.js');
      const numbers = [0, 1, 2, 3, 11, 100];
      return [numbers.map((count) => t('library.count', { count })),
              numbers.map((n) => new Intl.NumberFormat('ar').format(n))];
    }""")
    # zero, one, two spelled out; few, many, other with the number (as Arabic writes it)
    assert counts == ["لا توجد تسجيلات", "تسجيل واحد", "تسجيلان", f"{digits[3]} تسجيلات",
                      f"{digits[4]} تسجيلًا", f"{digits[5]} تسجيل"]


# ---- accessibility ------------------------------------------------------------------------------

@pytest.mark.parametrize("locale", ["en-US", "ar"])
def test_axe_finds_no_wcag_violations(archive_hub: tuple[Any, str], open_page: Callable[..., Any],
                                      locale: str) -> None:
    hub, rec_id = archive_hub
    page = open_page(locale)
    room = unique_room("axe")
    pages = {
        "join": ("/", "#join-view h1"),
        "recordings": ("/recordings", '[data-testid="recording-item"]'),
        "player": (f"/recordings/{rec_id}", '[data-testid="transcript-line"]'),
        "live viewer": (f"/live/{room}", '[data-testid="live-status"]:not(:empty)'),
        "sign-in": ("/signin", "#signed-out:not([hidden])"),
    }
    found = {}
    for name, (path, ready) in pages.items():
        page.goto(f"{hub.url}{path}")
        wait_translated(page, "ar" if locale == "ar" else "en")  # (the viewer's status is there before)
        page.locator(ready).first.wait_for()
        violations = run_axe(page)
        if violations:
            found[name] = violations
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)


def test_keyboard_only_join(archive_hub: tuple[Any, str], open_page: Callable[..., Any]) -> None:
    hub, _ = archive_hub
    page = open_page("en-US")
    page.goto(f"{hub.url}/")
    wait_translated(page, "en")
    focused = """() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return { id: el.dataset.testid || el.className || el.tagName,
               ring: el.matches(':focus-visible') && style.outlineStyle !== 'none'
                     && parseFloat(style.outlineWidth) >= 2 };
    }"""
    expect(page.get_by_test_id("join-room")).to_be_focused()  # the form starts there
    assert page.evaluate(focused) == {"id": "join-room", "ring": True}
    page.keyboard.press("Shift+Tab")  # back to the header's language picker
    assert page.evaluate(focused) == {"id": "locale-picker", "ring": True}
    room = unique_room("kbd")
    reached: list[str] = []
    for _ in range(12):
        page.keyboard.press("Tab")
        now = page.evaluate(focused)
        assert now["ring"], f"no visible focus on {now['id']}"
        reached.append(now["id"])
        if now["id"] == "join-room":
            page.keyboard.type(room)
        elif now["id"] == "join-name":
            page.keyboard.type("Ana")
        elif now["id"] == "join-submit":
            break
    assert reached[:3] == ["join-room", "join-name", "join-lang"], reached
    assert reached[-1] == "join-submit", reached
    assert reached.index("join-name") < reached.index("join-lang") < reached.index("join-submit")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/r/{room}\?name=Ana"))
    expect(page.locator("#call-view")).to_be_visible()
