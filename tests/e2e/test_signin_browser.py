"""Sign-in in Chromium: through a real OpenID provider's login form, and by an e-mailed link.

The hub is a real `unionhub serve` configured from the environment (UNIONHUB_OIDC_MOCK_*,
UNIONHUB_SMTP_*), the provider is oidc-provider-mock and the mail goes to aiosmtpd
(tests/signinkit.py), all on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from signinkit import Provider, SmtpServer, oidc_provider, smtp_server, user

pytestmark = pytest.mark.browser

SESSION_COOKIE = "unionhub_session"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with oidc_provider([user("alice", "alice@unionhub.test", "Alice Organiser")]) as running:
        yield running


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def signin_hub(hub_factory: Callable[..., Any], provider: Provider, smtp: SmtpServer,
               monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in {**provider.env(), **smtp.env()}.items():
        monkeypatch.setenv(key, value)
    return hub_factory()


def session_cookie(page: Any) -> dict[str, Any] | None:
    return next((c for c in page.context.cookies() if c["name"] == SESSION_COOKIE), None)


def expect_signed_in(page: Any, name: str, email: str) -> None:
    page.locator('[data-testid="account-name"]').filter(has_text=name).wait_for()
    assert page.locator('[data-testid="account-email"]').text_content() == email


def test_provider_sign_in_and_sign_out(signin_hub: Any, provider: Provider, new_page: Callable[[], Any]) -> None:
    page = new_page()
    page.goto(f"{signin_hub.url}/signin?next=%2Fsignin")
    button = page.locator('[data-testid="provider"]')
    assert button.text_content() == "Sign in with Union Federation"
    button.click()
    page.wait_for_url(f"{provider.issuer}/oauth2/authorize?*")  # the provider's own login form
    page.fill('input[name="sub"]', "alice")
    page.locator('button[type="submit"]', has_text="Authorize").click()
    page.wait_for_url(f"{signin_hub.url}/signin")
    expect_signed_in(page, "Alice Organiser", "alice@unionhub.test")
    cookie = session_cookie(page)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.reload()  # the session outlives the page
    expect_signed_in(page, "Alice Organiser", "alice@unionhub.test")

    page.locator('[data-testid="signout"]').click()
    page.locator('[data-testid="signed-out-note"]').wait_for()
    assert page.locator('[data-testid="provider"]').is_visible()
    assert session_cookie(page) is None
    page.reload()
    page.locator('[data-testid="provider"]').wait_for()
    assert page.locator("#signed-in").is_hidden()


def test_email_link_signs_in_once(signin_hub: Any, smtp: SmtpServer, new_page: Callable[[], Any]) -> None:
    page = new_page()
    page.goto(f"{signin_hub.url}/signin?next=%2Fsignin")
    page.fill('[data-testid="email"]', "carla@unionhub.test")
    before = len(smtp.mailbox.messages)
    page.locator('[data-testid="email-submit"]').click()
    page.locator('[data-testid="email-sent"]').wait_for()
    smtp.mailbox.wait(before + 1)
    link = smtp.mailbox.link()
    assert link.startswith(f"{signin_hub.url}/signin/link?token=")

    page.goto(link)
    confirm = page.locator('[data-testid="link-confirm"]')
    confirm.wait_for()
    assert page.url == f"{signin_hub.url}/signin/link"  # the token left the address bar
    assert session_cookie(page) is None  # opening the link spent nothing
    confirm.click()
    page.wait_for_url(f"{signin_hub.url}/signin")
    expect_signed_in(page, "carla", "carla@unionhub.test")

    other = new_page()  # the same link, forwarded to someone else, no longer works
    other.goto(link)
    other.locator('[data-testid="link-confirm"]').click()
    error = other.locator('[data-testid="error"]')
    error.wait_for()
    assert "expired or was already used" in (error.text_content() or "")
    assert session_cookie(other) is None
