"""Property-based fuzzing of every Socket.IO client event (issue #6); the REST endpoints are fuzzed by
tests/test_fuzz_rest.py, and both share tests/fuzzkit.py.

One real hub (aiohttp + Socket.IO + SFU, captions configured without models, recordings and live
streams on, signed join links on when the server supports them) serves the whole module, in an
event loop of this module's own. Hypothesis drives it, derandomized so every run is the same run.

What a user would notice is asserted, for every generated case:

- the server never fails: no ``internal`` error, no ERROR log record (an unhandled exception in a
  handler, a background task or the HTTP server), no socket dropped without being told why
  (``removed`` / ``ended``), every event answered (ack) in time;
- every refused socket event gets exactly one ``error {code, message, event}`` with a non-empty
  code and message, the code documented in docs/PROTOCOL.md, and the refused event changed
  nothing: the room as the server keeps it is the same and nobody else heard of it;
- hand-made Engine.IO/Socket.IO frames may close the socket, never fail the server;
- nothing leaks: after each case its sockets are gone from the registry, and at the end a fresh
  pair of clients joins a fuzzed room, sees each other and chats.

The events come from the server itself (``SignallingServer.EVENTS`` and ``HOST_EVENTS``) and are
checked against the protocol document, so new events are fuzzed without touching this file (with
generic payloads; add a field strategy to ``FIELDS`` in tests/fuzzkit.py for deeper cases).

Event names Socket.IO reserves, and non-string ones, are tested separately (parametrized). Cases
the fuzz found (oversized events, floods) are kept as regression tests at the end; one upstream
python-engineio bug is pinned there as a strict xfail. The module prints how many cases ran.
``UNIONHUB_FUZZ_SCALE=10`` multiplies the number of cases for a deeper run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from fuzzkit import (
    ACK_TIMEOUT,
    CASES,
    ERROR_CODES,
    EVENTS_HIT,
    FIELDS,
    MESSAGE_LIMIT,
    OBSERVATIONS,
    SERVER_EVENTS,
    WEIRD_EVENTS,
    Actor,
    Fuzz,
    Ref,
    _encoded_size,
    _resolve,
    args_for,
    check_errors,
    check_logs,
    check_state_intact,
    documented_client_events,
    eventually,
    examples,
    fuzz_hub,
    room_snapshot,
)


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Fuzz]:
    """This module's hub (fuzzkit.fuzz_hub); its counters are printed when the module ends."""
    yield from fuzz_hub(tmp_path_factory, request)


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
        assert await eventually(lambda: sid not in fuzz.server.store.by_sid
                                and not fuzz.server.meeting.is_knocking(sid)), "ghost participant"
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
        assert await eventually(
            lambda: not sids & set(fuzz.server.store.by_sid)
            and not any(fuzz.server.meeting.is_knocking(sid) for sid in sids)
            and scene.room not in fuzz.server.store.rooms
        ), f"ghosts left in {scene.room}: {[p for p in fuzz.server.store.by_sid if p in sids]}"
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
        assert await eventually(lambda: not any(r.startswith("fz-raw") for r in fuzz.server.store.rooms)), (
            "a raw socket that joined was left behind"
        )
        check_logs(fuzz, f"raw frames {[f[:80] for f in frames]!r}", library_ok=True)

    fuzz.run(case())


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
        assert await eventually(lambda: not fuzz.server.store.by_sid)
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
            gone = await eventually(lambda: len(fuzz.server.store.rooms["fz-ghost"].participants) == 1, 3.0)
        finally:
            # clean-up only (after the measurement): end the ghost's session as the ping timeout would
            for sid, participant in list(fuzz.server.store.by_sid.items()):
                if participant.room == "fz-ghost" and sid != watcher.sid:
                    await fuzz.server.sio.disconnect(sid)
            await watcher.close()
            assert await eventually(lambda: "fz-ghost" not in fuzz.server.store.rooms)
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
        assert await eventually(lambda: "fz-big" not in fuzz.server.store.rooms)
        fuzz.take_errors(library_ok=True)
        assert outcome == "ack" and codes == ["too-large"], (outcome, codes)

    fuzz.run(case())


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
        assert await eventually(lambda: "fz-flood" not in fuzz.server.store.rooms)
        check_logs(fuzz, "flood")

    fuzz.run(case())


# -- after the fuzz: the hub still works -------------------------------------------------------------


def test_state_is_intact_after_the_fuzz(fuzz: Fuzz) -> None:
    """A fresh pair joins a fuzzed room, sees each other and chats; nobody else is left anywhere."""
    check_state_intact(fuzz)
