"""A real RTMP server for tests: Debian's nginx with libnginx-mod-rtmp on loopback.

It records every stream it receives to ``<rec>/<stream key>.flv``, so tests can check what a
platform such as YouTube Live would have received.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

NGINX = "/usr/sbin/nginx"
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nginx_rtmp(root: Path) -> Iterator[tuple[str, Path]]:
    """Yields (``rtmp://127.0.0.1:PORT/live``, the folder received streams are recorded in)."""
    if not (Path(NGINX).exists() and Path(RTMP_MODULE).exists()):
        pytest.fail("nginx with libnginx-mod-rtmp is needed (make test-deps installs it)", pytrace=False)
    (root / "rec").mkdir(parents=True)
    port = free_port()
    (root / "nginx.conf").write_text(f"""
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
""")
    proc = subprocess.Popen([NGINX, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")])
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"nginx-rtmp did not start: {(root / 'error.log').read_text()[-2000:]}", pytrace=False)
            time.sleep(0.05)
        yield f"rtmp://127.0.0.1:{port}/live", root / "rec"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)
