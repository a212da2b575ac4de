"""signalling/store.py (MemoryRoomStore): membership, limits, what others see, and bounded chat history."""

from __future__ import annotations

import pytest

from signalling.rooms import CHAT_HISTORY
from signalling.store import MemoryRoomStore
from signalling.validation import JoinRequest, SignallingError


def request(
    room: str = "dockers", name: str = "Ana", lang: str = "en", audio: bool = True, video: bool = True
) -> JoinRequest:
    return JoinRequest(room=room, name=name, lang=lang, audio=audio, video=video)


def rejection(store: MemoryRoomStore, sid: str, req: JoinRequest) -> str:
    with pytest.raises(SignallingError) as info:
        store.join(sid, req)
    return info.value.code


def test_join_creates_the_room_and_the_participant() -> None:
    store = MemoryRoomStore()
    room, ana = store.join("sid-a", request(name="Ana", lang="pt", audio=True, video=False))
    assert room.name == "dockers"
    assert store.rooms == {"dockers": room}
    assert room.participants == {ana.id: ana}
    assert store.member("sid-a") == (room, ana)
    assert (ana.sid, ana.room, ana.name, ana.lang) == ("sid-a", "dockers", "Ana", "pt")
    assert (ana.publishes_audio, ana.publishes_video) == (True, False)
    assert not ana.hand and not ana.screen


def test_participants_of_a_room_share_it_and_get_distinct_ids() -> None:
    store = MemoryRoomStore()
    room_a, ana = store.join("sid-a", request(name="Ana"))
    room_b, bo = store.join("sid-b", request(name="Bo"))
    assert room_a is room_b
    assert ana.id != bo.id
    assert set(room_a.participants) == {ana.id, bo.id}


def test_leave_removes_the_participant_and_the_room_when_empty() -> None:
    store = MemoryRoomStore()
    room, ana = store.join("sid-a", request(name="Ana"))
    _, bo = store.join("sid-b", request(name="Bo"))

    assert store.leave("sid-a") == (room, ana)
    assert set(room.participants) == {bo.id}
    assert "dockers" in store.rooms

    assert store.leave("sid-b") == (room, bo)
    assert store.rooms == {}
    assert store.by_sid == {}


def test_leave_of_an_unknown_socket_changes_nothing() -> None:
    store = MemoryRoomStore()
    store.join("sid-a", request())
    assert store.leave("sid-unknown") is None
    assert store.leave("sid-a") is not None
    assert store.leave("sid-a") is None


def test_a_socket_can_rejoin_after_leaving() -> None:
    store = MemoryRoomStore()
    _, first = store.join("sid-a", request(room="one"))
    store.leave("sid-a")
    room, second = store.join("sid-a", request(room="two"))
    assert room.name == "two"
    assert second.id != first.id
    assert set(store.rooms) == {"two"}


def test_already_joined_socket_is_rejected_and_stays_where_it_was() -> None:
    store = MemoryRoomStore()
    room, ana = store.join("sid-a", request(room="one"))
    assert rejection(store, "sid-a", request(room="two")) == "already-joined"
    assert set(store.rooms) == {"one"}
    assert store.member("sid-a") == (room, ana)


def test_get_before_join_is_not_joined() -> None:
    store = MemoryRoomStore()
    with pytest.raises(SignallingError) as info:
        store.member("sid-a")
    assert info.value.code == "not-joined"


def test_room_full_at_the_participant_limit() -> None:
    store = MemoryRoomStore(max_participants=2)
    room, _ = store.join("sid-a", request())
    store.join("sid-b", request())
    assert rejection(store, "sid-c", request()) == "room-full"
    assert len(room.participants) == 2
    assert "sid-c" not in store.by_sid
    # other rooms are unaffected, and a place frees up when someone leaves
    store.join("sid-c", request(room="other"))
    store.leave("sid-a")
    store.join("sid-d", request())
    assert len(room.participants) == 2


def test_server_full_at_the_room_limit_but_existing_rooms_still_open() -> None:
    store = MemoryRoomStore(max_rooms=2)
    store.join("sid-a", request(room="one"))
    store.join("sid-b", request(room="two"))
    assert rejection(store, "sid-c", request(room="three")) == "server-full"
    assert set(store.rooms) == {"one", "two"}
    assert "sid-c" not in store.by_sid

    store.join("sid-c", request(room="one"))  # joining an existing room is fine
    store.leave("sid-b")  # room "two" closes ...
    store.join("sid-d", request(room="three"))  # ... so a new one may open
    assert set(store.rooms) == {"one", "three"}


def test_rejected_join_into_a_new_room_does_not_create_it() -> None:
    store = MemoryRoomStore(max_participants=0)
    assert rejection(store, "sid-a", request(room="ghost")) == "room-full"
    assert store.rooms == {}


def test_public_view_has_exactly_the_protocol_fields() -> None:
    store = MemoryRoomStore()
    _, ana = store.join("sid-a", request(name="Ana", lang="ar"))
    assert ana.public() == {
        "id": ana.id,
        "name": "Ana",
        "lang": "ar",
        "audio": True,
        "video": True,
        "screen": False,
        "hand": False,
        "role": "speaker",
        "verified": False,
    }


def test_public_view_hides_devices_the_participant_does_not_publish() -> None:
    store = MemoryRoomStore()
    _, listener = store.join("sid-a", request(audio=False, video=False))
    listener.audio = True  # e.g. a media-state {audio: true} from a listener
    listener.video = True
    public = listener.public()
    assert public["audio"] is False and public["video"] is False
    assert "publishes_audio" not in public and "sid" not in public


def test_public_view_follows_mute_state() -> None:
    store = MemoryRoomStore()
    _, ana = store.join("sid-a", request(audio=True, video=True))
    ana.audio = False
    ana.hand = True
    ana.screen = True
    public = ana.public()
    assert (public["audio"], public["video"], public["hand"], public["screen"]) == (
        False, True, True, True,
    )


def test_chat_messages_carry_sender_and_server_time() -> None:
    store = MemoryRoomStore()
    room, ana = store.join("sid-a", request(name="Ana"))
    first = store.add_chat(room, ana, "hello")
    second = store.add_chat(room, ana, "again")
    assert {k: first[k] for k in ("from", "name", "text")} == {
        "from": ana.id, "name": "Ana", "text": "hello",
    }
    assert isinstance(first["ts"], int) and first["ts"] > 1_600_000_000_000  # ms, not s
    assert first["id"] != second["id"]
    assert list(room.chat) == [first, second]


def test_chat_history_keeps_only_the_latest_messages() -> None:
    store = MemoryRoomStore()
    room, ana = store.join("sid-a", request())
    for i in range(CHAT_HISTORY + 25):
        store.add_chat(room, ana, f"message {i}")
    texts = [m["text"] for m in room.chat]
    assert len(texts) == CHAT_HISTORY
    assert texts[0] == "message 25"
    assert texts[-1] == f"message {CHAT_HISTORY + 24}"
