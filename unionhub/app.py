"""The aiohttp application: web client, Socket.IO signalling and the SFU in one process."""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from captioning import http as captions_http
from captioning.service import CaptionConfig, CaptionService
from captioning.store import CaptionStore
from recordings import http as recordings_http
from recordings import live_http
from recordings.archive import Archive
from recordings.live import LiveManager
from recordings.manager import RecordingManager
from signalling import RoomRegistry, SignallingServer
from signalling import http as signalling_http
from signalling.auth import Security

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
WEB_CLIENT = ROOT / "web_client"
VENDOR = {
    "socket.io.esm.min.js": WEB_CLIENT / "node_modules/socket.io-client/dist/socket.io.esm.min.js",
    "hls.min.js": WEB_CLIENT / "node_modules/hls.js/dist/hls.min.js",
}

SIGNALLING_KEY = web.AppKey("signalling", SignallingServer)

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


STATIC_RE = re.compile(r"[A-Za-z0-9_-]{1,64}\.(js|css|svg|html)")


async def _static(request: web.Request) -> web.StreamResponse:
    """The web client's own files (flat; not node_modules or package.json): names are checked
    before they touch the file system."""
    name = request.match_info["name"]
    path = WEB_CLIENT / name
    if not STATIC_RE.fullmatch(name) or not path.is_file():
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
    if server.captions is not None:
        body["captions"] = {**server.captions.status(), **server.captions.stats()}
    return web.json_response(body)


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:  # aiohttp's own answer is text/plain
        response = _json_error(exc.status, "too-large", "The request body is too large.")
    except web.HTTPNotFound as exc:
        if not request.path.startswith("/api/"):
            _add_security_headers(request, exc)
            raise
        response = _json_error(404, "not-found", "There is no such API endpoint.")
    except web.HTTPException as exc:  # other raised answers get the headers too
        _add_security_headers(request, exc)
        raise
    _add_security_headers(request, response)
    return response


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not request.path.startswith("/socket.io"):
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)


def _add_recordings(app: web.Application, server: SignallingServer, data_dir: Path, auto_record: bool) -> None:
    archive = Archive(data_dir / "unionhub.sqlite3", data_dir / "recordings")
    manager = RecordingManager(
        data_dir / "recordings", server.sfu, archive, server.participant_name,
        server.recording_changed, server.captions, auto_record,
    )
    server.attach_recordings(manager)
    # On an open hub everyone manages the archive (a hub on your own machine or network); with
    # --auth token only hosts do, and others see published recordings only.
    host_check = signalling_http.archive_host_check(server.security) if server.security.token_only else None
    recordings_http.add_routes(app, archive, host_check)
    captions = server.captions
    live = LiveManager(
        data_dir / "live", server.sfu,
        (lambda: captions.languages()) if captions is not None else (lambda: []),
        server.live_changed, manager,
    )
    server.attach_live(live)
    live_http.add_routes(app, live, str(WEB_CLIENT / "live.html"))

    async def _recover(app: web.Application) -> None:
        await manager.recover()

    async def _close_archive(app: web.Application) -> None:
        archive.close()

    app.on_startup.append(_recover)
    app.on_cleanup.append(_close_archive)


def create_app(
    data_dir: Path | None = None,
    sfu_options: dict[str, Any] | None = None,
    max_participants: int = 50,
    max_rooms: int = 200,
    captions: CaptionConfig | None = None,
    recordings: bool = True,
    auto_record: bool = False,
    security: Security | None = None,
) -> web.Application:
    """Build the hub. ``data_dir`` holds SQLite, recordings and models (created if missing).

    ``captions`` turns on live captions (models are loaded in the background after start-up);
    ``recordings`` the archive (unfinished recordings from a crash are recovered at start-up).
    """
    app = web.Application(middlewares=[_security_headers])
    data_dir = data_dir or Path("data")
    data_dir.mkdir(parents=True, exist_ok=True)
    server = SignallingServer(
        RoomRegistry(max_participants, max_rooms), sfu_options=sfu_options, security=security
    )
    server.sio.attach(app)
    signalling_http.add_routes(app, server.security)
    if captions is not None:
        store = CaptionStore(data_dir / "unionhub.sqlite3")
        service = CaptionService(
            captions, server.emit_caption, server.participant_info, server.room_languages, store
        )
        server.attach_captions(service)
        # token hubs keep translation for their meetings (and integrations with the API key)
        translate_key = None
        if server.security.token_only:  # no key configured: nobody outside the meetings translates
            translate_key = server.security.api_key or secrets.token_urlsafe(32)
        captions_http.add_routes(app, service, translate_key)

        async def _start_captions(app: web.Application) -> None:
            service.start()

        async def _close_store(app: web.Application) -> None:
            store.close()

        app.on_startup.append(_start_captions)
        app.on_cleanup.append(_close_store)
    if recordings:
        _add_recordings(app, server, data_dir, auto_record)
    app[SIGNALLING_KEY] = server
    app.router.add_get("/", _index)
    app.router.add_get("/r/{room}", _index)
    app.router.add_get("/vendor/{name}", _vendor)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/static/{name}", _static)

    async def _shutdown(app: web.Application) -> None:
        await server.close()

    app.on_shutdown.append(_shutdown)
    return app
