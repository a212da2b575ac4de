"""HTTPS served by the hub itself (``unionhub serve --tls-cert F --tls-key F``), for small installs.

A TLS proxy in front (nginx, Caddy: docs/DEPLOYMENT.md) is the other way and needs none of this.
One thing the hub must add when it terminates TLS itself: engine.io's aiohttp driver takes the
request's scheme from ``X-Forwarded-Proto`` only (default ``http``), so its same-origin check
compares a browser's ``Origin: https://host`` with ``http://host`` and refuses the websocket.
:func:`enable` tells it the truth on TLS connections.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context (None without ``cert`` and ``key``); ValueError, OSError or
    ssl.SSLError for a half or unreadable configuration."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ValueError("--tls-cert and --tls-key go together")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # a server's: TLS 1.2+, no client certificates
    ctx.load_cert_chain(cert, key)
    return ctx


@web.middleware
async def _socket_io_scheme(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.secure and request.path.startswith("/socket.io") and "X-Forwarded-Proto" not in request.headers:
        request = request.clone(headers={**request.headers, "X-Forwarded-Proto": "https"})
    return await handler(request)


def enable(app: web.Application) -> None:
    """Let Socket.IO accept its own page's websocket over TLS (call before the app starts)."""
    app.middlewares.append(_socket_io_scheme)
