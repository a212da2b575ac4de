"""HTTP API, pages and podcast feed of the recordings archive.

Every path input is checked against a strict pattern before it is used, and files are only
ever looked up by a validated id plus a fixed file name, so no request can reach outside the
archive. Errors are JSON ``{"error": {"code", "message"}}``.

``host_check(request)`` (sync or async) says whether a request may manage the archive. Without
it everyone may (a hub on your own machine); with it, other visitors only see published
recordings and cannot rename, publish or delete.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from core.http import json_error

from .archive import CHANNEL_FILE_RE, MAX_QUERY, MEDIA_FILES, Archive, ArchiveError, Recording, valid_id, valid_lang

logger = logging.getLogger(__name__)

WEB_CLIENT = Path(__file__).resolve().parent.parent / "web_client"
ARCHIVE_KEY = web.AppKey("archive", Archive)
HostCheck = Callable[[web.Request], bool | Awaitable[bool]]

MEDIA_TYPES = {".mp4": "video/mp4", ".m4a": "audio/mp4"}  # by suffix: the floor's and each channel's
CAPTION_TYPES = {"vtt": "text/vtt; charset=utf-8", "srt": "application/x-subrip; charset=utf-8"}
CAPTION_FILE_RE = re.compile(r"(?P<lang>[^./]+)\.(?P<ext>vtt|srt)")
HOST_RE = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
MAX_PATCH_BODY = 16 * 1024
NO_CACHE = {"Cache-Control": "no-cache"}

ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
ATOM_NS = "http://www.w3.org/2005/Atom"
ET.register_namespace("itunes", ITUNES_NS)
ET.register_namespace("atom", ATOM_NS)


@dataclass(frozen=True)
class FeedInfo:
    """Channel metadata of ``/recordings/feed.xml``; ``image`` is an absolute URL or a site path."""

    title: str = "unionhub recordings"
    description: str = "Recorded sessions of the union hub, with captions in every language spoken."
    language: str = "en"
    author: str = "unionhub"
    image: str | None = None


def _bad_id() -> web.Response:
    return json_error(400, "bad-id", "A recording id is 8–32 lowercase hex digits.")


def _not_found() -> web.Response:
    return json_error(404, "not-found", "There is no such recording.")


def _bad_lang() -> web.Response:
    return json_error(400, "bad-lang", "A language is a tag like en, pt or zh-Hant.")


def _clock(seconds: float) -> str:
    total = max(0, int(round(seconds)))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


class RecordingsApi:
    """The request handlers; one instance per application."""

    def __init__(
        self, archive: Archive, host_check: HostCheck | None, feed: FeedInfo, web_root: Path
    ) -> None:
        self.archive = archive
        self.host_check = host_check
        self.feed_info = feed
        self.web_root = web_root

    # -- helpers ---------------------------------------------------------------------------------

    async def is_host(self, request: web.Request) -> bool:
        if self.host_check is None:
            return True
        result = self.host_check(request)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    async def _visible(self, request: web.Request) -> Recording | web.Response:
        """The recording named in the path, or the error response to send instead."""
        rec_id = request.match_info["id"]
        if not valid_id(rec_id):
            return _bad_id()
        rec = await self.archive.get(rec_id)
        if rec is None or (not rec.published and not await self.is_host(request)):
            return _not_found()  # unpublished ones do not exist for visitors
        return rec

    async def _managed(self, request: web.Request) -> Recording | web.Response:
        rec_id = request.match_info["id"]
        if not valid_id(rec_id):
            return _bad_id()
        if not await self.is_host(request):
            return json_error(403, "forbidden", "Only the hub's hosts can change recordings.")
        rec = await self.archive.get(rec_id)
        return _not_found() if rec is None else rec

    @staticmethod
    def _query(request: web.Request) -> str | web.Response | None:
        q = request.query.get("q")
        if q is not None and len(q) > MAX_QUERY:
            return json_error(400, "bad-query", f"A search has at most {MAX_QUERY} characters.")
        return q

    # -- API -------------------------------------------------------------------------------------

    async def list(self, request: web.Request) -> web.Response:
        q = self._query(request)
        if isinstance(q, web.Response):
            return q
        host = await self.is_host(request)
        published_only = request.query.get("published") in ("1", "true") or not host
        if q is not None and q.strip():
            hits = await self.archive.search(q, published_only=published_only)
            return web.json_response(
                {"query": q, "can_manage": host, "recordings": [h.to_json() for h in hits]}, headers=NO_CACHE
            )
        recs = await self.archive.list(published_only=published_only)
        return web.json_response({"can_manage": host, "recordings": [r.to_json() for r in recs]}, headers=NO_CACHE)

    async def search(self, request: web.Request) -> web.Response:
        q = self._query(request)
        if isinstance(q, web.Response):
            return q
        if q is None or not q.strip():
            return json_error(400, "bad-query", "Give the words to search for as ?q=…")
        host = await self.is_host(request)
        hits = await self.archive.search(q, published_only=not host)
        return web.json_response(
            {"query": q, "can_manage": host, "recordings": [h.to_json() for h in hits]}, headers=NO_CACHE
        )

    async def get(self, request: web.Request) -> web.Response:
        rec = await self._visible(request)
        if isinstance(rec, web.Response):
            return rec
        return web.json_response(rec.to_json(), headers=NO_CACHE)

    async def patch(self, request: web.Request) -> web.Response:
        rec = await self._managed(request)
        if isinstance(rec, web.Response):
            return rec
        if request.content_type != "application/json":
            return json_error(415, "bad-content-type", "Send the changes as application/json.")
        if request.content_length is not None and request.content_length > MAX_PATCH_BODY:
            return json_error(413, "too-large", "The request body is too large.")
        try:
            raw = await request.content.read(MAX_PATCH_BODY + 1)
            if len(raw) > MAX_PATCH_BODY:
                return json_error(413, "too-large", "The request body is too large.")
            data: Any = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[…"
            return json_error(400, "bad-json", "The body is not valid JSON.")
        if not isinstance(data, dict) or not data:
            return json_error(400, "bad-request", "Send an object with title and/or published.")
        unknown = set(data) - {"title", "published"}
        if unknown:
            return json_error(400, "bad-request", f"Unknown field(s): {', '.join(sorted(unknown))}.")
        if "published" in data and not isinstance(data["published"], bool):
            return json_error(400, "bad-published", "published must be true or false.")
        try:
            updated: Recording | None = rec
            if "title" in data:
                updated = await self.archive.rename(rec.id, data["title"])
            if "published" in data:
                updated = await self.archive.set_published(rec.id, data["published"])
        except ArchiveError as exc:
            return json_error(400, exc.code, exc.message)
        if updated is None:
            return _not_found()
        logger.info("recording %s updated: %s", rec.id, sorted(data))
        return web.json_response(updated.to_json())

    async def delete(self, request: web.Request) -> web.StreamResponse:
        rec = await self._managed(request)
        if isinstance(rec, web.Response):
            return rec
        if rec.status == "recording":
            return json_error(409, "still-recording", "This session is still being recorded; stop it first.")
        await self.archive.delete(rec.id)
        return web.Response(status=204)

    async def captions(self, request: web.Request) -> web.Response:
        match = CAPTION_FILE_RE.fullmatch(request.match_info["file"])
        if match is None or not valid_lang(match["lang"]):
            return json_error(400, "bad-captions", "Captions are <lang>.vtt or <lang>.srt, e.g. en.vtt.")
        rec = await self._visible(request)
        if isinstance(rec, web.Response):
            return rec
        lang, ext = match["lang"], match["ext"]
        if lang not in rec.languages:
            return json_error(404, "no-captions", f"This recording has no captions in {lang}.")
        text = await (self.archive.webvtt(rec.id, lang) if ext == "vtt" else self.archive.srt(rec.id, lang))
        if text is None:
            return _not_found()
        return web.Response(
            text=text, headers={"Content-Type": CAPTION_TYPES[ext], **NO_CACHE},
        )

    async def transcript(self, request: web.Request) -> web.Response:
        lang = request.match_info["lang"]
        if not valid_lang(lang):
            return _bad_lang()
        rec = await self._visible(request)
        if isinstance(rec, web.Response):
            return rec
        if lang not in rec.languages:
            return json_error(404, "no-captions", f"This recording has no captions in {lang}.")
        lines = await self.archive.transcript(rec.id, lang)
        if lines is None:
            return _not_found()
        return web.json_response({"id": rec.id, "lang": lang, "lines": lines}, headers=NO_CACHE)

    async def media(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        channel = CHANNEL_FILE_RE.fullmatch(name)
        if name not in MEDIA_FILES and channel is None:
            return json_error(400, "bad-name", f"Media is one of {', '.join(MEDIA_FILES)} or a channel's "
                                               "playback-<lang>.mp4 / audio-<lang>.m4a.")
        rec = await self._visible(request)
        if isinstance(rec, web.Response):
            return rec
        if rec.status != "ready":
            detail = f" ({round((rec.progress or 0) * 100)}%)" if rec.status == "processing" else ""
            return json_error(404, "not-ready", f"The recording is not ready: {rec.status}{detail}.")
        if channel is not None and (channel["v"] or channel["a"]) not in rec.channels:
            return json_error(404, "no-channel", "This recording has no such interpretation channel.")
        path = self.archive.media_path(rec.id, name)
        if not path.is_file():
            return json_error(404, "not-found", f"{name} is missing from this recording.")
        # FileResponse answers Range / If-Range requests with 206 (and 416 when unsatisfiable).
        return web.FileResponse(path, headers={"Content-Type": MEDIA_TYPES[path.suffix], **NO_CACHE})

    # -- pages and feed --------------------------------------------------------------------------

    async def library_page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self.web_root / "recordings.html", headers=NO_CACHE)

    async def recording_page(self, request: web.Request) -> web.StreamResponse:
        rec = await self._visible(request)
        if isinstance(rec, web.Response) and rec.status == 400:
            return rec
        status = 404 if isinstance(rec, web.Response) else 200  # the page itself says "not found"
        return web.FileResponse(self.web_root / "recording.html", status=status, headers=NO_CACHE)

    def _base_url(self, request: web.Request) -> str | None:
        host = request.host
        if not HOST_RE.fullmatch(host):
            return None
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        scheme = forwarded if forwarded in ("http", "https") else request.scheme
        return f"{scheme}://{host}"

    async def feed(self, request: web.Request) -> web.Response:
        """RSS 2.0 podcast (iTunes tags) of the published, ready recordings' audio.

        ``?lang=es``: the Spanish interpreter channel's audio, of the recordings that have one."""
        base = self._base_url(request)
        if base is None:
            return json_error(400, "bad-host", "The Host header is not a valid host name.")
        lang = request.query.get("lang")
        if lang is not None and not valid_lang(lang):
            return _bad_lang()
        info = self.feed_info
        recs = [r for r in await self.archive.list(published_only=True)
                if r.status == "ready" and (lang is None or lang in r.channels)]
        audio_name = "audio.m4a" if lang is None else f"audio-{lang}.m4a"
        self_url = f"{base}/recordings/feed.xml" + ("" if lang is None else f"?lang={lang}")

        rss = ET.Element("rss", {"version": "2.0"})
        channel = ET.SubElement(rss, "channel")
        _text(channel, "title", info.title)
        _text(channel, "link", f"{base}/recordings")
        _text(channel, "description", info.description)
        _text(channel, "language", lang or info.language)
        ET.SubElement(channel, f"{{{ATOM_NS}}}link",
                      {"href": self_url, "rel": "self", "type": "application/rss+xml"})
        _text(channel, "lastBuildDate", format_datetime(datetime.now(UTC), usegmt=True))
        _text(channel, "generator", "unionhub")
        _text(channel, f"{{{ITUNES_NS}}}author", info.author)
        _text(channel, f"{{{ITUNES_NS}}}explicit", "false")
        if info.image:
            href = info.image if "://" in info.image else f"{base}/{info.image.lstrip('/')}"
            ET.SubElement(channel, f"{{{ITUNES_NS}}}image", {"href": href})
        for rec in recs:
            audio = self.archive.media_path(rec.id, audio_name)
            try:
                size = audio.stat().st_size
            except OSError:
                continue  # ready but the file is gone: leave it out rather than break podcatchers
            item = ET.SubElement(channel, "item")
            _text(item, "title", rec.title)
            _text(item, "link", f"{base}/recordings/{rec.id}")
            _text(item, "description", _summary(rec))
            guid = ET.SubElement(item, "guid", {"isPermaLink": "false"})
            guid.text = f"unionhub-recording-{rec.id}" + ("" if lang is None else f"-{lang}")
            published = datetime.fromtimestamp(rec.started_at, UTC)
            _text(item, "pubDate", format_datetime(published, usegmt=True))
            ET.SubElement(item, "enclosure", {
                "url": f"{base}/api/recordings/{rec.id}/media/{audio_name}",
                "length": str(size),
                "type": "audio/mp4",
            })
            if rec.duration is not None:
                _text(item, f"{{{ITUNES_NS}}}duration", _clock(rec.duration))
            _text(item, f"{{{ITUNES_NS}}}explicit", "false")
        body = ET.tostring(rss, encoding="unicode", xml_declaration=False)
        return web.Response(
            text='<?xml version="1.0" encoding="UTF-8"?>\n' + body,
            headers={"Content-Type": "application/rss+xml; charset=utf-8", **NO_CACHE},
        )


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    node = ET.SubElement(parent, tag)
    node.text = _xml_safe(text)
    return node


def _xml_safe(text: str) -> str:
    """XML 1.0 cannot carry most control characters even escaped: drop them."""
    return "".join(
        ch for ch in text
        if ch in "\t\n\r" or (0x20 <= ord(ch) < 0xD800 or 0xE000 <= ord(ch) < 0xFFFE or ord(ch) > 0xFFFF)
    )


def _summary(rec: Recording) -> str:
    parts = [f"Recorded in room {rec.room}."]
    if rec.participants:
        parts.append("With " + ", ".join(rec.participants) + ".")
    if rec.languages:
        parts.append("Captions: " + ", ".join(rec.languages) + ".")
    return " ".join(parts)


def add_routes(
    app: web.Application,
    archive: Archive,
    host_check: HostCheck | None = None,
    *,
    feed: FeedInfo | None = None,
    web_root: Path = WEB_CLIENT,
) -> RecordingsApi:
    """Mount the archive's API, pages and feed (order matters: fixed paths before ``{id}``)."""
    api = RecordingsApi(archive, host_check, feed or FeedInfo(), web_root)
    app[ARCHIVE_KEY] = archive
    r = app.router
    r.add_get("/api/recordings", api.list)
    r.add_get("/api/recordings/search", api.search)
    r.add_get("/api/recordings/{id}", api.get)
    r.add_patch("/api/recordings/{id}", api.patch)
    r.add_delete("/api/recordings/{id}", api.delete)
    r.add_get("/api/recordings/{id}/captions/{file}", api.captions)
    r.add_get("/api/recordings/{id}/transcript/{lang}", api.transcript)
    r.add_get("/api/recordings/{id}/media/{name}", api.media)
    r.add_get("/recordings", api.library_page)
    r.add_get("/recordings/feed.xml", api.feed)
    r.add_get("/recordings/{id}", api.recording_page)
    return api
