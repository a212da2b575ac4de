"""Where a new room goes: the better of two random live nodes (Mitzenmacher's "power of two
choices": nearly as balanced as asking every node, without everyone piling onto the one that
looked emptiest a moment ago), with a penalty for nodes that just took rooms — their load
figures do not show those yet (Jitsi caps a bridge's join rate for the same reason)."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Sequence

from .nodes import NodeInfo

#: Seconds a placement counts against a node, and what it counts (in load score units: about
#: what a room with a few people adds before its first heartbeat shows it).
RECENT = 10.0
PENALTY = 20.0


class Placement:
    """Chooses nodes for new rooms; remembers its recent choices."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._recent: deque[tuple[float, str]] = deque()

    def _penalty(self, node_id: str, now: float) -> float:
        while self._recent and self._recent[0][0] < now - RECENT:
            self._recent.popleft()
        return PENALTY * sum(1 for _, n in self._recent if n == node_id)

    def choose(self, nodes: Sequence[NodeInfo], now: float | None = None) -> NodeInfo:
        """The node for a new room (``nodes``: the live ones, at least one)."""
        if not nodes:
            raise ValueError("no live node to place a room on")
        now = time.monotonic() if now is None else now
        pair = self._rng.sample(list(nodes), 2) if len(nodes) >= 2 else [nodes[0]]
        best = min(pair, key=lambda n: (n.load.score + self._penalty(n.id, now), n.id))
        self._recent.append((now, best.id))
        return best
