"""nginx serving a hub's live HLS folder, as docs/DEPLOYMENT.md configures it, for bench/hls.py.

Viewers then fetch ``/live/<room>/hls/<file>`` from nginx (static files, sendfile) and never
reach the hub's event loop; the bench compares that with the hub serving them itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

NGINX = "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_live_folder(live_dir: Path, workers: int | None = None) -> Iterator[tuple[str, int]]:
    """Yields (base URL, nginx master pid); the location block is DEPLOYMENT.md's."""
    if not Path(NGINX).exists():
        raise SystemExit("nginx not found (apt-get install nginx)")
    for folder in (live_dir.parent, live_dir):  # nginx workers run as nobody: let them read
        folder.chmod(folder.stat().st_mode | 0o055)
    root = Path(tempfile.mkdtemp(prefix="unionhub-bench-nginx-"))
    port = _free_port()
    (root / "nginx.conf").write_text(f"""
daemon off;
worker_processes {workers or os.cpu_count() or 1};
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 16384; }}
worker_rlimit_nofile 65536;
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp4 m4s mp4; text/vtt vtt; }}
    client_body_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port} backlog=8192;
        location ~ ^/live/([A-Za-z0-9_-]+)/hls/(.+)$ {{
            alias {live_dir}/$1/$2;
            add_header Cache-Control no-cache;
        }}
    }}
}}
""")
    proc = subprocess.Popen([NGINX, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")])
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"nginx did not start: {(root / 'error.log').read_text()[-1500:]}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)
