"""Cameras nobody receives: ask their publishers to stop sending them, and to start again.

Why: with last-N (``lastn.py``) a meeting of 30 forwards each subscriber 8 videos, mostly the
same recent speakers' for everyone, so most cameras reach nobody — yet every one of them still
costs its publisher's uplink (the phone on a congested network) and the hub a decryption and
a frame assembly per frame received. Jitsi's bridge tells such senders to stop (its "sender
video constraints"); this is the same policy. A camera is *wanted* while at least one of its
subscribers is not paused by last-N or congestion — a recording or a live stream, which the
SFU never pauses, keeps it wanted.

A camera that stops being wanted is released only after :data:`RELEASE_AFTER` seconds (a
tile that comes and goes with each short remark must not stall its publisher's encoder each
time); a camera wanted again is asked for at once: the browser restarts its encoder with a
keyframe, which the subscribers that resumed are waiting for.

Pure policy over (publisher, source) keys, no media and no clock of its own: the SFU reports
what each room's subscriptions want (:meth:`CameraDemand.update`), the time passes through
:meth:`CameraDemand.tick`, and the decisions come out through the ``notify`` callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

#: Seconds a camera must be wanted by nobody before its publisher is asked to stop sending it.
RELEASE_AFTER = 2.0

#: ``(participant, wanted)``: tell a publisher to stop (False) or start again (True) sending
#: its camera.
Notify = Callable[[str, bool], None]


@dataclass
class CameraDemand:
    """Which publishers were asked to stop sending their camera, and since when it is unwanted."""

    notify: Notify
    release_after: float = RELEASE_AFTER
    #: publishers asked to stop sending (their camera reaches nobody)
    released: set[str] = field(default_factory=set)
    #: publishers whose camera nobody wants, since when (``time.monotonic()``), not yet released
    _unwanted_since: dict[str, float] = field(default_factory=dict)
    #: how often a publisher was asked to stop / to start again
    releases: int = 0
    recalls: int = 0

    def update(self, wanted: Mapping[str, bool], now: float) -> None:
        """The cameras of one room (publisher: whether anyone receives it). A camera wanted
        again after a release is asked for at once; one newly unwanted starts its clock."""
        for publisher, is_wanted in wanted.items():
            if is_wanted:
                self._unwanted_since.pop(publisher, None)
                if publisher in self.released:
                    self.released.discard(publisher)
                    self.recalls += 1
                    self._tell(publisher, True)
            elif publisher not in self.released:
                self._unwanted_since.setdefault(publisher, now)

    def tick(self, now: float) -> None:
        """Release the cameras nobody has wanted for :attr:`release_after` seconds."""
        due = [p for p, since in self._unwanted_since.items() if now - since >= self.release_after]
        for publisher in due:
            del self._unwanted_since[publisher]
            self.released.add(publisher)
            self.releases += 1
            self._tell(publisher, False)

    def forget(self, publisher: str) -> None:
        """The publisher left, or its camera ended: nothing more to ask of it (a camera
        published again starts wanted, as a browser's sender does)."""
        self._unwanted_since.pop(publisher, None)
        self.released.discard(publisher)

    def _tell(self, publisher: str, wanted: bool) -> None:
        logger.debug("camera of %s %s", publisher, "wanted again" if wanted else "reaches nobody: released")
        try:
            self.notify(publisher, wanted)
        except Exception:  # the signalling side's failure must not stop forwarding
            logger.exception("telling %s its camera is %s failed", publisher, "wanted" if wanted else "unwanted")
