"""What ``/metrics`` needs measured over time: event-loop lag, forwarding totals, subscriber RTT.

Everything else ``/metrics`` shows is read from the live state at scrape time (``metrics.py``).
Three things cannot be:

* **event-loop lag** exists only while it happens: a small task sleeps :data:`TICK` and records
  how late it woke up (what Node's ``monitorEventLoopDelay`` and asyncio's debug mode measure);
* **totals**: the SFU counts frames on publications and forwarded tracks, which end with their
  participant, so the sum over the live ones falls when someone leaves — a Prometheus counter
  must only grow. Each tick adds what every live object counted since the previous tick
  (:class:`Totals`), so a counter loses at most one tick of an object that ended;
* **round-trip time** comes from aiortc's ``RTCRtpSender.getStats()``, a coroutine that a
  Prometheus collector (synchronous) cannot await: it is read every :data:`RTT_EVERY` ticks.

Sampling walks every subscription of every room — 2·N·(N−1) tracks in a meeting of N — so it runs
once a second, not every tick (at N = 30, 4 samples a second were a fifth of the hub's CPU), and
the RTT read yields to the loop between participants.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiortc import RTCRtpSender

from core.tasks import cancel
from media_server import SFU, ForwardedTrack

logger = logging.getLogger(__name__)

#: Seconds between two ticks.
TICK = 0.25
#: The loop lag reported is the worst of this many seconds.
LAG_WINDOW = 10.0
#: Ticks between two samples of the totals (every second).
SAMPLE_EVERY = 4
#: Ticks between two reads of the subscribers' round-trip times (every 5 s).
RTT_EVERY = 20


@dataclass
class Totals:
    """Monotonic sums of counters that live on objects which come and go (see the module doc)."""

    total: int = 0
    rate: float = 0.0  # per second over the last tick
    _last: dict[str, int] = field(default_factory=dict)

    def sample(self, values: Iterable[tuple[str, int]], seconds: float) -> None:
        """``values``: (key of a live object, its counter now)."""
        now = dict(values)
        delta = sum(max(0, v - self._last.get(k, 0)) for k, v in now.items())
        self.total += delta
        self.rate = delta / seconds if seconds > 0 else 0.0
        self._last = now


class Monitor:
    """The owned task behind :class:`Totals`, loop lag and RTT; started and closed with the app."""

    def __init__(self, sfu: SFU) -> None:
        self._sfu = sfu
        self.frames_in = {"audio": Totals(), "video": Totals()}
        self.frames_forwarded = {"audio": Totals(), "video": Totals()}
        self.frames_dropped = Totals()
        self.bytes_forwarded = Totals()
        self.keyframe_requests = Totals()
        #: round-trip time (s) of each subscriber's downlink, as aiortc last estimated it
        self.rtt: dict[str, float] = {}
        self._lags: deque[tuple[float, float]] = deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def loop_lag(self) -> float:
        """The longest a tick woke up late (s) in the last :data:`LAG_WINDOW` seconds."""
        return max((lag for _, lag in self._lags), default=0.0)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="metrics-monitor")

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        last = sampled = time.monotonic()
        ticks = 0
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            self._lags.append((now, max(0.0, now - last - TICK)))
            while self._lags and self._lags[0][0] < now - LAG_WINDOW:
                self._lags.popleft()
            ticks += 1
            try:
                if ticks % SAMPLE_EVERY == 0:
                    self._sample(now - sampled)
                    sampled = now
                if ticks % RTT_EVERY == 0:
                    await self._read_rtt()
            except Exception:  # monitoring must never take the hub down
                logger.exception("metrics sampling failed")
            last = time.monotonic()

    def _sample(self, seconds: float) -> None:
        rooms = list(self._sfu.rooms.values())
        publications = [p for r in rooms for p in r.publications.values()]
        for kind, totals in self.frames_in.items():
            totals.sample(((p.id, p.frames) for p in publications if p.kind == kind), seconds)
        self.keyframe_requests.sample(((p.id, p.plis) for p in publications), seconds)
        peers = [peer for r in rooms for peer in r.peers.values()]
        tracks = [t for peer in peers for t in peer.subscribed_tracks() if isinstance(t, ForwardedTrack)]
        for kind, totals in self.frames_forwarded.items():
            totals.sample(((t.id, t.forwarded) for t in tracks if t.kind == kind), seconds)
        self.frames_dropped.sample(((t.id, t.dropped) for t in tracks), seconds)
        self.bytes_forwarded.sample(((peer.participant, peer.sent.bytes) for peer in peers), seconds)

    async def _read_rtt(self) -> None:
        rtt: dict[str, float] = {}
        for room in list(self._sfu.rooms.values()):
            for peer in list(room.peers.values()):
                value = await _peer_rtt(peer.pc.getSenders())
                if value is not None:
                    rtt[peer.participant] = value
                await asyncio.sleep(0)  # getStats never suspends: let media through between peers
        self.rtt = rtt


async def _peer_rtt(senders: Iterable[RTCRtpSender]) -> float | None:
    """The first round-trip time a sender of this peer knows (they share one bundled transport)."""
    for sender in senders:
        if sender.track is None:
            continue
        try:
            report = await sender.getStats()
        except Exception:  # a transport closing under us: no value this time
            continue
        for stats in report.values():
            if getattr(stats, "type", None) == "remote-inbound-rtp":
                value = getattr(stats, "roundTripTime", None)
                if value is not None:
                    return float(value)
    return None
