"""signalling/features.py: a feature is a client of every room, called at the same moments.

A recording feature, a live stream or a future interpreter channel plugs in with
``server.add(feature)``; these tests use a small feature of their own through the real hub.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sigclient import Connect, eventually
from signalling.features import Feature

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hubtest import RunningHub


class Notebook(Feature):
    """Writes down every moment the meeting layer tells it of."""

    name = "notebook"

    def __init__(self) -> None:
        self.moments: list[tuple[Any, ...]] = []
        self.closed = False

    def state(self, room: str) -> dict[str, Any]:
        return {"room": room, "pages": len(self.moments)}

    async def participant_joined(self, room: str, name: str, first: bool) -> None:
        self.moments.append(("joined", room, name, first))

    async def room_ended(self, room: str) -> None:
        self.moments.append(("ended", room))

    def caption_languages(self, room: str) -> set[str]:
        return {"sw"}

    async def on_caption(self, room: str, lang: str, caption: dict[str, Any]) -> None:
        self.moments.append(("caption", room, lang, caption["text"]))

    async def close(self) -> None:
        self.closed = True


async def test_a_feature_hears_joins_and_the_end_of_the_room_and_shows_in_joined(
    make_hub: Callable[..., Awaitable[RunningHub]], connect: Connect
) -> None:
    hub = await make_hub()
    notebook = Notebook()
    hub.server.add(notebook)
    ana, bo = await connect(hub.url), await connect(hub.url)

    joined = await ana.join("dockers", "Ana")
    assert joined["notebook"] == {"room": "dockers", "pages": 0}
    await bo.join("dockers", "Bo")
    assert notebook.moments == [("joined", "dockers", "Ana", True), ("joined", "dockers", "Bo", False)]

    await ana.close()
    await bo.close()
    assert await eventually(lambda: ("ended", "dockers") in notebook.moments)
    assert notebook.moments.count(("ended", "dockers")) == 1  # once, when the last one left


async def test_captions_reach_readers_and_features_and_features_ask_for_languages(
    make_hub: Callable[..., Awaitable[RunningHub]], connect: Connect
) -> None:
    hub = await make_hub()
    notebook = Notebook()
    hub.server.add(notebook)
    ana = await connect(hub.url)
    await ana.join("dockers", "Ana", lang="pt")
    # the room's caption languages: what people chose, plus what features need (a live stream's)
    assert hub.server.caption_languages("dockers") == {"pt", "sw"}

    await hub.server.emit_caption("dockers", "pt", {"text": "bom dia", "final": True})
    await hub.server.emit_caption("dockers", "sw", {"text": "habari", "final": True})
    caption = await ana.wait_for("caption")
    await ana.sync()
    assert caption["text"] == "bom dia"
    assert [c["text"] for c in ana.received("caption")] == ["bom dia"]  # only her language
    assert ("caption", "dockers", "sw", "habari") in notebook.moments


async def test_features_are_closed_when_the_hub_stops(make_hub: Callable[..., Awaitable[RunningHub]]) -> None:
    hub = await make_hub()
    notebook = Notebook()
    hub.server.add(notebook)
    await hub.runner.cleanup()
    assert notebook.closed


async def test_without_recordings_live_streams_stay_on(
    make_hub: Callable[..., Awaitable[RunningHub]], connect: Connect
) -> None:
    hub = await make_hub(recordings=False)
    ana = await connect(hub.url)
    joined = await ana.join("dockers", "Ana")
    assert joined["recording"]["available"] is False
    assert joined["live"]["available"] is True
    errors = await ana.send("record", {"on": True})
    assert [(e["code"], e["message"]) for e in errors] == [
        ("not-available", "Recording is turned off on this server.")
    ]


async def test_live_streams_can_be_turned_off_on_their_own(
    make_hub: Callable[..., Awaitable[RunningHub]], connect: Connect
) -> None:
    hub = await make_hub(live=False)
    ana = await connect(hub.url)
    joined = await ana.join("dockers", "Ana")
    assert joined["recording"]["available"] is True
    assert joined["live"] == {"on": False, "url": None, "available": False}
    for event, payload in (("live", {"on": True}), ("live-push", {"url": "rtmp://example.org/live/key"})):
        errors = await ana.send(event, payload)
        assert [(e["code"], e["message"]) for e in errors] == [
            ("not-available", "Live streaming is turned off on this server.")
        ], event
