"""Validation of every client event: types, sizes and syntax, with protocol error codes."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from media_server.lastn import MAX_LAST_N, MIN_LAST_N

from .errors import Code, SignallingError, refusal
from .vocabulary import (
    ACCESS,
    BOOTH_ACTIONS,
    FLOOR,
    PUBLISHABLE,
    ROLES,
    WHO,
    Access,
    BoothAction,
    Publishable,
    Role,
    Who,
)

__all__ = ["JoinRequest", "SignallingError"]  # SignallingError: re-exported for existing callers

ROOM_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
MAX_NAME = 64
MAX_CHAT = 2000
MAX_SDP = 100_000

MAX_TOKEN = 4096
RTMP_URL_RE = re.compile(r"rtmps?://[A-Za-z0-9.\-\[\]:]+(:\d+)?/\S+")
MAX_RTMP_URL = 2048
MAX_PASSCODE = 128
MIN_PASSCODE = 4
CLIENT_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PARTICIPANT_RE = re.compile(r"^[0-9a-f]{12}$")
#: ``video-prefs``: at most this many pinned participants, and visible tiles reported
MAX_PINNED = MAX_LAST_N
MAX_VISIBLE = 100


@dataclass(frozen=True)
class JoinRequest:
    room: str
    name: str
    lang: str
    audio: bool
    video: bool
    token: str | None = None
    passcode: str | None = None
    client: str | None = None
    audio_only: bool = False  # "data saver": receive no video, publish no camera or screen


def _obj(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SignallingError("bad-request", "The event payload must be a JSON object.")
    return data


def _bool(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise SignallingError("bad-request", f"'{key}' must be true or false.")
    return value


def _str(data: dict[str, Any], key: str, code: Code, limit: int) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise SignallingError(code, f"'{key}' must be a string.")
    if len(value) > limit:
        raise SignallingError("too-large", f"'{key}' is longer than {limit} characters.")
    return value


def room_name(value: Any) -> str:
    if not isinstance(value, str) or not ROOM_RE.fullmatch(value):
        raise SignallingError(
            "bad-room",
            "Room names are 1–64 letters, digits, '-' or '_' (no spaces).",
        )
    return value


def display_name(value: Any) -> str:
    if not isinstance(value, str):
        raise SignallingError("bad-name", "Please give a display name.")
    name = " ".join(value.split())
    if not name:
        raise SignallingError("bad-name", "Please give a display name.")
    if len(name) > MAX_NAME:
        raise refusal("name-too-long", count=MAX_NAME)
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise SignallingError("bad-name", "Display names cannot contain control characters.")
    return name


def language(value: Any) -> str:
    if not isinstance(value, str) or not LANG_RE.fullmatch(value):
        raise SignallingError("bad-lang", "Language must be a code like 'en', 'pt' or 'pt-BR'.")
    return value


def _opt_str(data: dict[str, Any], key: str, limit: int) -> str | None:
    if data.get(key) is None:
        return None
    value = _str(data, key, "bad-request", limit)
    return value or None


def join(data: Any) -> JoinRequest:
    d = _obj(data)
    token = _opt_str(d, "token", MAX_TOKEN)
    client = _opt_str(d, "client", 64)
    if client is not None and not CLIENT_RE.fullmatch(client):
        raise SignallingError("bad-request", "'client' must be 8–64 letters, digits, '-' or '_'.")
    return JoinRequest(
        room=room_name(d.get("room")),
        # a signed link carries the name: the one typed in is not needed then
        name="" if token is not None else display_name(d.get("name")),  # a signed link names its holder
        lang=language(d.get("lang", "en")),
        audio=_bool(d, "audio", True),
        video=_bool(d, "video", True),
        token=token,
        passcode=_opt_str(d, "passcode", MAX_PASSCODE),
        client=client,
        audio_only=_bool(d, "audioOnly", False),
    )


def participant_id(d: dict[str, Any]) -> str:
    value = d.get("id")
    if not isinstance(value, str) or not PARTICIPANT_RE.fullmatch(value):
        raise SignallingError("bad-request", "'id' must be a participant id.")
    return value


def target(data: Any) -> str:
    """``{id}`` of a host control."""
    return participant_id(_obj(data))


def mute(data: Any) -> str | None:
    """``{id}`` → that participant; ``{all: true}`` → None (everyone)."""
    d = _obj(data)
    if d.get("all") is True and "id" not in d:
        return None
    return participant_id(d)


def remove(data: Any) -> tuple[str, bool]:
    d = _obj(data)
    return participant_id(d), _bool(d, "ban", False)


def role_name(value: Any) -> Role:
    if value not in ROLES:
        raise SignallingError("bad-request", f"'role' must be one of: {', '.join(ROLES)}.")
    return cast(Role, value)


def role(data: Any) -> tuple[str, Role]:
    d = _obj(data)
    value = d.get("role")
    return participant_id(d), role_name(value)


class SettingsChange(TypedDict, total=False):
    """What a host's ``settings`` event changes (``passcode`` comes with ``access: passcode``)."""

    access: Access
    passcode: str
    locked: bool
    record: Who
    live: Who
    last_n: int  # "lastN" on the wire
    low_bandwidth: bool  # "lowBandwidth" on the wire


def settings(data: Any) -> SettingsChange:
    """A partial RoomSettings (plus ``passcode`` with ``access: passcode``)."""
    d = _obj(data)
    unknown = set(d) - {"access", "passcode", "locked", "record", "live", "lastN", "lowBandwidth"}
    if unknown:
        raise SignallingError("bad-request", f"Unknown setting '{sorted(unknown)[0][:32]}'.")
    if not d:
        raise SignallingError("bad-request", "Give at least one setting.")
    out = SettingsChange()
    if "access" in d:
        if d["access"] not in ACCESS:
            raise SignallingError("bad-request", f"'access' must be one of: {', '.join(ACCESS)}.")
        out["access"] = cast(Access, d["access"])
    if "passcode" in d:
        code = _str(d, "passcode", "bad-request", MAX_PASSCODE).strip()
        if len(code) < MIN_PASSCODE:
            raise refusal("passcode-too-short", count=MIN_PASSCODE)
        out["passcode"] = code
    if out.get("access") == "passcode" and "passcode" not in out:
        raise refusal("passcode-missing")
    if "locked" in d:
        out["locked"] = _bool(d, "locked", False)
    if "record" in d:
        out["record"] = _who(d, "record")
    if "live" in d:
        out["live"] = _who(d, "live")
    if "lastN" in d:
        out["last_n"] = _last_n(d)
    if "lowBandwidth" in d:
        out["low_bandwidth"] = _bool(d, "lowBandwidth", False)
    return out


def _last_n(d: dict[str, Any]) -> int:
    value = d["lastN"]
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_LAST_N <= value <= MAX_LAST_N:
        raise refusal("last-n-range", min=MIN_LAST_N, max=MAX_LAST_N)
    return value


class VideoPrefsChange(TypedDict, total=False):
    """What a ``video-prefs`` event changes (fields left out keep their value)."""

    last_n: int | None  # None: the room's N again
    pinned: tuple[str, ...]
    visible: frozenset[str] | None  # None: the client reports no visibility (every tile counts)


def _ids(d: dict[str, Any], key: str, limit: int) -> list[str]:
    value = d[key]
    if not isinstance(value, list):
        raise SignallingError("bad-request", f"'{key}' must be a list of participant ids.")
    if len(value) > limit:
        raise SignallingError("too-large", f"'{key}' lists at most {limit} participants.")
    if not all(isinstance(v, str) and PARTICIPANT_RE.fullmatch(v) for v in value):
        raise SignallingError("bad-request", f"'{key}' must be a list of participant ids.")
    return list(dict.fromkeys(value))


def video_prefs(data: Any) -> VideoPrefsChange:
    """``video-prefs {lastN?, pinned?, visible?}``: a participant's own last-N preferences."""
    d = _obj(data)
    unknown = set(d) - {"lastN", "pinned", "visible"}
    if unknown:
        raise SignallingError("bad-request", f"Unknown preference '{sorted(unknown)[0][:32]}'.")
    if not d:
        raise SignallingError("bad-request", "Give 'lastN', 'pinned' and/or 'visible'.")
    out = VideoPrefsChange()
    if "lastN" in d:
        out["last_n"] = None if d["lastN"] is None else _last_n(d)
    if "pinned" in d:
        out["pinned"] = tuple(_ids(d, "pinned", MAX_PINNED))
    if "visible" in d:
        out["visible"] = None if d["visible"] is None else frozenset(_ids(d, "visible", MAX_VISIBLE))
    return out


def _who(d: dict[str, Any], key: str) -> Who:
    if d[key] not in WHO:
        raise SignallingError("bad-request", f"'{key}' must be 'hosts' or 'everyone'.")
    return cast(Who, d[key])


def answer(data: Any) -> str:
    d = _obj(data)
    if d.get("type") != "answer":
        raise SignallingError("bad-sdp", "Only answers are accepted: the server makes all offers.")
    sdp = _str(d, "sdp", "bad-sdp", MAX_SDP)
    return sdp


def source(data: Any) -> Publishable:
    d = _obj(data)
    value = d.get("source")
    if value not in PUBLISHABLE:
        raise SignallingError("bad-source", f"'source' must be one of: {', '.join(PUBLISHABLE)}.")
    return cast(Publishable, value)


def media_state(data: Any) -> tuple[bool | None, bool | None]:
    """(audio on, video on); ``None`` for a field the client did not send."""
    d = _obj(data)
    if "audio" not in d and "video" not in d:
        raise SignallingError("bad-request", "Give 'audio' and/or 'video'.")
    audio = _bool(d, "audio", True) if "audio" in d else None
    video = _bool(d, "video", True) if "video" in d else None
    return audio, video


def hand(data: Any) -> bool:
    d = _obj(data)
    if "raised" not in d:
        raise SignallingError("bad-request", "'raised' must be true or false.")
    return _bool(d, "raised", False)


def chat(data: Any) -> str:
    d = _obj(data)
    text = _str(d, "text", "bad-request", MAX_CHAT * 8)  # leading/trailing blanks are trimmed
    text = text.strip()
    if not text:
        raise SignallingError("bad-request", "Chat messages cannot be empty.")
    if len(text) > MAX_CHAT:
        raise refusal("chat-too-long", count=MAX_CHAT)
    return text


def caption_language(data: Any) -> str:
    d = _obj(data)
    return language(d.get("lang"))


def record(data: Any) -> bool:
    d = _obj(data)
    if "on" not in d:
        raise SignallingError("bad-request", "'on' must be true or false.")
    return _bool(d, "on", False)


def audio_only(data: Any) -> bool:
    """``audio-only {on}``: whether the participant switches to audio only."""
    d = _obj(data)
    if "on" not in d:
        raise SignallingError("bad-request", "'on' must be true or false.")
    return _bool(d, "on", False)


def push_url(data: Any) -> str | None:
    """An RTMP(S) destination (server URL + stream key), or None to stop pushing."""
    d = _obj(data)
    url = d.get("url")
    if url is None:
        return None
    if not valid_rtmp_url(url):
        raise SignallingError(
            "bad-rtmp-url", "Give the full stream URL with its key, e.g. rtmp://a.rtmp.youtube.com/live2/KEY."
        )
    return str(url)


def valid_rtmp_url(url: object) -> bool:
    """An ``rtmp://`` or ``rtmps://`` URL with a path (the stream key): what live-push accepts."""
    return isinstance(url, str) and len(url) <= MAX_RTMP_URL and RTMP_URL_RE.fullmatch(url) is not None


# -- interpretation (``interpretation.py``) ---------------------------------------------------


def interpreter(data: Any) -> tuple[str, str | None]:
    """A host's ``interpreter {id, lang}``: make them interpret into ``lang`` (null: no longer)."""
    d = _obj(data)
    lang = d.get("lang")
    return participant_id(d), None if lang is None else language(lang)


def audio_channel(data: Any) -> str:
    """``audio-channel {channel}``: "floor" or a language code."""
    value = _obj(data).get("channel")
    return FLOOR if value == FLOOR else language(value)


def booth(data: Any) -> tuple[BoothAction, str | None]:
    """``booth {action, to?}``: go live, go off, or hand over (to a partner; ``to`` optional)."""
    d = _obj(data)
    action = d.get("action")
    if action not in BOOTH_ACTIONS:
        raise SignallingError("bad-request", f"'action' must be one of: {', '.join(BOOTH_ACTIONS)}.")
    to = participant_id({"id": d["to"]}) if action == "handover" and d.get("to") is not None else None
    return cast(BoothAction, action), to
