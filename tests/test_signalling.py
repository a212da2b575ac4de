"""The real hub over Socket.IO: what clients are told, and what the server keeps.

Clients are python-socketio ``AsyncClient`` s over websocket. ``Client.send`` uses a Socket.IO
ack as a barrier: the server acks only after the handler finished, so every ``error`` the event
caused has arrived when ``send`` returns. ``Client.sync`` is a no-op round trip that makes sure a
client has received every broadcast sent before it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from sigclient import TIMEOUT, Client, Connect, eventually
from signalling import SignallingServer

if TYPE_CHECKING:
    from hubtest import RunningHub  # the `hub` / `make_hub` fixtures' type

def room_state(server: SignallingServer) -> dict[str, Any]:
    """Everything a participant could observe about the server's rooms, plus SFU counts."""
    return {
        "rooms": {
            name: {
                "participants": sorted(
                    (p.public() for p in room.participants.values()), key=lambda p: p["id"]
                ),
                "chat": list(room.chat),
            }
            for name, room in server.store.rooms.items()
        },
        "sockets": sorted(server.store.by_sid),
        "sfu": {k: v for k, v in server.sfu.stats().items() if k in ("rooms", "peers")},
    }


def participants_seen(client: Client, joined: dict[str, Any]) -> set[str]:
    """Who ``client`` believes is in the room, replaying its presence events in order."""
    present = {p["id"] for p in joined["participants"]}
    for name, data in client.events:
        if name == "participant-joined":
            present.add(data["id"])
        elif name == "participant-left":
            present.discard(data["id"])
    return present


# -- joining ------------------------------------------------------------------------------------


async def test_first_joiner_gets_an_id_the_codec_and_an_empty_room(
    hub: RunningHub, connect: Connect
) -> None:
    ana = await connect(hub.url)
    joined = await ana.join("dockers", "  Ana   Souza ", lang="pt")
    assert isinstance(joined["id"], str) and joined["id"]
    assert joined["room"] == "dockers"
    assert joined["codec"] == "vp8"
    assert joined["participants"] == []
    assert joined["chat"] == []
    participant = hub.server.store.by_sid[ana.sio.get_sid()]
    assert (participant.id, participant.name, participant.lang) == (joined["id"], "Ana Souza", "pt")


async def test_second_joiner_sees_the_first_and_the_first_is_told(
    hub: RunningHub, connect: Connect
) -> None:
    ana, bo = await connect(hub.url), await connect(hub.url)
    ana_joined = await ana.join("dockers", "Ana", audio=True, video=False)
    bo_joined = await bo.join("dockers", "Bo", lang="ar")

    assert bo_joined["participants"] == [
        {"id": ana_joined["id"], "name": "Ana", "lang": "en", "audio": True, "video": False,
         "screen": False, "hand": False, "role": "host", "verified": False},
    ]
    assert (ana_joined["role"], bo_joined["role"]) == ("host", "speaker")  # the first one hosts
    assert await ana.wait_for("participant-joined") == {
        "id": bo_joined["id"], "name": "Bo", "lang": "ar", "audio": False, "video": False,
        "screen": False, "hand": False, "role": "speaker", "verified": False,
    }
    assert bo.received("participant-joined") == []  # nobody is announced to themselves


async def test_rooms_are_separate(hub: RunningHub, connect: Connect) -> None:
    ana, bo = await connect(hub.url), await connect(hub.url)
    await ana.join("dockers", "Ana")
    joined = await bo.join("teachers", "Bo")
    assert joined["participants"] == []
    assert await ana.send("chat", {"text": "only dockers"}) == []
    await bo.sync()
    assert bo.received("chat") == [] and bo.received("participant-joined") == []


async def test_publisher_is_offered_a_mic_slot(hub: RunningHub, connect: Connect) -> None:
    ana = await connect(hub.url)
    await ana.join("dockers", "Ana", audio=True, video=False)
    offer = await ana.wait_for("sdp")
    assert offer["type"] == "offer"
    assert offer["sdp"].startswith("v=0")
    slots = list(offer["tracks"].values())
    assert {"role": "publish", "source": "mic", "kind": "audio"} in slots
    assert not any(slot.get("source") == "camera" for slot in slots)


async def test_publisher_with_camera_gets_both_slots_and_can_answer(
    hub: RunningHub, connect: Connect
) -> None:
    ana = await connect(hub.url)
    await ana.join("dockers", "Ana", audio=True, video=True)
    offer = await ana.wait_for("sdp")
    sources = {(s["role"], s.get("source")) for s in offer["tracks"].values()}
    assert sources == {("publish", "mic"), ("publish", "camera")}
    assert await ana.answer(offer) == []


async def test_rejected_answer_leaves_the_offer_open(hub: RunningHub, connect: Connect) -> None:
    ana = await connect(hub.url)
    await ana.join("dockers", "Ana", audio=True)
    offer = await ana.wait_for("sdp")

    errors = await ana.send("sdp", {"type": "answer", "sdp": "not a session description"})
    assert [e["code"] for e in errors] == ["bad-sdp"]
    assert await ana.answer(offer) == []  # the offer was still waiting
    errors = await ana.send("sdp", {"type": "answer", "sdp": ana.pcs[0].localDescription.sdp})
    assert [e["code"] for e in errors] == ["no-offer"]  # ... and is now answered


async def test_listener_is_not_offered_anything_in_an_empty_room(
    hub: RunningHub, connect: Connect
) -> None:
    ana = await connect(hub.url)
    await ana.join("dockers", "Ana")
    await ana.sync()
    assert ana.received("sdp") == []


# -- chat, hand, media state --------------------------------------------------------------------


async def test_chat_reaches_everyone_and_later_joiners_see_it(
    hub: RunningHub, connect: Connect
) -> None:
    ana, bo, cy = await connect(hub.url), await connect(hub.url), await connect(hub.url)
    ana_id = (await ana.join("dockers", "Ana"))["id"]
    await bo.join("dockers", "Bo")

    assert await ana.send("chat", {"text": "  Strike vote at 5pm \n"}) == []
    mine = await ana.wait_for("chat")
    theirs = await bo.wait_for("chat")
    assert mine == theirs
    assert {k: mine[k] for k in ("from", "name", "text")} == {
        "from": ana_id, "name": "Ana", "text": "Strike vote at 5pm",
    }
    assert isinstance(mine["ts"], int) and mine["ts"] > 1_600_000_000_000

    joined = await cy.join("dockers", "Cy")
    assert joined["chat"] == [mine]


async def test_hand_is_shown_to_others(hub: RunningHub, connect: Connect) -> None:
    ana, bo = await connect(hub.url), await connect(hub.url)
    ana_id = (await ana.join("dockers", "Ana"))["id"]
    await bo.join("dockers", "Bo")

    assert await ana.send("hand", {"raised": True}) == []
    update = await bo.wait_for("participant-updated", lambda p: p["id"] == ana_id)
    assert update["hand"] is True and update["name"] == "Ana"

    assert await ana.send("hand", {"raised": False}) == []
    await bo.wait_for("participant-updated", lambda p: p["id"] == ana_id and not p["hand"])


async def test_media_state_is_shown_to_others(hub: RunningHub, connect: Connect) -> None:
    ana, bo = await connect(hub.url), await connect(hub.url)
    ana_id = (await ana.join("dockers", "Ana", audio=True, video=True))["id"]
    await bo.join("dockers", "Bo")

    assert await ana.send("media-state", {"audio": False}) == []
    muted = await bo.wait_for("participant-updated", lambda p: p["id"] == ana_id)
    assert (muted["audio"], muted["video"]) == (False, True)

    assert await ana.send("media-state", {"video": False}) == []  # audio stays as it was
    await bo.sync()
    assert [(p["audio"], p["video"]) for p in bo.received("participant-updated")] == [
        (False, True), (False, False),
    ]
    cy_joined = await (await connect(hub.url)).join("dockers", "Cy")  # latecomers see it too
    assert {p["id"]: (p["audio"], p["video"]) for p in cy_joined["participants"]}[ana_id] == (
        False, False,
    )


# -- leaving --------------------------------------------------------------------------------------


async def test_leave_tells_others_and_the_last_one_out_closes_the_room(
    hub: RunningHub, connect: Connect
) -> None:
    ana, bo = await connect(hub.url), await connect(hub.url)
    ana_id = (await ana.join("dockers", "Ana", audio=True))["id"]
    await bo.join("dockers", "Bo")

    assert await ana.send("leave", {}) == []
    assert await bo.wait_for("participant-left") == {"id": ana_id}
    assert set(hub.server.store.rooms) == {"dockers"}
    assert hub.server.sfu.peer(ana_id) is None

    assert await bo.send("leave", {}) == []
    assert hub.server.store.rooms == {}
    assert hub.server.sfu.rooms == {}
    assert hub.server.sfu.stats()["peers"] == 0

    # a socket that left is out: it must join again before doing anything
    assert [e["code"] for e in await ana.send("chat", {"text": "hi"})] == ["not-joined"]
    assert (await ana.join("dockers", "Ana"))["participants"] == []


@pytest.mark.parametrize("abrupt", [False, True], ids=["disconnect", "connection-lost"])
async def test_disconnect_is_a_leave(hub: RunningHub, connect: Connect, abrupt: bool) -> None:
    async with aiohttp.ClientSession() as session:
        ana = await connect(hub.url, http_session=session)
        bo = await connect(hub.url)
        ana_id = (await ana.join("dockers", "Ana", audio=True))["id"]
        await bo.join("dockers", "Bo")

        if abrupt:
            await session.close()  # TCP connection gone: no Socket.IO or websocket goodbye
        else:
            await ana.sio.disconnect()

        assert await bo.wait_for("participant-left") == {"id": ana_id}
    assert await eventually(lambda: hub.server.sfu.peer(ana_id) is None)
    assert [p.name for p in hub.server.store.rooms["dockers"].participants.values()] == ["Bo"]

    await bo.sio.disconnect()
    assert await eventually(lambda: not hub.server.store.rooms and not hub.server.sfu.rooms)


@pytest.mark.parametrize("abrupt", [False, True], ids=["disconnect", "connection-lost"])
async def test_dropping_mid_negotiation_leaves_no_peer(
    hub: RunningHub, connect: Connect, abrupt: bool
) -> None:
    async with aiohttp.ClientSession() as session:
        ana = await connect(hub.url, http_session=session)
        bo = await connect(hub.url)
        ana_id = (await ana.join("dockers", "Ana", audio=True, video=True))["id"]
        await bo.join("dockers", "Bo")
        await ana.wait_for("sdp")  # the offer is out; Ana never answers
        peer = hub.server.sfu.peer(ana_id)
        assert peer is not None and hub.server.sfu.stats()["peers"] == 2

        if abrupt:
            await session.close()
        else:
            await ana.sio.disconnect()

        assert await bo.wait_for("participant-left") == {"id": ana_id}
    assert await eventually(lambda: hub.server.sfu.stats()["peers"] == 1)
    assert hub.server.sfu.peer(ana_id) is None
    assert peer.pc.connectionState == "closed"

    await bo.sio.disconnect()
    assert await eventually(lambda: hub.server.sfu.rooms == {})
    assert hub.server.sfu.stats()["peers"] == 0


async def raw_join_and_vanish(url: str, join: dict[str, Any]) -> None:
    """Engine.IO v4 by hand: connect, send `join` and drop the socket in the same breath,
    as a browser tab closed right after clicking "join" does."""
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(ws_url)
        assert (await ws.receive_str(timeout=TIMEOUT)).startswith("0")  # engine.io open
        await ws.send_str("40")  # socket.io connect
        assert (await ws.receive_str(timeout=TIMEOUT)).startswith("40")
        await ws.send_str("42" + json.dumps(["join", join]))
        await ws.send_str("41")  # socket.io disconnect
        await ws.close()


async def test_socket_gone_right_after_join_leaves_no_ghost(
    hub: RunningHub, connect: Connect
) -> None:
    observer = await connect(hub.url)
    joined = await observer.join("dockers", "Observer")
    for i in range(3):
        await raw_join_and_vanish(
            hub.url, {"room": "dockers", "name": f"Ghost {i}", "audio": True, "video": False}
        )

    assert await eventually(lambda: len(hub.server.store.by_sid) == 1)
    await eventually(lambda: hub.server.sfu.stats()["peers"] == 1, timeout=3)  # give it time
    await observer.sync()
    assert participants_seen(observer, joined) == set()  # nobody lingers in the list
    assert hub.server.sfu.stats()["peers"] == 1  # only the observer's connection
    assert list(hub.server.sfu.rooms["dockers"].peers) == [joined["id"]]


# -- rejected events ------------------------------------------------------------------------------

VALID_ANSWER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        ("join", {"room": "other", "name": "Ana"}, "already-joined"),
        ("join", {"room": "dockers", "name": "Ana"}, "already-joined"),
        ("chat", {"text": "x" * 2001}, "too-large"),
        ("chat", {"text": " \n "}, "bad-request"),
        ("chat", "hello", "bad-request"),
        ("chat", None, "bad-request"),
        ("hand", {"raised": "yes"}, "bad-request"),
        ("hand", ["raised"], "bad-request"),
        ("media-state", {}, "bad-request"),
        ("media-state", {"audio": 0}, "bad-request"),
        ("sdp", {"type": "answer", "sdp": VALID_ANSWER}, "no-offer"),
        ("sdp", {"type": "offer", "sdp": VALID_ANSWER}, "bad-sdp"),
        ("sdp", {"type": "answer", "sdp": "v" * 100_001}, "too-large"),
        ("publish", {"source": "screen"}, "listener"),
        ("publish", {"source": "camera"}, "bad-source"),
        ("unpublish", {"source": "screen"}, "bad-source"),
    ],
)
async def test_bad_events_are_answered_with_an_error_and_change_nothing(
    hub: RunningHub, connect: Connect, event: str, payload: Any, code: str
) -> None:
    ana, bo = await connect(hub.url), await connect(hub.url)
    await ana.join("dockers", "Ana")
    await bo.join("dockers", "Bo")
    await bo.sync()
    before = room_state(hub.server)
    seen_by_bo = len(bo.events)

    errors = await ana.send(event, payload)

    assert len(errors) == 1
    assert errors[0]["code"] == code
    assert errors[0]["event"] == event
    assert isinstance(errors[0]["message"], str) and errors[0]["message"]
    assert room_state(hub.server) == before
    await bo.sync()
    assert bo.events[seen_by_bo:] == []


async def test_unknown_events_are_rejected(hub: RunningHub, connect: Connect) -> None:
    ana = await connect(hub.url)
    assert [e["code"] for e in await ana.send("shout", {"text": "hi"})] == ["unknown-event"]
    await ana.join("dockers", "Ana")
    before = room_state(hub.server)
    assert [e["code"] for e in await ana.send("kick", {"id": "x"})] == ["unknown-event"]
    assert room_state(hub.server) == before


async def test_extra_arguments_are_rejected(hub: RunningHub, connect: Connect) -> None:
    ana = await connect(hub.url)
    await ana.join("dockers", "Ana")
    await ana.sio.emit("chat", ({"text": "hi"}, "unexpected second argument"))
    await ana.sync()
    assert [e["code"] for e in ana.received("error")] == ["bad-request"]
    assert ana.received("chat") == []


async def test_event_named_disconnect_is_not_a_disconnect(hub: RunningHub, connect: Connect) -> None:
    ana = await connect(hub.url)
    ana_id = (await ana.join("dockers", "Ana"))["id"]
    errors = await ana.send("disconnect", "bye")  # an event packet, not a Socket.IO disconnect
    assert [e["code"] for e in errors] == ["unknown-event"]
    assert ana.sio.connected
    assert [p.id for p in hub.server.store.rooms["dockers"].participants.values()] == [ana_id]


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("chat", {"text": "hello"}),
        ("hand", {"raised": True}),
        ("media-state", {"audio": False}),
        ("publish", {"source": "screen"}),
        ("unpublish", {"source": "screen"}),
        ("sdp", {"type": "answer", "sdp": VALID_ANSWER}),
        ("leave", {}),
    ],
)
async def test_events_before_join_are_not_joined(
    hub: RunningHub, connect: Connect, event: str, payload: Any
) -> None:
    ana = await connect(hub.url)
    errors = await ana.send(event, payload)
    assert [(e["code"], e["event"]) for e in errors] == [("not-joined", event)]
    assert hub.server.store.rooms == {} and hub.server.sfu.rooms == {}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"room": "no spaces please", "name": "Ana"}, "bad-room"),
        ({"room": "", "name": "Ana"}, "bad-room"),
        ({"room": "r" * 65, "name": "Ana"}, "bad-room"),
        ({"room": "dockers", "name": "   "}, "bad-name"),
        ({"room": "dockers", "name": "Ana\x07"}, "bad-name"),
        ({"room": "dockers", "name": "n" * 65}, "bad-name"),
        ({"room": "dockers", "name": "Ana", "lang": "Portuguese"}, "bad-lang"),
        ({"room": "dockers", "name": "Ana", "audio": "yes"}, "bad-request"),
        ("dockers", "bad-request"),
        (["dockers", "Ana"], "bad-request"),
        (None, "bad-request"),
    ],
)
async def test_bad_join_is_rejected_and_the_socket_can_still_join(
    hub: RunningHub, connect: Connect, payload: Any, code: str
) -> None:
    ana = await connect(hub.url)
    errors = await ana.send("join", payload)
    assert [(e["code"], e["event"]) for e in errors] == [(code, "join")]
    assert ana.received("joined") == []
    assert hub.server.store.rooms == {} and hub.server.sfu.rooms == {}

    assert (await ana.join("dockers", "Ana"))["participants"] == []


async def test_room_full(
    make_hub: Callable[..., Awaitable[RunningHub]], connect: Connect
) -> None:
    small = await make_hub(max_participants=2)
    ana, bo, cy = await connect(small.url), await connect(small.url), await connect(small.url)
    await ana.join("dockers", "Ana")
    await bo.join("dockers", "Bo")
    await ana.sync()
    before = room_state(small.server)
    seen_by_ana = len(ana.events)

    errors = await cy.send("join", {"room": "dockers", "name": "Cy"})
    assert [e["code"] for e in errors] == ["room-full"]
    assert room_state(small.server) == before
    await ana.sync()
    assert ana.events[seen_by_ana:] == []  # nobody was announced

    assert (await cy.join("elsewhere", "Cy"))["participants"] == []  # other rooms are open
    assert await bo.send("leave", {}) == []
    await cy.send("leave", {})
    assert len((await cy.join("dockers", "Cy"))["participants"]) == 1  # a place freed up


async def test_server_full(
    make_hub: Callable[..., Awaitable[RunningHub]], connect: Connect
) -> None:
    small = await make_hub(max_rooms=1)
    ana, bo = await connect(small.url), await connect(small.url)
    await ana.join("dockers", "Ana")
    errors = await bo.send("join", {"room": "teachers", "name": "Bo"})
    assert [e["code"] for e in errors] == ["server-full"]
    assert set(small.server.store.rooms) == {"dockers"}
    assert (await bo.join("dockers", "Bo"))["participants"] != []  # existing rooms are open


async def test_screen_share_cannot_be_published_twice(hub: RunningHub, connect: Connect) -> None:
    ana = await connect(hub.url)
    await ana.join("dockers", "Ana", audio=True)
    first_offer = await ana.wait_for("sdp")

    assert await ana.send("publish", {"source": "screen"}) == []
    errors = await ana.send("publish", {"source": "screen"})  # e.g. a double click
    assert [e["code"] for e in errors] == ["bad-source"]

    assert await ana.answer(first_offer) == []
    offer = await ana.wait_for("sdp", lambda o: o is not first_offer)
    screens = [s for s in offer["tracks"].values() if s.get("source") == "screen"]
    assert screens == [{"role": "publish", "source": "screen", "kind": "video"}]


# -- recording ---------------------------------------------------------------------------


async def test_record_toggles_for_the_whole_room_and_a_repeat_is_answered(
    hub: RunningHub, connect: Connect
) -> None:
    ana, bo = await connect(hub.url), await connect(hub.url)
    joined = await ana.join("rec", "Ana")
    assert joined["recording"] == {"on": False, "id": None, "available": True}
    await bo.join("rec", "Bo")
    assert await ana.send("record", {"on": True}) == []
    started = await bo.wait_for("recording", lambda d: d["on"])
    assert started["id"]
    # Only hosts record by default; the host lets everyone.
    assert [e["code"] for e in await bo.send("record", {"on": False})] == ["forbidden"]
    assert await ana.send("settings", {"record": "everyone"}) == []
    await bo.wait_for("settings", lambda d: d["record"] == "everyone")
    since = len(bo.events)
    assert await bo.send("record", {"on": True}) == []  # already on: told, not ignored
    assert (await bo.wait_for("recording", since=since))["id"] == started["id"]
    assert await bo.send("record", {"on": False}) == []
    await ana.wait_for("recording", lambda d: not d["on"])
    # nobody published media: the empty recording is not kept
    assert hub.recordings is not None
    async with asyncio.timeout(TIMEOUT):
        while await hub.archive.get(started["id"]) is not None:
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("payload", [None, {}, {"on": "yes"}, [True]])
async def test_bad_record_requests_are_refused(hub: RunningHub, connect: Connect, payload: Any) -> None:
    ana = await connect(hub.url)
    await ana.join("rec-bad", "Ana")
    errors = await ana.send("record", payload)
    assert [e["code"] for e in errors] == ["bad-request"]
    assert hub.recordings is not None and hub.recordings.state("rec-bad")["on"] is False
