"""How features meet a room: the :class:`Feature` they implement and the :class:`RoomHub` they get.

Captions, recordings and live streams are clients of the room, as Galène's disk writer is just
another client: the meeting layer calls every feature at the same moments (someone joined, the
room ended, a caption was made, the hub stops) and knows none of them by name. A feature gets
the room's media through ``hub.sfu.watch`` and speaks to the room through ``hub.notify``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from media_server import SFU


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
