"""Per-socket event rate limit: a token bucket, so bursts (joining, renegotiating) pass and floods
do not."""

from __future__ import annotations

import time

#: Sustained events per second per socket, and the burst allowed on top.
RATE = 20.0
BURST = 40.0


class RateLimiter:
    """One bucket per socket id; ``allow(sid)`` spends a token or says no."""

    def __init__(self, rate: float = RATE, burst: float = BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # sid -> (tokens, last refill)

    def allow(self, sid: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(sid, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[sid] = (tokens, now)
            return False
        self._buckets[sid] = (tokens - 1.0, now)
        return True

    def forget(self, sid: str) -> None:
        self._buckets.pop(sid, None)
