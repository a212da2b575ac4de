"""Debian's nginx for tests: a configuration in a folder of the test's own, run unprivileged in
the foreground, waited for until it listens, stopped at the end (``make test-deps`` installs it)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

NGINX = "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_nginx() -> None:
    if not Path(NGINX).exists():
        pytest.fail("nginx is needed (make test-deps installs it)", pytrace=False)


@contextlib.contextmanager
def running_nginx(root: Path, config: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Write ``config`` to ``root/nginx.conf``, start nginx and wait until 127.0.0.1:``port``
    accepts connections (its error log in the failure if it does not)."""
    require_nginx()
    root.mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(config)
    proc = subprocess.Popen([NGINX, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")])
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                log = (root / "error.log").read_text(errors="replace") if (root / "error.log").exists() else ""
                pytest.fail(f"nginx did not start: {log[-2000:]}", pytrace=False)
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)
