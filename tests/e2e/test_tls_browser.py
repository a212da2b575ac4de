"""Chromium in a call over TLS (issue #18 item 4): served by `unionhub serve --tls-cert/--tls-key`,
and through nginx terminating TLS in front of a plain hub. The page is https://hub.test (mapped to
127.0.0.1), a secure context only thanks to TLS; Chromium trusts the test's self-signed
certificate by its public key's hash, not by ignoring certificate errors: a browser without that
hash refuses the page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from e2e_helpers import WAIT_MS, join, unique_room, wait_remote_videos, wait_videos_advance
from tlskit import Certificate, nginx_front, self_signed, unionhub_serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="module")
def trusting_browser(launch_browser: Callable[..., object], cert: Certificate) -> object:
    return launch_browser(*cert.chromium_args())


@pytest.fixture(scope="module")
def tls_hub(tmp_path_factory: pytest.TempPathFactory, cert: Certificate) -> Iterator[str]:
    with unionhub_serve(tmp_path_factory.mktemp("tls-hub"), cert=cert) as served:
        yield served.url


@pytest.fixture(scope="module")
def fronted_hub(tmp_path_factory: pytest.TempPathFactory, cert: Certificate) -> Iterator[str]:
    with unionhub_serve(tmp_path_factory.mktemp("plain-hub")) as hub, \
            nginx_front(tmp_path_factory.mktemp("nginx"), hub.port, cert) as front:
        yield front


def call_over_tls(new_page: Callable[..., Any], browser: object, base: str) -> None:
    assert base.startswith("https://hub.test:")
    room = unique_room("tls")
    pages = [join(new_page(browser), base, room, name) for name in ("Ana", "Bo")]
    for page in pages:
        wait_remote_videos(page, 1)
        wait_videos_advance(page)
        seen = page.evaluate("""() => ({
            secure: window.isSecureContext, protocol: location.protocol,
            transport: window.unionhub.socket.io.engine.transport.name,
        })""")
        assert seen == {"secure": True, "protocol": "https:", "transport": "websocket"}, seen
    # the websocket carries the call's events both ways: a chat message arrives
    pages[0].fill('[data-testid="chat-input"]', "over wss")
    pages[0].press('[data-testid="chat-input"]', "Enter")
    pages[1].wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"chat-message\"]')].some(m => m.textContent.includes('over wss'))",
        timeout=WAIT_MS)


def test_a_call_on_a_hub_serving_tls_itself(
    new_page: Callable[..., Any], trusting_browser: object, tls_hub: str
) -> None:
    call_over_tls(new_page, trusting_browser, tls_hub)


def test_a_call_through_nginx_terminating_tls(
    new_page: Callable[..., Any], trusting_browser: object, fronted_hub: str
) -> None:
    call_over_tls(new_page, trusting_browser, fronted_hub)


def test_a_browser_without_the_certificate_is_refused(
    launch_browser: Callable[..., object], cert: Certificate, tls_hub: str
) -> None:
    browser = launch_browser("--host-resolver-rules=MAP hub.test 127.0.0.1")
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        with pytest.raises(Exception, match="ERR_CERT"):
            page.goto(tls_hub + "/")
    finally:
        page.close()
