"""The interpretation model (``signalling/interpretation.py``): booths, the live microphone,
channels and who hears whom — no media, no sockets."""

from __future__ import annotations

import pytest

from signalling.errors import SignallingError
from signalling.interpretation import Interpretation


def refused(code: str, action: object, *args: object) -> None:
    with pytest.raises(SignallingError) as caught:
        action(*args)  # type: ignore[operator]
    assert caught.value.code == code


def test_a_booth_never_has_two_live_and_hand_over_leaves_no_gap() -> None:
    room = Interpretation()
    room.assign("lucia", "es")
    room.assign("luis", "es")
    room.assign("ana", "es")
    assert room.go_live("lucia") and room.live("es") == "lucia"
    refused("booth-busy", room.go_live, "luis")
    refused("booth-not-live", room.hand_over, "luis")
    refused("bad-request", room.hand_over, "lucia")  # two partners: say which
    refused("no-such-participant", room.hand_over, "lucia", "someone-else")
    assert room.hand_over("lucia", "ana") == "ana" and room.live("es") == "ana"
    assert not room.go_off("lucia") and room.go_off("ana") and room.live("es") is None
    assert room.go_live("luis")
    room.forget("luis")  # the live interpreter left: nobody is live, the booth remains
    assert room.live("es") is None and room.booths["es"].members == ["lucia", "ana"]
    refused("not-interpreter", room.go_live, "sofia")


def test_the_floor_hears_no_interpreter_and_listeners_hear_their_channel() -> None:
    room = Interpretation()
    room.assign("lucia", "es")
    assert room.hears("fiona", "en", "sofia")  # a floor voice: everyone
    assert not room.hears("sofia", "es", "lucia")  # not live: nobody
    room.go_live("lucia")
    assert room.hears("sofia", "es", "lucia")  # her own language: without asking
    assert not room.hears("fiona", "en", "lucia")
    assert room.channel_of("fiona", "en") == "floor"
    room.choose("fiona", "es")
    assert room.hears("fiona", "en", "lucia")
    room.choose("sofia", "floor")
    assert not room.hears("sofia", "es", "lucia")
    refused("no-channel", room.choose, "fiona", "ar")
    # an interpreter hears the floor unless they pick a channel (relay)
    room.assign("amal", "ar")
    assert room.channel_of("amal", "es") == "floor" and not room.hears("amal", "es", "lucia")
    room.choose("amal", "es")
    assert room.hears("amal", "ar", "lucia")
    assert not room.on_floor("lucia") and room.on_floor("fiona")


def test_a_channel_that_goes_away_sends_its_listeners_back_to_the_floor() -> None:
    room = Interpretation()
    room.assign("lucia", "es")
    room.choose("ed", "es")
    assert room.channel_of("ed", "en") == "es"
    room.assign("lucia", None)
    assert room.booths == {} and room.channel_of("ed", "en") == "floor" and room.channel_of("sofia", "es") == "floor"
    room.assign("lucia", "es")
    room.go_live("lucia")
    room.assign("lucia", "pt")  # moved to another booth: she is not live anywhere
    assert room.live("pt") is None and "es" not in room.booths
    assert room.public({"lucia": "Lucía"}) == {
        "channels": [{"lang": "pt", "interpreters": [{"id": "lucia", "name": "Lucía"}], "live": None}]
    }
