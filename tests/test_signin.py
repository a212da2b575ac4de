"""Sign-in over HTTP (meetings/signin.py): a real OpenID provider and a real SMTP server.

The hub's routes run in an aiohttp test server; the provider (oidc-provider-mock) and the SMTP
server (aiosmtpd) run in threads of this process (tests/signinkit.py). The browser's part — the
provider's login form — is played by plain HTTP requests here and by Chromium in
tests/e2e/test_signin_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from core.database import Database
from meetings import signin
from meetings.identity import CSRF_HEADER, SESSION_COOKIE, csrf_ok, signed_in
from meetings.mail import SmtpConfig
from meetings.oidc import providers_from_env
from signinkit import Provider, SmtpServer, free_port, oidc_provider, smtp_server, user

WEB_CLIENT = Path(__file__).resolve().parent.parent / "web_client"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with oidc_provider([user("alice", "alice@unionhub.test", "Alice Organiser"),
                        user("bob", "bob@unionhub.test", "Bob Unverified", verified=False)]) as running:
        yield running


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as running:
        yield running


async def _write(request: web.Request) -> web.Response:
    """A cookie-authenticated write, as a twinning route guards it."""
    account = await signed_in(request)
    if account is None:
        return web.json_response({"error": {"code": "not-signed-in", "message": "-"}}, status=401)
    if not csrf_ok(request):
        return web.json_response({"error": {"code": "csrf", "message": "-"}}, status=403)
    return web.json_response({"written_by": account.email})


@pytest.fixture
async def hub(tmp_path: Path, provider: Provider, smtp: SmtpServer,
              aiohttp_client: Any) -> AsyncIterator[tuple[TestClient[Any, Any], signin.SigninRoutes]]:
    config = signin.SigninConfig.from_env({**provider.env(), **smtp.env()})
    database = Database(tmp_path / "hub.sqlite3")
    app = web.Application()
    routes = signin.add_routes(app, database, config, WEB_CLIENT)
    app.router.add_post("/api/test-write", _write)
    client = await aiohttp_client(app)
    yield client, routes
    await client.close()
    database.close()


async def me(client: TestClient[Any, Any]) -> dict[str, Any]:
    response = await client.get("/api/signin/me")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def start(client: TestClient[Any, Any], next_path: str = "/t/pair-1") -> str:
    """The hub's redirect to the provider (the authorization request URL)."""
    response = await client.get(f"/signin/oidc/mock?{urlencode({'next': next_path})}", allow_redirects=False)
    assert response.status == 303, await response.text()
    return response.headers["Location"]


async def log_in_at_provider(authorize_url: str, sub: str) -> str:
    """Fill in the provider's login form as ``sub``; returns the callback URL it redirects to."""
    async with aiohttp.ClientSession() as browser, browser.post(
        authorize_url, data={"sub": sub}, allow_redirects=False
    ) as response:
        assert response.status == 302, await response.text()
        return response.headers["Location"]


def with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_provider_sign_in_starts_a_session_with_pkce(hub: Any, provider: Provider) -> None:
    client, _ = hub
    assert (await me(client))["account"] is None
    options = await me(client)
    assert options["providers"] == [{"name": "mock", "label": "Union Federation", "url": "/signin/oidc/mock"}]
    authorize = await start(client)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    assert {"state", "nonce", "code_challenge"} <= query.keys()
    callback = await log_in_at_provider(authorize, "alice")
    response = await client.get(path_of(callback), allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/t/pair-1"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    body = await me(client)
    assert body["account"]["email"] == "alice@unionhub.test"
    assert body["account"]["name"] == "Alice Organiser"
    assert body["csrf"]
    # PKCE: the verifier sent with the code is the one whose S256 hash went to the provider first
    token_request = provider.requests_to("/oauth2/token")[-1].form
    verifier = token_request["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == query["code_challenge"][0]
    assert token_request["redirect_uri"].endswith("/signin/oidc/mock/callback")


async def test_the_same_identity_signs_in_to_the_same_account(hub: Any) -> None:
    client, _ = hub
    ids = []
    for _ in range(2):
        response = await client.get(path_of(await log_in_at_provider(await start(client), "alice")),
                                    allow_redirects=False)
        assert response.status == 303
        ids.append((await me(client))["account"]["id"])
    assert ids[0] == ids[1]


async def test_tampered_state_is_refused(hub: Any) -> None:
    client, _ = hub
    callback = await log_in_at_provider(await start(client), "alice")
    forged = with_param(callback, state="forged-" + parse_qs(urlsplit(callback).query)["state"][0])
    response = await client.get(path_of(forged), allow_redirects=False)
    assert response.status == 400
    assert "not started here" in await response.text()
    assert (await me(client))["account"] is None
    # the attempt was spent: the genuine answer no longer works either
    response = await client.get(path_of(callback), allow_redirects=False)
    assert response.status == 400 and (await me(client))["account"] is None


async def test_callback_in_another_browser_is_refused(hub: Any, aiohttp_client: Any) -> None:
    """Login CSRF: an attacker's own callback URL, opened in the victim's browser, signs nobody in."""
    client, _ = hub
    callback = await log_in_at_provider(await start(client), "alice")
    victim = await aiohttp_client(client.server)
    response = await victim.get(path_of(callback), allow_redirects=False)
    assert response.status == 400
    assert (await me(victim))["account"] is None


async def test_wrong_nonce_is_refused(hub: Any) -> None:
    """An ID token minted for another sign-in attempt (its nonce) is not accepted for this one."""
    client, _ = hub
    authorize = await start(client)
    callback = await log_in_at_provider(with_param(authorize, nonce="a-nonce-from-another-attempt"), "alice")
    response = await client.get(path_of(callback), allow_redirects=False)
    assert response.status == 400
    assert "did not check out" in await response.text()
    assert (await me(client))["account"] is None


async def test_id_token_altered_in_transit_is_refused(hub: Any, provider: Provider) -> None:
    """The ID token's signature covers its claims: an edited e-mail address does not get in."""
    client, _ = hub
    callback = await log_in_at_provider(await start(client), "alice")
    provider.forge_email = "mallory@unionhub.test"
    try:
        response = await client.get(path_of(callback), allow_redirects=False)
    finally:
        provider.forge_email = None
    assert response.status == 400
    assert "did not check out" in await response.text()
    assert (await me(client))["account"] is None


async def test_unreachable_provider_is_reported(tmp_path: Path, aiohttp_client: Any) -> None:
    env = {"UNIONHUB_OIDC_DOWN_ISSUER": f"http://127.0.0.1:{free_port()}", "UNIONHUB_OIDC_DOWN_CLIENT_ID": "a",
           "UNIONHUB_OIDC_DOWN_CLIENT_SECRET": "b"}
    database = Database(tmp_path / "hub.sqlite3")
    app = web.Application()
    signin.add_routes(app, database, signin.SigninConfig.from_env(env), WEB_CLIENT)
    client = await aiohttp_client(app)
    try:
        response = await client.get("/signin/oidc/down", allow_redirects=False)
        assert response.status == 502 and "did not answer" in await response.text()
        assert (await client.get("/signin/oidc/nobody", allow_redirects=False)).status == 404
    finally:
        await client.close()
        database.close()


async def test_replayed_code_is_refused(hub: Any) -> None:
    client, _ = hub
    callback = await log_in_at_provider(await start(client), "alice")
    assert (await client.get(path_of(callback), allow_redirects=False)).status == 303
    client.session.cookie_jar.clear()  # signed out on this browser
    # the same callback again: its flow is spent
    response = await client.get(path_of(callback), allow_redirects=False)
    assert response.status == 400 and (await me(client))["account"] is None
    # the old code with a fresh, valid state: the provider refuses the code a second time
    fresh = parse_qs(urlsplit(await start(client)).query)["state"][0]
    response = await client.get(path_of(with_param(callback, state=fresh)), allow_redirects=False)
    assert response.status == 400
    assert "refused the sign-in" in await response.text()
    assert (await me(client))["account"] is None


async def test_unverified_email_does_not_join_the_verified_account(hub: Any, smtp: SmtpServer) -> None:
    """A provider that does not vouch for an address cannot take over that address's account."""
    client, _ = hub
    owner = (await sign_in_by_email(client, smtp, "bob@unionhub.test"))["account"]
    client.session.cookie_jar.clear()
    # "bob" at the provider claims the same address, email_verified false
    response = await client.get(path_of(await log_in_at_provider(await start(client), "bob")),
                                allow_redirects=False)
    assert response.status == 303
    by_provider = (await me(client))["account"]
    assert by_provider["email"] == "bob@unionhub.test" and by_provider["id"] != owner["id"]
    client.session.cookie_jar.clear()
    # a provider that does vouch for the address joins its account
    alice = (await sign_in_by_email(client, smtp, "alice@unionhub.test"))["account"]
    client.session.cookie_jar.clear()
    await client.get(path_of(await log_in_at_provider(await start(client), "alice")), allow_redirects=False)
    assert (await me(client))["account"]["id"] == alice["id"]


async def test_next_must_be_a_path_on_this_hub(hub: Any) -> None:
    client, _ = hub
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        callback = await log_in_at_provider(await start(client, evil), "alice")
        response = await client.get(path_of(callback), allow_redirects=False)
        assert response.headers["Location"] == "/", evil


async def email_link(client: TestClient[Any, Any], smtp: SmtpServer, email: str) -> str:
    before = len(smtp.mailbox.messages)
    response = await client.post("/api/signin/email", json={"email": email, "next": "/t/pair-2"})
    assert response.status == 202, await response.text()
    assert len(smtp.mailbox.messages) == before + 1
    message = smtp.mailbox.messages[-1]
    assert message["To"] == email and message["From"] == "hub@unionhub.test"
    return smtp.mailbox.link()


def link_params(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}


async def test_email_link_signs_in_once(hub: Any, smtp: SmtpServer) -> None:
    client, _ = hub
    link = await email_link(client, smtp, "Carla@Unionhub.test")
    page = await client.get(path_of(link))
    assert page.status == 200 and (await me(client))["account"] is None  # opening the link spends nothing
    params = link_params(link)
    response = await client.post("/api/signin/email/verify", json={"token": params["token"], "next": params["next"]})
    assert response.status == 200, await response.text()
    assert (await response.json())["next"] == "/t/pair-2"
    assert response.cookies[SESSION_COOKIE]["httponly"]
    assert (await me(client))["account"]["email"] == "carla@unionhub.test"
    client.session.cookie_jar.clear()
    again = await client.post("/api/signin/email/verify", json={"token": params["token"]})
    assert again.status == 400 and (await again.json())["error"]["code"] == "link-invalid"
    assert (await me(client))["account"] is None


async def test_expired_email_link_is_refused(hub: Any, smtp: SmtpServer) -> None:
    client, routes = hub
    link = await email_link(client, smtp, "dora@unionhub.test")
    clock = routes.store.clock
    routes.store.clock = lambda: clock() + 16 * 60  # the link was read 16 minutes later
    response = await client.post("/api/signin/email/verify", json={"token": link_params(link)["token"]})
    assert response.status == 400 and (await response.json())["error"]["code"] == "link-invalid"
    assert (await me(client))["account"] is None


async def test_email_link_needs_json_from_a_page(hub: Any, smtp: SmtpServer) -> None:
    """A cross-site form cannot spend a link in someone's browser (login CSRF)."""
    client, _ = hub
    token = link_params(await email_link(client, smtp, "erin@unionhub.test"))["token"]
    response = await client.post("/api/signin/email/verify", data={"token": token})
    assert response.status == 415
    response = await client.post("/api/signin/email/verify", json={"token": token},
                                 headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status == 415
    assert (await me(client))["account"] is None


async def test_email_requests_are_rate_limited(hub: Any, smtp: SmtpServer) -> None:
    """One client cannot use the hub to flood inboxes: after a burst of 5, the next is refused."""
    client, _ = hub
    before = len(smtp.mailbox.messages)
    for n in range(5):
        assert (await client.post("/api/signin/email", json={"email": f"victim{n}@unionhub.test"})).status == 202
    response = await client.post("/api/signin/email", json={"email": "victim5@unionhub.test"})
    assert response.status == 429 and response.headers["Retry-After"]
    assert (await response.json())["error"]["code"] == "rate-limited"
    assert len(smtp.mailbox.messages) == before + 5


async def test_email_links_do_not_follow_a_forged_host(hub: Any, smtp: SmtpServer) -> None:
    """Without UNIONHUB_PUBLIC_URL, a request naming another host gets no link mailed to anyone
    (the link would point at that host and hand it the victim's token)."""
    client, _ = hub
    before = len(smtp.mailbox.messages)
    response = await client.post("/api/signin/email", json={"email": "victim@unionhub.test"},
                                 headers={"Host": "evil.example"})
    assert response.status == 503 and (await response.json())["error"]["code"] == "public-url-needed"
    assert len(smtp.mailbox.messages) == before


async def test_bad_email_is_refused(hub: Any) -> None:
    client, _ = hub
    response = await client.post("/api/signin/email", json={"email": "not an address"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad-email"


async def sign_in_by_email(client: TestClient[Any, Any], smtp: SmtpServer, email: str) -> dict[str, Any]:
    token = link_params(await email_link(client, smtp, email))["token"]
    assert (await client.post("/api/signin/email/verify", json={"token": token})).status == 200
    return await me(client)


async def test_cookie_write_without_csrf_token_is_refused(hub: Any, smtp: SmtpServer) -> None:
    client, _ = hub
    body = await sign_in_by_email(client, smtp, "fran@unionhub.test")
    assert (await client.post("/api/test-write")).status == 403
    assert (await client.post("/api/test-write", headers={CSRF_HEADER: "0" * 64})).status == 403
    response = await client.post("/api/test-write", headers={CSRF_HEADER: body["csrf"]})
    assert response.status == 200 and (await response.json())["written_by"] == "fran@unionhub.test"


async def test_sign_out_ends_the_session(hub: Any, smtp: SmtpServer) -> None:
    client, _ = hub
    body = await sign_in_by_email(client, smtp, "gus@unionhub.test")
    cookie = next(c.value for c in client.session.cookie_jar if c.key == SESSION_COOKIE)
    refused = await client.post("/api/signin/signout")  # no CSRF token: a forged sign-out
    assert refused.status == 403 and (await me(client))["account"] is not None
    response = await client.post("/api/signin/signout", headers={CSRF_HEADER: body["csrf"]})
    assert response.status == 200
    assert (await me(client))["account"] is None
    # the old cookie value, replayed, no longer works: the session ended on the server
    response = await client.get("/api/signin/me", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    assert (await response.json())["account"] is None
    response = await client.post("/api/test-write", headers={"Cookie": f"{SESSION_COOKIE}={cookie}",
                                                            CSRF_HEADER: body["csrf"]})
    assert response.status == 401


async def test_cookies_are_secure_behind_https(tmp_path: Path, provider: Provider, smtp: SmtpServer,
                                               aiohttp_client: Any) -> None:
    config = signin.SigninConfig.from_env({**provider.env(), **smtp.env(),
                                           "UNIONHUB_PUBLIC_URL": "https://hub.unionhub.test"})
    database = Database(tmp_path / "hub.sqlite3")
    app = web.Application()
    signin.add_routes(app, database, config, WEB_CLIENT)
    client = await aiohttp_client(app)
    try:
        response = await client.get("/signin/oidc/mock", allow_redirects=False)
        assert response.cookies["unionhub_signin_flow"]["secure"]
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        assert query["redirect_uri"] == ["https://hub.unionhub.test/signin/oidc/mock/callback"]
        await client.post("/api/signin/email", json={"email": "hana@unionhub.test"})
        assert smtp.mailbox.link().startswith("https://hub.unionhub.test/signin/link?token=")
    finally:
        await client.close()
        database.close()


def test_providers_come_from_the_environment() -> None:
    env = {
        "UNIONHUB_OIDC_FETSALUD_ISSUER": "https://id.fetsalud.example/", "UNIONHUB_OIDC_FETSALUD_CLIENT_ID": "hub",
        "UNIONHUB_OIDC_FETSALUD_CLIENT_SECRET": "s1", "UNIONHUB_OIDC_UNISON_ISSUER": "https://login.unison.example",
        "UNIONHUB_OIDC_UNISON_CLIENT_ID": "hub2", "UNIONHUB_OIDC_UNISON_CLIENT_SECRET": "s2",
        "UNIONHUB_OIDC_UNISON_LABEL": "UNISON",
    }
    providers = providers_from_env(env)
    assert [(p.name, p.label, p.issuer) for p in providers] == [
        ("fetsalud", "Fetsalud", "https://id.fetsalud.example"), ("unison", "UNISON", "https://login.unison.example")
    ]
    assert "s1" not in repr(providers)
    with pytest.raises(ValueError, match="CLIENT_SECRET"):
        providers_from_env({"UNIONHUB_OIDC_X_ISSUER": "https://x.example", "UNIONHUB_OIDC_X_CLIENT_ID": "a"})


def test_smtp_settings_come_from_the_environment() -> None:
    assert SmtpConfig.from_env({}) is None
    config = SmtpConfig.from_env({"UNIONHUB_SMTP_HOST": "mail.example", "UNIONHUB_SMTP_FROM": "hub@example",
                                  "UNIONHUB_SMTP_PASSWORD": "hunter2"})
    assert config is not None and config.port == 587 and "hunter2" not in repr(config)
    with pytest.raises(ValueError, match="UNIONHUB_SMTP_FROM"):
        SmtpConfig.from_env({"UNIONHUB_SMTP_HOST": "mail.example"})


async def test_the_sign_in_e_mail_is_in_the_page_s_language_else_the_browser_s(hub: Any, smtp: SmtpServer) -> None:
    client, _ = hub
    response = await client.post("/api/signin/email", json={"email": "amal@unionhub.test", "lang": "ar"})
    assert response.status == 202
    arabic = smtp.mailbox.messages[-1]
    assert arabic["Content-Language"] == "ar" and str(arabic["Subject"]) == "رابط الدخول إلى unionhub"
    assert "15 دقيقة" in arabic.get_body(("plain",)).get_content()
    response = await client.post("/api/signin/email", json={"email": "rui@unionhub.test"},
                                 headers={"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.5"})
    assert response.status == 202
    assert smtp.mailbox.messages[-1]["Content-Language"] == "pt"
