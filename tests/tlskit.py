"""TLS for the tests: a self-signed certificate, `unionhub serve --tls-cert/--tls-key` in a
subprocess, and Debian's nginx in front of a hub as docs/DEPLOYMENT.md configures it.

The certificate names ``hub.test`` (and localhost, 127.0.0.1): browsers map that name to
127.0.0.1 (``--host-resolver-rules``), so a page is a secure context only because of TLS — on
plain http://hub.test a browser would refuse the camera. Chromium trusts the certificate by its
public key's hash (``--ignore-certificate-errors-spki-list``), Python clients by using it as the CA.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nginxkit import free_port, running_nginx

NAME = "hub.test"
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    #: base64 SHA-256 of the public key (SubjectPublicKeyInfo), what Chromium's SPKI list takes
    spki_sha256: str

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cert))

    def chromium_args(self) -> list[str]:
        return [f"--ignore-certificate-errors-spki-list={self.spki_sha256}",
                f"--host-resolver-rules=MAP {NAME} 127.0.0.1"]


def self_signed(folder: Path) -> Certificate:
    """A fresh key and a one-day certificate for hub.test, localhost and 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(NAME), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Certificate(cert_path, key_path, base64.b64encode(hashlib.sha256(spki).digest()).decode())


def _wait_https(url: str, context: ssl.SSLContext, alive: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if alive.poll() is not None:
            pytest.fail(f"exited with {alive.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):  # (not up yet)
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer in {START_TIMEOUT} s:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


@dataclass
class Served:
    url: str  # https://hub.test:PORT (or http://127.0.0.1:PORT for a hub behind nginx)
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def unionhub_command() -> str:
    candidate = Path(sys.executable).parent / "unionhub"
    return str(candidate) if candidate.exists() else shutil.which("unionhub") or "unionhub"


@contextlib.contextmanager
def unionhub_serve(folder: Path, *args: str, cert: Certificate | None = None) -> Iterator[Served]:
    """`unionhub serve` on a free port (captions off): over TLS with ``cert``, else plain HTTP."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "server.log"
    tls = ["--tls-cert", str(cert.cert), "--tls-key", str(cert.key)] if cert else []
    with log.open("wb") as out:
        process = subprocess.Popen(
            [unionhub_command(), "serve", "--port", str(port), "--data-dir", str(folder / "data"),
             "--asr-model", "none", *tls, *args],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(folder)},
        )
    try:
        if cert is not None:
            _wait_https(f"https://localhost:{port}/healthz", cert.client_context(), process, log)
            served = Served(f"https://{NAME}:{port}", port, process, log)
        else:
            _wait_https(f"http://127.0.0.1:{port}/healthz", ssl.create_default_context(), process, log)
            served = Served(f"http://127.0.0.1:{port}", port, process, log)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def nginx_config(root: Path, port: int, upstream: str, cert: Certificate) -> str:
    """The TLS front of docs/DEPLOYMENT.md, with the test's paths and ports (nginx runs as the
    test's user: no master process, everything under ``root``)."""
    return f"""
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream unionhub {{ server {upstream}; }}
    server {{
        listen 127.0.0.1:{port} ssl http2;
        server_name {NAME};
        ssl_certificate {cert.cert};
        ssl_certificate_key {cert.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        client_max_body_size 8m;
        location / {{
            proxy_pass http://unionhub;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
        location /socket.io/ {{
            proxy_pass http://unionhub;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 3600s;
            proxy_buffering off;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx_front(root: Path, upstream_port: int, cert: Certificate) -> Iterator[str]:
    """Yields https://hub.test:PORT, nginx terminating TLS in front of 127.0.0.1:upstream_port."""
    port = free_port()
    with running_nginx(root, nginx_config(root, port, f"127.0.0.1:{upstream_port}", cert), port):
        yield f"https://{NAME}:{port}"
