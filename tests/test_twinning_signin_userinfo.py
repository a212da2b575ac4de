"""Sign-in with a provider whose ID tokens carry only ``sub``: the e-mail address (and name)
come from its UserInfo endpoint, asked with the access token, and only about the same ``sub``.

The provider is oidc-provider-mock (authorization, token, userinfo endpoints as they are) with
its ID tokens re-signed without the profile and e-mail claims by a key it publishes in its JWKS
instead — a real provider of that kind, as far as the hub can tell.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import oidc_provider_mock
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from core.database import Database
from meetings import signin
from signinkit import CLIENT_ID, CLIENT_SECRET, free_port, serving

WEB_CLIENT = Path(__file__).resolve().parent.parent / "web_client"
ONLY_IN_USERINFO = ("email", "email_verified", "name")


@dataclass
class SubOnlyProvider:
    issuer: str
    userinfo_sub: str | None = None  # answer userinfo about this subject instead (a mix-up)
    userinfo_asked: int = 0

    def env(self) -> dict[str, str]:
        prefix = "UNIONHUB_OIDC_MOCK_"
        return {prefix + "ISSUER": self.issuer, prefix + "CLIENT_ID": CLIENT_ID, prefix + "CLIENT_SECRET": CLIENT_SECRET}


def _payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


@pytest.fixture(scope="module")
def provider() -> Iterator[SubOnlyProvider]:
    users = [oidc_provider_mock.User(sub="carol", claims={"email": "carol@unionhub.test", "email_verified": True,
                                                         "name": "Carol Member"})]
    app = oidc_provider_mock.app(require_nonce=True, user_claims=tuple(users))
    key = RSAKey.generate_key(2048, parameters={"kid": "sub-only"})
    port = free_port()
    provider = SubOnlyProvider(f"http://127.0.0.1:{port}")

    def answer(start_response: Callable[..., Any], status: str, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/jwks":
            return answer(start_response, "200 OK", [("Content-Type", "application/json")],
                          json.dumps(KeySet([key]).as_dict(private=False)).encode())
        if path not in ("/oauth2/token", "/userinfo"):
            return app(environ, start_response)  # type: ignore[no-any-return]
        captured: list[Any] = []
        body = b"".join(app(environ, lambda status, headers, *rest: captured.extend([status, headers])))
        doc = json.loads(body)
        if path == "/oauth2/token" and "id_token" in doc:
            claims = {k: v for k, v in _payload(doc["id_token"]).items() if k not in ONLY_IN_USERINFO}
            doc["id_token"] = jwt.encode({"alg": "RS256", "kid": "sub-only"}, claims, key)
        if path == "/userinfo":
            provider.userinfo_asked += 1
            if provider.userinfo_sub is not None:
                doc["sub"] = provider.userinfo_sub
        return answer(start_response, captured[0], captured[1], json.dumps(doc).encode())

    with serving(wrapped, port):
        yield provider


@pytest.fixture
async def client(tmp_path: Path, provider: SubOnlyProvider, aiohttp_client: Any) -> AsyncIterator[TestClient[Any, Any]]:
    database = Database(tmp_path / "hub.sqlite3")
    app = web.Application()
    signin.add_routes(app, database, signin.SigninConfig.from_env(provider.env()), WEB_CLIENT)
    test_client: TestClient[Any, Any] = await aiohttp_client(app)
    yield test_client
    await test_client.close()
    database.close()


async def sign_in_as(client: TestClient[Any, Any], sub: str) -> aiohttp.ClientResponse:
    """Through the provider's login form; the hub's answer to the callback."""
    response = await client.get(f"/signin/oidc/mock?{urlencode({'next': '/t/pair-1'})}", allow_redirects=False)
    assert response.status == 303, await response.text()
    async with aiohttp.ClientSession() as browser, browser.post(
        response.headers["Location"], data={"sub": sub}, allow_redirects=False
    ) as login:
        assert login.status == 302, await login.text()
        callback = urlsplit(login.headers["Location"])
    return await client.get(f"{callback.path}?{callback.query}", allow_redirects=False)


async def test_the_e_mail_comes_from_userinfo_when_the_id_token_has_none(client: TestClient[Any, Any],
                                                                         provider: SubOnlyProvider) -> None:
    provider.userinfo_sub = None
    asked = provider.userinfo_asked
    response = await sign_in_as(client, "carol")
    assert response.status == 303 and response.headers["Location"] == "/t/pair-1", await response.text()
    assert provider.userinfo_asked == asked + 1
    me = await (await client.get("/api/signin/me")).json()
    assert (me["account"]["email"], me["account"]["name"]) == ("carol@unionhub.test", "Carol Member")


async def test_userinfo_about_someone_else_is_refused(client: TestClient[Any, Any], provider: SubOnlyProvider) -> None:
    provider.userinfo_sub = "mallory"
    try:
        response = await sign_in_as(client, "carol")
    finally:
        provider.userinfo_sub = None
    assert response.status == 400
    assert "did not check out" in await response.text()
    me = await (await client.get("/api/signin/me")).json()
    assert me["account"] is None
