"""Simultaneous interpretation in one room: booths, who is live in each, who listens to what.

A pure model (no media, no protocol), like ``lastn.py``: the meeting layer
(:mod:`signalling.booths`) changes it on hosts' and interpreters' events and asks it, for every
subscriber and every interpreter, whether that interpreter's voice goes to that subscriber. The
SFU never subscribes anyone it says no to, so the floor never hears an interpreter whatever a
client does.

- An **interpreter** belongs to one **booth**, the booth of the language they interpret into;
  several interpreters per booth are partners. A language with a booth is an audio **channel**.
- At most one interpreter per booth is **live** (:meth:`Interpretation.go_live` refuses while a
  partner is; :meth:`Interpretation.hand_over` moves the microphone in one step). Only the live
  interpreter is heard, and only on their channel.
- Everyone hears the **floor** (every voice that is not an interpreter's). A participant's
  channel is the one they chose, or else (``auto``) their own language's when it has a booth:
  a Spanish speaker hears the Spanish booth without doing anything. Interpreters listen to the
  floor unless they choose a channel (relay: interpreting from another booth's output).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import SignallingError
from .vocabulary import FLOOR


@dataclass
class Booth:
    """The interpreters of one language, in the order they were made interpreters."""

    lang: str
    members: list[str] = field(default_factory=list)
    live: str | None = None


class Interpretation:
    """Booths and channel choices of one room (participant ids, no names)."""

    def __init__(self) -> None:
        self.booths: dict[str, Booth] = {}
        self._booth_of: dict[str, str] = {}  # interpreter -> language
        self._chosen: dict[str, str] = {}  # participant -> channel picked (FLOOR or a language)

    # -- interpreters ------------------------------------------------------------------------

    def booth_of(self, participant: str) -> str | None:
        """The language ``participant`` interprets into, if they interpret."""
        return self._booth_of.get(participant)

    def assign(self, participant: str, lang: str | None) -> bool:
        """Make ``participant`` interpret into ``lang`` (None: no longer); False if nothing changed.
        Leaving a booth while live leaves it with nobody live."""
        if self._booth_of.get(participant) == lang:
            return False
        self._leave_booth(participant)
        if lang is not None:
            self.booths.setdefault(lang, Booth(lang)).members.append(participant)
            self._booth_of[participant] = lang
        return True

    def _leave_booth(self, participant: str) -> None:
        lang = self._booth_of.pop(participant, None)
        if lang is None:
            return
        booth = self.booths[lang]
        booth.members.remove(participant)
        if booth.live == participant:
            booth.live = None
        if not booth.members:
            del self.booths[lang]

    def forget(self, participant: str) -> None:
        """``participant`` left the room."""
        self._leave_booth(participant)
        self._chosen.pop(participant, None)

    # -- the microphone ----------------------------------------------------------------------

    def _booth(self, participant: str) -> Booth:
        lang = self._booth_of.get(participant)
        if lang is None:
            raise SignallingError("not-interpreter", "Only interpreters have a booth.")
        return self.booths[lang]

    def go_live(self, participant: str) -> bool:
        """``participant`` takes their booth's microphone; ``booth-busy`` while a partner has it."""
        booth = self._booth(participant)
        if booth.live == participant:
            return False
        if booth.live is not None:
            raise SignallingError("booth-busy", "Your partner is live: ask them to hand over.")
        booth.live = participant
        return True

    def go_off(self, participant: str) -> bool:
        """``participant`` leaves the microphone (their channel then has nobody live)."""
        booth = self._booth(participant)
        if booth.live != participant:
            return False
        booth.live = None
        return True

    def hand_over(self, participant: str, to: str | None = None) -> str:
        """The live ``participant`` gives the microphone to a partner (``to``, or the only other
        one) in one step: never two live, never none. Returns the partner now live."""
        booth = self._booth(participant)
        if booth.live != participant:
            raise SignallingError("booth-not-live", "Only the live interpreter can hand over.")
        partners = [m for m in booth.members if m != participant]
        if to is None:
            if len(partners) != 1:
                raise SignallingError("bad-request", "Say which partner takes over ('to').")
            to = partners[0]
        if to not in partners:
            raise SignallingError("no-such-participant", "That person is not a partner in your booth.")
        booth.live = to
        return to

    def live(self, lang: str) -> str | None:
        booth = self.booths.get(lang)
        return booth.live if booth is not None else None

    # -- listening ---------------------------------------------------------------------------

    def choose(self, participant: str, channel: str) -> None:
        """``participant`` picks a channel (FLOOR, or a language; ``no-channel`` if it has no booth)."""
        if channel != FLOOR and channel not in self.booths:
            raise SignallingError("no-channel", "Nobody interprets into that language in this meeting.")
        self._chosen[participant] = channel

    def channel_of(self, participant: str, own_lang: str) -> str:
        """The channel ``participant`` hears: their choice while it exists, else their own
        language's (not for interpreters), else the floor."""
        chosen = self._chosen.get(participant)
        if chosen is not None and (chosen == FLOOR or chosen in self.booths):
            return chosen
        if participant not in self._booth_of and own_lang in self.booths:
            return own_lang
        return FLOOR

    def hears(self, subscriber: str, subscriber_lang: str, publisher: str) -> bool:
        """Whether ``publisher``'s voice goes to ``subscriber``: the floor's always; an
        interpreter's only while live, and only to those on their channel."""
        lang = self._booth_of.get(publisher)
        if lang is None:
            return True
        return self.booths[lang].live == publisher and self.channel_of(subscriber, subscriber_lang) == lang

    def on_floor(self, participant: str) -> bool:
        """Whether ``participant`` speaks on the floor (counts for the active speaker)."""
        return participant not in self._booth_of

    # -- what clients see --------------------------------------------------------------------

    def public(self, names: dict[str, str]) -> dict[str, Any]:
        """``{channels: [{lang, interpreters: [{id, name}], live}]}`` (sorted by language);
        ``names``: display names by participant id."""
        return {
            "channels": [
                {
                    "lang": booth.lang,
                    "interpreters": [{"id": m, "name": names.get(m, "")} for m in booth.members],
                    "live": booth.live,
                }
                for booth in sorted(self.booths.values(), key=lambda b: b.lang)
            ]
        }
