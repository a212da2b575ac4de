"""A real RTMP server for tests: Debian's nginx with libnginx-mod-rtmp on loopback.

It records every stream it receives to ``<rec>/<stream key>.flv``, so tests can check what a
platform such as YouTube Live would have received.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nginxkit import NGINX, free_port, running_nginx

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


@contextlib.contextmanager
def nginx_rtmp(root: Path) -> Iterator[tuple[str, Path]]:
    """Yields (``rtmp://127.0.0.1:PORT/live``, the folder received streams are recorded in)."""
    if not (Path(NGINX).exists() and Path(RTMP_MODULE).exists()):
        pytest.fail("nginx with libnginx-mod-rtmp is needed (make test-deps installs it)", pytrace=False)
    (root / "rec").mkdir(parents=True)
    port = free_port()
    config = f"""
load_module {RTMP_MODULE};
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;
            record all;
            record_path {root}/rec;
        }}
    }}
}}
"""
    try:
        with running_nginx(root, config, port):
            yield f"rtmp://127.0.0.1:{port}/live", root / "rec"
    finally:
        shutil.rmtree(root, ignore_errors=True)
