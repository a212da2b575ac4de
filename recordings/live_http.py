"""HTTP side of live streams: the viewer page, the HLS files and the viewer status API.

HLS files are plain static files (any CDN or nginx can serve the folder instead); only names
that the stream writes are served, so no request can reach outside a stream's folder.
"""

from __future__ import annotations

import re

from aiohttp import web

from core.http import json_error

from .live import LiveManager

LIVE_KEY = web.AppKey("live", LiveManager)
ROOM = re.compile(r"[A-Za-z0-9_-]{1,64}")
HLS_FILE = re.compile(r"(index|video|video_only|audio_floor|(sub|audio)_[a-z]{2,3}(-[A-Za-z0-9]{2,8})?)\.m3u8"
                      r"|init(-[0-9a-f]{8})?\.mp4"
                      r"|seg(-[0-9a-f]{8})?\d{5}\.m4s"
                      r"|sub_[a-z]{2,3}(-[A-Za-z0-9]{2,8})?(-[0-9a-f]{8})?_\d{5}\.vtt"
                      r"|audio_(floor|[a-z]{2,3}(-[A-Za-z0-9]{2,8})?)-[0-9a-f]{8}(_\d{5}\.m4s|\.mp4)"  # channels
                      r"|video_only-[0-9a-f]{8}(_\d{5}\.m4s|\.mp4)")
TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".mp4": "video/mp4", ".m4s": "video/iso.segment",
         ".vtt": "text/vtt"}


#: Playlists change every segment (2 s): a cache in front (nginx, a CDN) may answer from its copy
#: for a second, so a thousand viewers cost the hub about one request per second per playlist.
PLAYLIST_CACHE = "max-age=1"
#: A segment never changes once listed: its name carries the stream's unique prefix.
SEGMENT_CACHE = f"public, max-age={24 * 3600}, immutable"
#: A name without the prefix could be reused by the next stream of the room.
UNPREFIXED_CACHE = "max-age=60"
PREFIXED = re.compile(r"init-[0-9a-f]{8}\.mp4|seg-[0-9a-f]{8}\d{5}\.m4s"
                      r"|sub_[a-z]{2,3}(-[A-Za-z0-9]{2,8})?-[0-9a-f]{8}_\d{5}\.vtt"
                      r"|(audio_(floor|[a-z]{2,3}(-[A-Za-z0-9]{2,8})?)|video_only)-[0-9a-f]{8}(_\d{5}\.m4s|\.mp4)")


def cache_control(name: str) -> str:
    """How long caches may keep an HLS file (issue #13: many viewers behind a caching proxy)."""
    if name.endswith(".m3u8"):
        return PLAYLIST_CACHE
    return SEGMENT_CACHE if PREFIXED.fullmatch(name) else UNPREFIXED_CACHE


def add_routes(app: web.Application, live: LiveManager, page: str) -> None:
    app[LIVE_KEY] = live

    async def viewer_page(request: web.Request) -> web.StreamResponse:
        if not ROOM.fullmatch(request.match_info["room"]):
            raise web.HTTPNotFound()
        return web.FileResponse(page, headers={"Cache-Control": "no-cache"})

    async def status(request: web.Request) -> web.Response:
        room = request.match_info["room"]
        if not ROOM.fullmatch(room):
            return json_error(404, "bad-room", "No such room.")
        return web.json_response(live.status(room, request.query.get("viewer")))

    async def hls(request: web.Request) -> web.StreamResponse:
        room, name = request.match_info["room"], request.match_info["file"]
        if not ROOM.fullmatch(room) or not HLS_FILE.fullmatch(name):
            return json_error(404, "not-found", "No such file.")
        path = live.folder(room) / name
        if not path.is_file():
            return json_error(404, "not-found", "No such file (the stream may not have started).")
        suffix = path.suffix
        return web.FileResponse(path, headers={"Content-Type": TYPES[suffix], "Cache-Control": cache_control(name)})

    app.router.add_get("/live/{room}", viewer_page)
    app.router.add_get("/live/{room}/hls/{file}", hls)
    app.router.add_get("/api/live/{room}", status)
