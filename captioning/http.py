"""LibreTranslate-compatible HTTP API (``POST /translate``, ``GET /languages``).

Existing LibreTranslate clients can point at the hub; translation runs in the same worker
process the captions use.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from .service import CaptionService

CAPTIONS_KEY = web.AppKey("captions", CaptionService)
#: When set, ``/translate`` needs this key (``api_key`` in the body, as LibreTranslate clients
#: send it, or ``Authorization: Bearer``): translation costs CPU the meetings need.
API_KEY = web.AppKey("translate_api_key", str)
MAX_TEXT = 5000

NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French",
    "hi": "Hindi", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "sw": "Swahili", "tr": "Turkish",
    "uk": "Ukrainian", "zh": "Chinese",
}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def languages(request: web.Request) -> web.Response:
    service = request.app[CAPTIONS_KEY]
    langs = sorted({a for a, _ in service.pairs} | {b for _, b in service.pairs})
    out = []
    for code in langs:
        targets = [t for t in langs if t != code and service.can_translate(code, t)]
        out.append({"code": code, "name": NAMES.get(code, code), "targets": targets})
    return web.json_response(out)


async def translate(request: web.Request) -> web.Response:
    service = request.app[CAPTIONS_KEY]
    data: Any
    try:
        if request.content_type == "application/json":
            data = await request.json()
        else:
            data = dict(await request.post())
    except (ValueError, RecursionError):  # RecursionError: "[[[[…"
        return _error(400, "Invalid request: the body is not valid JSON.")
    if not isinstance(data, dict):
        return _error(400, "Invalid request: expected an object with q, source and target.")
    expected = request.app.get(API_KEY)
    if expected:
        header = request.headers.get("Authorization", "")
        given = data.get("api_key") or (header[7:].strip() if header.startswith("Bearer ") else "")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(403, "Invalid API key")
    q, source, target = data.get("q"), data.get("source"), data.get("target")
    if not isinstance(source, str) or not isinstance(target, str):
        return _error(400, "Invalid request: missing source or target language.")
    if source == "auto":
        return _error(400, "Language detection is not supported: give the source language.")
    given_texts: list[Any] = q if isinstance(q, list) else [q]
    texts = [t for t in given_texts if isinstance(t, str)]
    if not texts or len(texts) != len(given_texts):
        return _error(400, "Invalid request: q must be a string or a list of strings.")
    if sum(len(t) for t in texts) > MAX_TEXT:
        return _error(413, f"Text too long (at most {MAX_TEXT} characters).")
    if not service.can_translate(source, target):
        return _error(400, f"{source} → {target} is not available on this server.")
    out = []
    for text in texts:
        result = await service.translate_many(text, source, {target}) if source != target else {target: text}
        if target not in result:
            return _error(503, "Translation is unavailable right now; try again.")
        out.append(result[target])
    return web.json_response({"translatedText": out if isinstance(q, list) else out[0]})


def add_routes(app: web.Application, service: CaptionService, api_key: str | None = None) -> None:
    app[CAPTIONS_KEY] = service
    if api_key:
        app[API_KEY] = api_key
    app.router.add_post("/translate", translate)
    app.router.add_get("/languages", languages)
