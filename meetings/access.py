"""Who is asking, and what they may do with a pair: the API key, organisers, members, others.

The hub's API key (``Authorization: Bearer``) acts as an organiser of every pair, for portals.
A signed-in account (:mod:`meetings.identity`) is an organiser or member of the pairs that list
its e-mail; its writes must pass the CSRF check, because a browser sends the cookie on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from signalling.auth import api_key_matches

from . import identity
from .errors import TwinningError
from .pairs import Pair
from .vocabulary import PairRole


@dataclass(frozen=True)
class Caller:
    """The API key (``account`` None, ``admin``) or a signed-in account."""

    account: identity.Account | None
    admin: bool = False

    @property
    def email(self) -> str | None:
        return self.account.email if self.account else None

    def role_in(self, pair: Pair) -> PairRole | None:
        if self.admin:
            return PairRole.ORGANISER
        return pair.role_of(self.account.email) if self.account else None


async def caller(request: web.Request, api_key: str | None, write: bool = False) -> Caller:
    """The caller, or 401 ``sign-in-required`` / 403 ``csrf-failed``."""
    if api_key_matches(api_key, request.headers.get("Authorization")):
        return Caller(None, admin=True)
    account = await identity.signed_in(request)
    if account is None:
        raise TwinningError("sign-in-required", "Sign in (or send 'Authorization: Bearer <API key>').", 401)
    if write and not identity.csrf_ok(request):
        raise TwinningError("csrf-failed", "This change did not come from the hub's own page (CSRF check).", 403)
    return Caller(account)


def require(who: Caller, pair: Pair, role: PairRole) -> PairRole:
    """``who``'s role in ``pair`` if it is at least ``role``; else 403."""
    have = who.role_in(pair)
    if have is None:
        raise TwinningError("not-a-member", "Only this pair's members can see or do this.", 403)
    if role is PairRole.ORGANISER and have is not PairRole.ORGANISER:
        raise TwinningError("organisers-only", "Only the pair's organisers can do this.", 403)
    return have
