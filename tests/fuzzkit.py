"""The fuzz suite's shared kit (issue #6): the hub under fuzz, payload strategies, socket actors, checks.

Used by tests/test_fuzz.py (Socket.IO events and frames) and tests/test_fuzz_rest.py (REST routes).
Each of those modules runs its own hub (aiohttp + Socket.IO + SFU, captions configured without
models, recordings and live streams on, signed join links on when the server supports them) in an
event loop of its own, through ``fuzz_hub``, which its module-scoped ``fuzz`` fixture wraps.

Here:

- the protocol as documented: client events and error codes parsed from docs/PROTOCOL.md;
- counters (``CASES``, ``EVENTS_HIT``, ``ROUTES_HIT``, ``OBSERVATIONS``), printed and reset when a
  module's hub stops, so each module prints its own;
- payload strategies (``FIELDS`` per event, ``args_for``), derandomized settings (``examples``);
- ``Fuzz`` (the hub, its loop, the ERROR log records it produced) and its start-up;
- ``Actor``, one recording Socket.IO connection, and helpers: ``eventually``, ``room_snapshot``,
  ``_mint`` / ``_resolve`` (signed links and other references), ``check_errors``, ``check_logs``,
  ``check_state_intact``.

``UNIONHUB_FUZZ_SCALE=10`` multiplies the number of cases for a deeper run.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

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


SERVER_EVENTS: tuple[str, ...] = (tuple(SignallingServer.EVENTS) + tuple(getattr(SignallingServer, "HOST_EVENTS", ()))
                                  + tuple(getattr(SignallingServer, "INTERPRETATION_EVENTS", ())))
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
    "audio-only": {"on": valid_or(st.booleans())},
    "video-prefs": {
        "lastN": valid_or(st.one_of(st.none(), st.integers(min_value=-2, max_value=30))),
        "pinned": valid_or(st.lists(ID_REFS, max_size=4)),
        "visible": valid_or(st.one_of(st.none(), st.lists(ID_REFS, max_size=4), st.just(["0" * 12] * 101))),
    },
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
        "lastN": valid_or(st.integers(min_value=0, max_value=26)),
    },
    "admit": {"id": valid_or(ID_REFS)},
    "reject": {"id": valid_or(ID_REFS)},
    "mute": {"id": valid_or(ID_REFS), "all": valid_or(st.booleans())},
    "stop-camera": {"id": valid_or(ID_REFS)},
    "remove": {"id": valid_or(ID_REFS), "ban": valid_or(st.booleans())},
    "role": {"id": valid_or(ID_REFS), "role": valid_or(st.sampled_from(["host", "speaker", "viewer", "admin"]))},
    "end": {},
    "interpreter": {"id": valid_or(ID_REFS), "lang": valid_or(st.one_of(st.none(), LANG_OK))},
    "audio-channel": {"channel": valid_or(st.sampled_from(["floor", "es", "en", "FLOOR"]))},
    "booth": {"action": valid_or(st.sampled_from(["live", "off", "handover", "LIVE"])), "to": valid_or(ID_REFS)},
}


def payload_for(event: str) -> st.SearchStrategy[Any]:
    fields = FIELDS.get(event, {})
    near_valid = st.fixed_dictionaries(
        {}, optional={**fields, "extra": json_values(), "__proto__": json_values()}
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
        and frame.name not in ("_security_headers", "_cluster_live", "which_route")
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


def fuzz_hub(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Fuzz]:
    """A test module's hub, for its module-scoped ``fuzz`` fixture: started with the archive seeded;
    when the module ends, stopped, and the counters printed (once per module) and reset."""
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
        for counter in (CASES, EVENTS_HIT, ROUTES_HIT, OBSERVATIONS):
            counter.clear()  # the next module counts its own cases


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
    r = server.store.rooms.get(room)
    state: dict[str, Any] = {"room": dataclasses.asdict(r) if r is not None else None}
    for feature in server.features:
        if feature.name in ("recording", "live"):
            state[feature.name] = feature.state(room)
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


# -- after the fuzz: the hub still works -------------------------------------------------------------


def check_state_intact(fuzz: Fuzz) -> None:
    """A fresh pair joins a fuzzed room, sees each other and chats; nobody else is left anywhere;
    the SFU has no peers left, /healthz answers 200 and nothing was logged as an error."""

    async def case() -> None:
        assert await eventually(lambda: not fuzz.server.store.by_sid and not fuzz.server.store.rooms), (
            f"ghost participants: {fuzz.server.store.by_sid}"
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
            assert set(fuzz.server.store.by_sid) == {ana.sid, bo.sid}
            assert set(fuzz.server.store.rooms) == {room}
        finally:
            await ana.close()
            await bo.close()
        assert await eventually(lambda: not fuzz.server.store.by_sid and not fuzz.server.store.rooms)
        assert await eventually(lambda: fuzz.server.sfu.stats()["peers"] == 0)
        async with aiohttp.ClientSession() as session, session.get(fuzz.hub.url + "/healthz") as r:
            assert r.status == 200
        check_logs(fuzz, "after the fuzz")

    fuzz.run(case())
