"""Recording a call end to end: record from the call page, the composed recording in the archive,
found by what was said (in any caption language), played with subtitles and a clickable
transcript, and published as a podcast episode.

The call: "Ana" speaks (her fake microphone plays jfk.wav, camera on) and "Bo" listens reading
Spanish captions (the shared hub's tiny en→es Argos model). Bo starts the recording, Ana stops it.
The module-scoped ``recorded`` fixture makes that one recording (and waits until it is composed);
the tests then look at it from every side.
"""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from e2e_helpers import (
    CAPTION_WAIT_MS,
    COLLECT_FINALS_JS,
    UTTERANCES_JS,
    WAIT_MS,
    get,
    get_json,
    join,
    transcript,
    unique_room,
    wait_captions_ready,
    wait_finals,
    wait_joined,
)
from e2e_helpers import wait_until as poll

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

# The call waits for captions (tiny.en shares 2 cores with two browsers) and then for the
# composer: more than the default 300 s can go by before the first test that needs it starts.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

MIN_RECORDED_S = 8.0  # record at least this long
READY_TIMEOUT_S = 120.0  # composition runs in a background process
DURATION_TOLERANCE_S = 1.0
NONSENSE = "qzxwvjrecording"


# ---- helpers ------------------------------------------------------------------------------------

class PageWatch:
    """Pages for a module-scoped fixture, with the checks of conftest's ``new_page``: no uncaught
    exception and no Content-Security-Policy violation on any of them."""

    def __init__(self) -> None:
        self.contexts: list[Any] = []
        self.problems: list[str] = []

    def new_page(self, browser: Any) -> Any:
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught exception: {exc}"))
        page.on("console", self._console)
        return page

    def _console(self, message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.problems.append(f"CSP violation: {message.text}")

    def close(self) -> None:
        for context in self.contexts:
            try:
                context.close()
            except Exception:  # the browser may already be gone after a failure
                pass


_VIDEO_JS = """
() => {
    const v = document.querySelector('[data-testid="recording-video"]');
    return {readyState: v.readyState, currentTime: v.currentTime, duration: v.duration,
            paused: v.paused, error: v.error ? v.error.code : null, src: v.currentSrc};
}
"""

_TRACKS_JS = """
() => [...document.querySelector('[data-testid="recording-video"]').textTracks].map((t) => ({
    lang: t.language, mode: t.mode, cues: t.cues ? t.cues.length : null,
}))
"""


# ---- the recorded call ----------------------------------------------------------------------------

@dataclass
class Recorded:
    id: str
    room: str
    span: float  # seconds between the start and the stop click, measured by the test
    finals: list[dict[str, Any]]  # final captions Bo saw while recording
    rec: dict[str, Any]  # GET /api/recordings/<id> once ready


def _record_toggle_says(page: Any, on: bool) -> None:
    toggle = page.get_by_test_id("record-toggle")
    expect(toggle).to_be_visible()
    expect(toggle).to_be_enabled()
    expect(toggle).to_have_attribute("aria-pressed", "true" if on else "false")
    expect(toggle).to_have_text("Stop recording" if on else "Record")


def _indicator_shown(page: Any, on: bool) -> None:
    indicator = page.get_by_test_id("recording-indicator")
    if on:
        expect(indicator).to_be_visible()
        expect(indicator).to_have_text("Recording")
        dot = indicator.locator(".recording-dot")
        expect(dot).to_be_visible()
        colour = dot.evaluate("(d) => getComputedStyle(d).backgroundColor")
        red, green, blue = (int(x) for x in re.findall(r"\d+", colour)[:3])
        assert red > 150 and green < 100 and blue < 100, f"the recording dot is not red: {colour}"
    else:
        expect(indicator).to_be_hidden()


@pytest.fixture(scope="module")
def recorded(hub: Any, browser: Any, speaking_browser: Any) -> Iterator[Recorded]:
    """Ana (speaking, camera on) and Bo (listener, Spanish) record a call; wait until it is ready."""
    status = wait_captions_ready(hub, translation=True)
    assert {"en", "es"} <= set(status["languages"]), status
    watch = PageWatch()
    try:
        room = unique_room("rec")
        bo = join(watch.new_page(browser), hub.url, room, "Bo", lang="es", audio=False, video=False)
        ana = join(watch.new_page(speaking_browser), hub.url, room, "Ana")
        wait_joined(ana)
        # Bo came first, so Bo hosts: only hosts record (the default), so only Bo has the button.
        _record_toggle_says(bo, on=False)
        expect(ana.get_by_test_id("record-toggle")).to_be_hidden()
        for page in (ana, bo):
            _indicator_shown(page, on=False)

        # Bo starts recording: everyone sees it.
        before = set(bo.evaluate(UTTERANCES_JS)) | {f["utterance"] for f in bo.evaluate(COLLECT_FINALS_JS)}
        bo.get_by_test_id("record-toggle").click()
        started = time.monotonic()
        for page in (bo, ana):
            _indicator_shown(page, on=True)
        _record_toggle_says(bo, on=True)
        rec_id = bo.evaluate("() => window.unionhub.state.recording.id")
        assert isinstance(rec_id, str) and re.fullmatch(r"[0-9a-f]{8,32}", rec_id), rec_id
        assert ana.evaluate("() => window.unionhub.state.recording.id") == rec_id
        live = get_json(f"{hub.url}/api/recordings/{rec_id}")
        assert live["status"] == "recording" and live["room"] == room, live

        # Ana talks until Bo has read at least two of her utterances in Spanish, one of them with
        # "país" (her "country"), so the recording has captions to search and a transcript.
        def enough(finals: list[dict[str, Any]]) -> bool:
            new = [f for f in finals if f["utterance"] not in before and f["lang"] == "es"]
            return len(new) >= 2 and "país" in transcript(new)

        finals = wait_finals(bo, enough, timeout_ms=CAPTION_WAIT_MS)
        finals = [f for f in finals if f["utterance"] not in before]
        assert all(f["name"] == "Ana" for f in finals), finals
        remaining = MIN_RECORDED_S - (time.monotonic() - started)
        if remaining > 0:
            bo.wait_for_timeout(remaining * 1000)

        # Bo stops it: the indicator goes for everyone.
        bo.get_by_test_id("record-toggle").click()
        span = time.monotonic() - started
        for page in (ana, bo):
            _indicator_shown(page, on=False)
        _record_toggle_says(bo, on=False)
        assert bo.evaluate("() => window.unionhub.state.recording") == {"on": False, "id": None, "available": True}
        expect(bo.get_by_test_id("error")).to_be_hidden()
        expect(ana.get_by_test_id("error")).to_be_hidden()

        # Composition runs in the background: "processing" (with progress) until "ready".
        seen_statuses: list[str] = []

        def probe() -> dict[str, Any]:
            rec = get_json(f"{hub.url}/api/recordings/{rec_id}")
            seen_statuses.append(rec["status"])
            return rec

        rec = poll(probe, lambda r: r["status"] in ("ready", "failed"), READY_TIMEOUT_S,
                   f"recording {rec_id} composed", interval=0.5)
        assert rec["status"] == "ready", (rec, hub.log_tail())
        assert set(seen_statuses) <= {"processing", "ready"}, seen_statuses
    finally:
        watch.close()
    if watch.problems:
        pytest.fail("browser problems:\n" + "\n".join(watch.problems))
    yield Recorded(rec_id, room, span, finals, rec)


# ---- the tests ------------------------------------------------------------------------------------

def test_recording_has_the_recorded_span_people_and_languages(recorded: Recorded) -> None:
    rec = recorded.rec
    assert rec["id"] == recorded.id and rec["room"] == recorded.room
    assert rec["duration"] is not None
    assert abs(rec["duration"] - recorded.span) <= DURATION_TOLERANCE_S, (rec["duration"], recorded.span)
    assert rec["duration"] >= MIN_RECORDED_S - DURATION_TOLERANCE_S, rec
    assert "Ana" in rec["participants"], rec  # who was recorded (Bo only listened)
    assert {"en", "es"} <= set(rec["languages"]), rec
    assert rec["video"] == f"/api/recordings/{recorded.id}/media/playback.mp4", rec
    assert rec["audio"] == f"/api/recordings/{recorded.id}/media/audio.m4a", rec
    assert rec["progress"] == 1.0 and rec["error"] is None, rec


def test_library_lists_and_finds_it_in_any_language(hub: Any, recorded: Recorded, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{hub.url}/recordings")
    item = page.locator(f'[data-testid="recording-item"][data-id="{recorded.id}"]')
    expect(item).to_be_visible()
    expect(item).to_have_attribute("data-status", "ready")
    expect(item.get_by_test_id("recording-title")).to_have_text(recorded.rec["title"])
    expect(item.get_by_test_id("recording-title")).to_have_attribute("href", f"/recordings/{recorded.id}")
    expect(item.get_by_test_id("recording-participants")).to_contain_text("Ana")
    search = page.get_by_test_id("recording-search")

    # A word Ana said (English captions) ...
    search.fill("country")
    expect(page.get_by_test_id("recording-count")).to_contain_text("country")
    expect(item).to_be_visible()
    match = item.get_by_test_id("recording-match")
    expect(match).to_be_visible()
    expect(match.locator("mark").first).to_have_text(re.compile(r"^country", re.IGNORECASE))
    expect(match.locator(".rec-match-speaker")).to_have_text("Ana:")

    # ... nonsense finds nothing ...
    search.fill(NONSENSE)
    expect(page.get_by_test_id("recording-count")).to_contain_text(NONSENSE)
    expect(page.get_by_test_id("recording-item")).to_have_count(0)
    expect(page.get_by_test_id("recording-empty")).to_be_visible()

    # ... and the Spanish word Bo read finds it too.
    search.fill("país")
    expect(page.get_by_test_id("recording-count")).to_contain_text("país")
    expect(item).to_be_visible()
    expect(match).to_be_visible()
    expect(match.locator("mark").first).to_have_text(re.compile(r"^país", re.IGNORECASE))
    expect(match.locator(".rec-match-text")).to_have_attribute("lang", "es")
    # The match links to the moment it was said, in the language it was found in.
    href = match.locator(".rec-match-time").get_attribute("href")
    assert re.fullmatch(rf"/recordings/{recorded.id}\?t=\d+&lang=es", href or ""), href

    # The search is in the address (a reload keeps it).
    assert "q=pa%C3%ADs" in page.url, page.url
    page.reload()
    expect(search).to_have_value("país")
    expect(item).to_be_visible()


def test_a_search_typed_before_the_library_script_ran_is_searched(hub: Any, recorded: Recorded,
                                                                   new_page: Any) -> None:
    """On a slow network the search box shows before the library's script has run: what the member
    typed meanwhile is searched when it runs, not wiped."""
    page = new_page()
    held: list[Any] = []  # the library's script, held back until the member has typed
    page.route("**/static/recordings.js", lambda route: held.append(route))
    page.goto(f"{hub.url}/recordings", wait_until="commit")
    search = page.get_by_test_id("recording-search")
    search.fill("country")
    poll(lambda: len(held), bool, 10, "the library script requested", page=page)
    held[0].continue_()
    expect(page.get_by_test_id("recording-count")).to_contain_text("country")
    expect(search).to_have_value("country")
    item = page.locator(f'[data-testid="recording-item"][data-id="{recorded.id}"]')
    expect(item.get_by_test_id("recording-match")).to_be_visible()
    assert "q=country" in page.url, page.url


def test_player_plays_with_subtitles_and_a_clickable_transcript(
    hub: Any, recorded: Recorded, new_page: Any
) -> None:
    page = new_page()
    page.goto(f"{hub.url}/recordings/{recorded.id}")
    expect(page.get_by_test_id("recording-title")).to_have_text(recorded.rec["title"])
    expect(page.get_by_test_id("recording-message")).to_be_hidden()

    # The video loads and plays, and is as long as the recording.
    video = page.get_by_test_id("recording-video")
    expect(video).to_be_visible()
    played = page.evaluate("""() => {
        const v = document.querySelector('[data-testid="recording-video"]');
        v.muted = true;
        return v.play().then(() => 'ok', (err) => String(err));
    }""")
    assert played == "ok", (played, page.evaluate(_VIDEO_JS))
    state = poll(lambda: page.evaluate(_VIDEO_JS),
                 lambda s: s["readyState"] >= 2 and s["currentTime"] > 0.3 and not s["paused"],
                 WAIT_MS / 1000, "the recording plays", page=page)
    assert state["error"] is None, state
    assert abs(state["duration"] - recorded.rec["duration"]) <= DURATION_TOLERANCE_S, (state, recorded.rec)
    page.evaluate("() => document.querySelector('[data-testid=\"recording-video\"]').pause()")

    # Captions: a subtitle track per language; picking Spanish shows the Spanish one only.
    menu = page.get_by_test_id("caption-language-menu")
    expect(menu).to_be_enabled()
    for lang in ("en", "es"):
        expect(menu.locator(f'option[value="{lang}"]')).to_have_count(1)
    menu.select_option("es")
    expect(menu).to_have_value("es")
    tracks = poll(
        lambda: page.evaluate(_TRACKS_JS),
        lambda ts: any(t["lang"] == "es" and t["mode"] == "showing" and (t["cues"] or 0) > 0 for t in ts),
        WAIT_MS / 1000, "the Spanish subtitles are showing (and loaded)", page=page,
    )
    assert {t["lang"] for t in tracks} >= {"en", "es"}, tracks
    assert all(t["mode"] == "disabled" for t in tracks if t["lang"] != "es"), tracks

    # The transcript follows the language: Ana's words in Spanish.
    expect(page.get_by_test_id("transcript-language")).to_contain_text("Español")
    lines = page.get_by_test_id("transcript-line")
    expect(lines.locator('.t-text[lang="es"]').nth(1)).to_be_visible()  # the Spanish one loaded
    expect(lines.locator('.t-text:not([lang="es"])')).to_have_count(0)
    speakers = lines.locator(".t-speaker").all_text_contents()
    assert speakers and set(speakers) == {"Ana"}, speakers
    texts = " ".join(lines.locator(".t-text").all_text_contents())
    assert "país" in texts, texts

    # Clicking a line plays from there.
    second = lines.nth(1)
    start = float(second.get_attribute("data-start") or "nan")
    assert 0 <= start < recorded.rec["duration"], start
    second.click()
    poll(lambda: page.evaluate(_VIDEO_JS),
         lambda s: abs(s["currentTime"] - start) <= 1.0,
         WAIT_MS / 1000, f"the video is at the second line's start ({start:.2f} s)", page=page)
    expect(page.get_by_test_id("moment-link")).to_have_attribute(
        "href", re.compile(rf"/recordings/{recorded.id}\?t={int(start)}&lang=es$"))

    # A deep link starts at its moment.
    deep = new_page()
    deep.goto(f"{hub.url}/recordings/{recorded.id}?t=3")
    poll(lambda: deep.evaluate(_VIDEO_JS),
         lambda s: s["readyState"] >= 1 and abs(s["currentTime"] - 3.0) <= 0.5,
         WAIT_MS / 1000, "?t=3 starts the video at 3 s", page=deep)


def test_captions_download_and_podcast_feed(hub: Any, recorded: Recorded, new_page: Any) -> None:
    base = f"{hub.url}/api/recordings/{recorded.id}"
    status, headers, body = get(f"{base}/captions/en.vtt")
    assert status == 200, (status, body[:300])
    assert headers["Content-Type"].startswith("text/vtt"), headers
    vtt = body.decode("utf-8")
    assert vtt.startswith("WEBVTT"), vtt[:200]
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}$", vtt, re.MULTILINE), vtt
    assert "<v Ana>" in vtt, vtt
    status, _, body = get(f"{base}/captions/es.vtt")
    assert status == 200 and "<v Ana>" in body.decode("utf-8"), (status, body[:300])

    def feed_item() -> ET.Element | None:
        status, headers, body = get(f"{hub.url}/recordings/feed.xml")
        assert status == 200 and headers["Content-Type"].startswith("application/rss+xml"), (status, headers)
        channel = ET.fromstring(body).find("channel")
        assert channel is not None, body[:500]
        for item in channel.findall("item"):
            if (item.findtext("link") or "").endswith(f"/recordings/{recorded.id}"):
                return item
        return None

    # Private recordings are not in the feed; publishing (in the library) puts it there.
    assert feed_item() is None
    page = new_page()
    page.goto(f"{hub.url}/recordings")
    item = page.locator(f'[data-testid="recording-item"][data-id="{recorded.id}"]')
    expect(item.get_by_test_id("recording-published")).to_have_text("Private")
    publish = item.get_by_test_id("recording-publish")
    expect(publish).to_have_attribute("aria-pressed", "false")
    publish.click()
    expect(publish).to_have_attribute("aria-pressed", "true")
    expect(publish).to_have_text("Unpublish")
    expect(item.get_by_test_id("recording-published")).to_have_text("Published")
    expect(item).to_have_attribute("data-published", "true")
    assert get_json(base)["published"] is True

    episode = feed_item()
    assert episode is not None, "the published recording is not in the feed"
    assert episode.findtext("title") == recorded.rec["title"]
    enclosure = episode.find("enclosure")
    assert enclosure is not None
    url = enclosure.get("url") or ""
    assert url == f"{hub.url}/api/recordings/{recorded.id}/media/audio.m4a", url
    assert enclosure.get("type") == "audio/mp4"
    status, headers, audio = get(url, timeout=30)
    assert status == 200, status
    assert headers["Content-Type"] == "audio/mp4", headers
    assert len(audio) == int(enclosure.get("length") or -1) > 1000
    assert audio[4:8] == b"ftyp", audio[:16]


def test_record_button_follows_the_server(hub: Any, new_page: Any) -> None:
    """No record button on a server that does not record, and the server's refusal is shown.

    `unionhub serve` always records, so the page's WebSocket is intercepted: `joined` is rewritten
    as such a server sends it, and then a `record` request is answered with `not-available`.
    """
    page = new_page()
    page.goto(hub.url + "/")
    link = page.get_by_test_id("join-library-link")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", "/recordings")

    available = {"value": True}
    sockets: list[Any] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            if isinstance(message, str) and message.startswith('42["joined",'):
                event, payload = json.loads(message[2:])
                payload["recording"] = {"on": False, "id": None, "available": available["value"]}
                message = "42" + json.dumps([event, payload])
            ws.send(message)

        def to_server(message: str | bytes) -> None:
            if isinstance(message, str) and message.startswith('42["record",'):
                ws.send("42" + json.dumps(["error", {
                    "code": "not-available", "message": "Recording is turned off on this server.",
                    "event": "record"}]))
                return
            server.send(message)

        server.on_message(to_page)
        ws.on_message(to_server)
        sockets.append(ws)

    # A server that records: the button is there; when it refuses, the page says why.
    page.route_web_socket(re.compile(r"/socket\.io/"), route)
    join(page, hub.url, unique_room("rec-refused"), "Ana", video=False, audio=False)
    toggle = page.get_by_test_id("record-toggle")
    expect(toggle).to_be_visible()
    toggle.click()
    expect(page.get_by_test_id("error")).to_be_visible()
    expect(page.get_by_test_id("error")).to_have_text("Recording is turned off on this server.")
    expect(toggle).to_be_hidden()
    expect(page.get_by_test_id("recording-indicator")).to_be_hidden()

    # A server that does not record: no button at all.
    available["value"] = False
    other = new_page()
    other.route_web_socket(re.compile(r"/socket\.io/"), route)
    join(other, hub.url, unique_room("rec-off"), "Bo", video=False, audio=False)
    expect(other.get_by_test_id("raise-hand")).to_be_visible()
    expect(other.get_by_test_id("record-toggle")).to_be_hidden()
    expect(other.get_by_test_id("recording-indicator")).to_be_hidden()
    assert len(sockets) == 2


def test_a_room_being_recorded_says_so_to_those_who_join_later(hub: Any, new_page: Any) -> None:
    """`joined.recording`: who joins a room already being recorded sees the indicator at once."""
    room = unique_room("rec-late")
    first = join(new_page(), hub.url, room, "Ana", video=False, audio=False)
    first.get_by_test_id("record-toggle").click()
    _indicator_shown(first, on=True)
    rec_id = first.evaluate("() => window.unionhub.state.recording.id")
    try:
        late = join(new_page(), hub.url, room, "Bo", video=False, audio=False)
        _indicator_shown(late, on=True)
        expect(late.get_by_test_id("record-toggle")).to_be_hidden()  # only hosts record (the default)
        assert late.evaluate("() => window.unionhub.state.recording.id") == rec_id
    finally:
        first.get_by_test_id("record-toggle").click()
    _indicator_shown(first, on=False)
    _indicator_shown(late, on=False)
    # Nobody published any media: the empty recording is discarded, not left in the library.
    url = f"{hub.url}/api/recordings/{quote(rec_id)}"
    poll(lambda: get(url)[0], lambda status: status == 404, READY_TIMEOUT_S,
         f"empty recording {rec_id} discarded")
    assert get(url)[0] == 404
