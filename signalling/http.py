"""REST for integrations: ``POST /api/tokens`` mints signed join links (LiveKit/Jitsi style).

The caller proves itself with ``Authorization: Bearer <UNIONHUB_API_KEY>``; the JWT secret never
leaves the server.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from core.http import json_error

from .auth import Security, api_key_matches, join_url
from .errors import SignallingError
from .vocabulary import LINK_ROLES

logger = logging.getLogger(__name__)

MAX_BODY = 4096
#: Cookie set when a host opens a signed link, so the archive pages know them.
TOKEN_COOKIE = "unionhub_token"


def archive_host_check(security: Security) -> Callable[[web.Request], bool]:
    """Who manages the recordings archive on a ``--auth token`` hub: the API key, or a host link
    (``Authorization: Bearer <jwt>`` or the cookie the call page's link left). Everyone else sees
    published recordings only."""

    def check(request: web.Request) -> bool:
        header = request.headers.get("Authorization")
        if api_key_matches(security.api_key, header):
            return True
        if security.signer is None:
            return False
        token = header[7:].strip() if header and header.startswith("Bearer ") else request.cookies.get(TOKEN_COOKIE)
        return security.signer.host_of_any_room(token)

    return check


def remember_host_link(request: web.Request, response: web.StreamResponse, security: Security) -> None:
    """A host who opens their signed link also manages the archive from this browser."""
    token = request.query.get("token")
    if security.signer is not None and security.signer.host_of_any_room(token):
        response.set_cookie(TOKEN_COOKIE, token or "", httponly=True, samesite="Strict",
                            secure=request.secure, max_age=12 * 3600, path="/")


def add_routes(app: web.Application, security: Security) -> None:
    async def create_token(request: web.Request) -> web.Response:
        if security.signer is None or not security.api_key:
            return json_error(404, "not-available",
                          "Signed join links are turned off: set UNIONHUB_JWT_SECRET and UNIONHUB_API_KEY.")
        if not api_key_matches(security.api_key, request.headers.get("Authorization")):
            return json_error(401, "unauthorized", "Send 'Authorization: Bearer <API key>'.")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return json_error(413, "too-large", f"The request body is larger than {MAX_BODY} bytes.")
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return json_error(413, "too-large", f"The request body is larger than {MAX_BODY} bytes.")
        try:
            body: Any = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[…"
            return json_error(400, "bad-request", "The body must be JSON.")
        if not isinstance(body, dict):
            return json_error(400, "bad-request", "The body must be a JSON object {room, role, name, ttl, lang}.")
        role = body.get("role", "speaker")
        ttl = body.get("ttl", 3600)
        lang = body.get("lang")
        if role not in LINK_ROLES:
            return json_error(400, "bad-request", f"'role' must be one of: {', '.join(LINK_ROLES)}.")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
            return json_error(400, "bad-request", "'ttl' must be a number of seconds.")
        if lang is not None and not isinstance(lang, str):
            return json_error(400, "bad-lang", "'lang' must be a language code.")
        try:
            token = security.signer.create(body.get("room"), role, body.get("name"), float(ttl), lang)
        except SignallingError as exc:
            return json_error(400, exc.code, exc.message)
        except (ValueError, TypeError) as exc:
            return json_error(400, "bad-request", str(exc))
        base = f"{request.scheme}://{request.host}"
        logger.info("token created for room %s (%s)", body.get("room"), role)
        return web.json_response(
            {"token": token, "url": join_url(base, body["room"], token), "expires": int(time.time() + ttl)},
            headers={"Cache-Control": "no-store"},
        )

    app.router.add_post("/api/tokens", create_token)
