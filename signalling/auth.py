"""Signed join links (HS256 JWT, the Jitsi/LiveKit convention) and ICE server credentials.

An integration (or ``unionhub token create``) signs ``{room, role, name, exp}`` with the server's
secret; whoever holds the link joins that room with that role under that name, which is then
shown as verified. Secrets come from the environment or config, and never appear in logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

import jwt

from .errors import SignallingError, refusal
from .validation import display_name, language, room_name
from .vocabulary import LINK_ROLES, Role

logger = logging.getLogger(__name__)

MAX_TOKEN = 4096
MAX_TTL = 366 * 24 * 3600
#: Clock skew tolerated between the signer and this server.
LEEWAY_S = 30
JWT_SECRET_ENV = "UNIONHUB_JWT_SECRET"
API_KEY_ENV = "UNIONHUB_API_KEY"
TURN_SECRET_ENV = "UNIONHUB_TURN_SECRET"
MIN_SECRET = 32  # RFC 7518 3.2: an HS256 key is at least 256 bits


@dataclass(frozen=True)
class Grant:
    """What a valid signed link grants."""

    room: str
    role: Role
    name: str
    jti: str
    expires: float
    lang: str | None = None
    #: the channel (a language) an interpreter's link makes its holder interpret into
    interprets: str | None = None


class TokenSigner:
    """Creates and checks signed join links for one secret."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET:
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET} characters")
        self._secret = secret

    def __repr__(self) -> str:  # never print the secret
        return "TokenSigner(secret=***)"

    def create(self, room: object, role: object, name: object, ttl: float = 3600.0, lang: str | None = None) -> str:
        """A signed link's token; ``bad-room`` / ``bad-name`` / ValueError for what is not valid.

        ``role="interpreter"`` needs ``lang``: the language its holder interprets into."""
        room_name(room)
        display_name(name)
        if role not in LINK_ROLES:
            raise ValueError(f"role must be one of {', '.join(LINK_ROLES)}")
        if role == "interpreter" and not lang:
            raise ValueError("an interpreter's link needs the language they interpret into (lang)")
        if not 0 < ttl <= MAX_TTL:
            raise ValueError(f"ttl must be between 1 s and {MAX_TTL} s")
        now = int(time.time())
        claims: dict[str, Any] = {
            "room": room, "role": role, "name": name, "iat": now, "nbf": now - LEEWAY_S,
            "exp": now + int(ttl), "jti": uuid.uuid4().hex,
        }
        if lang:
            claims["lang"] = language(lang)
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: Any, room: str) -> Grant:
        """The grant of ``token`` for ``room``, or ``bad-token``."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
            raise refusal("token-invalid")
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], leeway=LEEWAY_S,
                options={"require": ["exp", "room", "role", "name"]},
            )
        except jwt.ExpiredSignatureError:
            raise refusal("token-expired") from None
        except jwt.ImmatureSignatureError:
            raise refusal("token-not-yet-valid") from None
        except jwt.PyJWTError:
            raise refusal("token-invalid") from None
        if claims.get("room") != room:
            raise refusal("token-other-room")
        role = claims.get("role")
        if role not in LINK_ROLES:
            raise SignallingError("bad-token", "This join link names an unknown role.")
        try:
            name = display_name(claims.get("name"))
            lang = language(claims["lang"]) if "lang" in claims else None
        except SignallingError:
            raise refusal("token-invalid") from None
        interprets = None
        if role == "interpreter":  # a speaker whose voice goes to the channel of their language
            if lang is None:
                raise SignallingError("bad-token", "This interpreter's link names no language.")
            role, interprets = "speaker", lang
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:  # a link without an id is revoked by its signature
            jti = hashlib.sha256(token.encode()).hexdigest()[:32]
        return Grant(
            room=room, role=cast(Role, role), name=name, jti=jti, expires=float(claims["exp"]), lang=lang,
            interprets=interprets,
        )


    def host_of_any_room(self, token: Any) -> bool:
        """Whether ``token`` is a valid host link (for some room): such hosts manage the archive."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
            return False
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], leeway=LEEWAY_S,
                                options={"require": ["exp", "room", "role", "name"]})
        except jwt.PyJWTError:
            return False
        return claims.get("role") == "host"


def join_url(base_url: str, room: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/?room={quote(room)}&token={quote(token)}"


def secret_from_env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def api_key_matches(expected: str | None, header: str | None) -> bool:
    """Constant-time check of an ``Authorization: Bearer <key>`` header."""
    if not expected or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), expected.encode())


# -- ICE servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IceServer:
    """One ``--ice-server`` URL: ``stun:host[:port]``, ``turn[s]:[user:pass@]host[:port][?transport=…]``."""

    url: str
    username: str | None = None
    credential: str | None = None

    @classmethod
    def parse(cls, text: str) -> IceServer:
        scheme, sep, rest = text.partition(":")
        if not sep or scheme not in ("stun", "turn", "turns") or not rest:
            raise ValueError(f"not an ICE server URL (stun:, turn: or turns:): {_redact_ice(text)}")
        user = credential = None
        if "@" in rest:
            auth, _, rest = rest.rpartition("@")
            user, _, credential = auth.partition(":")
            user, credential = unquote(user), unquote(credential)
            if scheme == "stun" or not user or not credential:
                raise ValueError(f"credentials go with turn: URLs as user:password@host: {_redact_ice(text)}")
        host = urlsplit("//" + rest.split("?", 1)[0]).hostname
        if not host:
            raise ValueError(f"no host in ICE server URL: {_redact_ice(text)}")
        return cls(f"{scheme}:{rest}", user, credential)


def _redact_ice(text: str) -> str:
    scheme, _, rest = text.partition(":")
    return f"{scheme}:***@{rest.rpartition('@')[2]}" if "@" in rest else text


class IceConfig:
    """The ICE servers handed to browsers; TURN REST credentials (RFC-draft, coturn
    ``use-auth-secret``) are minted per participant and expire after ``ttl``."""

    def __init__(self, servers: list[IceServer], turn_secret: str | None = None, ttl: float = 24 * 3600) -> None:
        self.servers = servers
        self._turn_secret = turn_secret
        self.ttl = ttl

    def __repr__(self) -> str:
        return f"IceConfig({[s.url for s in self.servers]}, turn_secret={'***' if self._turn_secret else None})"

    def for_participant(self, participant: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = []
        for server in self.servers:
            entry: dict[str, Any] = {"urls": server.url}
            if server.url.startswith("turn"):
                if server.username:
                    entry.update(username=server.username, credential=server.credential)
                elif self._turn_secret:
                    entry.update(turn_rest_credentials(self._turn_secret, participant, self.ttl))
            result.append(entry)
        return result


def turn_rest_credentials(secret: str, user: str, ttl: float, now: float | None = None) -> dict[str, str]:
    """``username = expiry:user``, ``credential = base64(HMAC-SHA1(secret, username))``."""
    username = f"{int((now or time.time()) + ttl)}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode()}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class Security:
    """The server's access configuration (``unionhub serve --auth/--ice-server``, env secrets)."""

    signer: TokenSigner | None = None
    token_only: bool = False  # every join needs a signed link (and roles come only from links)
    ice: IceConfig | None = None
    api_key: str | None = field(default=None, repr=False)
