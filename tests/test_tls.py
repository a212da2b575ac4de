"""TLS (issue #18 item 4) without a browser: `unionhub serve --tls-cert/--tls-key` serves HTTPS and
Socket.IO over WSS; nginx in front terminates TLS, upgrades the websocket and tells the hub the
scheme, so the podcast feed's URLs are absolute https. (Chromium through both:
tests/e2e/test_tls_browser.py.)"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from sigclient import Client
from tlskit import Certificate, Served, nginx_front, self_signed, unionhub_command, unionhub_serve

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="module")
def tls_hub(tmp_path_factory: pytest.TempPathFactory, cert: Certificate) -> Iterator[Served]:
    with unionhub_serve(tmp_path_factory.mktemp("tls-hub"), cert=cert) as served:
        yield served


@pytest.fixture(scope="module")
def fronted(tmp_path_factory: pytest.TempPathFactory, cert: Certificate) -> Iterator[str]:
    """https://localhost:PORT: nginx with TLS in front of a plain-HTTP hub."""
    with unionhub_serve(tmp_path_factory.mktemp("plain-hub")) as hub, \
            nginx_front(tmp_path_factory.mktemp("nginx"), hub.port, cert) as front:
        yield front.replace("hub.test", "localhost")


async def join_over(url: str, cert: Certificate, room: str) -> str:
    """Join ``room`` over the websocket transport through ``url``, sending the ``Origin`` a
    browser on the hub's page sends; the transport it used."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cert.client_context())) as session:
        client = Client(url, session)
        try:
            await client.sio.connect(url, transports=["websocket"], headers={"Origin": url}, wait_timeout=10)
            joined = await client.join(room, "Ana")
            assert joined["id"]
            return str(client.sio.transport())
        finally:
            await client.close()


async def feed_links(url: str, cert: Certificate) -> list[str]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cert.client_context())) as session, \
            session.get(f"{url}/recordings/feed.xml") as r:
        assert r.status == 200
        channel = ET.fromstring(await r.text()).find("channel")
    assert channel is not None
    links = [link.attrib["href"] for link in channel.iter(f"{ATOM}link")]
    links += [e.text or "" for e in channel.iter("link")]
    return links


async def test_the_hub_serves_https_and_socket_io_over_wss(tls_hub: Served, cert: Certificate) -> None:
    url = f"https://localhost:{tls_hub.port}"
    assert await join_over(url, cert, "tls-direct") == "websocket"
    assert all(link.startswith(f"{url}/") or link == url for link in await feed_links(url, cert))
    # nothing is served in the clear on that port, and an untrusted certificate is refused
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"http://127.0.0.1:{tls_hub.port}/healthz")
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"{url}/healthz")


async def test_nginx_terminates_tls_upgrades_the_websocket_and_feed_urls_are_https(
    fronted: str, cert: Certificate
) -> None:
    assert await join_over(fronted, cert, "tls-nginx") == "websocket"
    links = await feed_links(fronted, cert)
    assert links and all(link.startswith(f"{fronted}/") or link == fronted for link in links), links


def test_serve_refuses_half_a_tls_configuration(tmp_path: Path, cert: Certificate) -> None:
    for args in (["--tls-cert", str(cert.cert)], ["--tls-key", str(cert.key)],
                 ["--tls-cert", str(cert.key), "--tls-key", str(cert.cert)]):
        result = subprocess.run([unionhub_command(), "serve", "--data-dir", str(tmp_path), "--asr-model", "none", *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "TLS" in result.stderr
