"""Property-based fuzzing of every Socket.IO client event and every REST endpoint (issue #6).

One real hub (aiohttp + Socket.IO + SFU, captions configured without models, recordings and live
streams on, signed join links on when the server supports them) serves the whole module, in an
event loop of this module's own. Hypothesis drives it, derandomized so every run is the same run.

What a user would notice is asserted, for every generated case:

- the server never fails: no 5xx, no ``internal`` error, no ERROR log record (an unhandled
  exception in a handler, a background task or the HTTP server), no socket dropped without
  being told why (``removed`` / ``ended``), every event answered (ack) in time;
- every refused socket event gets exactly one ``error {code, message, event}`` with a non-empty
  code and message, the code documented in docs/PROTOCOL.md, and the refused event changed
  nothing: the room as the server keeps it is the same and nobody else heard of it;
- REST errors are 4xx with a JSON ``{"error": {"code", "message"}}`` body;
- nothing leaks: after each case its sockets are gone from the registry, and at the end a fresh
  pair of clients joins a fuzzed room, sees each other and chats.

The events come from the server itself (``SignallingServer.EVENTS`` and ``HOST_EVENTS``) and are
checked against the protocol document; the endpoints come from the app's router. New events and
routes are therefore fuzzed without touching this file (with generic payloads; add a field
strategy to ``FIELDS`` for deeper cases).

Cases the fuzz found (crashes, 500s, unanswered events) are kept as regression tests at the end;
one upstream python-engineio bug is pinned there as a strict xfail. The module prints how many
cases ran. ``UNIONHUB_FUZZ_SCALE=10`` multiplies the number of cases for a deeper run.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
import inspect
import json
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from yarl import URL

from captioning.service import CaptionConfig
from hubtest import SHUTDOWN_TIMEOUT, RunningHub
from signalling import SignallingServer
from unionhub.app import SIGNALLING_KEY, create_app

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = (ROOT / "docs" / "PROTOCOL.md").read_text()

SCALE = float(os.environ.get("UNIONHUB_FUZZ_SCALE", "1"))
ACK_TIMEOUT = 5.0
HTTP_TIMEOUT = 15.0
#: The server's Socket.IO message limit (signalling.server.MAX_MESSAGE_BYTES); bigger messages are
#: fuzzed separately (test_oversized_event_is_refused_with_too_large).
MESSAGE_LIMIT = 256_000
JWT_SECRET = "fuzz-secret-" + "0123456789abcdef" * 4
API_KEY = "fuzz-api-key-" + "0123456789abcdef" * 2


def examples(n: int) -> settings:
    """A deterministic profile; the module runs in well under a minute at SCALE=1."""
    return settings(
        max_examples=max(1, int(n * SCALE)),
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


# -- the protocol, as documented -----------------------------------------------------------------


def _section(title: str) -> str:
    start = PROTOCOL.index(title)
    end = PROTOCOL.find("\n## ", start + len(title))
    return PROTOCOL[start:] if end < 0 else PROTOCOL[start:end]


def documented_client_events() -> set[str]:
    """Event names in the first column of every client → server table of PROTOCOL.md."""
    events: set[str] = set()
    heading = ""
    in_table = False
    for line in PROTOCOL.splitlines():
        if line.startswith("## "):
            heading = line
        if line.startswith("| event"):
            in_table = "client → server" in line or heading.startswith("## Client")
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if in_table and not line.startswith("|---"):
            events |= set(re.findall(r"`([a-z-]+)`", line.split("|")[1]))
    return events


def documented_error_codes() -> set[str]:
    codes: set[str] = set()
    for line in _section("## Error codes").splitlines():
        if line.startswith("| `"):
            codes |= set(re.findall(r"`([a-z-]+)`", line.split("|")[1]))
    return codes


SERVER_EVENTS: tuple[str, ...] = tuple(SignallingServer.EVENTS) + tuple(getattr(SignallingServer, "HOST_EVENTS", ()))
ERROR_CODES = documented_error_codes()

#: Names that are not events of the protocol, including Socket.IO's reserved ones.
#: "*", "connect" and "disconnect" reach the server's own handlers (the catch-all, connection and
#: disconnection): they too must be answered as unknown events.
WEIRD_EVENTS = (
    "", " ", "JOIN", "join ", "kick", "sync-barrier", "connect_error", "message", "*", "connect", "disconnect",
    "__proto__", "constructor", "error", "joined", "participant-joined", "x" * 300, "\u202ejoin", "ĵoin",
    "chat\x00", "<script>",
)
# -- counters printed at the end ---------------------------------------------------------------

CASES: collections.Counter[str] = collections.Counter()
ROUTES_HIT: collections.Counter[str] = collections.Counter()
EVENTS_HIT: collections.Counter[str] = collections.Counter()
OBSERVATIONS: dict[str, str] = {}


# -- payload strategies ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """A value only known when the case runs: a participant id, a signed link…"""

    what: str  # self | other | knocker | token
    arg: str = ""

    def __repr__(self) -> str:
        return f"<{self.what}{':' + self.arg if self.arg else ''}>"


SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\udc80b", "\ud83d"])  # lone halves: not UTF-8 encodable
CONTROL = st.sampled_from(["\x00", "\x07", "\x1b[31m", "\u200b", "\u202e", "\ufeff", "\r\n", "\t"])


def huge(limit: int = 40_000) -> st.SearchStrategy[str]:
    """A long string, cheaply: a short piece repeated (≤ 6 bytes per char in JSON)."""
    return st.builds(
        lambda piece, n: (piece * n)[:n],
        st.sampled_from(["a", " ", "é", "😀", "\x00", "ab\n", "<b>"]),
        st.integers(1_000, limit),
    )


TEXT = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(codec=None), max_size=10),
    SURROGATES,
    CONTROL,
    st.sampled_from(["", " ", "null", "true", "0", "-1", "NaN", "../../etc/passwd", "%00", "' OR 1=1 --",
                     "<script>alert(1)</script>", "${jndi:ldap://x}", "{{7*7}}", "\\", "é" * 65, "a" * 65]),
    huge(),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.binary(max_size=64),  # Socket.IO binary attachments
)


def json_values(leaves: st.SearchStrategy[Any] = SCALARS) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(["room", "id", "__proto__"])),
                            inner, max_size=4),
        ),
        max_leaves=12,
    )


def nested(depth: st.SearchStrategy[int] = st.integers(20, 400)) -> st.SearchStrategy[Any]:
    """Deep nesting the client can still encode (Python's json recurses too)."""
    def build(d: int, as_dict: bool) -> Any:
        value: Any = "deep"
        for _ in range(d):
            value = {"a": value} if as_dict else [value]
        return value
    return st.builds(build, depth, st.booleans())


ANY = st.one_of(json_values(), nested(), huge().map(lambda s: {"text": s}))


def valid_or(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes anything at all."""
    return st.one_of(valid, valid, SCALARS, json_values())


ROOM_OK = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")
LANG_OK = st.sampled_from(["en", "pt", "pt-BR", "ar", "zh-Hant", "es", "xx", "abc"])
ID_REFS = st.sampled_from([Ref("other"), Ref("self"), Ref("knocker"), "000000000000", "ffffffffffff"])
TOKEN_REFS = st.sampled_from(
    [Ref("token", k) for k in ("host", "speaker", "viewer", "expired", "not-yet", "other-room", "forged",
                               "alg-none", "no-name", "bad-name", "bad-role")]
)

#: Per event, its payload fields and what to put in them (valid values, references, hostile ones).
FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "join": {
        "room": valid_or(st.one_of(st.just(Ref("room")), ROOM_OK)),
        "name": valid_or(st.sampled_from(["Ana", "  Bo  Li ", "Zoë", "أحمد", "n" * 64])),
        "lang": valid_or(LANG_OK),
        "audio": valid_or(st.booleans()),
        "video": valid_or(st.booleans()),
        "token": st.one_of(TOKEN_REFS, TOKEN_REFS, TEXT),
        "passcode": valid_or(st.sampled_from(["1234", "secret", "0000"])),
        "client": valid_or(st.from_regex(r"\A[A-Za-z0-9_-]{8,64}\Z")),
    },
    "sdp": {
        "type": valid_or(st.sampled_from(["answer", "offer", "pranswer", "rollback"])),
        "sdp": st.one_of(
            TEXT,
            st.just(Ref("answer")),  # a well-formed answer to the current offer, if there is one
            st.builds(lambda lines: "v=0\r\n" + "\r\n".join(lines) + "\r\n",
                      st.lists(st.sampled_from(["o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
                                                "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=sendonly",
                                                "a=ice-ufrag:x", "a=fingerprint:sha-256 00", "m=video 0 x",
                                                "c=IN IP4 0.0.0.0", "a=rtpmap:111 opus/48000/2", "a=setup:active",
                                                "m=application 9 x", "a=mid:" + "9" * 50]), max_size=12)),
        ),
    },
    "publish": {"source": valid_or(st.sampled_from(["screen", "mic", "camera", "SCREEN"]))},
    "unpublish": {"source": valid_or(st.sampled_from(["screen", "mic", "camera"]))},
    "media-state": {"audio": valid_or(st.booleans()), "video": valid_or(st.booleans())},
    "hand": {"raised": valid_or(st.booleans())},
    "chat": {"text": st.one_of(st.text(max_size=50), TEXT, huge(3000), st.just(" \n\t "))},
    "caption-language": {"lang": valid_or(LANG_OK)},
    "record": {"on": valid_or(st.booleans())},
    # going live starts a worker process: mostly "off" keeps the module fast
    "live": {"on": valid_or(st.sampled_from([False, False, False, True]))},
    "live-push": {"url": valid_or(st.sampled_from([None, "rtmp://127.0.0.1:9/live/key", "rtmps://[::1]:9/a/b",
                                                   "rtmp://host", "http://127.0.0.1/live/key",
                                                   "rtmp://127.0.0.1:9/live/" + "k" * 3000]))},
    "leave": {},
    "settings": {
        "access": valid_or(st.sampled_from(["open", "passcode", "lobby", "token"])),
        "passcode": valid_or(st.sampled_from(["1234", "  12 ", "", "x" * 129, "secret"])),
        "locked": valid_or(st.booleans()),
        "record": valid_or(st.sampled_from(["hosts", "everyone"])),
        "live": valid_or(st.sampled_from(["hosts", "everyone"])),
    },
    "admit": {"id": valid_or(ID_REFS)},
    "reject": {"id": valid_or(ID_REFS)},
    "mute": {"id": valid_or(ID_REFS), "all": valid_or(st.booleans())},
    "stop-camera": {"id": valid_or(ID_REFS)},
    "remove": {"id": valid_or(ID_REFS), "ban": valid_or(st.booleans())},
    "role": {"id": valid_or(ID_REFS), "role": valid_or(st.sampled_from(["host", "speaker", "viewer", "admin"]))},
    "end": {},
}


def payload_for(event: str) -> st.SearchStrategy[Any]:
    fields = FIELDS.get(event, {})
    near_valid = st.fixed_dictionaries(
        {}, optional={**fields, **{"extra": json_values()}, **{"__proto__": json_values()}}
    )
    return st.one_of(near_valid, near_valid, near_valid, ANY)


def args_for(event: str) -> st.SearchStrategy[tuple[Any, ...]]:
    """Socket.IO arguments: usually one payload; sometimes none, several, or an explicit null."""
    payload = payload_for(event)
    return st.one_of(
        payload.map(lambda p: (p,)),
        payload.map(lambda p: (p,)),
        payload.map(lambda p: (p,)),
        st.just(()),
        st.just((None,)),
        st.tuples(payload, ANY),
        st.tuples(payload, ANY, ANY),
    )


# -- the hub -------------------------------------------------------------------------------------


class Fuzz:
    """The module's hub, its event loop and the log records it produced."""

    def __init__(self, runner: asyncio.Runner, hub: RunningHub, routes_seen: dict[str, str]) -> None:
        self.runner = runner
        self.hub = hub
        self.server = hub.server
        self.routes_seen = routes_seen  # X-Fuzz-Id → the route the router chose
        self.errors: list[logging.LogRecord] = []
        self.signer: Any = None
        self.recording_ids: list[str] = []
        self.session: aiohttp.ClientSession | None = None
        self.counter = 0

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)

    def next_id(self) -> int:
        self.counter += 1
        return self.counter

    def take_errors(self, library_ok: bool = False) -> list[str]:
        """ERROR records logged since the last call, formatted. With ``library_ok``, failures
        entirely inside python-socketio / engine.io (malformed frames) are only counted."""
        records, self.errors[:] = list(self.errors), []
        out = []
        for record in records:
            text = f"{record.name}: {record.getMessage()}"
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            if library_ok and _library_only(record):
                last = text.strip().splitlines()[-1]
                OBSERVATIONS.setdefault(f"library error log: {last.split(':')[0][:40]} ({record.name})", last[:120])
                continue
            out.append(text)
        return out


def _library_only(record: logging.LogRecord) -> bool:
    """A traceback with no frame of this repository's code but the HTTP middlewares it passed."""
    if not record.exc_info or record.exc_info[2] is None:
        return record.name.split(".")[0] in ("engineio", "socketio", "aiohttp")
    import traceback

    ours = [
        frame for frame in traceback.extract_tb(record.exc_info[2])
        if frame.filename.startswith(str(ROOT)) and "/site-packages/" not in frame.filename
        and frame.name not in ("_security_headers", "which_route")
    ]
    return not ours


class _Collect(logging.Handler):
    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)


async def _start_hub(data_dir: Path, routes_seen: dict[str, str]) -> tuple[RunningHub, Any]:
    options: dict[str, Any] = {
        # captions on without models: the LibreTranslate routes exist, nothing heavy is loaded
        "captions": CaptionConfig(models_dir=data_dir / "models", asr_model="none"),
    }
    signer = None
    if "security" in inspect.signature(create_app).parameters:
        from signalling.auth import Security, TokenSigner

        signer = TokenSigner(JWT_SECRET)
        options["security"] = Security(signer=signer, api_key=API_KEY)
    app = create_app(data_dir, **options)

    @web.middleware
    async def which_route(request: web.Request, handler: Any) -> web.StreamResponse:
        fuzz_id = request.headers.get("X-Fuzz-Id")
        if fuzz_id is not None:
            resource = request.match_info.route.resource
            routes_seen[fuzz_id] = resource.canonical if resource is not None else ""
        return await handler(request)

    app.middlewares.append(which_route)  # test instrumentation only: which handler served a request
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return RunningHub(f"http://127.0.0.1:{port}", app, app[SIGNALLING_KEY], runner), signer


async def _seed_archive(fuzz: Fuzz, keep: bool = False) -> None:
    """A recording still being recorded and a ready, published one with media, for the REST fuzz
    (``keep``: only if one of them is gone)."""
    from recordings.http import ARCHIVE_KEY

    archive = fuzz.hub.app.get(ARCHIVE_KEY)
    if archive is None:
        return
    if keep and fuzz.recording_ids and all([await archive.get(i) for i in fuzz.recording_ids]):
        return
    live = await archive.create("fuzzroom", None, 0.0, time.time() - 60)
    ready = await archive.create("fuzzroom", None, 0.0, time.time() - 3600)
    await archive.finish(ready.id, time.time() - 3000, 600.0, ["Ana", "Bo"])
    await archive.set_status(ready.id, "ready")
    await archive.set_published(ready.id, True)
    for name in ("playback.mp4", "audio.m4a"):
        archive.media_path(ready.id, name).write_bytes(bytes(range(256)) * 40)
    fuzz.recording_ids = [live.id, ready.id]


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Fuzz]:
    errors: list[logging.LogRecord] = []
    handler = _Collect(errors)
    logging.getLogger().addHandler(handler)
    runner = asyncio.Runner()
    routes_seen: dict[str, str] = {}
    hub, signer = runner.run(_start_hub(tmp_path_factory.mktemp("fuzz") / "hub", routes_seen))
    fz = Fuzz(runner, hub, routes_seen)
    fz.errors = errors
    fz.signer = signer
    fz.run(_seed_archive(fz))
    started = time.monotonic()
    try:
        yield fz
    finally:
        async def stop() -> None:
            if fz.session is not None:
                await fz.session.close()
            await hub.runner.cleanup()

        runner.run(stop())
        runner.close()
        logging.getLogger().removeHandler(handler)
        total = sum(CASES.values())
        lines = [f"fuzz: {total} cases in {time.monotonic() - started:.0f} s — "
                 + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items()))]
        if EVENTS_HIT:
            lines.append("fuzz: events " + ", ".join(f"{k} {v}" for k, v in sorted(EVENTS_HIT.items())))
        if ROUTES_HIT:
            lines.append("fuzz: routes " + ", ".join(f"{k} {v}" for k, v in sorted(ROUTES_HIT.items())))
        lines += [f"fuzz: observed: {k}: {v}" for k, v in sorted(OBSERVATIONS.items())]
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            print("\n" + "\n".join(lines), flush=True)


# -- socket actors ----------------------------------------------------------------------------


class Actor:
    """One Socket.IO connection that records everything it is sent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.gone = asyncio.Event()
        self.arrived = asyncio.Event()
        self.id: str | None = None
        self.sid: str | None = None
        self.sio.on("*", self._record)
        self.sio.on("disconnect", self._disconnected)

    async def _record(self, event: str, *args: Any) -> None:
        self.events.append((event, args[0] if len(args) == 1 else list(args)))
        self.arrived.set()

    async def _disconnected(self, *args: Any) -> None:
        self.gone.set()
        self.arrived.set()

    async def connect(self) -> Actor:
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=ACK_TIMEOUT)
        self.sid = self.sio.get_sid()
        return self

    async def send(self, event: str, args: tuple[Any, ...], timeout: float = ACK_TIMEOUT) -> str:
        """Emit and wait for the server's ack: "ack", "gone" (disconnected) or "timeout"."""
        if self.gone.is_set():
            return "gone"
        done = asyncio.get_running_loop().create_future()

        def ack(*_: Any) -> None:
            if not done.done():
                done.set_result("ack")

        await self.sio.emit(event, args, callback=ack)
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            finished, _ = await asyncio.wait({done, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if done in finished:
            return "ack"
        return "gone" if self.gone.is_set() else "timeout"

    async def sync(self) -> None:
        """A round trip: everything the server sent before has arrived (its own error dropped)."""
        before = len(self.events)
        if await self.send("sync-barrier", ({},)) == "ack":
            self.events[before:] = [
                (n, d) for n, d in self.events[before:]
                if not (n == "error" and isinstance(d, dict) and d.get("code") in ("unknown-event", "rate-limited"))
            ]

    async def wait_for(self, event: str, since: int = 0, timeout: float = ACK_TIMEOUT) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for name, data in self.events[since:]:
                    if name == event:
                        return data
                if self.gone.is_set():
                    raise AssertionError(f"disconnected while waiting for {event}: {self.events[since:]}")
                self.arrived.clear()
                await self.arrived.wait()

    async def join(self, room: str, name: str, audio: bool = False, video: bool = False,
                   **extra: Any) -> dict[str, Any]:
        since = len(self.events)
        payload = {"room": room, "name": name, "lang": "en", "audio": audio, "video": video, **extra}
        assert await self.send("join", (payload,)) == "ack"
        errors = [d for n, d in self.events[since:] if n == "error"]
        assert not errors, f"join {payload} refused: {errors}"
        joined = await self.wait_for("joined", since)
        self.id = joined["id"]
        return joined

    def received(self, event: str, since: int = 0) -> list[Any]:
        return [d for n, d in self.events[since:] if n == event]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.sio.connected:
                await self.sio.disconnect()


async def eventually(condition: Callable[[], bool], timeout: float = ACK_TIMEOUT) -> bool:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        return False
    return True


def room_snapshot(server: SignallingServer, room: str) -> Any:
    """Everything the server keeps about a room (participants, chat, settings, lobby, bans)."""
    r = server.registry.rooms.get(room)
    state: dict[str, Any] = {"room": dataclasses.asdict(r) if r is not None else None}
    if server.recordings is not None:
        state["recording"] = server.recordings.state(room)
    if server.live is not None:
        state["live"] = room in server.live._streams
    return repr(state)


def _mint(fuzz: Fuzz, ref: Ref, room: str) -> str:
    """Signed join links of every kind the server must tell apart."""
    kind = ref.arg
    now = int(time.time())
    claims: dict[str, Any] = {"room": room, "role": "speaker", "name": "Linked", "iat": now, "nbf": now - 30,
                              "exp": now + 600, "jti": f"fuzz{fuzz.next_id()}"}
    if kind in ("host", "speaker", "viewer"):
        claims["role"] = kind
    elif kind == "expired":
        claims["exp"] = now - 3600
    elif kind == "not-yet":
        claims["nbf"] = now + 3600
    elif kind == "other-room":
        claims["room"] = room + "x"
    elif kind == "no-name":
        del claims["name"]
    elif kind == "bad-name":
        claims["name"] = "\x00" * 3
    elif kind == "bad-role":
        claims["role"] = "admin"

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    if kind == "alg-none":
        return f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}."
    import jwt

    secret = JWT_SECRET if kind != "forged" else "someone-elses-secret-" + "0" * 64
    return jwt.encode(claims, secret, algorithm="HS256")


def _resolve(fuzz: Fuzz, value: Any, refs: dict[str, Any], room: str) -> Any:
    if isinstance(value, Ref):
        if value.what == "token":
            return _mint(fuzz, value, room)
        if value.what == "answer":
            return value if "answer" in refs else "v=0\r\n"  # filled in by _with_answer
        return refs.get(value.what, room if value.what == "room" else "0123456789ab")
    if isinstance(value, dict):
        return {k: _resolve(fuzz, v, refs, room) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(fuzz, v, refs, room) for v in value)
    return value


def _encoded_size(args: tuple[Any, ...]) -> int:
    def default(o: Any) -> Any:
        if isinstance(o, bytes):
            return "x" * len(o)
        if isinstance(o, Ref):
            return "x" * 512
        raise TypeError
    return len(json.dumps(list(args), default=default))


def check_errors(event: str, errors: list[Any], known: bool) -> None:
    """Each error is {code, message, event}: documented code, a message, never ``internal``."""
    assert len(errors) <= 1, f"one event, several errors: {errors}"
    for error in errors:
        assert isinstance(error, dict), error
        code, message = error.get("code"), error.get("message")
        assert isinstance(code, str) and code, f"error without a code: {error}"
        assert isinstance(message, str) and message.strip(), f"error without a message: {error}"
        assert code != "internal", f"the server failed handling {event!r}: {error}"
        assert code in ERROR_CODES, f"undocumented error code {code!r} (docs/PROTOCOL.md): {error}"
        assert "event" in error, error
        if known and code != "rate-limited":
            assert error["event"] == event, error


def check_logs(fuzz: Fuzz, what: str, library_ok: bool = False) -> None:
    logged = fuzz.take_errors(library_ok)
    assert not logged, f"{what}: the server logged errors:\n" + "\n".join(logged)


# -- the protocol's events -----------------------------------------------------------------------


def test_every_documented_client_event_is_handled_and_fuzzed() -> None:
    documented = documented_client_events()
    assert "join" in documented and "leave" in documented  # the parser sees the tables
    assert documented == set(SERVER_EVENTS), (
        f"documented but not handled: {sorted(documented - set(SERVER_EVENTS))}; "
        f"handled but not documented: {sorted(set(SERVER_EVENTS) - documented)}"
    )
    generic = sorted(set(SERVER_EVENTS) - set(FIELDS))
    if generic:
        OBSERVATIONS["events fuzzed with generic payloads only"] = ", ".join(generic)


@examples(350)
@given(event=st.sampled_from(SERVER_EVENTS * 6 + WEIRD_EVENTS), args=st.data())
def test_any_event_before_joining(fuzz: Fuzz, event: str, args: st.DataObject) -> None:
    """A socket that has not joined: every event is refused with one error, or it joins."""
    sent = args.draw(args_for(event), label="args")
    assume(_encoded_size(sent) < MESSAGE_LIMIT - 4096)
    CASES["socket-before-join"] += 1
    EVENTS_HIT[event if event in SERVER_EVENTS else "(unknown)"] += 1

    async def case() -> None:
        room = f"fz-pre-{fuzz.next_id()}"
        actor = await Actor(fuzz.hub.url).connect()
        try:
            payload = _resolve(fuzz, sent, {}, room)
            note(f"emit {event!r} {payload!r:.2000}")
            outcome = await actor.send(event, payload)
            assert outcome == "ack", f"{event!r}: no answer from the server ({outcome})"
            errors = actor.received("error")
            known = event in SERVER_EVENTS
            check_errors(event, errors, known)
            if not known:
                assert [e["code"] for e in errors] in (["unknown-event"], ["rate-limited"]), errors
                assert errors[0]["event"] is None
            elif event != "join":
                assert len(errors) == 1, f"{event!r} before joining was not refused: {actor.events}"
                others = [n for n, _ in actor.events if n != "error"]
                assert others == [], f"an unjoined socket was sent {others}"
            else:
                joined = actor.received("joined") or actor.received("lobby")
                assert bool(errors) != bool(joined), f"join: neither refused nor joined: {actor.events}"
                check_access(None, sent, payload, actor.events)  # a signed link's role is the role
            assert not actor.gone.is_set(), f"{event!r} dropped the socket"
        finally:
            await actor.close()
        sid = actor.sid
        assert await eventually(lambda: sid not in fuzz.server.registry.by_sid
                                and sid not in getattr(fuzz.server, "_knocking", {})), "ghost participant"
        check_logs(fuzz, f"{event!r} before joining")

    fuzz.run(case())


@dataclass
class Scene:
    room: str
    host: Actor
    guest: Actor
    knocker: Actor | None = None
    knock_id: str | None = None
    extra: list[Actor] = field(default_factory=list)

    @property
    def actors(self) -> list[Actor]:
        return [a for a in (self.host, self.guest, self.knocker, *self.extra) if a is not None]


ROOM_SETTINGS = (None, {"access": "passcode", "passcode": "1234"}, {"access": "lobby"}, {"access": "token"},
                 {"locked": True}, {"record": "everyone", "live": "everyone"})
PASSCODE = "1234"


async def _scene(fuzz: Fuzz, host_media: bool, guest_media: bool, lobby: bool,
                 settings: dict[str, Any] | None) -> Scene:
    room = f"fz-{fuzz.next_id()}"
    host, guest = await Actor(fuzz.hub.url).connect(), await Actor(fuzz.hub.url).connect()
    scene = Scene(room, host, guest)
    await host.join(room, "Host", audio=host_media, video=host_media, client=f"fuzz-client-{room}-h")
    await guest.join(room, "Guest", audio=guest_media, video=False, client=f"fuzz-client-{room}-g")
    if lobby and "settings" in SERVER_EVENTS:
        since = len(host.events)
        assert await host.send("settings", ({"access": "lobby"},)) == "ack"
        assert host.received("error", since) == []
        knocker = await Actor(fuzz.hub.url).connect()
        scene.knocker = knocker
        since = len(host.events)
        assert await knocker.send("join", ({"room": room, "name": "Knocker", "audio": False, "video": False},)) == "ack"
        assert knocker.received("error") == [], knocker.events
        scene.knock_id = (await host.wait_for("knock", since))["id"]
    if settings is not None and "settings" in SERVER_EVENTS:
        since = len(host.events)
        assert await host.send("settings", (settings,)) == "ack"
        assert host.received("error", since) == [], host.received("error", since)
    return scene


def _token_role(sent: tuple[Any, ...]) -> str | None:
    """The role of a valid signed link for the room in a generated join, if it carries one."""
    if len(sent) == 1 and isinstance(sent[0], dict):
        token = sent[0].get("token")
        if isinstance(token, Ref) and token.what == "token" and token.arg in ("host", "speaker", "viewer"):
            room = sent[0].get("room")
            if isinstance(room, Ref) and room.what == "room":
                return token.arg
    return None


def check_access(settings: dict[str, Any] | None, sent: tuple[Any, ...], payload: tuple[Any, ...],
                 outcome: list[tuple[str, Any]]) -> None:
    """Whoever got in was allowed in: a room's access mode and lock hold, whatever the join says."""
    joined = [d for n, d in outcome if n == "joined"]
    if not joined:
        return
    role = _token_role(sent)
    if role is not None:
        assert joined[0].get("role") == role, f"a {role} link joined as {joined[0].get('role')}"
        if not (settings or {}).get("locked") or role == "host":
            return
    access = (settings or {}).get("access", "open")
    what = f"{payload!r:.500} joined a room with settings {settings}"
    assert not (settings or {}).get("locked") or role == "host", "locked room: " + what
    assert access != "lobby", "lobby skipped: " + what
    assert access != "token", "signed links only: " + what
    if access == "passcode":
        assert isinstance(payload[0], dict) and payload[0].get("passcode") == PASSCODE, "passcode: " + what


@examples(450)
@given(
    event=st.sampled_from(SERVER_EVENTS * 4 + WEIRD_EVENTS[:4]),
    sender=st.sampled_from(["host", "guest", "host", "guest", "outsider"]),
    media=st.tuples(st.booleans(), st.booleans()),
    lobby=st.booleans(),
    room_settings=st.sampled_from(ROOM_SETTINGS),
    args=st.data(),
)
def test_any_event_in_a_room(
    fuzz: Fuzz, event: str, sender: str, media: tuple[bool, bool], lobby: bool,
    room_settings: dict[str, Any] | None, args: st.DataObject,
) -> None:
    """A room with a host and a guest (maybe publishing, maybe a knocker in its lobby, maybe
    passcode/lobby/signed-links only/locked); the host, the guest or a socket that is not in the
    room sends anything. Refused: one documented error, nothing changed, nobody else told.
    Accepted: nobody dropped without being told why, and only those allowed got in. Either way
    nothing is left behind."""
    if sender == "outsider" and args.draw(st.booleans(), label="outsider joins?"):
        event = "join"
    sent = args.draw(args_for(event), label="args")
    assume(_encoded_size(sent) < MESSAGE_LIMIT - 4096)
    CASES["socket-in-room"] += 1
    EVENTS_HIT[event if event in SERVER_EVENTS else "(unknown)"] += 1
    lobby = lobby and event in ("admit", "reject", "settings", "end", "leave", "mute", "remove")
    if lobby and room_settings is not None and "access" in room_settings:
        room_settings = None  # another access mode would let the knocker in

    async def case() -> None:
        scene = await _scene(fuzz, media[0], media[1], lobby, room_settings)
        try:
            if sender == "outsider":
                me = await Actor(fuzz.hub.url).connect()
                scene.extra.append(me)
                other = scene.host
            else:
                me = scene.host if sender == "host" else scene.guest
                other = scene.guest if sender == "host" else scene.host
            refs = {"self": me.id or "0123456789ab", "other": other.id, "knocker": scene.knock_id,
                    "room": scene.room, "answer": True}
            payload = await _with_answer(me, _resolve(fuzz, sent, refs, scene.room))
            for actor in scene.actors:
                await actor.sync()
            check_logs(fuzz, "setting up the room")
            before = room_snapshot(fuzz.server, scene.room)
            seen = {id(a): len(a.events) for a in scene.actors}
            note(f"{sender} emits {event!r} {payload!r:.2000}")

            outcome = await me.send(event, payload)

            told = me.received("ended", seen[id(me)]) or me.received("removed", seen[id(me)])
            assert outcome == "ack" or (outcome == "gone" and told), (
                f"{event!r}: {'no answer' if outcome == 'timeout' else 'socket dropped'}; got {me.events[seen[id(me)]:]}"
            )
            errors = me.received("error", seen[id(me)])
            check_errors(event, errors, event in SERVER_EVENTS)
            if event not in SERVER_EVENTS:
                assert [e["code"] for e in errors] == ["unknown-event"], errors
            if sender == "outsider" and event == "join":
                check_access(room_settings, sent, payload, me.events[seen[id(me)]:])
            for actor in scene.actors:
                if actor is not me and not actor.gone.is_set():
                    await actor.sync()
            for actor in scene.actors:
                why = actor.received("ended", seen[id(actor)]) or actor.received("removed", seen[id(actor)])
                assert not actor.gone.is_set() or why, f"a socket was dropped without being told: {actor.events}"
            if errors:
                assert room_snapshot(fuzz.server, scene.room) == before, f"refused {event!r} changed the room"
                for actor in scene.actors:
                    if actor is me:
                        continue
                    heard = [(n, d) for n, d in actor.events[seen[id(actor)]:] if n not in ("sdp", "active-speaker")]
                    assert heard == [], f"refused {event!r}, yet another participant was sent {heard}"
        finally:
            for actor in scene.actors:
                await actor.close()
        sids = {a.sid for a in scene.actors}
        knocking = getattr(fuzz.server, "_knocking", {})
        assert await eventually(
            lambda: not sids & set(fuzz.server.registry.by_sid) and not sids & set(knocking)
            and scene.room not in fuzz.server.registry.rooms
        ), f"ghosts left in {scene.room}: {[p for p in fuzz.server.registry.by_sid if p in sids]}"
        check_logs(fuzz, f"{sender} sent {event!r}")

    fuzz.run(case())


async def _with_answer(actor: Actor, payload: tuple[Any, ...]) -> tuple[Any, ...]:
    """Replace a Ref("answer") by a real SDP answer (every m-line inactive) to the latest offer."""
    def has_ref(v: Any) -> bool:
        if isinstance(v, Ref):
            return True
        if isinstance(v, dict):
            return any(has_ref(x) for x in v.values())
        if isinstance(v, (list, tuple)):
            return any(has_ref(x) for x in v)
        return False

    if not has_ref(payload):
        return payload
    offers = actor.received("sdp")
    sdp = "v=0\r\n"
    if not offers:
        with contextlib.suppress(Exception):
            offers = [await actor.wait_for("sdp", timeout=2.0)]
    if offers:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        pc = RTCPeerConnection()
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offers[-1]["sdp"], "offer"))
            for transceiver in pc.getTransceivers():
                transceiver.direction = "inactive"
            await pc.setLocalDescription(await pc.createAnswer())
            sdp = pc.localDescription.sdp
        finally:
            await pc.close()

    def put(v: Any) -> Any:
        if isinstance(v, Ref):
            return sdp
        if isinstance(v, dict):
            return {k: put(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(put(x) for x in v)
        return v

    return tuple(put(v) for v in payload)


# -- raw Socket.IO / Engine.IO frames -------------------------------------------------------------

RAW_FRAMES = st.one_of(
    st.text(max_size=60).map(lambda s: "42" + s),
    st.text(max_size=60).map(lambda s: "4" + s),
    st.text(max_size=40),
    st.sampled_from([
        "42", "42[", "42[]", "42[1]", "42[null]", '42["join"', '42{"a":1}', "42[\"chat\",{\"text\":\"\\ud800\"}]",
        "451-[\"chat\",{\"_placeholder\":true,\"num\":0}]", "451-[\"chat\",{\"_placeholder\":true,\"num\":7}]",
        "45-[\"chat\"]", "43", "431[]", "44", "44{}", "40/nope,", "40/admin,{}", "42/nope,[\"join\",{}]", "41",
        "49", "4-1[\"x\"]", "4999999999999999999999[\"chat\"]", "6", "5", "2", "3", "1", "9",
        '42["join",{"room":"fz-raw","name":"Raw","audio":false,"video":false},1,2]',
        '42["join",{"room":"fz-raw","name":"Raw","audio":false,"video":false}]',
        '42["chat",{"text":1e999}]', '42["chat",{"text":NaN}]', '42["hand",{"raised":true,"raised":false}]',
    ]),
    st.integers(50, 50_000).map(lambda d: '42["chat",' + "[" * d + "]" * d + "]"),
    st.integers(50, 20_000).map(lambda d: '42["join",' + '{"a":' * d + "1" + "}" * d + "]"),
    st.binary(max_size=64),
)


def event_name_not_a_string(frame: str | bytes) -> bool:
    """A Socket.IO EVENT packet (``42`` [ack id] JSON array) whose event name is not a string:
    known server bug, pinned by test_non_string_event_names_are_unknown_events."""
    if not isinstance(frame, str) or not frame.startswith("42"):
        return False
    body = re.sub(r"^[0-9]*", "", frame[2:])
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, list) and bool(data) and not isinstance(data[0], str)


def joined_then_broke_the_handler(frames: list[str | bytes]) -> bool:
    """A join followed by a frame that is no Engine.IO packet at all (empty, or a first character
    that is not a packet type): the server's websocket handler dies and the participant stays a
    ghost until the ping timeout (known server bug, test_a_broken_connection_leaves_no_ghost)."""
    for i, frame in enumerate(frames):
        if isinstance(frame, str) and frame.startswith('42["join"'):
            return any(isinstance(f, bytes) or not f or f[0] not in "0123456" for f in frames[i + 1:])
    return False


@examples(120)
@given(frames=st.lists(RAW_FRAMES, min_size=1, max_size=4))
def test_raw_frames(fuzz: Fuzz, frames: list[str | bytes]) -> None:
    """Hand-made Engine.IO/Socket.IO frames: the server may close the socket, never fail."""
    assume(not any(event_name_not_a_string(f) for f in frames))
    assume(not joined_then_broke_the_handler(frames))
    CASES["raw-frames"] += 1

    async def case() -> None:
        ws_url = fuzz.hub.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(ws_url)
            assert (await ws.receive_str(timeout=ACK_TIMEOUT)).startswith("0")
            await ws.send_str("40")
            assert (await ws.receive_str(timeout=ACK_TIMEOUT)).startswith("40")
            for frame in frames:
                if ws.closed:
                    break
                note(f"frame {frame!r:.300}")
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            with contextlib.suppress(Exception):
                await ws.send_str('42["sync-barrier",{}]')
                async with asyncio.timeout(0.3):
                    while not ws.closed:
                        msg = await ws.receive()
                        if msg.type != aiohttp.WSMsgType.TEXT or "sync-barrier" in msg.data:
                            break
            await ws.close()
        await asyncio.sleep(0.02)
        assert await eventually(lambda: not any(r.startswith("fz-raw") for r in fuzz.server.registry.rooms)), (
            "a raw socket that joined was left behind"
        )
        check_logs(fuzz, f"raw frames {[f[:80] for f in frames]!r}", library_ok=True)

    fuzz.run(case())


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


@examples(800)
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
        if value in ("..", ".") or "%" in value and re.fullmatch(r"[\x21-\x7e]+", value):
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


# -- reserved event names (kept out of the generated cases) -----------------------------------------

@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("disconnect", ()),
        ("disconnect", ("bye",)),
        ("disconnect", ("bye", "again")),
        ("disconnect", ("bye", "again", "and again")),
        ("connect", ({},)),
        ("connect", ()),
        ("*", ({"x": 1},)),
        ("*", ("room:fz-victim",)),
    ],
)
def test_reserved_event_names_are_unknown_events(fuzz: Fuzz, event: str, args: tuple[Any, ...]) -> None:
    """An event packet named like a Socket.IO reserved name is an unknown event: one error to the
    sender, none to anyone else, and the sender stays connected."""
    CASES["reserved-names"] += 1

    async def case() -> None:
        victim, actor = await Actor(fuzz.hub.url).connect(), await Actor(fuzz.hub.url).connect()
        try:
            await victim.join("fz-victim", "Victim")
            await victim.sync()
            seen = len(victim.events)
            outcome = await actor.send(event, args, timeout=1.5)
            await victim.sync()
            logged = fuzz.take_errors()
            assert outcome == "ack", f"no answer to {event!r} {args!r}; server log: {logged}"
            assert [e["code"] for e in actor.received("error")] == ["unknown-event"]
            assert victim.events[seen:] == [], f"another participant was sent {victim.events[seen:]}"
            assert not actor.gone.is_set()
            assert logged == []
        finally:
            await victim.close()
            await actor.close()
        assert await eventually(lambda: not fuzz.server.registry.by_sid)
        fuzz.take_errors()

    fuzz.run(case())


@pytest.mark.parametrize("frame", ['42[0]', '42[null]', '421[1.5,{}]', '42[true]'])
def test_non_string_event_names_are_unknown_events(fuzz: Fuzz, frame: str) -> None:
    """An EVENT packet whose name is not a string gets one `unknown-event` error."""
    CASES["reserved-names"] += 1

    async def case() -> None:
        ws_url = fuzz.hub.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(ws_url)
            await ws.receive_str(timeout=ACK_TIMEOUT)
            await ws.send_str("40")
            await ws.receive_str(timeout=ACK_TIMEOUT)
            await ws.send_str(frame)
            try:
                reply = await ws.receive_str(timeout=1.5)
            finally:
                await ws.close()
                logged = fuzz.take_errors()
        assert reply.startswith("42") and "unknown-event" in reply, reply
        assert logged == []

    fuzz.run(case())


@pytest.mark.parametrize("bad_frame", ["\x00", "ø"])
@pytest.mark.xfail(strict=True, reason="python-engineio 4.x: a websocket frame that is no Engine.IO packet "
                   "raises out of AsyncSocket._websocket_handler before the socket is closed, so the "
                   "session lingers until the ping timeout (20 s here); an upstream bug, pinned")
def test_a_broken_connection_leaves_no_ghost(fuzz: Fuzz, bad_frame: str) -> None:
    """A participant whose connection sends something that is not an Engine.IO packet, then
    closes: it leaves the room at once (today it stays a ghost for ~20 s, the ping timeout)."""
    CASES["pinned"] += 1

    async def case() -> None:
        watcher = await Actor(fuzz.hub.url).connect()
        try:
            await watcher.join("fz-ghost", "Watcher")
            ws_url = fuzz.hub.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
            async with aiohttp.ClientSession() as session:
                ws = await session.ws_connect(ws_url)
                await ws.receive_str(timeout=ACK_TIMEOUT)
                await ws.send_str("40")
                await ws.receive_str(timeout=ACK_TIMEOUT)
                await ws.send_str('42["join",{"room":"fz-ghost","name":"Ghost","audio":false,"video":false}]')
                await watcher.wait_for("participant-joined")
                await ws.send_str(bad_frame)
                await asyncio.sleep(0.2)
                await ws.close()
            gone = await eventually(lambda: len(fuzz.server.registry.rooms["fz-ghost"].participants) == 1, 3.0)
        finally:
            # clean-up only (after the measurement): end the ghost's session as the ping timeout would
            for sid, participant in list(fuzz.server.registry.by_sid.items()):
                if participant.room == "fz-ghost" and sid != watcher.sid:
                    await fuzz.server.sio.disconnect(sid)
            await watcher.close()
            assert await eventually(lambda: "fz-ghost" not in fuzz.server.registry.rooms)
            fuzz.take_errors(library_ok=True)
        assert gone, "the participant is still in the room 3 s after its connection closed"

    fuzz.run(case())


# -- cases found by the fuzz (issue #6), fixed: kept as regression tests ------------------------------


def test_oversized_event_is_refused_with_too_large(fuzz: Fuzz) -> None:
    """PROTOCOL.md: a field over its limit → `too-large`, the socket stays (messages up to 1 MB are
    read). Sent: chat {text: 300 000 × "a"}."""
    CASES["pinned"] += 1

    async def case() -> None:
        actor = await Actor(fuzz.hub.url).connect()
        try:
            await actor.join("fz-big", "Big")
            outcome = await actor.send("chat", ({"text": "a" * 300_000},), timeout=3.0)
            codes = [e["code"] for e in actor.received("error")]
        finally:
            await actor.close()
        assert await eventually(lambda: "fz-big" not in fuzz.server.registry.rooms)
        fuzz.take_errors(library_ok=True)
        assert outcome == "ack" and codes == ["too-large"], (outcome, codes)

    fuzz.run(case())


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        pytest.param("PATCH", "/api/recordings/{ready}", b"[" * 2000, "application/json", id="patch-recording-deep-json"),
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


def test_a_flood_is_rate_limited_with_errors_and_the_socket_recovers(fuzz: Fuzz) -> None:
    """Well over the per-socket limit (20 events/s, bursts of 40): the surplus is refused with
    `rate-limited` errors (code + message, never `internal`), the socket stays connected, nothing
    reaches the room, and after a pause the socket is served again."""
    assert "rate-limited" in ERROR_CODES
    CASES["rate-limit"] += 1

    async def case() -> None:
        flooder, listener = await Actor(fuzz.hub.url).connect(), await Actor(fuzz.hub.url).connect()
        try:
            await flooder.join("fz-flood", "Flooder")
            await listener.join("fz-flood", "Listener")
            await listener.sync()
            seen = len(listener.events)
            outcomes = await asyncio.gather(*(flooder.send("hand", ({"raised": i % 2 == 0},)) for i in range(120)))
            assert set(outcomes) == {"ack"}
            errors = flooder.received("error")
            assert errors, "120 events at once were not rate limited"
            for error in errors:
                assert error["code"] == "rate-limited" and error["message"], error
            accepted = 120 - len(errors)
            await listener.sync()
            updates = listener.received("participant-updated", seen)
            assert len(updates) == accepted, "refused events reached the room"
            assert not flooder.gone.is_set()
            await asyncio.sleep(2.5)  # the bucket refills
            since = len(flooder.events)
            assert await flooder.send("chat", ({"text": "sorry"},)) == "ack"
            assert flooder.received("error", since) == []
            assert (await listener.wait_for("chat", seen))["text"] == "sorry"
        finally:
            await flooder.close()
            await listener.close()
        assert await eventually(lambda: "fz-flood" not in fuzz.server.registry.rooms)
        check_logs(fuzz, "flood")

    fuzz.run(case())


# -- after the fuzz: the hub still works -------------------------------------------------------------


def test_state_is_intact_after_the_fuzz(fuzz: Fuzz) -> None:
    """A fresh pair joins a fuzzed room, sees each other and chats; nobody else is left anywhere."""

    async def case() -> None:
        assert await eventually(lambda: not fuzz.server.registry.by_sid and not fuzz.server.registry.rooms), (
            f"ghost participants: {fuzz.server.registry.by_sid}"
        )
        assert not getattr(fuzz.server, "_knocking", {}), "ghost knockers"
        ana, bo = await Actor(fuzz.hub.url).connect(), await Actor(fuzz.hub.url).connect()
        try:
            room = "fz-1"  # a room name the fuzz used over and over
            ana_joined = await ana.join(room, "Ana")
            bo_joined = await bo.join(room, "Bo")
            assert [p["id"] for p in bo_joined["participants"]] == [ana_joined["id"]]
            assert (await ana.wait_for("participant-joined"))["id"] == bo_joined["id"]
            assert await ana.send("chat", ({"text": "still here?"},)) == "ack"
            assert (await bo.wait_for("chat"))["text"] == "still here?"
            assert (await ana.wait_for("chat"))["from"] == ana_joined["id"]
            assert set(fuzz.server.registry.by_sid) == {ana.sid, bo.sid}
            assert set(fuzz.server.registry.rooms) == {room}
        finally:
            await ana.close()
            await bo.close()
        assert await eventually(lambda: not fuzz.server.registry.by_sid and not fuzz.server.registry.rooms)
        assert await eventually(lambda: fuzz.server.sfu.stats()["peers"] == 0)
        async with aiohttp.ClientSession() as session, session.get(fuzz.hub.url + "/healthz") as r:
            assert r.status == 200
        check_logs(fuzz, "after the fuzz")

    fuzz.run(case())
