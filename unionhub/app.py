"""The aiohttp application: web client, Socket.IO signalling and the SFU in one process."""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from captioning import http as captions_http
from captioning.feature import CaptionsFeature
from captioning.service import CaptionConfig
from captioning.store import CaptionStore
from cluster import ClusterConfig, ClusterNode
from cluster.node import Unavailable
from core.database import Database
from core.http import json_error
from meetings import signin as meetings_signin
from meetings.feature import TwinningFeature
from meetings.service import RoomRecordings
from meetings.signin import SigninConfig
from recordings import http as recordings_http
from recordings import live_http
from recordings.archive import Archive
from recordings.feature import LiveFeature, RecordingFeature
from signalling import MemoryRoomStore, SignallingServer, validation
from signalling import http as signalling_http
from signalling.auth import Security

from . import metrics

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
WEB_CLIENT = ROOT / "web_client"
VENDOR = {
    "socket.io.esm.min.js": WEB_CLIENT / "node_modules/socket.io-client/dist/socket.io.esm.min.js",
    "hls.min.js": WEB_CLIENT / "node_modules/hls.js/dist/hls.min.js",
    "axe.min.js": WEB_CLIENT / "node_modules/axe-core/axe.min.js",  # accessibility checks (tests)
}

SIGNALLING_KEY = web.AppKey("signalling", SignallingServer)
#: The features this hub runs, for start-up, tests and monitoring (absent when turned off).
CAPTIONS_KEY = web.AppKey("captions", CaptionsFeature)
RECORDINGS_KEY = web.AppKey("recordings", RecordingFeature)
LIVE_KEY = web.AppKey("live", LiveFeature)
ARCHIVE_KEY = web.AppKey("archive", Archive)
CLUSTER_KEY = web.AppKey("cluster", ClusterNode)
TWINNING_KEY = web.AppKey("twinning", TwinningFeature)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    # Only this origin may ask for camera, microphone and screen; nothing else is needed.
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


async def _index(request: web.Request) -> web.StreamResponse:
    response = web.FileResponse(WEB_CLIENT / "index.html", headers={"Cache-Control": "no-cache"})
    signalling_http.remember_host_link(request, response, request.app[SIGNALLING_KEY].security)
    return response


async def _room_page(request: web.Request) -> web.StreamResponse:
    """``/r/<room>``: the call page, from the node that owns the room (in a cluster, a redirect
    to the owner's public URL; the query, e.g. a signed link, goes along)."""
    node = request.app.get(CLUSTER_KEY)
    room = request.match_info["room"]
    if node is not None and validation.ROOM_RE.fullmatch(room):
        try:
            location = await node.location(room, dict(request.query))
        except Unavailable as exc:
            response = web.Response(status=503, text=exc.message, headers={"Retry-After": "5"})
            return response
        if location is not None:
            raise web.HTTPTemporaryRedirect(location)
    return await _index(request)


STATIC_RE = re.compile(r"[A-Za-z0-9_-]{1,64}\.(js|css|svg|html)")


async def _static(request: web.Request) -> web.StreamResponse:
    """The web client's own files (flat; not node_modules or package.json): names are checked
    before they touch the file system."""
    name = request.match_info["name"]
    path = WEB_CLIENT / name
    if not STATIC_RE.fullmatch(name) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


LOCALE_RE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?\.json")


async def _locale(request: web.Request) -> web.StreamResponse:
    """A message catalogue of the web client (web_client/locales/<locale>.json, i18n.js)."""
    name = request.match_info["name"]
    path = WEB_CLIENT / "locales" / name
    if not LOCALE_RE.fullmatch(name) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


async def _vendor(request: web.Request) -> web.StreamResponse:
    path = VENDOR.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    if not path.exists():
        raise web.HTTPServiceUnavailable(
            text="web client dependencies are missing: run `make setup` (npm ci in web_client/)"
        )
    return web.FileResponse(path)


async def _health(request: web.Request) -> web.Response:
    server = request.app[SIGNALLING_KEY]
    body: dict[str, Any] = {"status": "ok", **server.sfu.stats()}
    for feature in server.features:
        stats = feature.stats()
        if stats:
            body[feature.name] = stats
    return web.json_response(body)


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:  # aiohttp's own answer is text/plain
        if request.path == "/translate":  # LibreTranslate's clients read {"error": "<message>"}
            response = web.json_response({"error": "The request body is too large."}, status=exc.status)
        else:
            response = json_error(exc.status, "too-large", "The request body is too large.")
    except web.HTTPNotFound as exc:
        if not request.path.startswith("/api/"):
            _add_security_headers(request, exc)
            raise
        response = json_error(404, "not-found", "There is no such API endpoint.")
    except web.HTTPException as exc:  # other raised answers get the headers too
        _add_security_headers(request, exc)
        raise
    _add_security_headers(request, response)
    return response


LIVE_PAGE_RE = re.compile(r"/live/([A-Za-z0-9_-]{1,64})")
#: The cookie the front proxy routes a live stream's HLS files on (their URLs are relative to the
#: playlist, so they cannot carry ``?node=``): scoped to the room's live folder.
NODE_COOKIE = "uh_node"


@web.middleware
async def _cluster_live(request: web.Request, handler: Any) -> web.StreamResponse:
    """Behind a front proxy, a live page names the node whose HLS it plays (``?node=``, and a
    cookie for the playlists' relative URLs)."""
    node = request.app.get(CLUSTER_KEY)
    found = LIVE_PAGE_RE.fullmatch(request.path) if node is not None and node.config.front else None
    if node is None or found is None or request.method != "GET":
        return await handler(request)
    room = found.group(1)
    location = await node.viewer_location(room, dict(request.query))
    if location is not None:
        raise web.HTTPTemporaryRedirect(location)
    response = await handler(request)
    named = request.query.get("node")
    if named is not None and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", named):
        response.set_cookie(NODE_COOKIE, named, path=f"/live/{room}/", samesite="Lax", httponly=True)
    return response


def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not request.path.startswith("/socket.io"):
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)


def _add_captions(
    app: web.Application, server: SignallingServer, config: CaptionConfig, store: CaptionStore
) -> CaptionsFeature:
    captions = CaptionsFeature(server, config, store)
    server.add(captions)
    app[CAPTIONS_KEY] = captions
    # token hubs keep translation for their meetings (and integrations with the API key)
    translate_key = None
    if server.security.token_only:  # no key configured: nobody outside the meetings translates
        translate_key = server.security.api_key or secrets.token_urlsafe(32)
    captions_http.add_routes(app, captions.service, translate_key)

    async def _start_captions(app: web.Application) -> None:
        captions.service.start()

    app.on_startup.append(_start_captions)
    return captions


def _add_recordings(
    app: web.Application, server: SignallingServer, data_dir: Path, archive: Archive,
    captions: CaptionsFeature | None, auto_record: bool,
) -> RecordingFeature:
    recordings = RecordingFeature(
        server, data_dir / "recordings", archive, captions.service if captions else None, auto_record
    )
    server.add(recordings)
    app[RECORDINGS_KEY] = recordings
    app[ARCHIVE_KEY] = archive
    # On an open hub everyone manages the archive (a hub on your own machine or network); with
    # --auth token only hosts do, and others see published recordings only.
    host_check = signalling_http.archive_host_check(server.security) if server.security.token_only else None
    recordings_http.add_routes(app, archive, host_check)

    async def _recover(app: web.Application) -> None:
        await recordings.manager.recover()

    app.on_startup.append(_recover)
    return recordings


def _add_live(
    app: web.Application, server: SignallingServer, data_dir: Path, captions: CaptionsFeature | None,
    recordings: RecordingFeature | None,
) -> None:
    """Live streams, archived as recordings when recordings are on (and only streamed if not)."""
    languages = captions.service.languages if captions is not None else None
    live = LiveFeature(server, data_dir / "live", languages, recordings)
    server.add(live)
    app[LIVE_KEY] = live
    live_http.add_routes(app, live.manager, str(WEB_CLIENT / "live.html"))


def _room_recordings(archive: Archive) -> RoomRecordings:
    """The ready recordings of a room, for a twinning pair's page."""

    async def found(room: str) -> list[dict[str, Any]]:
        return [{"id": r.id, "title": r.title, "started_at": r.started_at, "duration": r.duration,
                 "languages": r.languages, "url": f"/recordings/{r.id}"}
                for r in await archive.list() if r.room == room and r.status == "ready"]

    return found


def create_app(
    data_dir: Path | None = None,
    sfu_options: dict[str, Any] | None = None,
    max_participants: int = 50,
    max_rooms: int = 200,
    captions: CaptionConfig | None = None,
    recordings: bool = True,
    auto_record: bool = False,
    live: bool = True,
    security: Security | None = None,
    cluster: ClusterConfig | None = None,
    signin: SigninConfig | None = None,
) -> web.Application:
    """Build the hub. ``data_dir`` holds SQLite, recordings and models (created if missing).

    ``captions`` turns on live captions (models are loaded in the background after start-up);
    ``recordings`` the archive (unfinished recordings from a crash are recovered at start-up);
    ``live`` live streams (archived as recordings when ``recordings`` is on); ``cluster``
    makes this hub a node of a Redis cluster (``cluster/``; None: one process, no Redis);
    ``signin`` the identity providers and SMTP relay of /signin (None: from the environment).
    """
    app = web.Application(middlewares=[_security_headers, _cluster_live])
    data_dir = data_dir or Path("data")
    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(data_dir / "unionhub.sqlite3")  # captions and recordings share it
    node = ClusterNode(cluster) if cluster is not None else None
    server = SignallingServer(
        MemoryRoomStore(max_participants, max_rooms), sfu_options=sfu_options, security=security,
        client_manager=node.client_manager() if node is not None else None,
    )
    if node is not None:
        node.bind(server)  # the first feature: it decides where a room lives before anyone joins
        app[CLUSTER_KEY] = node

        async def _join_cluster(app: web.Application) -> None:
            await node.start()

        app.on_startup.append(_join_cluster)

        async def _drain(app: web.Application) -> None:
            await node.drain()  # (before the server closes: rooms move to other nodes first)

        app.on_shutdown.append(_drain)
    server.sio.attach(app)
    signalling_http.add_routes(app, server.security)
    feature_captions = None
    if captions is not None:
        feature_captions = _add_captions(app, server, captions, CaptionStore(database))
    feature_recordings = None
    archive: Archive | None = None
    if recordings:
        archive = Archive(database, data_dir / "recordings")
        feature_recordings = _add_recordings(app, server, data_dir, archive, feature_captions, auto_record)
    if live:
        _add_live(app, server, data_dir, feature_captions, feature_recordings)
    app[SIGNALLING_KEY] = server
    meetings_signin.add_routes(app, database, signin or SigninConfig.from_env(os.environ), WEB_CLIENT)
    # twinning pairs and scheduled sessions: their e-mails go through sign-in's SMTP relay
    twinning = TwinningFeature(database, server, app.get(meetings_signin.MAILER_KEY), data_dir / "documents")
    twinning.install(app, WEB_CLIENT / "twinning.html")
    app[TWINNING_KEY] = twinning
    if archive is not None:
        twinning.twinnings.recordings = _room_recordings(archive)  # a pair's past sessions link theirs
    metrics.add_routes(app, server)  # GET /metrics (Prometheus), with the API key when one is set
    app.router.add_get("/", _index)
    app.router.add_get("/r/{room}", _room_page)
    app.router.add_get("/vendor/{name}", _vendor)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/static/locales/{name}", _locale)

    async def _shutdown(app: web.Application) -> None:
        await server.close()

    app.on_shutdown.append(_shutdown)

    async def _close_database(app: web.Application) -> None:
        database.close()  # on_cleanup runs after on_shutdown: the server no longer queries it

    app.on_cleanup.append(_close_database)
    return app
