"""The archive's HTTP API, pages and podcast feed on a real aiohttp server.

The archive is filled directly (a real CaptionStore writes the captions), and dummy bytes stand
in for playback.mp4 / audio.m4a, so range requests can be checked byte for byte.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from yarl import URL

from captioning.store import CaptionStore, StoredCaption
from core.database import Database
from recordings.archive import Archive, Recording
from recordings.http import FeedInfo, add_routes
from unionhub.app import WEB_CLIENT

T0 = 1_780_000_000.0
VIDEO = bytes(range(256)) * 400  # 102400 bytes, every offset distinguishable enough
AUDIO = bytes(reversed(range(256))) * 50
ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"


@dataclass
class Env:
    client: TestClient
    archive: Archive
    store: CaptionStore
    root: Path
    ready: Recording  # published, ready, captions in es and en, media files present
    private: Recording  # ready, not published
    processing: Recording  # published, still composing
    live: Recording  # still recording


async def _make_env(tmp_path: Path, aiohttp_client: AiohttpClient, host_check: Any = None) -> Env:
    """The archive served by a test server; the database closes with it, as in the hub."""
    database = Database(tmp_path / "unionhub.sqlite3")
    root = tmp_path / "recordings"
    store = CaptionStore(database)
    archive = Archive(database, root)
    session = await store.start_session("metal")
    ready = await archive.create("metal", session, 5.0, T0)
    await archive.finish(ready.id, T0 + 3725, 3725.0, ["Ana García", "Bob"])
    await archive.set_status(ready.id, "ready")
    await archive.rename(ready.id, 'Asamblea <metal> & "puertos"')
    await archive.set_published(ready.id, True)
    await store.add([
        StoredCaption(session, "u1", "p1", "Ana García", "es", "es", "Los trabajadores del metal", 15.0, 18.0),
        StoredCaption(session, "u1", "p1", "Ana García", "es", "en", "The metal workers", 15.0, 18.0),
        StoredCaption(session, "u2", "p2", "Bob", "en", "en", "We stand <together> & strong", 20.0, 22.5),
        StoredCaption(session, "u2", "p2", "Bob", "en", "es", "Estamos juntos", 20.0, 22.5),
    ])
    (root / ready.id / "playback.mp4").write_bytes(VIDEO)
    (root / ready.id / "audio.m4a").write_bytes(AUDIO)

    private = await archive.create("private", None, 0.0, T0 - 100)
    await archive.finish(private.id, T0 - 40, 60.0, ["Carla"])
    await archive.set_status(private.id, "ready")
    (root / private.id / "playback.mp4").write_bytes(VIDEO)
    (root / private.id / "audio.m4a").write_bytes(AUDIO)

    processing = await archive.create("later", None, 0.0, T0 + 5000)
    await archive.finish(processing.id, T0 + 5100, 100.0, [])
    await archive.set_status(processing.id, "processing", progress=0.42)
    await archive.set_published(processing.id, True)

    live = await archive.create("live", None, 0.0, T0 + 9000)

    async def close_database(app: web.Application) -> None:
        database.close()

    app = web.Application()
    add_routes(app, archive, host_check, feed=FeedInfo(title="Union <archive>", image="/static/cover.png"))
    app.on_cleanup.append(close_database)
    client = await aiohttp_client(app)  # the fixture stops it (and so closes the database) after the test
    return Env(client, archive, store, root, ready, private, processing, live)


@pytest.fixture
async def env(tmp_path: Path, aiohttp_client: AiohttpClient) -> Env:
    return await _make_env(tmp_path, aiohttp_client)


async def _json(response: aiohttp.ClientResponse, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def _error(response: aiohttp.ClientResponse, status: int, code: str | None = None) -> None:
    body = await _json(response, status)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body


# ---- list, get, search --------------------------------------------------------------------------

async def test_list_and_get(env: Env) -> None:
    body = await _json(await env.client.get("/api/recordings"), 200)
    ids = [r["id"] for r in body["recordings"]]
    assert ids == [env.live.id, env.processing.id, env.ready.id, env.private.id]  # newest first
    assert body["can_manage"] is True
    ready = body["recordings"][2]
    assert ready["title"] == 'Asamblea <metal> & "puertos"'
    assert ready["status"] == "ready" and ready["published"] is True
    assert ready["participants"] == ["Ana García", "Bob"] and set(ready["languages"]) == {"es", "en"}
    assert ready["video"] == f"/api/recordings/{env.ready.id}/media/playback.mp4"
    assert ready["audio"] == f"/api/recordings/{env.ready.id}/media/audio.m4a"
    assert ready["captions"]["es"]["vtt"] == f"/api/recordings/{env.ready.id}/captions/es.vtt"
    assert body["recordings"][1]["video"] is None and body["recordings"][1]["progress"] == 0.42

    published = await _json(await env.client.get("/api/recordings?published=1"), 200)
    assert [r["id"] for r in published["recordings"]] == [env.processing.id, env.ready.id]

    one = await _json(await env.client.get(f"/api/recordings/{env.ready.id}"), 200)
    assert one == ready
    await _error(await env.client.get("/api/recordings/0123456789ab"), 404, "not-found")


async def test_search(env: Env) -> None:
    body = await _json(await env.client.get("/api/recordings?q=trabajadores"), 200)
    assert [r["id"] for r in body["recordings"]] == [env.ready.id]
    match = body["recordings"][0]["match"]
    assert match["time"] == 10.0 and match["lang"] == "es" and match["speaker"] == "Ana García"
    assert [match["snippet"][a:b] for a, b in match["highlights"]] == ["trabajadores"]

    body = await _json(await env.client.get("/api/recordings/search", params={"q": "together"}), 200)
    assert [(r["id"], r["match"]["lang"], r["match"]["time"]) for r in body["recordings"]] == [
        (env.ready.id, "en", 15.0)]
    body = await _json(await env.client.get("/api/recordings/search", params={"q": "carla"}), 200)
    assert [r["id"] for r in body["recordings"]] == [env.private.id]  # by participant
    for odd in ['"', "*", "NEAR(", "a OR b", "' OR 1=1 --", "\x00", "🙂"]:
        await _json(await env.client.get("/api/recordings/search", params={"q": odd}), 200)
    await _error(await env.client.get("/api/recordings/search"), 400, "bad-query")
    await _error(await env.client.get("/api/recordings/search?q=%20"), 400, "bad-query")
    await _error(await env.client.get("/api/recordings/search", params={"q": "x" * 201}), 400, "bad-query")
    await _error(await env.client.get("/api/recordings", params={"q": "x" * 201}), 400, "bad-query")


BAD_IDS = [
    "xyz", "ABCDEF12", "1234567", "g" * 8, "0" * 33, "..%2F..%2Fetc", "%2e%2e", "0123456789ab%00",
    "..%2F0123456789ab", "0123456789ab%2F..", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "0123456789ab.json",
]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_bad_ids_are_rejected(env: Env, bad: str) -> None:
    for method, tail in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/captions/en.vtt"),
                         ("GET", "/transcript/en"), ("GET", "/media/playback.mp4")]:
        url = URL(f"/api/recordings/{bad}{tail}", encoded=True)
        response = await env.client.request(method, url, json={"title": "x"} if method == "PATCH" else None)
        await _error(response, 400, "bad-id")
    assert (await env.client.get(URL(f"/recordings/{bad}", encoded=True))).status == 400


# ---- edit and delete -----------------------------------------------------------------------------

async def test_patch(env: Env) -> None:
    url = f"/api/recordings/{env.private.id}"
    body = await _json(await env.client.patch(url, json={"title": "  Nuevo título "}), 200)
    assert body["title"] == "Nuevo título"
    body = await _json(await env.client.patch(url, json={"published": True, "title": "Both"}), 200)
    assert body["published"] is True and body["title"] == "Both"
    body = await _json(await env.client.patch(url, json={"published": False}), 200)
    assert body["published"] is False
    assert (await env.archive.get(env.private.id)).title == "Both"  # type: ignore[union-attr]

    await _error(await env.client.patch(url, json={"title": ""}), 400, "bad-title")
    await _error(await env.client.patch(url, json={"title": "x" * 201}), 400, "bad-title")
    await _error(await env.client.patch(url, json={"title": 5}), 400, "bad-title")
    await _error(await env.client.patch(url, json={"published": "yes"}), 400, "bad-published")
    await _error(await env.client.patch(url, json={"status": "ready"}), 400, "bad-request")
    await _error(await env.client.patch(url, json={}), 400, "bad-request")
    await _error(await env.client.patch(url, json=["title"]), 400, "bad-request")
    json_type = {"Content-Type": "application/json"}
    await _error(await env.client.patch(url, data=b"{nope", headers=json_type), 400, "bad-json")
    await _error(await env.client.patch(url, data=b"\xff\xfe", headers=json_type), 400, "bad-json")
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    await _error(await env.client.patch(url, data="title=x", headers=form_type), 415)
    big = b'{"title": "' + b"x" * 20000 + b'"}'
    await _error(await env.client.patch(url, data=big, headers={"Content-Type": "application/json"}), 413, "too-large")
    await _error(await env.client.patch("/api/recordings/0123456789ab", json={"title": "x"}), 404, "not-found")


async def test_delete(env: Env) -> None:
    folder = env.root / env.private.id
    assert folder.is_dir()
    response = await env.client.delete(f"/api/recordings/{env.private.id}")
    assert response.status == 204
    assert not folder.exists()
    await _error(await env.client.get(f"/api/recordings/{env.private.id}"), 404, "not-found")
    await _error(await env.client.delete(f"/api/recordings/{env.private.id}"), 404, "not-found")
    await _error(await env.client.delete(f"/api/recordings/{env.live.id}"), 409, "still-recording")
    assert (env.root / env.live.id).is_dir()


# ---- captions and transcript ---------------------------------------------------------------------

async def test_captions(env: Env) -> None:
    base = f"/api/recordings/{env.ready.id}"
    response = await env.client.get(f"{base}/captions/en.vtt")
    assert response.status == 200 and response.content_type == "text/vtt" and response.charset == "utf-8"
    vtt = await response.text()
    assert vtt.startswith("WEBVTT\n\n")
    assert "00:00:10.000 --> 00:00:13.000\n<v Ana García>The metal workers\n" in vtt
    assert "<v Bob>We stand &lt;together&gt; &amp; strong\n" in vtt
    response = await env.client.get(f"{base}/captions/es.srt")
    assert response.status == 200 and response.content_type == "application/x-subrip"
    assert (await response.text()).startswith(
        "1\n00:00:10,000 --> 00:00:13,000\nAna García: Los trabajadores del metal\n")
    await _error(await env.client.get(f"{base}/captions/de.vtt"), 404, "no-captions")
    await _error(await env.client.get("/api/recordings/0123456789ab/captions/en.vtt"), 404, "not-found")
    for bad in ["EN.vtt", "e.vtt", "english.vtt", "en-.vtt", "en.txt", "en", "..%2Fen.vtt", "en.vtt.vtt",
                "%2e%2e.vtt", "en%00.vtt", "en-toolongtag.vtt"]:
        await _error(await env.client.get(URL(f"{base}/captions/{bad}", encoded=True)), 400, "bad-captions")
    assert (await env.client.get(f"{base}/captions/zh-Hant.vtt")).status == 404  # valid tag, no captions


async def test_transcript(env: Env) -> None:
    base = f"/api/recordings/{env.ready.id}"
    body = await _json(await env.client.get(f"{base}/transcript/en"), 200)
    assert body == {"id": env.ready.id, "lang": "en", "lines": [
        {"start": 10.0, "end": 13.0, "speaker": "Ana García", "text": "The metal workers"},
        {"start": 15.0, "end": 17.5, "speaker": "Bob", "text": "We stand <together> & strong"},
    ]}
    await _error(await env.client.get(f"{base}/transcript/fr"), 404, "no-captions")
    for bad in ["EN", "e", "%2E%2E", "..%2F..%2Fetc", "en%2Fx", "english"]:
        await _error(await env.client.get(URL(f"{base}/transcript/{bad}", encoded=True)), 400, "bad-lang")


# ---- media ---------------------------------------------------------------------------------------

async def test_media_and_ranges(env: Env) -> None:
    url = f"/api/recordings/{env.ready.id}/media/playback.mp4"
    response = await env.client.get(url)
    assert response.status == 200 and response.content_type == "video/mp4"
    assert response.headers.get("Accept-Ranges") == "bytes"
    assert await response.read() == VIDEO

    response = await env.client.get(url, headers={"Range": "bytes=100-199"})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(VIDEO)}"
    assert await response.read() == VIDEO[100:200]
    response = await env.client.get(url, headers={"Range": "bytes=-10"})
    assert response.status == 206 and await response.read() == VIDEO[-10:]
    response = await env.client.get(url, headers={"Range": f"bytes={len(VIDEO) - 5}-"})
    assert response.status == 206 and await response.read() == VIDEO[-5:]
    response = await env.client.get(url, headers={"Range": f"bytes={len(VIDEO) + 10}-"})
    assert response.status == 416

    response = await env.client.get(f"/api/recordings/{env.ready.id}/media/audio.m4a", headers={"Range": "bytes=0-3"})
    assert response.status == 206 and response.content_type == "audio/mp4" and await response.read() == AUDIO[:4]
    head = await env.client.head(url)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(VIDEO))


async def test_media_not_ready_or_missing(env: Env) -> None:
    await _error(await env.client.get(f"/api/recordings/{env.processing.id}/media/playback.mp4"), 404, "not-ready")
    await _error(await env.client.get(f"/api/recordings/{env.live.id}/media/audio.m4a"), 404, "not-ready")
    (env.root / env.private.id / "audio.m4a").unlink()
    await _error(await env.client.get(f"/api/recordings/{env.private.id}/media/audio.m4a"), 404, "not-found")
    (env.root / env.ready.id / "manifest.json").write_text("{}")
    for bad in ["manifest.json", "..%2Fmanifest.json", "tracks%2F01-a-mic.webm", "playback.mp4%00",
                "PLAYBACK.MP4", "%2e%2e", "%2e%2e%2f%2e%2e%2funionhub.sqlite3"]:
        url = URL(f"/api/recordings/{env.ready.id}/media/{bad}", encoded=True)
        await _error(await env.client.get(url), 400, "bad-name")


async def test_traversal_never_leaves_the_archive(env: Env) -> None:
    secret = env.root.parent / "unionhub.sqlite3"
    assert secret.exists()
    for path in [
        "/api/recordings/..%2F..%2Funionhub.sqlite3/media/playback.mp4",
        f"/api/recordings/{env.ready.id}/media/..%2F..%2Funionhub.sqlite3",
        f"/api/recordings/{env.ready.id}/captions/..%2F..%2Funionhub.sqlite3",
        "/api/recordings/%2e%2e/media/playback.mp4",
    ]:
        response = await env.client.get(URL(path, encoded=True))
        assert response.status == 400, path
        assert b"SQLite format" not in await response.read()
    # Literal dot segments (clients resolve them; send them raw): never a file outside the archive.
    host, port = env.client.host, env.client.port
    for path in [f"/api/recordings/{env.ready.id}/media/../../../unionhub.sqlite3",
                 f"/api/recordings/{env.ready.id}/captions/../../../../unionhub.sqlite3",
                 "/recordings/../recordings/../../unionhub.sqlite3"]:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = await reader.read()
        writer.close()
        status = int(answer.split(b" ", 2)[1])
        assert status in (400, 404), (path, answer[:200])
        assert b"SQLite format" not in answer


# ---- host check ----------------------------------------------------------------------------------

@pytest.mark.parametrize("asynchronous", [False, True])
async def test_host_check(tmp_path: Path, aiohttp_client: AiohttpClient, asynchronous: bool) -> None:
    def sync_check(request: web.Request) -> bool:
        return request.headers.get("X-Test-Host") == "yes"

    async def async_check(request: web.Request) -> bool:
        return sync_check(request)

    env = await _make_env(tmp_path, aiohttp_client, async_check if asynchronous else sync_check)
    host = {"X-Test-Host": "yes"}
    visitor = await _json(await env.client.get("/api/recordings"), 200)
    assert visitor["can_manage"] is False
    assert [r["id"] for r in visitor["recordings"]] == [env.processing.id, env.ready.id]
    everyone = await _json(await env.client.get("/api/recordings", headers=host), 200)
    assert everyone["can_manage"] is True and len(everyone["recordings"]) == 4
    hidden = f"/api/recordings/{env.private.id}"
    await _error(await env.client.get(hidden), 404, "not-found")
    await _error(await env.client.get(f"{hidden}/media/playback.mp4"), 404, "not-found")
    assert (await env.client.get(f"/recordings/{env.private.id}")).status == 404
    await _json(await env.client.get(hidden, headers=host), 200)
    await _error(await env.client.patch(hidden, json={"title": "x"}), 403, "forbidden")
    await _error(await env.client.delete(f"/api/recordings/{env.ready.id}"), 403, "forbidden")
    assert (await env.client.delete(hidden, headers=host)).status == 204
    search = await _json(await env.client.get("/api/recordings/search?q=carla"), 200)
    assert search["recordings"] == []


# ---- pages ---------------------------------------------------------------------------------------

class _PageCheck(HTMLParser):
    """Collects what CSP `script-src 'self'; style-src 'self'` would block, and the test ids."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.testids: set[str] = set()
        self.assets: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "style" in a or any(k.startswith("on") for k in a):
            self.inline.append(f"{tag} {a}")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            if not a.get("src"):
                self.inline.append("<script> without src")
            else:
                self.assets.append(a["src"] or "")
        if tag == "link" and a.get("rel") == "stylesheet":
            self.assets.append(a.get("href") or "")
        if a.get("data-testid"):
            self.testids.add(a["data-testid"] or "")


@pytest.mark.parametrize("page,testids", [
    ("recordings.html", {"recording-search", "recording-list"}),
    ("recording.html", {"recording-video", "caption-language-menu", "transcript"}),
])
def test_pages_are_csp_clean(page: str, testids: set[str]) -> None:
    check = _PageCheck()
    check.feed((WEB_CLIENT / page).read_text())
    assert check.inline == []
    assert testids <= check.testids
    for asset in check.assets:
        assert asset.startswith("/static/") and (WEB_CLIENT / asset.removeprefix("/static/")).is_file(), asset


async def test_pages(env: Env) -> None:
    response = await env.client.get("/recordings")
    assert response.status == 200 and response.content_type == "text/html"
    assert 'data-testid="recording-search"' in await response.text()
    response = await env.client.get(f"/recordings/{env.ready.id}")
    assert response.status == 200 and 'data-testid="recording-video"' in await response.text()
    response = await env.client.get("/recordings/0123456789ab")
    assert response.status == 404 and 'data-testid="recording-video"' in await response.text()


# ---- podcast feed ------------------------------------------------------------------------------

async def test_feed(env: Env) -> None:
    response = await env.client.get("/recordings/feed.xml")
    assert response.status == 200 and response.content_type == "application/rss+xml"
    raw = await response.read()
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    rss = ET.fromstring(raw)
    assert rss.tag == "rss" and rss.get("version") == "2.0"
    (channel,) = rss.findall("channel")
    base = str(env.client.make_url("/")).rstrip("/")
    assert channel.findtext("title") == "Union <archive>"
    assert channel.findtext("link") == f"{base}/recordings"
    assert channel.findtext("description")
    assert channel.findtext("language") == "en"
    assert channel.findtext(f"{ITUNES}author") == "unionhub"
    assert channel.findtext(f"{ITUNES}explicit") == "false"
    assert channel.find(f"{ITUNES}image").get("href") == f"{base}/static/cover.png"  # type: ignore[union-attr]

    items = channel.findall("item")
    assert len(items) == 1  # published and ready only
    item = items[0]
    assert item.findtext("title") == 'Asamblea <metal> & "puertos"'
    assert item.findtext("guid") == f"unionhub-recording-{env.ready.id}"
    assert item.find("guid").get("isPermaLink") == "false"  # type: ignore[union-attr]
    assert item.findtext("link") == f"{base}/recordings/{env.ready.id}"
    published = parsedate_to_datetime(item.findtext("pubDate") or "")
    assert published.timestamp() == T0 and re.fullmatch(
        r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT", item.findtext("pubDate") or "")
    assert item.findtext(f"{ITUNES}duration") == "01:02:05"
    enclosure = item.find("enclosure")
    assert enclosure is not None
    assert enclosure.get("type") == "audio/mp4" and enclosure.get("length") == str(len(AUDIO))
    url = enclosure.get("url") or ""
    assert url == f"{base}/api/recordings/{env.ready.id}/media/audio.m4a"
    async with aiohttp.ClientSession() as session, session.get(url) as download:
        assert download.status == 200 and await download.read() == AUDIO

    proxied = await env.client.get(
        "/recordings/feed.xml", headers={"X-Forwarded-Proto": "https", "Host": "hub.example.org"})
    enclosure = ET.fromstring(await proxied.read()).find("channel/item/enclosure")
    assert enclosure is not None
    assert enclosure.get("url") == f"https://hub.example.org/api/recordings/{env.ready.id}/media/audio.m4a"
    await _error(await env.client.get("/recordings/feed.xml", headers={"Host": "evil<x>"}), 400, "bad-host")


async def test_feed_survives_a_missing_file_and_control_characters(env: Env) -> None:
    await env.archive.rename(env.private.id, "bell\u0007 title")  # the archive strips it anyway
    await env.archive.set_published(env.private.id, True)
    (env.root / env.ready.id / "audio.m4a").unlink()
    rss = ET.fromstring(await (await env.client.get("/recordings/feed.xml")).read())
    assert [i.findtext("guid") for i in rss.findall("channel/item")] == [f"unionhub-recording-{env.private.id}"]


# ---- mounted in the hub -------------------------------------------------------------------------

async def test_mounted_in_the_hub(hub: Any) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{hub.url}/recordings") as response:
            assert response.status == 200
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        for asset in ["recordings.js", "recording.js", "recordings.css"]:
            async with session.get(f"{hub.url}/static/{asset}") as response:
                assert response.status == 200, asset
        async with session.get(f"{hub.url}/api/recordings") as response:
            assert response.status == 200 and (await response.json())["recordings"] == []
        async with session.get(f"{hub.url}/recordings/feed.xml") as response:
            assert response.status == 200
            assert ET.fromstring(await response.read()).findall("channel/item") == []
