"""signalling/rooms.py: membership, limits, what others see, and bounded chat history."""

from __future__ import annotations

import pytest

from signalling.rooms import CHAT_HISTORY, RoomRegistry
from signalling.validation import JoinRequest, SignallingError


def request(
    room: str = "dockers", name: str = "Ana", lang: str = "en", audio: bool = True, video: bool = True
) -> JoinRequest:
    return JoinRequest(room=room, name=name, lang=lang, audio=audio, video=video)


def rejection(registry: RoomRegistry, sid: str, req: JoinRequest) -> str:
    with pytest.raises(SignallingError) as info:
        registry.join(sid, req)
    return info.value.code


def test_join_creates_the_room_and_the_participant() -> None:
    registry = RoomRegistry()
    room, ana = registry.join("sid-a", request(name="Ana", lang="pt", audio=True, video=False))
    assert room.name == "dockers"
    assert registry.rooms == {"dockers": room}
    assert room.participants == {ana.id: ana}
    assert registry.get("sid-a") == (room, ana)
    assert (ana.sid, ana.room, ana.name, ana.lang) == ("sid-a", "dockers", "Ana", "pt")
    assert (ana.publishes_audio, ana.publishes_video) == (True, False)
    assert not ana.hand and not ana.screen


def test_participants_of_a_room_share_it_and_get_distinct_ids() -> None:
    registry = RoomRegistry()
    room_a, ana = registry.join("sid-a", request(name="Ana"))
    room_b, bo = registry.join("sid-b", request(name="Bo"))
    assert room_a is room_b
    assert ana.id != bo.id
    assert set(room_a.participants) == {ana.id, bo.id}


def test_leave_removes_the_participant_and_the_room_when_empty() -> None:
    registry = RoomRegistry()
    room, ana = registry.join("sid-a", request(name="Ana"))
    _, bo = registry.join("sid-b", request(name="Bo"))

    assert registry.leave("sid-a") == (room, ana)
    assert set(room.participants) == {bo.id}
    assert "dockers" in registry.rooms

    assert registry.leave("sid-b") == (room, bo)
    assert registry.rooms == {}
    assert registry.by_sid == {}


def test_leave_of_an_unknown_socket_changes_nothing() -> None:
    registry = RoomRegistry()
    registry.join("sid-a", request())
    assert registry.leave("sid-unknown") is None
    assert registry.leave("sid-a") is not None
    assert registry.leave("sid-a") is None


def test_a_socket_can_rejoin_after_leaving() -> None:
    registry = RoomRegistry()
    _, first = registry.join("sid-a", request(room="one"))
    registry.leave("sid-a")
    room, second = registry.join("sid-a", request(room="two"))
    assert room.name == "two"
    assert second.id != first.id
    assert set(registry.rooms) == {"two"}


def test_already_joined_socket_is_rejected_and_stays_where_it_was() -> None:
    registry = RoomRegistry()
    room, ana = registry.join("sid-a", request(room="one"))
    assert rejection(registry, "sid-a", request(room="two")) == "already-joined"
    assert set(registry.rooms) == {"one"}
    assert registry.get("sid-a") == (room, ana)


def test_get_before_join_is_not_joined() -> None:
    registry = RoomRegistry()
    with pytest.raises(SignallingError) as info:
        registry.get("sid-a")
    assert info.value.code == "not-joined"


def test_room_full_at_the_participant_limit() -> None:
    registry = RoomRegistry(max_participants=2)
    room, _ = registry.join("sid-a", request())
    registry.join("sid-b", request())
    assert rejection(registry, "sid-c", request()) == "room-full"
    assert len(room.participants) == 2
    assert "sid-c" not in registry.by_sid
    # other rooms are unaffected, and a place frees up when someone leaves
    registry.join("sid-c", request(room="other"))
    registry.leave("sid-a")
    registry.join("sid-d", request())
    assert len(room.participants) == 2


def test_server_full_at_the_room_limit_but_existing_rooms_still_open() -> None:
    registry = RoomRegistry(max_rooms=2)
    registry.join("sid-a", request(room="one"))
    registry.join("sid-b", request(room="two"))
    assert rejection(registry, "sid-c", request(room="three")) == "server-full"
    assert set(registry.rooms) == {"one", "two"}
    assert "sid-c" not in registry.by_sid

    registry.join("sid-c", request(room="one"))  # joining an existing room is fine
    registry.leave("sid-b")  # room "two" closes ...
    registry.join("sid-d", request(room="three"))  # ... so a new one may open
    assert set(registry.rooms) == {"one", "three"}


def test_rejected_join_into_a_new_room_does_not_create_it() -> None:
    registry = RoomRegistry(max_participants=0)
    assert rejection(registry, "sid-a", request(room="ghost")) == "room-full"
    assert registry.rooms == {}


def test_public_view_has_exactly_the_protocol_fields() -> None:
    registry = RoomRegistry()
    _, ana = registry.join("sid-a", request(name="Ana", lang="ar"))
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
    registry = RoomRegistry()
    _, listener = registry.join("sid-a", request(audio=False, video=False))
    listener.audio = True  # e.g. a media-state {audio: true} from a listener
    listener.video = True
    public = listener.public()
    assert public["audio"] is False and public["video"] is False
    assert "publishes_audio" not in public and "sid" not in public


def test_public_view_follows_mute_state() -> None:
    registry = RoomRegistry()
    _, ana = registry.join("sid-a", request(audio=True, video=True))
    ana.audio = False
    ana.hand = True
    ana.screen = True
    public = ana.public()
    assert (public["audio"], public["video"], public["hand"], public["screen"]) == (
        False, True, True, True,
    )


def test_chat_messages_carry_sender_and_server_time() -> None:
    registry = RoomRegistry()
    room, ana = registry.join("sid-a", request(name="Ana"))
    first = registry.add_chat(room, ana, "hello")
    second = registry.add_chat(room, ana, "again")
    assert {k: first[k] for k in ("from", "name", "text")} == {
        "from": ana.id, "name": "Ana", "text": "hello",
    }
    assert isinstance(first["ts"], int) and first["ts"] > 1_600_000_000_000  # ms, not s
    assert first["id"] != second["id"]
    assert list(room.chat) == [first, second]


def test_chat_history_keeps_only_the_latest_messages() -> None:
    registry = RoomRegistry()
    room, ana = registry.join("sid-a", request())
    for i in range(CHAT_HISTORY + 25):
        registry.add_chat(room, ana, f"message {i}")
    texts = [m["text"] for m in room.chat]
    assert len(texts) == CHAT_HISTORY
    assert texts[0] == "message 25"
    assert texts[-1] == f"message {CHAT_HISTORY + 24}"
