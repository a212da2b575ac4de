"""Property-based fuzzing of every REST endpoint (issue #6); the Socket.IO events are fuzzed by
tests/test_fuzz.py, and both share tests/fuzzkit.py.

One real hub (aiohttp + Socket.IO + SFU, captions configured without models, recordings and live
streams on, signed join links and an API key on when the server supports them) serves the whole
module, in an event loop of this module's own, with a recording being recorded and a ready,
published one seeded. Hypothesis drives it, derandomized so every run is the same run.

What a user would notice is asserted, for every generated case (any route and method, hostile
path parameters, queries, headers and bodies):

- the server never fails: no 5xx, no ERROR log record (an unhandled exception in a handler, a
  background task or the HTTP server);
- REST errors are 4xx with a JSON ``{"error": {"code", "message"}}`` body (``/translate`` answers
  LibreTranslate's ``{"error": "<message>"}``);
- the hub still works afterwards: a fresh pair of clients joins a room, sees each other and chats.

The endpoints come from the app's router, so new routes are fuzzed without touching this file, and
a test checks that no registered route was missed.

Cases the fuzz found (500s, plain-text errors) are kept as regression tests at the end. The module
prints how many cases ran. ``UNIONHUB_FUZZ_SCALE=10`` multiplies the number of cases for a deeper run.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, note
from hypothesis import strategies as st
from yarl import URL

from fuzzkit import (
    API_KEY,
    CASES,
    HTTP_TIMEOUT,
    LANG_OK,
    OBSERVATIONS,
    ROOM_OK,
    ROUTES_HIT,
    SURROGATES,
    TEXT,
    Fuzz,
    _seed_archive,
    check_logs,
    check_state_intact,
    examples,
    fuzz_hub,
    huge,
    json_values,
    valid_or,
)


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Fuzz]:
    """This module's hub (fuzzkit.fuzz_hub); its counters are printed when the module ends."""
    yield from fuzz_hub(tmp_path_factory, request)


# -- REST ------------------------------------------------------------------------------------------

#: Routes whose errors follow the hub's REST convention {"error": {"code", "message"}}.
def is_api(template: str) -> bool:
    return template.startswith("/api/") or template in ("/translate", "/languages", "/healthz")


#: Endpoints that answer errors in another documented shape: /translate speaks LibreTranslate's
#: API (``{"error": "<message>"}``), so that LibreTranslate clients work against the hub.
KNOWN_ERROR_SHAPES = {
    "/translate": "LibreTranslate-compatible {'error': '<message>'}",
}


@dataclass(frozen=True)
class RouteCase:
    method: str
    template: str  # formatter, path or static prefix
    params: tuple[str, ...]
    static: bool = False

    def __repr__(self) -> str:
        return f"{self.method} {self.template}"


def app_routes(app: web.Application) -> list[RouteCase]:
    out: list[RouteCase] = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None:
            continue
        info = resource.get_info()
        methods = [route.method] if route.method != "*" else ["GET", "POST", "PUT", "PATCH", "DELETE"]
        for method in methods:
            if "formatter" in info:
                out.append(RouteCase(method, info["formatter"], tuple(re.findall(r"{(\w+)}", info["formatter"]))))
            elif "prefix" in info:
                out.append(RouteCase(method, info["prefix"], ("filename",), static=True))
            else:
                out.append(RouteCase(method, info["path"], ()))
    return out


GOOD_PARAMS = {
    "id": ["000000000000", "deadbeef", "0123456789abcdef0123456789abcdef"],
    "room": ["fuzzroom", "fz-1", "a" * 64],
    "file": ["index.m3u8", "video.m3u8", "en.vtt", "en.srt", "init-0123abcd.mp4", "seg-0123abcd00001.m4s",
             "sub_en.m3u8", "pt-BR.vtt"],
    "lang": ["en", "es", "pt-BR"],
    "name": ["playback.mp4", "audio.m4a", "socket.io.esm.min.js", "hls.min.js"],
    "filename": ["app.js", "index.html", "style.css", "live.html", "node_modules/hls.js/package.json"],
}
HOSTILE_PARAMS = st.one_of(
    st.text(min_size=1, max_size=40),
    st.text(st.characters(codec=None), min_size=1, max_size=10),
    SURROGATES,
    st.sampled_from(["..", ".", "../..", "..%2f..%2fetc%2fpasswd", "%2e%2e", "%00", "\x00", "a\nb", " ", "~",
                     "index.m3u8/../../../unionhub.sqlite3", "....//", "%ff%fe", "con", "aux.vtt",
                     "en.vtt\x00.png", "😀", "A" * 300, "0" * 33, "0" * 7, "DEADBEEF0000"]),
)


def param_values(fuzz: Fuzz, name: str) -> st.SearchStrategy[str]:
    good = list(GOOD_PARAMS.get(name, ["x"]))
    if name == "id":
        good += [REC_LIVE, REC_READY] * 3  # the seeded recordings, whatever their ids are now
    return st.one_of(st.sampled_from(good), st.sampled_from(good), HOSTILE_PARAMS)


REC_LIVE, REC_READY = "<recording being recorded>", "<ready recording>"


QUERY_KEYS = st.sampled_from(["q", "published", "viewer", "EIO", "transport", "sid", "t", "lang", "room", "format"])
QUERY = st.one_of(
    st.just(""),
    st.dictionaries(st.one_of(QUERY_KEYS, st.text(max_size=8)),
                    st.one_of(st.text(max_size=20), st.sampled_from(["1", "true", "4", "polling", "websocket", ""]),
                              huge(5_000), SURROGATES),
                    max_size=4).map(lambda d: urllib.parse.urlencode(d, errors="surrogatepass")),
    st.sampled_from(["q", "q=%ff%fe", "q=%zz", "=&&=", "q=1&q=2", "viewer=" + "v" * 3000, "a[b]=c", "%00=%00",
                     "q=" + "a" * 300, "published=1&q=%E2%80%AE"]),
)
CONTENT_TYPES = st.sampled_from([
    None, "application/json", "application/json; charset=latin-1", "text/plain", "application/octet-stream",
    "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=x",
    "application/json;;", "*/*", "application/xml",
])
BODY_FIELDS = {
    "title": valid_or(st.sampled_from(["New title", "", " ", "t" * 500])),
    "published": valid_or(st.booleans()),
    "q": st.one_of(TEXT, st.lists(TEXT, max_size=3)),
    "source": valid_or(LANG_OK), "target": valid_or(LANG_OK), "format": st.sampled_from(["text", "html", 1]),
    "room": valid_or(ROOM_OK), "role": valid_or(st.sampled_from(["host", "speaker", "viewer", "root"])),
    "name": valid_or(st.sampled_from(["Ana", "  ", "n" * 65])),
    "ttl": valid_or(st.sampled_from([1, 60, 3600, 0, -1, 10**12, 1.5, float("inf")])),
    "lang": valid_or(LANG_OK),
}


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, default=lambda o: base64.b64encode(o).decode() if isinstance(o, bytes) else repr(o)
                      ).encode("utf-8", "surrogatepass")


BODIES = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional=BODY_FIELDS).map(_json_bytes),
    st.fixed_dictionaries({}, optional=BODY_FIELDS).map(_json_bytes),
    json_values().map(_json_bytes),
    st.integers(100, 20_000).map(lambda d: b'{"q":' * d + b"1" + b"}" * d),
    st.integers(100, 50_000).map(lambda d: b"[" * d),
    st.binary(max_size=200),
    st.sampled_from([b"", b"null", b"{", b'{"title": "\xff"}', b"\xef\xbb\xbf{}", b"q=hi&source=en&target=es",
                     b"--x\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nhi\r\n--x--\r\n", b"--x\r\n",
                     b'{"title": "a", "title": 1}', b"1e99999", b'"\\ud800"']),
    st.integers(17_000, 2_000_000).map(lambda n: b'{"title": "' + b"a" * n + b'"}'),
)


@examples(1500)  # enough that every route is drawn (test_every_route_was_fuzzed)
@given(data=st.data())
def test_any_request_to_any_route(fuzz: Fuzz, data: st.DataObject) -> None:
    """Every registered route and method, hostile path params, queries, headers and bodies:
    never a 5xx; API errors are 4xx JSON {"error": {"code", "message"}}."""
    routes = app_routes(fuzz.hub.app)
    api = [r for r in routes if is_api(r.template) and r.method != "HEAD"]
    route = data.draw(st.one_of(st.sampled_from(routes), st.sampled_from(api)), label="route")
    values = {p: data.draw(param_values(fuzz, p), label=p) for p in route.params}
    query = data.draw(QUERY, label="query")
    body = data.draw(BODIES, label="body") if route.method not in ("GET", "HEAD", "OPTIONS") or data.draw(
        st.integers(0, 9), label="body on GET?") == 0 else None
    content_type = data.draw(st.one_of(st.just("application/json"), CONTENT_TYPES), label="content-type")
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    auth = data.draw(st.sampled_from([None, f"Bearer {API_KEY}", f"Bearer {API_KEY}", f"Bearer {API_KEY}",
                                      "Bearer wrong", "Basic Zm9vOmJhcg==", "Bearer",
                                      f"bearer {API_KEY}", f"Bearer {API_KEY} x"]), label="authorization")
    if auth is not None:
        headers["Authorization"] = auth
    extra = data.draw(st.sampled_from([{}, {"Range": "bytes=0-10"}, {"Range": "bytes=9999999-"},
                                       {"Range": "bytes=5-1"}, {"Range": "lines=1-2"}, {"X-Forwarded-Proto": "gopher"},
                                       {"Host": "evil.example:99999"}, {"Host": "[::1"}, {"If-Range": "x"},
                                       {"Accept-Encoding": "br, gzip;q=2"}]), label="headers")
    headers.update(extra)
    CASES["rest"] += 1
    ROUTES_HIT[repr(route)] += 1

    def encode(value: str, static: bool) -> str:
        if value in ("..", ".") or ("%" in value and re.fullmatch(r"[\x21-\x7e]+", value)):
            return value  # already encoded / dot segments as such
        raw = value.encode("utf-8", "surrogatepass")
        return urllib.parse.quote_from_bytes(raw, safe="/" if static else "")

    if "id" in values and values["id"] in (REC_LIVE, REC_READY):
        fuzz.run(_seed_archive(fuzz, keep=True))  # a DELETE may have removed it: same role, new id
        values["id"] = fuzz.recording_ids[0 if values["id"] == REC_LIVE else 1]
    if route.static:
        path = route.template.rstrip("/") + "/" + encode(values["filename"], True)
    else:
        path = route.template
        for p, v in values.items():
            path = path.replace("{" + p + "}", encode(v, False))
    fuzz_id = str(fuzz.next_id())
    headers["X-Fuzz-Id"] = fuzz_id
    url = URL(fuzz.hub.url + path + ("?" + query if query else ""), encoded=True)
    note(f"{route.method} {url} headers={headers} body={body[:300] if body else body!r}")

    async def case() -> None:
        if fuzz.session is None:
            fuzz.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT))
        try:
            async with fuzz.session.request(route.method, url, headers=headers, data=body,
                                            allow_redirects=False) as response:
                status = response.status
                content = await response.read()
                response_type = response.headers.get("Content-Type", "")
        except aiohttp.ClientResponseError as exc:
            # aiohttp's HTTP parser refused the request (e.g. a request line over 8190 bytes) with a
            # 400 the client cannot parse cleanly; the hub never saw it
            assert exc.status == 400 and fuzz_id not in fuzz.routes_seen, f"{route}: bad response {exc.status}"
            OBSERVATIONS.setdefault("HTTP parser 400", f"e.g. {route.method} with a {len(str(url))}-byte URL")
            check_logs(fuzz, f"{route.method} {str(url)[:200]}", library_ok=True)
            return
        served_by = fuzz.routes_seen.pop(fuzz_id, None)
        assert status < 500, f"{route.method} {url}: {status} {content[:500]!r}"
        check_logs(fuzz, f"{route.method} {url}", library_ok=True)
        if not (400 <= status < 500) or route.method == "HEAD" or served_by is None:
            return
        if served_by == "" and path.startswith("/api/"):
            OBSERVATIONS.setdefault(
                "unmatched /api/ URLs", f"answered by aiohttp's router in text/plain, e.g. {route.method} "
                f"{str(url)[:80]} → {status} {content[:40]!r}")
            return
        if not is_api(served_by):
            return
        if status == 416 and "/media/" in served_by:  # HTTP range semantics of a media file, no body
            return
        if served_by in KNOWN_ERROR_SHAPES:
            body_json = json.loads(content)
            assert isinstance(body_json.get("error"), str) and body_json["error"], content
            return
        assert response_type.startswith("application/json"), (
            f"{route.method} {url}: {status} error is {response_type!r}, not JSON: {content[:300]!r}")
        error = json.loads(content).get("error")
        assert isinstance(error, dict), f"{route.method} {url}: {status} {content[:300]!r}"
        assert isinstance(error.get("code"), str) and error["code"], content
        assert isinstance(error.get("message"), str) and error["message"], content

    fuzz.run(case())


def test_every_route_was_fuzzed(fuzz: Fuzz) -> None:
    """(Runs after the REST fuzz.) No registered route was missed by the generator."""
    missed = [repr(r) for r in app_routes(fuzz.hub.app) if ROUTES_HIT[repr(r)] == 0]
    if CASES["rest"] >= 200:
        assert missed == []


# -- cases found by the fuzz (issue #6), fixed: kept as regression tests ------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        pytest.param("PATCH", "/api/recordings/{ready}", b"[" * 2000, "application/json",
                     id="patch-recording-deep-json"),
        pytest.param("POST", "/api/tokens", b"[" * 2000, "application/json", id="tokens-deep-json"),
        pytest.param("POST", "/translate", b"[" * 2000, "application/json", id="translate-deep-json"),
        pytest.param("POST", "/translate", b"a" * (1024**2 + 1), "application/json", id="translate-over-1MiB"),
        pytest.param("GET", "/static/" + "A" * 256, None, None, id="static-name-too-long"),
    ],
)
def test_rest_errors_are_4xx_json(fuzz: Fuzz, method: str, path: str, body: bytes | None, content_type: str | None
                                  ) -> None:
    """Cases the fuzz found answering 500 or plain text: now 4xx with {"error": {"code", "message"}}."""
    CASES["pinned"] += 1

    async def case() -> tuple[int, str, bytes]:
        await _seed_archive(fuzz, keep=True)
        url = fuzz.hub.url + path.replace("{ready}", fuzz.recording_ids[1] if fuzz.recording_ids else "0" * 12)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        if content_type:
            headers["Content-Type"] = content_type
        async with aiohttp.ClientSession() as session, session.request(method, url, data=body, headers=headers) as r:
            return r.status, r.headers.get("Content-Type", ""), await r.read()

    status, response_type, content = fuzz.run(case())
    fuzz.take_errors(library_ok=True)
    fuzz.errors.clear()
    ok = 400 <= status < 500 and response_type.startswith("application/json")
    if ok:
        error = json.loads(content).get("error")
        if path in KNOWN_ERROR_SHAPES and isinstance(error, str):  # LibreTranslate's shape
            ok = bool(error)
        else:
            ok = isinstance(error, dict) and bool(error.get("code")) and bool(error.get("message"))
    elif path.startswith("/static/"):  # a page asset, not an API: a plain 404 is right
        ok = status == 404
    assert ok, f"{method} {path[:40]} → {status} {response_type} {content[:80]!r}"


# -- after the fuzz: the hub still works -------------------------------------------------------------


def test_state_is_intact_after_the_fuzz(fuzz: Fuzz) -> None:
    """A fresh pair joins a fuzzed room, sees each other and chats; nobody else is left anywhere."""
    check_state_intact(fuzz)
