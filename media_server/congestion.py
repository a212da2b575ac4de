"""Downlink congestion: how many videos one subscriber's link can carry, from its RTCP feedback.

A pure policy (no media, no sockets; the caller passes the clock): the SFU feeds each
subscriber's :class:`Downlink` the receiver reports (RFC 3550 fraction lost, per kind) and REMB
estimates its browser sends back, and asks it once per tick (:meth:`Downlink.update`) for a
*cap*: the most videos to forward. The last-N policy then keeps the highest-ranked videos
(``lastn.ranked``) and pauses the rest; audio is never capped.

Why this signal: the hub forwards, it does not transcode, so it cannot lower one subscriber's
bitrate — it can only stop sending a video. aiortc negotiates ``goog-remb`` and ``abs-send-time``
(no transport-wide feedback), so a browser sends receiver reports (loss) and REMB (its
delay-based estimate). Congested means either

* the mean fraction lost of the subscriber's **video** reports is above :data:`LOSS_HIGH` in each
  half of the last :data:`WINDOW` seconds (loss in one second only is a hiccup — a browser
  starved of CPU for a moment drops what its socket could not hold — not a link that is full), or
* its latest **audio** reports (over :data:`AUDIO_WINDOW`) lost more than :data:`LOSS_HIGH`.
  Browsers report on audio every ~5 s (Chrome: video every second), so one audio report
  already covers seconds. Audio matters most: video is repaired by retransmission (NACK) before
  a report counts it lost, audio is not, so a link can lose a quarter of the audio while the
  video's reports look almost clean —
the threshold of Google congestion control (draft-ietf-rmcat-gcc: over 10 % the rate
decreases; a few % of random loss on a radio link is not congestion). A link that is full drops
packets once its queue is full, so loss comes whatever the queue size.

The REMB estimate is kept (:attr:`Downlink.estimate`, logged with each step) but does not
decide: tried as a signal ("fell twice in 2 s, below what is sent"), it paused video on clean
loopback links whenever the event loop was busy — a delay-based estimate reads a loaded hub as
a congested link, and pausing video for everyone then is the wrong answer. Transport-wide
feedback (which would let the hub run its own estimator) is not negotiated by aiortc.

A congested subscriber loses one video per :data:`HOLD` seconds (the lowest-ranked first) until
the signals clear, down to none. Recovery must be probed: a browser's estimate never rises much
above what it receives (GCC caps it at 1.5× the incoming rate), so while only audio arrives it
says nothing about room for video. After :attr:`Downlink.backoff` seconds without congestion
one video comes back; if congestion returns within :data:`PROBE_WINDOW`, the probe failed and
the wait doubles (up to :data:`MAX_BACKOFF`), so a link that stays bad pays a short dip at
growing intervals, and a link that recovers gets its video back within seconds.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

#: Seconds of video feedback that count, and of audio feedback (reported less often).
WINDOW = 2.0
AUDIO_WINDOW = 6.0
#: Mean fraction lost above which a link is congested.
LOSS_HIGH = 0.10
#: Two estimates this close with the same value are one REMB (it names several streams).
SAME_REMB = 0.1
#: Seconds between two steps (each removes or restores one video), so a step can take effect.
HOLD = 2.0
#: Seconds without congestion before the first probe, and the longest wait between probes.
FIRST_BACKOFF = 10.0
MAX_BACKOFF = 64.0
#: Congestion this soon after a probe started means the probe failed.
PROBE_WINDOW = 5.0


class Kind(enum.StrEnum):
    """What a receiver report is about."""

    AUDIO = "audio"
    VIDEO = "video"


class Reason(enum.StrEnum):
    """Why a downlink counts as congested (logged)."""

    LOSS = "loss"


@dataclass(frozen=True, slots=True)
class Report:
    at: float
    kind: Kind
    fraction_lost: float  # 0..1


class Downlink:
    """One subscriber's downlink, as its RTCP feedback shows it (see the module docstring)."""

    def __init__(self) -> None:
        #: The most videos to forward to this subscriber now; None: no limit.
        self.cap: int | None = None
        self.backoff = FIRST_BACKOFF
        self.steps_down = 0
        self.probes = 0
        self.failed_probes = 0
        self.last_reason: Reason | None = None
        self._reports: deque[Report] = deque()
        self._estimates: deque[tuple[float, int]] = deque()
        self._changed_at = float("-inf")
        self._probe_at: float | None = None
        self._congested_at = float("-inf")

    # -- feedback ---------------------------------------------------------------------------

    def on_report(self, kind: Kind, fraction_lost: float, now: float) -> None:
        """A receiver report block for one of the subscriber's streams (fraction 0..1)."""
        self._reports.append(Report(now, kind, min(max(fraction_lost, 0.0), 1.0)))

    def on_estimate(self, bps: int, now: float) -> None:
        """A REMB: the bitrate the subscriber's browser estimates its link can take."""
        if self._estimates and self._estimates[-1][1] == bps and now - self._estimates[-1][0] < SAME_REMB:
            return  # one REMB reaches every sender it names
        self._estimates.append((now, bps))

    @property
    def estimate(self) -> int | None:
        """The latest REMB estimate (bits/s), if any."""
        return self._estimates[-1][1] if self._estimates else None

    def _expire(self, now: float) -> None:
        while self._reports and self._reports[0].at < now - AUDIO_WINDOW:
            self._reports.popleft()
        # keep one estimate older than the window: the latest stays known while none arrives
        while len(self._estimates) > 1 and self._estimates[1][0] < now - WINDOW:
            self._estimates.popleft()

    def congestion(self, now: float) -> Reason | None:
        """Whether the link is congested now, and why."""
        self._expire(now)
        video = [r for r in self._reports if r.kind is Kind.VIDEO and r.at >= now - WINDOW]
        older = [r.fraction_lost for r in video if r.at < now - WINDOW / 2]
        newer = [r.fraction_lost for r in video if r.at >= now - WINDOW / 2]
        if older and newer and min(sum(older) / len(older), sum(newer) / len(newer)) > LOSS_HIGH:
            return Reason.LOSS
        audio = [r.fraction_lost for r in self._reports if r.kind is Kind.AUDIO]
        if audio and sum(audio) / len(audio) > LOSS_HIGH:
            return Reason.LOSS
        return None

    # -- the decision -----------------------------------------------------------------------

    def update(self, now: float, videos: int, wanted: int) -> int | None:
        """The cap after this tick. ``videos``: how many videos it receives now; ``wanted``: how
        many last-N would give it without a cap (a cap that reaches it is lifted)."""
        reason = self.congestion(now)
        if reason is not None:
            self._congested_at = now
            self.last_reason = reason
        if now - self._changed_at < HOLD:
            return self.cap
        if reason is not None:
            if self._probe_at is not None and now - self._probe_at <= PROBE_WINDOW:
                self.failed_probes += 1
                self.backoff = min(self.backoff * 2, MAX_BACKOFF)
            self._probe_at = None
            if videos > 0 and (self.cap is None or self.cap > 0):
                self.cap = videos - 1
                self.steps_down += 1
                self._changed(now)
            return self.cap
        if self._probe_at is not None and now - self._probe_at > PROBE_WINDOW:
            self._probe_at = None  # the probe held: the link carries one more video
            self.backoff = max(FIRST_BACKOFF, self.backoff / 2)
        if self.cap is not None and now - max(self._changed_at, self._congested_at) >= self.backoff:
            self.cap += 1
            self.probes += 1
            self._probe_at = now
            if self.cap >= wanted:
                self.cap = None
            self._changed(now)
        return self.cap

    def _changed(self, now: float) -> None:
        """A step was taken: feedback from before it says nothing about the new rate."""
        self._changed_at = now
        self._reports.clear()
