"""Interpretation events: a host makes interpreters, interpreters work their booth, everyone
picks the channel they hear.

A mixin of the Socket.IO namespace, like :class:`~signalling.moderation.HostControls`; it acts
through the meeting's :class:`~signalling.interpreters.Interpreters`. Who may is checked here,
what is heard is the SFU's audience: no event lets the floor hear an interpreter.
"""

from __future__ import annotations

import logging
from typing import Any

from . import validation
from .errors import refusal
from .meeting import Meeting

logger = logging.getLogger(__name__)

#: Interpretation events, in PROTOCOL.md's order (``interpreter`` is a host's).
INTERPRETATION_EVENTS = ("interpreter", "audio-channel", "booth")


class InterpretationEvents:
    """The handlers (``on_<event>``, dashes as underscores)."""

    meeting: Meeting

    async def on_interpreter(self, sid: str, data: Any) -> None:
        target_id, lang = validation.interpreter(data)
        room, host = self.meeting.store.member(sid)
        if host.role != "host":
            raise refusal("hosts-make-interpreters")
        target = room.target(target_id)
        if lang is not None and target.role == "viewer":
            raise refusal("interpreter-needs-speaker")
        logger.info("room %s: %s makes %s interpret into %s", room.name, host.id, target.id, lang)
        await self.meeting.interpreters.assign(room, target, lang)

    async def on_audio_channel(self, sid: str, data: Any) -> None:
        channel = validation.audio_channel(data)
        _, participant = self.meeting.store.member(sid)
        heard = await self.meeting.interpreters.choose(participant, channel)
        await self.meeting.sio.emit("audio-channel", {"channel": heard}, to=sid)

    async def on_booth(self, sid: str, data: Any) -> None:
        action, to = validation.booth(data)
        _, participant = self.meeting.store.member(sid)
        await self.meeting.interpreters.act(participant, action, to)
