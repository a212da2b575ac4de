"""OpenID Connect relying party: authorization code flow with PKCE, against any number of providers.

Each federation runs its own identity provider; the hub knows them from the environment
(``UNIONHUB_OIDC_<NAME>_ISSUER`` / ``_CLIENT_ID`` / ``_CLIENT_SECRET``, optional ``_LABEL``) and
learns their endpoints and keys from ``<issuer>/.well-known/openid-configuration``. authlib
supplies the protocol pieces (PKCE S256 challenge, ID token claim rules: iss, aud, exp, iat,
nonce, azp, at_hash) and joserfc the signature check; HTTP goes through aiohttp, the hub's client.

Some providers put only ``sub`` in the ID token and give the e-mail address from their UserInfo
endpoint (OpenID Connect Core 5.3): then the hub asks it, with the access token, and uses its
answer only if it is about the same ``sub`` (5.3.2: else it could be someone else's).
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

import aiohttp
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken, UserInfo
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from core.errors import HubError

logger = logging.getLogger(__name__)

ENV_RE = re.compile(r"UNIONHUB_OIDC_([A-Z0-9]{1,32})_ISSUER")
SCOPES = "openid email profile"
METADATA_TTL_S = 3600.0
"""Endpoints and keys are fetched again after an hour (and at once for an unknown key id)."""
HTTP_TIMEOUT_S = 15.0
LEEWAY_S = 60
"""Clock skew tolerated between the provider and the hub."""
#: Signature algorithms accepted when the provider does not list its own ("none" never is).
DEFAULT_ALGORITHMS = ("RS256",)


class OidcError(HubError):
    """A sign-in the provider or the hub refused; ``code`` says which step."""


@dataclass(frozen=True)
class OidcProvider:
    """One identity provider this hub trusts. ``name`` is its id in URLs (lower case)."""

    name: str
    label: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)


def providers_from_env(env: Mapping[str, str]) -> tuple[OidcProvider, ...]:
    """Every provider configured in ``env``, sorted by name; ValueError for an incomplete one."""
    providers = []
    for key in sorted(env):
        match = ENV_RE.fullmatch(key)
        if match is None or not env[key].strip():
            continue
        upper = match.group(1)
        prefix = f"UNIONHUB_OIDC_{upper}_"
        client_id = env.get(prefix + "CLIENT_ID", "").strip()
        secret = env.get(prefix + "CLIENT_SECRET", "").strip()
        if not client_id or not secret:
            raise ValueError(f"{prefix}ISSUER is set: {prefix}CLIENT_ID and {prefix}CLIENT_SECRET must be too")
        issuer = env[key].strip().rstrip("/")
        if not issuer.startswith(("https://", "http://")):
            raise ValueError(f"{key} must be an https:// URL")
        label = env.get(prefix + "LABEL", "").strip() or upper.title()
        providers.append(OidcProvider(upper.lower(), label, issuer, client_id, secret))
    return tuple(providers)


@dataclass(frozen=True)
class VerifiedIdentity:
    """What a checked ID token says about the person."""

    subject: str
    email: str
    email_verified: bool
    name: str


@dataclass(frozen=True)
class AuthorizationRequest:
    """The secrets of one sign-in attempt, kept by the hub until the provider calls back."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass
class _Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    algorithms: tuple[str, ...]
    basic_auth: bool
    fetched: float
    keys: KeySet | None = None


class OidcClient:
    """The hub as a relying party of one provider (HTTP through the shared ``http`` session)."""

    def __init__(self, provider: OidcProvider, http: aiohttp.ClientSession) -> None:
        self.provider = provider
        self._http = http
        self._metadata: _Metadata | None = None

    async def begin(self, redirect_uri: str) -> AuthorizationRequest:
        """A fresh state, nonce and PKCE verifier, and the provider URL to send the browser to."""
        metadata = await self._discover()
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        url = add_params_to_uri(metadata.authorization_endpoint, [
            ("response_type", "code"), ("client_id", self.provider.client_id), ("redirect_uri", redirect_uri),
            ("scope", SCOPES), ("state", state), ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(verifier)), ("code_challenge_method", "S256"),
        ])
        return AuthorizationRequest(url, state, nonce, verifier)

    async def finish(self, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> VerifiedIdentity:
        """Exchange ``code`` (with the PKCE verifier) and check the ID token it brings back."""
        metadata = await self._discover()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": code_verifier}
        headers = {"Accept": "application/json"}
        if metadata.basic_auth:  # RFC 6749 2.3.1: form-encode both parts before Basic
            pair = f"{quote(self.provider.client_id, safe='')}:{quote(self.provider.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form |= {"client_id": self.provider.client_id, "client_secret": self.provider.client_secret}
        try:
            async with self._http.post(metadata.token_endpoint, data=form, headers=headers) as response:
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError("provider-unreachable", f"{self.provider.label} did not answer: {exc}") from exc
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
            error = body.get("error") if isinstance(body, dict) else None
            logger.info("%s refused the code: %s %s", self.provider.name, status, error)
            raise OidcError("code-refused", f"{self.provider.label} refused the sign-in ({error or status}).")
        access_token = body.get("access_token")
        claims = await self._check_id_token(metadata, body["id_token"], nonce, access_token)
        if not isinstance(claims.get("email"), str) and metadata.userinfo_endpoint and isinstance(access_token, str):
            info = await self._userinfo(metadata.userinfo_endpoint, access_token, str(claims["sub"]))
            # the address and whether it is verified come together; a name only where the token has none
            claims = {**claims, "email": info.get("email"), "email_verified": info.get("email_verified")}
            for key in ("name", "preferred_username"):
                if not claims.get(key) and info.get(key):
                    claims[key] = info[key]
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise OidcError("no-email", f"{self.provider.label} did not share an e-mail address (scope 'email').")
        name = claims.get("name") or claims.get("preferred_username") or ""
        return VerifiedIdentity(
            subject=str(claims["sub"]), email=email, email_verified=claims.get("email_verified") is True,
            name=name if isinstance(name, str) else "",
        )

    async def _check_id_token(
        self, metadata: _Metadata, id_token: str, nonce: str, access_token: object
    ) -> dict[str, Any]:
        algorithms = list(metadata.algorithms)
        try:
            try:
                token = jwt.decode(id_token, await self._keys(metadata), algorithms=algorithms)
            except InvalidKeyIdError:  # a rotated key: fetch the set once more, then give up
                token = jwt.decode(id_token, await self._keys(metadata, force=True), algorithms=algorithms)
            params: dict[str, Any] = {"nonce": nonce, "client_id": self.provider.client_id}
            if isinstance(access_token, str):
                params["access_token"] = access_token
            claims = CodeIDToken(token.claims, token.header, {
                "iss": {"essential": True, "value": metadata.issuer},
                "aud": {"essential": True, "value": self.provider.client_id},
            }, params)
            claims.validate(leeway=LEEWAY_S)
        except (JoseError, ValueError) as exc:
            logger.info("%s: ID token refused: %s", self.provider.name, exc)
            raise OidcError("bad-id-token", f"The sign-in answer from {self.provider.label} did not check out.") from exc
        return cast(dict[str, Any], dict(claims))

    async def _userinfo(self, endpoint: str, access_token: str, subject: str) -> UserInfo:
        """The UserInfo endpoint's claims about ``subject`` (JSON answers only; a signed one is refused)."""
        try:
            async with self._http.get(endpoint, headers={"Authorization": f"Bearer {access_token}",
                                                         "Accept": "application/json"}) as response:
                status = response.status
                doc = await response.json(content_type=None) if status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError("provider-unreachable", f"{self.provider.label} did not answer ({endpoint}): {exc}") from exc
        if not isinstance(doc, dict):
            logger.info("%s: userinfo answered %s", self.provider.name, status)
            raise OidcError("bad-userinfo", f"{self.provider.label} did not say who signed in ({status}).")
        info = UserInfo(doc)
        if info.get("sub") != subject:  # OpenID Connect Core 5.3.2
            logger.info("%s: userinfo is about another subject", self.provider.name)
            raise OidcError("bad-userinfo", f"The sign-in answer from {self.provider.label} did not check out.")
        return info

    async def _discover(self) -> _Metadata:
        if self._metadata is not None and time.monotonic() - self._metadata.fetched < METADATA_TTL_S:
            return self._metadata
        url = f"{self.provider.issuer}/.well-known/openid-configuration"
        doc = await self._get_json(url)
        try:
            issuer = str(doc["issuer"]).rstrip("/")
            if issuer != self.provider.issuer:  # OpenID Connect Discovery 4.3
                raise ValueError(f"it names issuer {issuer}")
            algorithms = tuple(a for a in doc.get("id_token_signing_alg_values_supported", DEFAULT_ALGORITHMS)
                               if a != "none") or DEFAULT_ALGORITHMS
            methods = doc.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
            self._metadata = _Metadata(
                issuer=issuer, authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]), jwks_uri=str(doc["jwks_uri"]),
                userinfo_endpoint=str(doc["userinfo_endpoint"]) if doc.get("userinfo_endpoint") else None,
                algorithms=algorithms, basic_auth="client_secret_basic" in methods, fetched=time.monotonic(),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise OidcError("provider-misconfigured", f"{url} is not usable: {exc}") from exc
        return self._metadata

    async def _keys(self, metadata: _Metadata, force: bool = False) -> KeySet:
        if metadata.keys is None or force:
            try:
                metadata.keys = KeySet.import_key_set(await self._get_json(metadata.jwks_uri))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as exc:
                raise OidcError("provider-misconfigured", f"{metadata.jwks_uri} holds no usable keys") from exc
        return metadata.keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._http.get(url, headers={"Accept": "application/json"}) as response:
                response.raise_for_status()
                doc = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError("provider-unreachable", f"{self.provider.label} did not answer ({url}): {exc}") from exc
        if not isinstance(doc, dict):
            raise OidcError("provider-misconfigured", f"{url} is not a JSON object")
        return doc


def new_http_session() -> aiohttp.ClientSession:
    """The HTTP client the providers are reached with (owned by the sign-in routes)."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S))
