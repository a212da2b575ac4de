"""signalling/validation.py: every client payload is checked, with the protocol's error codes."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalling import validation
from signalling.validation import MAX_CHAT, MAX_NAME, MAX_SDP, JoinRequest, SignallingError


def error_code(func: Callable[[Any], Any], value: Any) -> str:
    with pytest.raises(SignallingError) as info:
        func(value)
    assert info.value.message  # every rejection explains itself to the user
    return info.value.code


NOT_AN_OBJECT = [None, "room", 1, 1.5, True, [], ["room", "name"]]
VALID_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


# -- room names -----------------------------------------------------------------------------


@pytest.mark.parametrize("room", ["a", "Union-Meeting_2024", "x" * 64, "0", "-_-"])
def test_room_name_accepts_protocol_syntax(room: str) -> None:
    assert validation.room_name(room) == room


@pytest.mark.parametrize(
    "room",
    [
        "",
        "x" * 65,
        "has space",
        "dot.ted",
        "slash/room",
        "ünïcode",
        "tab\troom",
        "room\n",  # `$` also matches before a final newline; the syntax must not
        "\nroom",
        None,
        42,
        ["room"],
    ],
)
def test_room_name_rejects_everything_else(room: Any) -> None:
    assert error_code(validation.room_name, room) == "bad-room"


# -- display names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ana", "Ana"),
        ("  Ana   Souza ", "Ana Souza"),
        ("Ana\tSouza\n", "Ana Souza"),
        ("Ana\u00a0Souza", "Ana Souza"),  # no-break space is whitespace too
        ("علي", "علي"),
        ("José 🌹", "José 🌹"),
        ("n" * MAX_NAME, "n" * MAX_NAME),
        ("  " + "n" * MAX_NAME + "  ", "n" * MAX_NAME),  # the limit applies after trimming
    ],
)
def test_display_name_is_whitespace_normalised(raw: str, expected: str) -> None:
    assert validation.display_name(raw) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "\t\n",
        "n" * (MAX_NAME + 1),
        "Ana\x00",
        "Ana\x07Souza",
        "\x1b[31mred",
        "Ana\u200bSouza",  # zero-width space: invisible, format (Cf) character
        "Ana\u202eazuoS",  # right-to-left override: spoofs how the name reads
        None,
        7,
        ["Ana"],
        {"name": "Ana"},
    ],
)
def test_display_name_rejects_empty_long_and_control_characters(name: Any) -> None:
    assert error_code(validation.display_name, name) == "bad-name"


@given(st.text(max_size=80))
def test_accepted_display_names_are_clean(raw: str) -> None:
    try:
        name = validation.display_name(raw)
    except SignallingError as exc:
        assert exc.code == "bad-name"
        return
    assert 1 <= len(name) <= MAX_NAME
    assert name == name.strip() and "  " not in name
    assert not any(unicodedata.category(ch).startswith("C") for ch in name)


# -- languages ------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "pt", "ar", "fil", "pt-BR", "zh-Hant", "es-419"])
def test_language_accepts_primary_tags(lang: str) -> None:
    assert validation.language(lang) == lang


@pytest.mark.parametrize(
    "lang", ["", "e", "EN", "english", "en-", "en_GB", "en-B", "en\n", " en", None, 1, ["en"]]
)
def test_language_rejects_other_strings(lang: Any) -> None:
    assert error_code(validation.language, lang) == "bad-lang"


# -- join -----------------------------------------------------------------------------------


def test_join_parses_a_full_request() -> None:
    req = validation.join(
        {"room": "dockers", "name": " Maria  Silva ", "lang": "pt", "audio": False, "video": True}
    )
    assert req == JoinRequest(room="dockers", name="Maria Silva", lang="pt", audio=False, video=True)


def test_join_defaults_to_english_with_camera_and_mic() -> None:
    req = validation.join({"room": "r", "name": "Ana"})
    assert (req.lang, req.audio, req.video) == ("en", True, True)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"name": "Ana"}, "bad-room"),
        ({"room": "a b", "name": "Ana"}, "bad-room"),
        ({"room": "r"}, "bad-name"),
        ({"room": "r", "name": "\x00"}, "bad-name"),
        ({"room": "r", "name": "Ana", "lang": "English"}, "bad-lang"),
        ({"room": "r", "name": "Ana", "lang": None}, "bad-lang"),
        ({"room": "r", "name": "Ana", "audio": "yes"}, "bad-request"),
        ({"room": "r", "name": "Ana", "video": 1}, "bad-request"),
        ({"room": "r", "name": "Ana", "audio": None}, "bad-request"),
    ],
)
def test_join_rejects_bad_fields(payload: dict[str, Any], code: str) -> None:
    assert error_code(validation.join, payload) == code


@pytest.mark.parametrize(
    "validator",
    [
        validation.join,
        validation.answer,
        validation.source,
        validation.media_state,
        validation.hand,
        validation.chat,
    ],
)
@pytest.mark.parametrize("payload", NOT_AN_OBJECT)
def test_payloads_must_be_objects(validator: Callable[[Any], Any], payload: Any) -> None:
    assert error_code(validator, payload) == "bad-request"


# -- sdp answers ----------------------------------------------------------------------------


def test_answer_returns_the_sdp() -> None:
    assert validation.answer({"type": "answer", "sdp": VALID_SDP}) == VALID_SDP


def test_answer_may_be_exactly_the_size_limit() -> None:
    sdp = "v" * MAX_SDP
    assert validation.answer({"type": "answer", "sdp": sdp}) == sdp


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"type": "offer", "sdp": VALID_SDP}, "bad-sdp"),
        ({"type": "pranswer", "sdp": VALID_SDP}, "bad-sdp"),
        ({"sdp": VALID_SDP}, "bad-sdp"),
        ({"type": "answer"}, "bad-sdp"),
        ({"type": "answer", "sdp": None}, "bad-sdp"),
        ({"type": "answer", "sdp": ["v=0"]}, "bad-sdp"),
        ({"type": "answer", "sdp": "v" * (MAX_SDP + 1)}, "too-large"),
    ],
)
def test_answer_rejects_offers_and_oversized_or_missing_sdp(
    payload: dict[str, Any], code: str
) -> None:
    assert error_code(validation.answer, payload) == code


# -- publish sources ------------------------------------------------------------------------


def test_source_accepts_screen() -> None:
    assert validation.source({"source": "screen"}) == "screen"


@pytest.mark.parametrize(
    "payload",
    [{}, {"source": "mic"}, {"source": "camera"}, {"source": "SCREEN"}, {"source": None},
     {"source": ["screen"]}, {"source": 1}],
)
def test_source_rejects_anything_but_screen(payload: dict[str, Any]) -> None:
    assert error_code(validation.source, payload) == "bad-source"


# -- media state, hand ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"audio": True, "video": False}, (True, False)),
        ({"audio": False}, (False, None)),
        ({"video": True}, (None, True)),
        ({"video": False, "other": 1}, (None, False)),
    ],
)
def test_media_state_reports_none_for_absent_fields(
    payload: dict[str, Any], expected: tuple[bool | None, bool | None]
) -> None:
    assert validation.media_state(payload) == expected


@pytest.mark.parametrize(
    "payload", [{}, {"mic": True}, {"audio": "on"}, {"audio": True, "video": 0}, {"video": None}]
)
def test_media_state_rejects_missing_or_non_boolean_fields(payload: dict[str, Any]) -> None:
    assert error_code(validation.media_state, payload) == "bad-request"


@pytest.mark.parametrize("raised", [True, False])
def test_hand(raised: bool) -> None:
    assert validation.hand({"raised": raised}) is raised


@pytest.mark.parametrize("payload", [{}, {"raised": None}, {"raised": "true"}, {"raised": 1}])
def test_hand_rejects_missing_or_non_boolean(payload: dict[str, Any]) -> None:
    assert error_code(validation.hand, payload) == "bad-request"


# -- chat -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", "hello"),
        ("  solidarity!  \n", "solidarity!"),
        ("line one\nline two", "line one\nline two"),
        ("x" * MAX_CHAT, "x" * MAX_CHAT),
        ("\t" + "x" * MAX_CHAT + "   ", "x" * MAX_CHAT),  # the limit applies after trimming
    ],
)
def test_chat_is_trimmed(text: str, expected: str) -> None:
    assert validation.chat({"text": text}) == expected


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "bad-request"),
        ({"text": None}, "bad-request"),
        ({"text": 5}, "bad-request"),
        ({"text": ""}, "bad-request"),
        ({"text": " \n\t "}, "bad-request"),
        ({"text": "x" * (MAX_CHAT + 1)}, "too-large"),
        ({"text": "x" * (10 * MAX_CHAT)}, "too-large"),
    ],
)
def test_chat_rejects_empty_non_text_and_too_long(payload: dict[str, Any], code: str) -> None:
    assert error_code(validation.chat, payload) == code


# -- any payload: a SignallingError or a result, nothing else --------------------------------

KEYS = st.sampled_from(
    ["room", "name", "lang", "audio", "video", "type", "sdp", "source", "raised", "text"]
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON_LIKE = st.recursive(
    SCALARS | st.sampled_from(["answer", "screen", "en", "room-1", "Ana"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(KEYS | st.text(max_size=8), children, max_size=6),
    max_leaves=20,
)
VALIDATORS: list[Callable[[Any], Any]] = [
    validation.room_name,
    validation.display_name,
    validation.language,
    validation.join,
    validation.answer,
    validation.source,
    validation.media_state,
    validation.hand,
    validation.chat,
]


@settings(max_examples=300, deadline=None)
@given(payload=JSON_LIKE)
def test_validators_only_ever_raise_signalling_errors(payload: Any) -> None:
    for validator in VALIDATORS:
        try:
            validator(payload)
        except SignallingError as exc:
            assert isinstance(exc.code, str) and exc.code
            assert exc.message
