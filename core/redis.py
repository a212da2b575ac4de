"""One way to reach the cluster's Redis from a URL, Sentinel included.

``redis://`` and ``unix://`` URLs go to redis-py as they are. ``redis+sentinel://`` URLs —
``redis+sentinel://[user:password@]host1:port1,host2:port2/db/service`` — are the format
python-socketio's Redis manager reads, so one ``--redis`` value serves the Socket.IO manager,
the room leases and the caption pool alike: the client asks the Sentinels which server is the
master of ``service`` now, and asks again after a failover.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"


def connect(url: str, **options: Any) -> Redis:
    """A client for ``url`` (``options``: redis-py's, e.g. ``decode_responses``, timeouts)."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return Redis.from_url(url, **options)
    hosts = parts.netloc.rsplit("@", 1)[-1]
    sentinels: list[tuple[str, int]] = []
    for host_port in hosts.split(","):
        host, sep, port = host_port.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{url!r}: expected {SENTINEL_SCHEME}://host:port[,host:port…]/db/service")
        sentinels.append((host, int(port)))
    path = [p for p in parts.path.split("/") if p]
    if len(path) != 2 or not path[0].isdigit():
        raise ValueError(f"{url!r}: expected {SENTINEL_SCHEME}://host:port[,host:port…]/db/service")
    settings: dict[str, Any] = {**options, "db": int(path[0])}
    if parts.username:
        settings["username"] = parts.username
    if parts.password:
        settings["password"] = parts.password
    timeouts = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout") if k in options}
    sentinel = Sentinel(sentinels, sentinel_kwargs=timeouts)  # type: ignore[no-untyped-call]  # (redis-py leaves it unannotated)
    master: Redis = sentinel.master_for(path[1], **settings)
    return master
