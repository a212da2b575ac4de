"""The call page in the member's language, right to left, and usable by keyboard and screen reader.

A plain hub per test (no speech model). Browser contexts get a `locale` (what navigator.languages
says); on 127.0.0.1 the client is in development mode, so a message missing from a catalogue would
be shown marked ⟦…⟧ and listed in window.unionhubI18n.missing. axe-core (npm, served from
/vendor/axe.min.js) checks the pages against WCAG 2.2 A and AA. Captions are shown through the
page's own captions module (the hub's caption path needs a speech model: tests/e2e/test_captions.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from e2e_helpers import DROP_NOTICED_MS, room_url, unique_room, wait_joined
from i18nkit import (
    VISIBLE_TEXTS_JS,
    catalogue,
    english_left,
    locale_pages,
    missing_messages,
    run_axe,
    wait_translated,
)
from signinkit import SmtpServer, smtp_server
from test_twinning_browser import API_KEY, ORGANISER, api, sign_in

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

# The focused element, and whether it shows a focus ring a sighted keyboard user can see.
FOCUSED_JS = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return { id: el.dataset.testid || el.id || el.tagName,
           ring: el.matches(':focus-visible') && style.outlineStyle !== 'none'
                 && parseFloat(style.outlineWidth) >= 2 };
}"""

SHOW_CAPTION_JS = """async (c) => {
  const captions = await import('/static/captions.js');  // the instance the call page runs
  captions.showCaption(c);
}"""


@pytest.fixture
def locale_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """`locale_page(locale)`: a page in a browser speaking `locale` (i18nkit.locale_pages)."""
    with locale_pages(browser, 1100, 800) as factory:
        yield factory


def join_call(page: Any, base: str, room: str, name: str, lang: str, **kwargs: Any) -> str:
    page.goto(room_url(base, room, name, lang=lang, **kwargs))
    return wait_joined(page)


def host_ready(page: Any) -> None:
    """The first person in a room is its host: the host controls are shown."""
    expect(page.get_by_test_id("host-controls")).to_be_visible()


# ---- languages ----------------------------------------------------------------------------------

def test_call_page_in_arabic_is_right_to_left_and_all_arabic(hub_factory: Callable[..., Any],
                                                             locale_page: Callable[..., Any]) -> None:
    hub = hub_factory()
    ar = catalogue("ar")
    room = unique_room("sala")
    ana = locale_page("ar-EG")
    join_call(ana, hub.url, room, "Ana", "ar")
    wait_translated(ana, "ar")
    host_ready(ana)
    bo = locale_page("ar-EG")
    join_call(bo, hub.url, room, "Bo", "ar")
    expect(ana.get_by_test_id("participant")).to_have_count(2)
    ana.get_by_test_id("raise-hand").click()
    ana.get_by_test_id("chat-input").fill("تضامن")
    ana.get_by_test_id("chat-send").click()
    expect(ana.get_by_test_id("chat-message")).to_have_count(1)

    assert ana.evaluate("document.documentElement.dir") == "rtl"
    expect(ana.get_by_test_id("mic-toggle")).to_have_text(ar["call.mute"])
    expect(ana.get_by_test_id("raise-hand")).to_have_text(ar["call.lowerHand"])
    expect(ana.get_by_test_id("leave")).to_have_text(ar["call.leave"])
    expect(ana.get_by_test_id("my-role")).to_have_text(ar["host.youAreHost"])
    expect(ana.locator(".host-controls h2")).to_have_text(ar["host.title"])
    expect(ana.get_by_test_id("local-tile").locator(".label")).to_have_text(ar["call.you"].replace("{name}", "Ana"))
    expect(ana.get_by_test_id("host-remove")).to_have_text(ar["host.remove"])

    texts = ana.evaluate(VISIBLE_TEXTS_JS)
    left = english_left(texts, "ar")
    assert not left, f"English left on the Arabic call page: {left} in {[t for t in texts if any(f in t for f in left)]}"
    assert not [text for text in texts if "⟦" in text], texts
    assert missing_messages(ana) == []

    # Mirrored: the sidebar (participants, chat) is on the left, the call controls start at the right.
    stage = ana.locator(".stage").bounding_box()
    sidebar = ana.locator(".sidebar").bounding_box()
    controls = ana.locator("nav.controls").bounding_box()
    mic = ana.get_by_test_id("mic-toggle").bounding_box()
    assert stage and sidebar and controls and mic
    assert sidebar["x"] + sidebar["width"] <= stage["x"] + 1, (sidebar, stage)
    assert mic["x"] > controls["x"] + controls["width"] / 2, (mic, controls)

    # The language picker is there during the call, and switches the call's own texts at once.
    ana.get_by_test_id("locale-picker").select_option("en")
    expect(ana.get_by_test_id("mic-toggle")).to_have_text("Mute")
    expect(ana.get_by_test_id("raise-hand")).to_have_text("Lower hand")
    expect(ana.get_by_test_id("host-remove")).to_have_text("Remove")
    assert ana.evaluate("document.documentElement.dir") == "ltr"


def test_call_page_in_portuguese(hub_factory: Callable[..., Any], locale_page: Callable[..., Any]) -> None:
    hub = hub_factory()
    pt = catalogue("pt-BR")
    room = unique_room("sala")
    ana = locale_page("pt-BR")
    join_call(ana, hub.url, room, "Ana", "pt")
    wait_translated(ana, "pt-BR")
    host_ready(ana)
    bo = locale_page("pt-BR")
    join_call(bo, hub.url, room, "Bo", "pt")
    expect(ana.get_by_test_id("participant")).to_have_count(2)
    ana.get_by_test_id("mic-toggle").click()

    assert ana.evaluate("document.documentElement.dir") == "ltr"
    expect(ana.get_by_test_id("mic-toggle")).to_have_text("Ativar microfone")
    expect(ana.get_by_test_id("raise-hand")).to_have_text("Levantar a mão")
    expect(ana.get_by_test_id("chat-send")).to_have_text("Enviar")
    expect(ana.get_by_test_id("host-mute-all")).to_have_text("Silenciar todos")
    expect(ana.get_by_test_id("room-access").locator("option:checked")).to_have_text(pt["host.accessOpen"])
    # Bo is told in Portuguese who muted him
    ana.get_by_test_id("host-mute").click()
    expect(bo.get_by_test_id("notice-text")).to_have_text(pt["access.mutedBy"].replace("{name}", "Ana"))

    texts = ana.evaluate(VISIBLE_TEXTS_JS)
    left = english_left(texts, "pt-BR")
    assert not left, f"English left on the Portuguese call page: {left}"
    assert missing_messages(ana) == []
    assert missing_messages(bo) == []


def plural(page: Any, messages: dict[str, Any], key: str, count: int) -> str:
    """The catalogue's form of `key` for `count`, filled as the page fills it (Intl, its digits)."""
    form, number = page.evaluate(
        "(n) => [new Intl.PluralRules(document.documentElement.lang).select(n),"
        " new Intl.NumberFormat(document.documentElement.lang).format(n)]", count)
    value = messages[key]
    text: str = value[form] if isinstance(value, dict) else value
    return text.replace("{count}", number)


@pytest.mark.parametrize(("locale", "lang"), [("pt-BR", "pt"), ("ar", "ar")])
def test_host_settings_refusals_and_a_turned_away_knocker_read_in_the_members_language(
        hub_factory: Callable[..., Any], locale_page: Callable[..., Any], locale: str, lang: str) -> None:
    hub = hub_factory()
    messages = catalogue(locale)
    room = unique_room("motivos")
    ana = locale_page(locale)
    join_call(ana, hub.url, room, "Ana", lang)
    wait_translated(ana, locale)
    host_ready(ana)

    # A passcode too short: the server refuses it (bad-passcode, reason passcode-too-short,
    # params {count: 4}) and the host reads why in their language, the number in its digits.
    ana.get_by_test_id("room-access").select_option("passcode")
    ana.get_by_test_id("room-passcode").fill("abc")
    ana.get_by_test_id("room-passcode-set").click()
    error = ana.get_by_test_id("error")
    expect(error).to_have_text(plural(ana, messages, "errors.bad-passcode.passcode-too-short", 4))
    expect(ana.get_by_test_id("room-access")).to_have_value("open")  # the setting went back

    # A knocker the host turns away reads the reason the server gives, in their language too.
    ana.get_by_test_id("room-access").select_option("lobby")
    expect(ana.get_by_test_id("host-controls")).to_have_attribute("data-access", "lobby")
    bo = locale_page(locale)
    bo.goto(room_url(hub.url, room, "Bo", lang=lang))
    expect(bo.get_by_test_id("lobby-waiting")).to_be_visible()
    ana.get_by_test_id("lobby-reject").click()
    expect(bo.get_by_test_id("gone-detail")).to_have_text(messages["errors.rejected.turned-away"])
    for page in (ana, bo):
        texts = page.evaluate(VISIBLE_TEXTS_JS)
        assert not english_left(texts, locale), english_left(texts, locale)
        assert missing_messages(page) == []


# Every change to the chat log, in order, with the log's aria-live and aria-busy at that moment
# (attribute records carry the old value; the new one is the next record's old value, or now's).
WATCH_CHAT_LOG_JS = """() => {
  const log = document.querySelector('[data-testid="chat-log"]');
  const records = [];
  window.chatLogRecords = records;
  new MutationObserver((list) => {
    for (const r of list) {
      if (r.type === 'attributes') records.push({ attr: r.attributeName, old: r.oldValue });
      else for (const n of r.addedNodes) records.push({ added: n.querySelector('.chat-text').textContent });
    }
  }).observe(log, { childList: true, attributes: true, attributeOldValue: true,
                    attributeFilter: ['aria-live', 'aria-busy'] });
}"""


def chat_additions(page: Any) -> list[tuple[str, str | None, str | None]]:
    """(text, aria-live, aria-busy) of each chat message added since WATCH_CHAT_LOG_JS."""
    records: list[dict[str, Any]] = page.evaluate("window.chatLogRecords")
    now = page.evaluate("""() => { const log = document.querySelector('[data-testid="chat-log"]');
      return { 'aria-live': log.getAttribute('aria-live'), 'aria-busy': log.getAttribute('aria-busy') }; }""")
    state: dict[str, str | None] = {"aria-live": "polite", "aria-busy": None}
    added = []
    for i, record in enumerate(records):
        if "attr" in record:
            later = [r for r in records[i + 1:] if r.get("attr") == record["attr"]]
            state[record["attr"]] = later[0]["old"] if later else now[record["attr"]]
        else:
            added.append((record["added"], state["aria-live"], state["aria-busy"]))
    return added


def test_chat_history_replayed_after_a_reconnect_is_not_announced(hub_factory: Callable[..., Any],
                                                                 locale_page: Callable[..., Any]) -> None:
    hub = hub_factory()
    room = unique_room("replay")
    ana = locale_page("en-US")
    old_id = join_call(ana, hub.url, room, "Ana", "en")
    ben = locale_page("en-US")
    join_call(ben, hub.url, room, "Ben", "en")
    log = ana.get_by_test_id("chat-log")
    expect(log).to_have_attribute("aria-live", "polite")
    ana.evaluate(WATCH_CHAT_LOG_JS)
    ben.get_by_test_id("chat-input").fill("Before the cut")
    ben.get_by_test_id("chat-send").click()
    expect(ana.get_by_test_id("chat-message")).to_have_count(1)

    # Ana's connection drops; Ben writes three messages meanwhile; she comes back and the history
    # (with them) is replayed into her log.
    ana.context.set_offline(True)
    ana.evaluate("() => window.unionhub.socket.io.engine.close()")
    expect(ana.get_by_test_id("status")).to_have_text("Reconnecting…")
    # The hub sees her go at once if her close reached it, else after its ping timeout.
    expect(ben.get_by_test_id("participant")).to_have_count(1, timeout=DROP_NOTICED_MS)
    for text in ("Motion one", "Motion two", "Motion three"):
        ben.get_by_test_id("chat-input").fill(text)
        ben.get_by_test_id("chat-send").click()
    expect(ben.get_by_test_id("chat-message")).to_have_count(4)
    ana.context.set_offline(False)
    ana.wait_for_function("(old) => { const id = window.unionhub.state.myId; return !!id && id !== old; }",
                          arg=old_id, timeout=30_000)
    expect(ana.get_by_test_id("chat-message")).to_have_count(4)
    expect(log).to_have_attribute("aria-live", "polite")  # live again after the replay
    expect(log).not_to_have_attribute("aria-busy", "true")
    ben.get_by_test_id("chat-input").fill("After the replay")
    ben.get_by_test_id("chat-send").click()
    expect(ana.get_by_test_id("chat-message")).to_have_count(5)

    # The live message before and the one after are added to a live log; the replayed ones (each
    # once: "Before the cut" is not added again) to a log that is busy and not live.
    assert chat_additions(ana) == [
        ("Before the cut", "polite", None),
        ("Motion one", "off", "true"),
        ("Motion two", "off", "true"),
        ("Motion three", "off", "true"),
        ("After the replay", "polite", None),
    ]


# ---- accessibility ------------------------------------------------------------------------------

@pytest.mark.parametrize("locale", ["en-US", "ar"])
def test_axe_finds_no_wcag_violations_in_the_call_and_the_lobby(hub_factory: Callable[..., Any],
                                                                locale_page: Callable[..., Any],
                                                                locale: str) -> None:
    hub = hub_factory()
    room = unique_room("axe-call")
    host = locale_page(locale)
    host_id = join_call(host, hub.url, room, "Ana", "en")
    host_ready(host)
    # a caption on screen: the caption panel (with its size buttons) and the one under the tile
    host.evaluate(SHOW_CAPTION_JS, {"utterance": "u1", "seq": 0, "speaker": host_id, "name": "Ana", "lang": "en",
                                    "text": "An injury to one is an injury to all", "stable": 12, "final": False})
    expect(host.get_by_test_id("caption-larger")).to_be_visible()
    found = {}
    violations = run_axe(host)
    if violations:
        found["call with host controls"] = violations

    host.get_by_test_id("room-access").select_option("lobby")
    expect(host.get_by_test_id("host-controls")).to_have_attribute("data-access", "lobby")
    guest = locale_page(locale)
    guest.goto(room_url(hub.url, room, "Bo"))
    expect(guest.get_by_test_id("lobby-waiting")).to_be_visible()
    violations = run_axe(guest)
    if violations:
        found["lobby (waiting)"] = violations

    expect(host.get_by_test_id("lobby-entry")).to_have_count(1)  # the host's side of the lobby
    violations = run_axe(host)
    if violations:
        found["call with a knock"] = violations

    host.get_by_test_id("lobby-admit").click()  # (by keyboard: Enter on the focused button)
    wait_joined(guest)
    expect(host.get_by_test_id("host-participant-controls")).to_have_count(1)
    violations = run_axe(host)
    if violations:
        found["call with a participant's host controls"] = violations
    violations = run_axe(guest)
    if violations:
        found["call (not a host)"] = violations

    host.get_by_test_id("host-end").click()
    expect(host.get_by_test_id("end-confirm")).to_be_visible()
    violations = run_axe(host)
    if violations:
        found["end-meeting dialog"] = violations
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)


def tab_to(page: Any, testid: str, limit: int = 40, back: bool = False) -> list[str]:
    """Press Tab (Shift+Tab) until `testid` has the focus; every stop must show a focus ring."""
    reached: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        now = page.evaluate(FOCUSED_JS)
        assert now["ring"], f"no visible focus on {now['id']} (after {reached})"
        reached.append(now["id"])
        if now["id"] == testid:
            return reached
    raise AssertionError(f"{testid} not reached by keyboard: {reached}")


def test_keyboard_only_call(hub_factory: Callable[..., Any], locale_page: Callable[..., Any]) -> None:
    hub = hub_factory()
    room = unique_room("kbd-call")
    page = locale_page("en-US")
    page.goto(f"{hub.url}/")
    wait_translated(page, "en")
    # join: the form starts focused on the room (once the page's script has run)
    expect(page.get_by_test_id("join-room")).to_be_focused()
    assert page.evaluate(FOCUSED_JS) == {"id": "join-room", "ring": True}
    page.keyboard.type(room)
    tab_to(page, "join-name")
    page.keyboard.type("Ana")
    tab_to(page, "join-submit")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/r/{room}\?name=Ana"))
    wait_joined(page)
    expect(page.get_by_test_id("mic-toggle")).to_be_enabled()

    # mute the microphone
    tab_to(page, "mic-toggle")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("mic-toggle")).to_have_text("Unmute")
    # raise a hand (Space works like Enter on a button)
    tab_to(page, "raise-hand")
    page.keyboard.press("Space")
    expect(page.get_by_test_id("raise-hand")).to_have_attribute("aria-pressed", "true")
    me = page.get_by_test_id("participant").first
    expect(me).to_have_attribute("data-hand", "true")
    expect(me).to_have_attribute("data-audio", "false")
    # send a chat message
    tab_to(page, "chat-input")
    page.keyboard.type("Solidarity by keyboard")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("chat-message").filter(has_text="Solidarity by keyboard")).to_have_count(1)
    # and leave (back up the page to the call controls)
    tab_to(page, "leave", back=True)
    page.keyboard.press("Enter")
    expect(page.locator("#left-view")).to_be_visible()


# ---- captions and chat in another script ----------------------------------------------------------

def test_arabic_caption_and_chat_read_right_to_left_in_an_english_page(
        hub_factory: Callable[..., Any], locale_page: Callable[..., Any]) -> None:
    hub = hub_factory()
    room = unique_room("rtl")
    ana = locale_page("en-US")
    ana_id = join_call(ana, hub.url, room, "Ana", "en")
    wait_translated(ana, "en")
    ben = locale_page("ar-EG")
    ben_id = join_call(ben, hub.url, room, "Ben", "ar")
    expect(ana.get_by_test_id("participant")).to_have_count(2)
    assert ana.evaluate("document.documentElement.dir") == "ltr"

    # Chat: Ben writes in Arabic, Ana's English page shows it right to left (and English left to right).
    ben.get_by_test_id("chat-input").fill("مرحبًا بالجميع في اجتماع الفرع")
    ben.get_by_test_id("chat-send").click()
    ana.get_by_test_id("chat-input").fill("Welcome, Ben")
    ana.get_by_test_id("chat-send").click()
    texts = ana.locator('[data-testid="chat-message"] .chat-text')
    expect(texts).to_have_count(2)
    assert texts.nth(0).evaluate("(el) => el.matches(':dir(rtl)')")
    assert texts.nth(1).evaluate("(el) => el.matches(':dir(ltr)')")
    assert texts.nth(0).evaluate("(el) => getComputedStyle(el).direction") == "rtl"

    # Captions: a partial then the final of Ben's Arabic utterance; an English one of Ana's.
    caption = {"utterance": "u1", "seq": 0, "speaker": ben_id, "name": "Ben", "lang": "ar",
               "text": "مرحبًا بالجميع", "stable": 6, "final": False}
    ana.evaluate(SHOW_CAPTION_JS, caption)
    line = ana.locator('[data-testid="caption"][data-utterance="u1"]')
    expect(line).to_have_attribute("dir", "rtl")
    expect(line).to_have_attribute("lang", "ar")
    assert line.evaluate("(el) => getComputedStyle(el).direction") == "rtl"
    under_tile = ana.locator(f'.tile[data-participant="{ben_id}"] [data-testid="tile-caption"]')
    expect(under_tile).to_have_attribute("dir", "rtl")
    # Screen readers: the panel is not a live region (partials would flood it); finals only are announced.
    announcer = ana.get_by_test_id("caption-announcer")
    assert announcer.get_attribute("aria-live") == "polite"
    assert ana.locator(".caption-lines").get_attribute("aria-live") is None
    expect(announcer.locator("p")).to_have_count(0)
    ana.evaluate(SHOW_CAPTION_JS, {**caption, "seq": 1, "text": "مرحبًا بالجميع في الاجتماع", "final": True})
    expect(announcer.locator("p")).to_have_count(1)
    expect(announcer.locator("p")).to_have_text("Ben: مرحبًا بالجميع في الاجتماع")
    expect(announcer.locator("p")).to_have_attribute("dir", "rtl")
    ana.evaluate(SHOW_CAPTION_JS, {**caption, "seq": 2, "final": True})  # a repeated final: said once
    ana.evaluate(SHOW_CAPTION_JS, {"utterance": "u2", "seq": 0, "speaker": ana_id, "name": "Ana", "lang": "en",
                                   "text": "Thank you", "stable": 9, "final": True})
    english = ana.locator('[data-testid="caption"][data-utterance="u2"]')
    expect(english).to_have_attribute("dir", "ltr")
    expect(announcer.locator("p")).to_have_count(2)
    # Chat is a polite log too.
    assert ana.get_by_test_id("chat-log").get_attribute("role") == "log"
    assert ana.get_by_test_id("chat-log").get_attribute("aria-live") == "polite"


def test_caption_size_is_adjustable_by_keyboard_and_remembered(hub_factory: Callable[..., Any],
                                                               locale_page: Callable[..., Any]) -> None:
    hub = hub_factory()
    room = unique_room("size")
    page = locale_page("en-US")
    me = join_call(page, hub.url, room, "Ana", "en")
    page.evaluate(SHOW_CAPTION_JS, {"utterance": "u1", "seq": 0, "speaker": me, "name": "Ana", "lang": "en",
                                    "text": "One member, one vote", "stable": 0, "final": True})
    caption = page.get_by_test_id("caption").first
    expect(caption).to_be_visible()
    size = page.get_by_test_id("caption-size")
    expect(size).to_have_text("100%")
    before = caption.evaluate("(el) => parseFloat(getComputedStyle(el).fontSize)")

    larger = page.get_by_test_id("caption-larger")
    larger.focus()
    assert page.evaluate(FOCUSED_JS)["id"] == "caption-larger"
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    expect(size).to_have_text("130%")
    after = caption.evaluate("(el) => parseFloat(getComputedStyle(el).fontSize)")
    assert after == pytest.approx(before * 1.3, rel=0.02), (before, after)
    assert larger.get_attribute("aria-label") == "Larger captions"

    # At the largest size the button is disabled; smaller brings it back.
    for _ in range(6):
        if larger.is_disabled():
            break
        page.keyboard.press("Enter")
    expect(size).to_have_text("200%")
    expect(larger).to_be_disabled()
    page.get_by_test_id("caption-smaller").focus()
    page.keyboard.press("Enter")
    expect(size).to_have_text("175%")

    # Remembered on this browser.
    page.reload()
    wait_joined(page)
    assert page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--caption-scale').trim()") == "1.75"
    expect(page.get_by_test_id("caption-size")).to_have_text("175%")


# ---- the twinning pair page ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def mail() -> Iterator[SmtpServer]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def pair_page(hub_factory: Callable[..., Any], mail: SmtpServer, monkeypatch: pytest.MonkeyPatch,
              locale_page: Callable[..., Any]) -> Callable[[str], Any]:
    """`pair_page(locale)`: the organiser's pair page (a pair with a weekly session and a member),
    signed in by e-mail link in a browser speaking `locale`."""
    for key, value in {**mail.env(), "UNIONHUB_API_KEY": API_KEY}.items():
        monkeypatch.setenv(key, value)
    hub = hub_factory()
    pair = api(hub, "POST", "/api/twinnings", {"name": "Leeds–São Paulo", "branches": [
        {"name": "Leeds", "country": "GB", "timezone": "Europe/London", "languages": ["en"]},
        {"name": "São Paulo", "country": "BR", "timezone": "America/Sao_Paulo", "languages": ["pt"]},
    ]})
    api(hub, "POST", f"/api/twinnings/{pair['id']}/members", {"email": ORGANISER, "name": "Olu", "role": "organiser"})
    api(hub, "POST", f"/api/twinnings/{pair['id']}/members",
        {"email": "maria@sindsaude.test", "name": "Maria", "role": "member", "branch": 1})
    api(hub, "POST", f"/api/twinnings/{pair['id']}/sessions", {
        "title": "Staffing levels", "start": "2027-07-05T14:00", "timezone": "Europe/London", "rrule": "FREQ=WEEKLY;COUNT=4"})

    def open_pair(locale: str) -> Any:
        page = locale_page(locale)
        sign_in(page, hub, mail, ORGANISER, f"/t/{pair['id']}")
        page.locator('[data-testid="next-session"] [data-testid="local-time"]').first.wait_for()
        return page

    return open_pair


def test_pair_page_in_arabic_and_without_wcag_violations(pair_page: Callable[[str], Any]) -> None:
    ar = catalogue("ar")
    page = pair_page("ar")
    wait_translated(page, "ar")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    expect(page.locator("#next-heading")).to_have_text(ar["twin.next"])
    expect(page.locator("#schedule-form button[type=submit]")).to_have_text(ar["twin.schedule"])
    expect(page.get_by_test_id("member").filter(has_text="Maria")).to_contain_text(
        ar["twin.memberOf"].replace("{name}", "Maria").replace("{role}", ar["twin.roleMember"])
        .replace("{branch}", "São Paulo"))
    expect(page.get_by_test_id("join-link").first).to_have_text(ar["twin.join"])
    # (the activity log is the hub's own record, written in English: not checked here)
    activity = set(page.get_by_test_id("activity-item").all_text_contents())
    texts = [t for t in page.evaluate(VISIBLE_TEXTS_JS) if t not in activity]
    left = english_left(texts, "ar")
    assert not left, f"English left on the Arabic pair page: {left}"
    assert missing_messages(page) == []
    violations = run_axe(page)
    assert not violations, json.dumps(violations, indent=1, ensure_ascii=False)
