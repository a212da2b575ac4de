"""Debian's coturn (``turnserver``) started for a test, with TURN REST credentials (``use-auth-secret``).

Loopback peers are allowed (the hub may listen on 127.0.0.1 in tests); TLS/DTLS listeners are off.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aioice import stun

TURNSERVER = "/usr/bin/turnserver"


@dataclass
class Coturn:
    host: str
    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def answers_stun(host: str, port: int) -> bool:
    """Whether a STUN Binding request to ``host:port`` gets a success response."""
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        try:
            sock.sendto(bytes(request), (host, port))
            response = stun.parse_message(sock.recv(2048))
        except (OSError, ValueError):
            return False
    return response.transaction_id == request.transaction_id and response.message_class == stun.Class.RESPONSE


@contextlib.contextmanager
def coturn(tmp: Path, host: str = "127.0.0.1") -> Iterator[Coturn]:
    """``turnserver`` on ``host`` (in network namespace ``netns`` if given), shared secret auth."""
    assert shutil.which(TURNSERVER), "coturn is not installed: make test-deps"
    port = random.randint(20000, 30000)
    relay_low = random.randint(40000, 60000)
    secret = "unionhub-test-turn-secret-0123456789"
    log = tmp / "turnserver.log"
    cmd = [
        TURNSERVER, "-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint",
        "--listening-ip", host, "--listening-port", str(port), "--relay-ip", host,
        "--min-port", str(relay_low), "--max-port", str(relay_low + 200),
        "--use-auth-secret", "--static-auth-secret", secret, "--realm", "unionhub.test",
        "--allow-loopback-peers", "--log-file", str(log), "--simple-log", "--no-stdout-log", "--verbose",
        "--pidfile", str(tmp / "turnserver.pid"),
    ]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Coturn(host, port, secret, log)
    try:
        for _ in range(50):  # it answers STUN Binding requests once it listens
            assert process.poll() is None, f"turnserver exited: {server.log_text()[-2000:]}"
            if answers_stun(host, port):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("turnserver did not start")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
