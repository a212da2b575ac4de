"""Live streaming end to end: going live from the call page, watching the HLS stream with live
captions on the public viewer page, ending it, and finding it archived as a recording.

The call: "Ana" speaks (her fake microphone plays jfk.wav, camera on) and "Bo" listens reading
Spanish (the shared hub's tiny en→es Argos model). A viewer with no account watches /live/<room>.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import av
import pytest

from e2e_helpers import (
    CAPTION_WAIT_MS,
    EN_ES,
    FRAME_STATS_JS,
    WAIT_MS,
    get,
    get_json,
    join,
    normalise,
    unique_room,
    wait_captions_ready,
    wait_joined,
)
from e2e_helpers import wait_until as poll
from rtmp_server import free_port, nginx_rtmp

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

# Captions (tiny.en on 2 cores), the stream's first segments, and the archived recording's
# composition all take a while.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

LIVE_START_S = 60.0  # from "Go live" until the viewer's video plays (first segments take a while)
ENDED_S = 30.0  # from "End live stream" until the viewer page says so
ARCHIVE_S = 60.0  # until the stream's recording is listed
READY_TIMEOUT_S = 180.0  # until it is composed (at least; longer streams get twice their length)
SEGMENT_S = 2.0
# Spanish cues the viewer must get: Ana says something every few seconds (in a loop), and more cues
# than one subtitle segment holds show that they keep coming.
MIN_CUES = 8
NOT_LIVE = "This room is not live yet — this page starts playing when it goes live"
ENDED = "The live stream has ended"
# Spanish words of the tiny Argos model (e2e_helpers.EN_ES) that are not English words too.
SPANISH = {w.lower() for w in EN_ES.values() if len(w) > 2} - {"por"}


# ---- helpers ------------------------------------------------------------------------------------

def live_api(hub: Any, room: str, viewer: str | None = None) -> dict[str, Any]:
    viewer = viewer or "test-" + secrets.token_hex(8)
    return get_json(f"{hub.url}/api/live/{quote(room)}?viewer={viewer}")


def playlist_uris(text: str) -> list[str]:
    """The URIs of a playlist: its non-tag lines and the URI="…" attributes of its tags."""
    uris = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    uris += re.findall(r'URI="([^"]+)"', text)
    return uris


def _toggle_says(page: Any, on: bool) -> None:
    toggle = page.get_by_test_id("live-toggle")
    expect(toggle).to_be_visible()
    expect(toggle).to_be_enabled(timeout=WAIT_MS)
    expect(toggle).to_have_attribute("aria-pressed", "true" if on else "false", timeout=WAIT_MS)
    expect(toggle).to_have_text("End live stream" if on else "Go live")


def _live_shown(page: Any, room: str, on: bool) -> None:
    indicator = page.get_by_test_id("live-indicator")
    link = page.get_by_test_id("live-link")
    if on:
        expect(indicator).to_be_visible(timeout=WAIT_MS)
        expect(indicator).to_have_text("LIVE")
        expect(link).to_be_visible()
        expect(link).to_have_attribute("href", f"/live/{room}")
        expect(link).to_have_attribute("target", "_blank")  # following it does not leave the call
    else:
        expect(indicator).to_be_hidden(timeout=WAIT_MS)
        expect(link).to_be_hidden()


_VIDEO_JS = """
() => {
    const v = document.querySelector('[data-testid="live-video"]');
    return {readyState: v.readyState, currentTime: v.currentTime, paused: v.paused, ended: v.ended,
            error: v.error ? v.error.code : null, width: v.videoWidth, height: v.videoHeight,
            status: document.querySelector('[data-testid="live-status"]').hidden
                ? '' : document.querySelector('[data-testid="live-status"]').textContent,
            pageError: document.querySelector('[data-testid="error"]').textContent};
}
"""

_TRACKS_JS = """
() => [...document.querySelector('[data-testid="live-video"]').textTracks]
    .filter((t) => t.kind === 'subtitles' || t.kind === 'captions')
    .map((t) => ({lang: t.language, mode: t.mode, cues: t.cues ? t.cues.length : null,
                  active: t.activeCues ? t.activeCues.length : null,
                  texts: t.cues ? [...t.cues].map((c) => c.text) : []}))
"""



def video_frames(flv: Path) -> int:
    """The video frames decodable so far from a recording an RTMP destination is still writing."""
    if not flv.exists():
        return 0
    try:
        with av.open(str(flv)) as got:
            return sum(1 for _ in got.decode(video=0))
    except (av.error.FFmpegError, IndexError):  # (nothing decodable yet: no header, no video stream)
        return 0


def _viewer_count(page: Any) -> int:
    node = page.get_by_test_id("viewer-count")
    return int(node.get_attribute("data-count") or "-1") if node.is_visible() else -1


# ---- the tests ------------------------------------------------------------------------------------

def test_go_live_watch_with_captions_end_and_archive(hub: Any, new_page: Any, speaking_browser: Any) -> None:
    status = wait_captions_ready(hub, translation=True)
    assert {"en", "es"} <= set(status["languages"]), status
    room = unique_room("live")

    # A viewer opens the page before the room is live: it says so and waits.
    viewer = new_page()
    viewer.goto(f"{hub.url}/live/{room}")
    expect(viewer.get_by_test_id("live-status")).to_have_text(NOT_LIVE)
    video = viewer.get_by_test_id("live-video")
    expect(video).to_be_visible()
    for attribute in ("controls", "autoplay", "muted", "playsinline"):
        assert video.get_attribute(attribute) is not None, attribute
    expect(viewer.get_by_test_id("live-indicator")).to_be_hidden()
    expect(viewer.get_by_test_id("viewer-count")).to_be_hidden()  # counted while live
    info = live_api(hub, room)
    assert info["live"] is False and info["ended"] is False and info["started_at"] is None, info
    assert info["playlist"] == f"/live/{room}/hls/index.m3u8", info

    # The call: Ana hosts and speaks with her camera on, Bo listens in Spanish. Only hosts go live
    # (the default), so only Ana has the button.
    ana = join(new_page(on=speaking_browser), hub.url, room, "Ana")
    wait_joined(ana)
    bo = join(new_page(), hub.url, room, "Bo", lang="es", audio=False, video=False)
    _toggle_says(ana, on=False)
    expect(bo.get_by_test_id("live-toggle")).to_be_hidden()
    for page in (ana, bo):
        _live_shown(page, room, on=False)

    # Ana goes live: everyone in the call sees it, and so does whoever joins later.
    ana.get_by_test_id("live-toggle").click()
    went_live = time.monotonic()
    for page in (ana, bo):
        _live_shown(page, room, on=True)
    _toggle_says(ana, on=True)
    assert bo.evaluate("() => window.unionhub.state.live") == {
        "on": True, "url": f"/live/{room}", "available": True, "push": None}
    late = join(new_page(), hub.url, room, "Cy", lang="en", audio=False, video=False)
    _live_shown(late, room, on=True)
    expect(late.get_by_test_id("live-toggle")).to_be_hidden()
    for page in (ana, bo, late):
        expect(page.get_by_test_id("error")).to_be_hidden()

    # The viewer page starts playing by itself: the video plays and moves on.
    state = poll(lambda: viewer.evaluate(_VIDEO_JS),
                 lambda s: s["readyState"] >= 2 and s["currentTime"] > 0 and not s["paused"],
                 LIVE_START_S, "the live video plays on the viewer page", page=viewer)
    assert state["error"] is None and state["width"] > 0 and state["height"] > 0, state
    started = state["currentTime"]
    poll(lambda: viewer.evaluate(_VIDEO_JS), lambda s: s["currentTime"] >= started + 2.0,
         WAIT_MS / 1000, "the live video's time advances by 2 s", page=viewer)
    print(f"live video playing {time.monotonic() - went_live:.1f} s after going live")
    expect(viewer.get_by_test_id("live-status")).to_be_hidden()
    expect(viewer.get_by_test_id("live-indicator")).to_be_visible(timeout=WAIT_MS)
    expect(viewer.get_by_test_id("error")).to_be_hidden()
    # Ana's camera (a moving test pattern) is in the picture: not black, not a flat colour.
    poll(lambda: video.evaluate(FRAME_STATS_JS)["std"], lambda std: std > 5.0, WAIT_MS / 1000,
         "the live video shows a picture", page=viewer)

    # The API agrees, and counts distinct viewers (this test's ids and the page's).
    info = live_api(hub, room)
    assert info["live"] is True and info["ended"] is False, info
    assert isinstance(info["started_at"], (int, float)) and abs(info["started_at"] - time.time()) < 600, info
    assert {"en", "es"} <= set(info["languages"]), info
    # The page counts itself (it polls every 5 s: a few polls' time on a loaded machine) ...
    poll(lambda: _viewer_count(viewer), lambda n: n >= 1, WAIT_MS / 1000, "the viewer count shown",
         page=viewer)
    expect(viewer.get_by_test_id("viewer-count")).to_have_text(re.compile(r"^\d+ watching$"))
    # ... and distinct viewers are counted once each: the page and two probes make at least 3, and
    # a probe polling again adds nobody.
    first_probe, second_probe = "test-" + secrets.token_hex(8), "test-" + secrets.token_hex(8)
    live_api(hub, room, first_probe)
    counted = live_api(hub, room, second_probe)["viewers"]
    assert counted >= 3, counted
    assert live_api(hub, room, first_probe)["viewers"] <= counted

    # The HLS playlists: captions per language, one video+audio variant in fMP4 segments of 2 s.
    master_url = f"{hub.url}/live/{room}/hls/index.m3u8"
    status_code, headers, body = get(master_url)
    assert status_code == 200, (status_code, body[:300])
    assert "mpegurl" in headers.get("Content-Type", "").lower(), headers
    master = body.decode()
    for lang in ("en", "es"):
        assert re.search(rf'#EXT-X-MEDIA:TYPE=SUBTITLES,[^\n]*LANGUAGE="{lang}"[^\n]*URI="sub_{lang}\.m3u8"',
                         master), master
    variants = [line for line in master.splitlines() if line and not line.startswith("#")]
    assert len(variants) == 1, master
    media_url = urljoin(master_url, variants[0])
    media = get(media_url)[2].decode()
    assert "#EXT-X-MAP:" in media, media  # fMP4: an init segment
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+)", media)]
    assert durations and all(0 < d <= SEGMENT_S + 0.5 for d in durations), media
    init_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', media)
    assert init_uri, media
    init = get(urljoin(media_url, init_uri.group(1)))[2]
    assert b"avc1" in init or b"avc3" in init, "the video is not H.264"
    assert b"mp4a" in init, "the stream has no AAC audio"

    # Captions: the menu offers the stream's languages; Spanish shows the Spanish track only ...
    menu = viewer.get_by_test_id("live-caption-language")
    expect(menu).to_be_enabled(timeout=WAIT_MS)
    expect(menu.locator('option[value=""]')).to_have_text("Off")
    for lang in ("en", "es"):
        expect(menu.locator(f'option[value="{lang}"]')).to_have_count(1, timeout=WAIT_MS)
    menu.select_option("es")
    expect(menu).to_have_value("es")
    poll(lambda: viewer.evaluate(_TRACKS_JS),
         lambda ts: any(t["lang"] == "es" and t["mode"] == "showing" for t in ts)
         and all(t["mode"] == "disabled" for t in ts if t["lang"] != "es"),
         WAIT_MS / 1000, "only the Spanish subtitles are showing", page=viewer)
    assert viewer.evaluate("() => window.unionhubLive.hls && window.unionhubLive.hls.subtitleTrack") >= 0

    # ... and they carry Ana's words, in Spanish, on the stream's timeline (shown while playing).
    # Ana says something every few seconds: cues must keep coming (MIN_CUES), and be shown in time.
    # A caption failure is reported at the end, so that one run also checks ending and archiving.
    def spanish(tracks: list[dict[str, Any]]) -> dict[str, Any]:
        es = next((t for t in tracks if t["lang"] == "es"), {"cues": 0, "texts": [], "active": 0})
        words = set(normalise(" ".join(re.sub(r"<[^>]*>", " ", t) for t in es["texts"])).split())
        return {**es, "spanish": sorted(words & SPANISH)}

    problems: list[str] = []  # reported at the end, so that one run checks everything
    try:
        es = poll(lambda: spanish(viewer.evaluate(_TRACKS_JS)),
                  lambda t: (t["cues"] or 0) >= MIN_CUES and t["spanish"] and t["mode"] == "showing",
                  CAPTION_WAIT_MS / 1000, "Spanish live captions in the stream", page=viewer, interval=1.0)
        print(f"Spanish cues: {es['texts'][:6]}")
        poll(lambda: spanish(viewer.evaluate(_TRACKS_JS)), lambda t: (t["active"] or 0) > 0,
             CAPTION_WAIT_MS / 1000, "a Spanish caption shown during playback", page=viewer, interval=0.25)
    except pytest.fail.Exception as exc:
        problems.append(str(exc))

    # Off turns them off; the page keeps playing.
    menu.select_option("")
    poll(lambda: viewer.evaluate(_TRACKS_JS), lambda ts: all(t["mode"] == "disabled" for t in ts),
         WAIT_MS / 1000, "subtitles off", page=viewer)
    assert not viewer.evaluate(_VIDEO_JS)["paused"]

    # Ana ends the stream: the call and the viewer page say so, and the playlists end.
    ana.get_by_test_id("live-toggle").click()
    for page in (ana, bo, late):
        _live_shown(page, room, on=False)
    _toggle_says(ana, on=False)
    expect(viewer.get_by_test_id("live-status")).to_have_text(ENDED, timeout=ENDED_S * 1000)
    expect(viewer.get_by_test_id("live-indicator")).to_be_hidden()
    expect(viewer.get_by_test_id("error")).to_be_hidden()
    info = live_api(hub, room)
    assert info["live"] is False and info["ended"] is True, info
    for url in (media_url, urljoin(master_url, "sub_es.m3u8"), urljoin(master_url, "sub_en.m3u8")):
        text = poll(lambda url=url: get(url)[2].decode(), lambda t: "#EXT-X-ENDLIST" in t, ENDED_S,
                    f"{url} ends with #EXT-X-ENDLIST")
        assert text.rstrip().endswith("#EXT-X-ENDLIST"), text

    # The stream was archived: its recording appears in the library and gets composed.
    def archived() -> dict[str, Any] | None:
        recordings = get_json(f"{hub.url}/api/recordings")["recordings"]
        return next((r for r in recordings if r["room"] == room), None)

    rec = poll(archived, lambda r: r is not None, ARCHIVE_S, f"a recording of room {room}")
    assert rec["status"] in ("recording", "processing", "ready"), rec
    assert rec["duration"] and rec["duration"] > 5, rec
    # Everyone who was in the room while it was recorded, listeners too (as with the record button).
    if not {"Ana", "Bo", "Cy"} <= set(rec["participants"]):
        problems.append(f"the stream's recording lists {rec['participants']}, not Ana, Bo and Cy")
    try:
        rec = poll(lambda: get_json(f"{hub.url}/api/recordings/{rec['id']}"),
                   lambda r: r["status"] in ("ready", "failed"), max(READY_TIMEOUT_S, 2 * rec["duration"]),
                   f"recording {rec['id']} composed", interval=1.0)
        if rec["status"] != "ready":
            problems.append(f"the stream's recording failed: {rec}")
    except pytest.fail.Exception as exc:
        problems.append(str(exc))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_live_api_and_viewer_page(hub: Any) -> None:
    room = unique_room("live-api")
    first = "test-" + secrets.token_hex(8)
    info = live_api(hub, room, first)
    assert info["live"] is False and info["ended"] is False and info["started_at"] is None, info
    assert info["playlist"] == f"/live/{room}/hls/index.m3u8", info
    assert isinstance(info["viewers"], int) and isinstance(info["languages"], list), info

    status, headers, body = get(f"{hub.url}/api/live/bad%20room")
    assert status == 404 and headers["Content-Type"].startswith("application/json"), (status, headers)
    assert json.loads(body)["error"]["message"], body

    status, headers, body = get(f"{hub.url}/live/{room}")
    assert status == 200 and headers["Content-Type"].startswith("text/html"), (status, headers)
    assert b'data-testid="live-video"' in body
    assert "script-src 'self'" in headers.get("Content-Security-Policy", ""), headers
    # The player script is served (it is a node_modules dependency, see web_client/package.json).
    status, headers, body = get(f"{hub.url}/vendor/hls.min.js")
    assert status == 200 and "javascript" in headers.get("Content-Type", ""), (status, headers)
    assert len(body) > 100_000 and b"subtitleTrack" in body, body[:200]
    # No stream yet: no playlist.
    assert get(f"{hub.url}/live/{room}/hls/index.m3u8")[0] == 404


def test_viewer_page_says_when_the_server_cannot_be_reached(hub: Any, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{hub.url}/live/{unique_room('live-offline')}")
    expect(page.get_by_test_id("live-status")).to_have_text(NOT_LIVE)
    expect(page.get_by_test_id("error")).to_be_hidden()
    page.route(re.compile(r"/api/live/"), lambda route: route.abort("internetdisconnected"))
    expect(page.get_by_test_id("error")).to_contain_text("Cannot reach the unionhub server", timeout=WAIT_MS)
    page.unroute(re.compile(r"/api/live/"))
    expect(page.get_by_test_id("error")).to_be_hidden(timeout=WAIT_MS)
    expect(page.get_by_test_id("live-status")).to_have_text(NOT_LIVE)


def test_live_button_follows_the_server(hub: Any, new_page: Any) -> None:
    """No "Go live" button on a server that does not stream, and the server's refusal is shown.

    The page's WebSocket is intercepted: `joined` is rewritten as such a server sends it, and `live`
    requests are answered here (a `live` broadcast, or the `not-available` error).
    """
    available = {"value": True}
    refuse = {"value": False}
    sockets: list[Any] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        room_of: dict[str, str] = {}

        def to_page(message: str | bytes) -> None:
            if isinstance(message, str) and message.startswith('42["joined",'):
                event, payload = json.loads(message[2:])
                room_of["room"] = payload["room"]
                payload["live"] = {"on": False, "url": f"/live/{payload['room']}",
                                   "available": available["value"]}
                message = "42" + json.dumps([event, payload])
            ws.send(message)

        def to_server(message: str | bytes) -> None:
            if isinstance(message, str) and message.startswith('42["live",'):
                _, payload = json.loads(message[2:])
                if refuse["value"]:
                    ws.send("42" + json.dumps(["error", {
                        "code": "not-available", "message": "Live streaming is turned off on this server.",
                        "event": "live"}]))
                else:
                    ws.send("42" + json.dumps(["live", {
                        "on": payload["on"], "url": f"/live/{room_of['room']}", "available": True}]))
                return
            server.send(message)

        server.on_message(to_page)
        ws.on_message(to_server)
        sockets.append(ws)

    # A server that streams: the button works both ways.
    page = new_page()
    page.route_web_socket(re.compile(r"/socket\.io/"), route)
    room = unique_room("live-button")
    join(page, hub.url, room, "Ana", video=False, audio=False)
    _toggle_says(page, on=False)
    _live_shown(page, room, on=False)
    page.get_by_test_id("live-toggle").click()
    _live_shown(page, room, on=True)
    _toggle_says(page, on=True)
    page.get_by_test_id("live-toggle").click()
    _live_shown(page, room, on=False)
    _toggle_says(page, on=False)

    # When it refuses, the page says why and hides the button.
    refuse["value"] = True
    page.get_by_test_id("live-toggle").click()
    expect(page.get_by_test_id("error")).to_have_text("Live streaming is turned off on this server.")
    expect(page.get_by_test_id("live-toggle")).to_be_hidden()
    expect(page.get_by_test_id("live-indicator")).to_be_hidden()

    # A server that does not stream: no button at all.
    available["value"] = False
    other = new_page()
    other.route_web_socket(re.compile(r"/socket\.io/"), route)
    join(other, hub.url, unique_room("live-off"), "Bo", video=False, audio=False)
    expect(other.get_by_test_id("raise-hand")).to_be_visible()
    expect(other.get_by_test_id("live-toggle")).to_be_hidden()
    expect(other.get_by_test_id("live-indicator")).to_be_hidden()
    assert len(sockets) == 2


def test_host_pushes_the_stream_to_an_rtmp_destination(hub: Any, new_page: Any, tmp_path: Any) -> None:
    """The host pastes a platform's stream URL and key; bad and unreachable ones are explained."""
    with nginx_rtmp(tmp_path / "nginx") as (base, received):
        room = unique_room("live-rtmp")
        ana = join(new_page(), hub.url, room, "Ana")
        wait_joined(ana)
        panel = ana.get_by_test_id("rtmp-panel")
        expect(panel).to_be_hidden()  # nothing to push before the room is live
        ana.get_by_test_id("live-toggle").click()
        _toggle_says(ana, on=True)
        expect(panel).to_be_visible()
        status = ana.get_by_test_id("rtmp-status")
        expect(status).to_be_hidden()

        # Not a stream URL: the host is told what to paste, the room stays live.
        ana.get_by_test_id("rtmp-url").fill("https://studio.youtube.com/channel/live")
        ana.get_by_test_id("rtmp-key").fill("abcd-efgh")
        ana.get_by_test_id("rtmp-start").click()
        expect(ana.get_by_test_id("error")).to_contain_text("That is not a stream URL", timeout=WAIT_MS)
        expect(status).to_be_hidden()
        _toggle_says(ana, on=True)

        # A destination nobody listens on: the host sees it failing and being retried.
        closed = free_port()
        ana.get_by_test_id("rtmp-url").fill(f"rtmp://127.0.0.1:{closed}/live2/")
        ana.get_by_test_id("rtmp-start").click()
        expect(ana.get_by_test_id("error")).to_be_hidden(timeout=WAIT_MS)
        expect(status).to_contain_text(f"Cannot stream to rtmp://127.0.0.1:{closed}/live2/••••",
                                       timeout=60_000)
        expect(status).to_contain_text("retrying")
        expect(ana.get_by_test_id("rtmp-url")).to_be_disabled()
        ana.get_by_test_id("rtmp-stop").click()
        expect(status).to_have_text("Stopped.", timeout=WAIT_MS)

        # The real destination: the status says so, the key never shows, and it receives the stream.
        key = "rally-" + secrets.token_hex(4)
        ana.get_by_test_id("rtmp-url").fill(base)
        ana.get_by_test_id("rtmp-key").fill(key)
        ana.get_by_test_id("rtmp-start").click()
        expect(status).to_have_text(f"Streaming to {base}/••••", timeout=60_000)
        assert key not in ana.evaluate("() => document.body.innerText")
        flv = received / f"{key}.flv"  # (the destination records what it receives as it comes)
        poll(lambda: video_frames(flv), lambda n: n >= 30, 60, f"30 video frames received in {flv}",
             page=ana, interval=1.0)
        ana.get_by_test_id("rtmp-stop").click()
        expect(status).to_have_text("Stopped.", timeout=WAIT_MS)
        expect(ana.get_by_test_id("rtmp-start")).to_be_visible()
        _toggle_says(ana, on=True)  # the stream itself goes on
        ana.get_by_test_id("live-toggle").click()
        expect(panel).to_be_hidden(timeout=WAIT_MS)
        with av.open(str(flv)) as got:
            assert {s.codec_context.name for s in got.streams} == {"h264", "aac"}
            assert sum(1 for _ in got.decode(video=0)) >= 30
