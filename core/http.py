"""The one JSON error answer every HTTP module gives."""

from __future__ import annotations

from aiohttp import web


def json_error(status: int, code: str, message: str) -> web.Response:
    """``{"error": {"code", "message"}}`` with ``status``: the body every API client parses."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
