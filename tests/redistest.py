"""A real Redis for tests: Debian's ``redis-server`` on a unix socket in a temporary directory,
no persistence, killed by pid at the end (``make test-deps`` installs it)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REDIS_SERVER = "/usr/bin/redis-server"


@dataclass(frozen=True)
class RedisServer:
    url: str  # unix://…
    pid: int  # (to pause it with SIGSTOP)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """Start redis-server on a unix socket in ``directory``."""
    if shutil.which(REDIS_SERVER) is None:
        pytest.fail(f"{REDIS_SERVER} is not installed: run `make test-deps`", pytrace=False)
    directory.mkdir(parents=True, exist_ok=True)
    sock = directory / "redis.sock"
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(directory), "--logfile", str(directory / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                log = (directory / "redis.log").read_text(errors="replace") if (directory / "redis.log").exists() else ""
                pytest.fail(f"redis-server did not start:\n{log}", pytrace=False)
            time.sleep(0.05)
        yield RedisServer(f"unix://{sock}", process.pid)
    finally:
        process.kill()
        process.wait(timeout=10)
