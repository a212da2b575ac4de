"""How features meet a room: the :class:`Feature` they implement and the :class:`RoomHub` they get.

Captions, recordings and live streams are clients of the room, as Galène's disk writer is just
another client: the meeting layer calls every feature at the same moments (someone joined, the
room ended, a caption was made, the hub stops) and knows none of them by name. A feature gets
the room's media through ``hub.sfu.watch`` and speaks to the room through ``hub.notify``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, cast, get_args, runtime_checkable

from media_server import SFU

from .vocabulary import ROLES, Role

#: Host controls that reach people served by another process of the same room (a spanned room);
#: "settings": a host changed the room's settings there (its media and lobby follow here).
HostAction = Literal["mute", "stop-camera", "remove", "role", "end", "admit", "reject", "settings"]
HOST_ACTIONS: tuple[HostAction, ...] = get_args(HostAction)


@dataclass(frozen=True)
class Control:
    """A host's control for someone of ``room`` this process does not serve (a cluster's spanned
    room: they are on its other half; for admit and reject, a knocker's id). ``target`` None:
    everyone there (mute all, end, settings)."""

    room: str
    action: HostAction
    target: str | None
    by: str  # the host's participant id
    by_name: str
    ban: bool = False  # (remove)
    role: Role | None = None  # (role)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Control:
        """Raises ValueError on anything but what :meth:`to_json` made."""
        action, target, role = data.get("action"), data.get("target"), data.get("role")
        if action not in HOST_ACTIONS or not (target is None or isinstance(target, str)) or \
                not (role is None or role in ROLES):
            raise ValueError("not a host control")
        return cls(str(data["room"]), cast(HostAction, action), target, str(data["by"]), str(data["by_name"]),
                   bool(data.get("ban")), cast(Role | None, role))


class RoomHub(Protocol):
    """What the meeting layer offers a feature (implemented by :class:`SignallingServer`)."""

    sfu: SFU

    def participant_info(self, participant_id: str) -> tuple[str, str] | None:
        """(display name, profile language) of someone in a room."""
        ...

    def participant_name(self, participant_id: str) -> str | None: ...

    def names(self, room: str) -> list[str]:
        """Display names of everyone in the room now."""
        ...

    def caption_languages(self, room: str) -> set[str]:
        """Languages the room's captions are wanted in (by people or by features)."""
        ...

    def relayed(self, room: str) -> bool:
        """Whether this process serves ``room`` as the relay half of a room another process owns
        (a cluster's spanned room): the owner hears both halves' voices and makes their captions."""
        ...

    async def remote_participants(self, room: str) -> list[dict[str, Any]]:
        """What everyone sees of the room's people served by other processes (a spanned room's
        other half: ``id``, ``name``, ``lang``, ...); [] if none."""
        ...

    def interprets(self, participant_id: str) -> str | None:
        """The language ``participant_id`` interprets into (None: they speak on the floor)."""
        ...

    def live_channels(self, room: str) -> dict[str, str]:
        """``{language: participant id}`` of the interpreters live in ``room`` now."""
        ...

    async def emit_caption(self, room: str, lang: str, caption: dict[str, Any]) -> None:
        """Send a caption to the room's readers of ``lang`` (and to every feature)."""
        ...

    def notify(self, event: str, payload: dict[str, Any], room: str | None = None) -> None:
        """Send ``event`` to everyone in ``room`` (everyone on the hub with None), in the background."""
        ...


class Feature(Protocol):
    """A client of every room. ``name`` is its key in ``joined`` (PROTOCOL.md); the defaults do
    nothing, so a feature implements only the moments it cares about."""

    name: str

    def state(self, room: str) -> dict[str, Any]:
        """What ``joined`` carries under ``name`` for someone joining ``room``."""
        ...

    async def before_join(self, room: str) -> None:
        """Someone asks to join ``room`` here: raise a SignallingError to refuse (e.g. ``moved``:
        the room lives on another node of a cluster)."""
        return None

    async def participant_joined(self, room: str, name: str, first: bool) -> None:
        """Someone entered ``room`` (``first``: the room was empty)."""
        return None

    async def room_changed(self, room: str, state: dict[str, Any]) -> None:
        """What outlives connections changed (``Room.durable()``: settings, bans, roles)."""
        return None

    async def room_ended(self, room: str) -> None:
        """The last participant left, or a host ended the meeting."""
        return None

    def caption_languages(self, room: str) -> set[str]:
        """Caption languages this feature needs in ``room`` besides what people chose."""
        return set()

    async def on_caption(self, room: str, lang: str, caption: dict[str, Any]) -> None:
        return None

    async def translate_chat(self, text: str, source: str, langs: set[str]) -> dict[str, str]:
        """Translations of a chat message, by language (once per language, not per reader)."""
        return {}

    def stats(self) -> dict[str, Any]:
        """Counters for ``/healthz``."""
        return {}

    async def close(self) -> None:
        return None


@runtime_checkable
class Distributed(Feature, Protocol):
    """A feature through which other processes serve a room too (a cluster's spanned room):
    it hears of everyone here and brings in who and what is elsewhere."""

    async def participant_changed(self, room: str, participant_id: str, public: dict[str, Any] | None) -> None:
        """Someone of ``room`` joined or changed (``public``: what others see of them) or left
        (None) — a cluster tells the other half of a spanned room."""
        ...

    async def remote_participants(self, room: str) -> list[dict[str, Any]]:
        """People of ``room`` served elsewhere (the other half of a spanned room), as ``joined``
        lists them."""
        ...

    async def control(self, control: Control) -> bool:
        """Carry a host's control to the people of the room served elsewhere; False: nobody
        there by that id (or the room is served here only)."""
        ...

    async def knocker_changed(self, room: str, knock_id: str, public: dict[str, Any] | None) -> None:
        """Someone knocks on ``room`` here (``public``: what hosts see of them), or no longer
        does (None: let in, turned away, gone)."""
        ...

    async def remote_knockers(self, room: str) -> list[dict[str, Any]]:
        """The people knocking on ``room`` elsewhere (the other half of a spanned room), as
        ``joined.lobby`` lists them for a host."""
        ...


@runtime_checkable
class Switchable(Feature, Protocol):
    """A feature hosts turn on and off for a room (recording, live streaming)."""

    async def switch(self, room: str, on: bool) -> bool:
        """Turn it on or off; False if it already was (two people clicked at once)."""
        ...


@runtime_checkable
class Pushable(Switchable, Protocol):
    """A live stream that can also be pushed to an RTMP(S) destination."""

    def push(self, room: str, url: str | None) -> bool:
        """Start (None: stop) pushing; False if the room is not live."""
        ...


#: What ``joined`` says of a feature this hub runs without (``--no-captions``, ``--no-recordings``).
OFF_STATES: dict[str, dict[str, Any]] = {
    "captions": {"available": False, "translation": False, "languages": [],
                 "message": "Captions are turned off on this server."},
    "recording": {"on": False, "id": None, "available": False},
    "live": {"on": False, "url": None, "available": False},
}
