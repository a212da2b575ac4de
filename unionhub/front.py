"""The front proxy of a cluster: one nginx origin for every node (``unionhub front-config``).

Browsers and Socket.IO must reach the node that owns a meeting, polling and websocket alike.
Nodes started with ``--front-proxy`` name that node in the page's ``node`` query parameter
(``cluster/node.py``), and the web client carries it into its Socket.IO handshake; nginx routes
on it, and sends everything else (the first visit, static files, a node that died) to any node
that answers. This module writes that configuration, so the docs, the tests and an operator use
the same text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ADDRESS_RE = re.compile(r"[A-Za-z0-9_.:\[\]-]{1,255}:\d{1,5}")


@dataclass(frozen=True)
class Node:
    """A node as the proxy reaches it: its ``--node-id`` and ``host:port``."""

    id: str
    address: str

    @classmethod
    def parse(cls, text: str) -> Node:
        """``ID=HOST:PORT``."""
        node_id, sep, address = text.partition("=")
        if not sep or not NODE_RE.fullmatch(node_id) or not ADDRESS_RE.fullmatch(address):
            raise ValueError(f"expected ID=HOST:PORT (e.g. n1=127.0.0.1:8081), got {text!r}")
        return cls(node_id, address)


def upstream_name(node_id: str) -> str:
    return "hub_node_" + re.sub(r"[^A-Za-z0-9_]", "_", node_id)


#: Where an installed nginx keeps the live streams' cached HLS files.
CACHE_DIR = Path("/var/cache/nginx/unionhub")

_PROXY = """            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;  # with its port: Socket.IO checks the Origin against it
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            # a node that is down: the pool tries the next one (a named node has no other)
            proxy_next_upstream error timeout http_502 http_503;"""


def nginx_site(nodes: list[Node], listen: str, server_extra: str = "", cache_dir: Path = CACHE_DIR) -> str:
    """What goes inside nginx's ``http`` block (``/etc/nginx/conf.d/unionhub.conf``): the node a
    request names (``?node=``, else the ``uh_node`` cookie a live page sets for its HLS files,
    whose URLs are relative) gets it, any node that answers gets the rest; websocket upgrades;
    no buffering of Socket.IO's long polls; live HLS cached, one request per file to the node
    however many viewers ask at once (``proxy_cache_lock``; playlists live 1 s and segments are
    immutable, as the node's ``Cache-Control`` says). ``server_extra``: lines for the ``server``
    block (TLS certificates, ``server_name``)."""
    if not nodes:
        raise ValueError("a front needs at least one node")
    if len({n.id for n in nodes}) != len(nodes):
        raise ValueError("node ids must differ")
    mapping = "\n".join(f"        {n.id} {upstream_name(n.id)};" for n in nodes)
    singles = "\n".join(f"    upstream {upstream_name(n.id)} {{ server {n.address}; }}" for n in nodes)
    pool = "\n".join(f"        server {n.address} max_fails=1 fail_timeout=5s;" for n in nodes)
    extra = "".join(f"        {line}\n" for line in server_extra.splitlines() if line.strip())
    return f"""    access_log off;
    map $arg_node $unionhub_node {{
        "" $cookie_uh_node;
        default $arg_node;
    }}
    map $unionhub_node $unionhub_upstream {{
        default hub_any;
{mapping}
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' close;
    }}
    proxy_cache_path {cache_dir} levels=1:2 keys_zone=unionhub_live:10m max_size=1g inactive=10m use_temp_path=off;
    upstream hub_any {{
{pool}
    }}
{singles}
    server {{
        listen {listen};
{extra}        client_max_body_size 25m;
        location / {{
            proxy_pass http://$unionhub_upstream;
{_PROXY}
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
        location ~ ^/live/[^/]+/hls/ {{
            proxy_pass http://$unionhub_upstream;
{_PROXY}
            proxy_cache unionhub_live;
            proxy_cache_key $unionhub_node$uri;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 5s;
            proxy_ignore_headers Set-Cookie;
            add_header X-Cache $upstream_cache_status;
        }}
    }}
"""


def nginx_config(nodes: list[Node], listen: str, root: Path, server_extra: str = "") -> str:
    """A whole nginx.conf that runs unprivileged in the foreground with every path under ``root``
    (tests, a quick try); :func:`nginx_site` is the part for an installed nginx."""
    temp = "\n".join(f"    {kind}_temp_path {root}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
{temp}
{nginx_site(nodes, listen, server_extra, root / "cache")}}}
"""
