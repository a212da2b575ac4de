"""Who is signed in: the one question every meetings route asks, and the CSRF check for writes.

This is the contract between sign-in (which fills it in) and the features that ask it. A route
calls :func:`signed_in` to learn the account behind the session cookie, and :func:`csrf_ok`
before it changes anything on a request that the session cookie authorises.

CSRF defence: a token derived from the session cookie (HMAC-SHA256 of the cookie value), which
the page reads from ``GET /api/signin/me`` and sends back in the ``X-CSRF-Token`` header. A
forged cross-site request carries the cookie but cannot know the token (the cookie is HttpOnly
and other origins cannot read our JSON), and a custom header makes a cross-origin ``fetch``
need a CORS preflight that this hub never grants. We do not rely on checking ``Origin``: the
hub sends ``Referrer-Policy: no-referrer``, under which browsers send ``Origin: null`` even on
same-origin form posts, and proxies rewrite hosts. SameSite=Lax cookies are a second layer.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

SESSION_COOKIE = "unionhub_session"
CSRF_HEADER = "X-CSRF-Token"
_CSRF_CONTEXT = b"unionhub csrf v1"


@dataclass(frozen=True)
class Account:
    """A person who can sign in: by an identity provider, an e-mail link, or both."""

    id: str  # stable account id
    email: str
    name: str


class Sessions(Protocol):
    """What :func:`signed_in` needs from the account store (meetings.accounts.AccountStore)."""

    async def session_account(self, token: str) -> Account | None: ...


SESSIONS_KEY = web.AppKey("meetings-sessions", Sessions)
"""Set by sign-in when it is installed; without it nobody is ever signed in."""


async def signed_in(request: web.Request) -> Account | None:
    """The account whose session cookie came with ``request``; None when nobody is signed in."""
    token = request.cookies.get(SESSION_COOKIE)
    sessions = request.app.get(SESSIONS_KEY)
    return await sessions.session_account(token) if token and sessions is not None else None


def csrf_token(session_token: str) -> str:
    """The CSRF token that goes with a session cookie value (the page gets it from /api/signin/me)."""
    return hmac.new(_CSRF_CONTEXT, session_token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(request: web.Request) -> bool:
    """The CSRF check for cookie-authenticated writes.

    True only when the request carries a session cookie and the ``X-CSRF-Token`` header that
    belongs to it. Requests authorised otherwise (``Authorization: Bearer``) need no such check.
    """
    token = request.cookies.get(SESSION_COOKIE)
    sent = request.headers.get(CSRF_HEADER, "")
    return bool(token) and hmac.compare_digest(sent.encode(), csrf_token(token or "").encode())
