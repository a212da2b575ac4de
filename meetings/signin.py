"""Sign-in routes: identity providers (OpenID Connect), one-time e-mail links, sign-out.

Pages: ``/signin`` (provider buttons and the e-mail form), ``/signin/link`` (where an e-mail
link lands: one click spends it, so mail scanners that fetch links do not), ``/signout``.
JSON for those pages: ``GET /api/signin/me``, ``POST /api/signin/email``,
``POST /api/signin/email/verify``, ``POST /api/signin/signout``. Protocol: docs/PROTOCOL.md.

The session cookie is HttpOnly, SameSite=Lax and Secure whenever the hub is reached over
https (plain http is for a hub on 127.0.0.1 during development: browsers drop Secure cookies
there). Signed join links are not touched: guests still join with them, signed in or not.
"""

from __future__ import annotations

import hmac
import html
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from core.database import Database
from core.http import json_error
from signalling.limits import RateLimiter

from . import messages
from .accounts import FLOW_TTL_S, LINK_TTL_S, SESSION_TTL_S, AccountStore, PendingFlow
from .identity import CSRF_HEADER, SESSION_COOKIE, SESSIONS_KEY, csrf_ok, csrf_token, signed_in
from .mail import Mailer, MailError, SmtpConfig
from .oidc import OidcClient, OidcError, OidcProvider, new_http_session, providers_from_env

logger = logging.getLogger(__name__)

PUBLIC_URL_ENV = "UNIONHUB_PUBLIC_URL"
FLOW_COOKIE = "unionhub_signin_flow"
FLOW_PATH = "/signin/oidc"
MAX_BODY = 2048
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s.]{1,63}")
#: Where to go after signing in: a path on this hub, never another site (no open redirect).
NEXT_RE = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%=&?+-]{0,500}")
#: E-mails asked for per client address: 5 at once, then one every 20 s (the relay is not a
#: tool for flooding other people's inboxes).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
MAIL_BURST = 5.0
MAIL_RATE = 1 / 20


@dataclass(frozen=True)
class SigninConfig:
    """Who may sign in how. ``public_url`` (``UNIONHUB_PUBLIC_URL``) builds redirect URIs and
    e-mail links; without it they follow the request's own scheme and host."""

    providers: tuple[OidcProvider, ...] = ()
    smtp: SmtpConfig | None = None
    public_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SigninConfig:
        public = env.get(PUBLIC_URL_ENV, "").strip().rstrip("/") or None
        return cls(providers_from_env(env), SmtpConfig.from_env(env), public)


STORE_KEY = web.AppKey("meetings-accounts", AccountStore)
MAILER_KEY = web.AppKey("meetings-mailer", Mailer)
"""The hub's mail sender when SMTP is configured (twinning invitations send through it too)."""


def safe_next(value: object) -> str:
    return value if isinstance(value, str) and NEXT_RE.fullmatch(value) else "/"


class SigninRoutes:
    """The handlers, with the store, the provider clients and the mailer they share."""

    def __init__(self, store: AccountStore, config: SigninConfig, pages: Path) -> None:
        self.store = store
        self.config = config
        self.pages = pages
        self.mailer = Mailer(config.smtp) if config.smtp is not None else None
        self._http: aiohttp.ClientSession | None = None
        self._clients: dict[str, OidcClient] = {}
        self._mail_limit = RateLimiter(MAIL_RATE, MAIL_BURST)

    def base_url(self, request: web.Request) -> str:
        return self.config.public_url or f"{request.scheme}://{request.host}"

    def link_base(self, request: web.Request) -> str | None:
        """The base URL of e-mailed links. Without ``UNIONHUB_PUBLIC_URL`` only a hub reached on
        this machine may use its request's host: otherwise anyone could have a genuine link
        e-mailed that points at their own site (Host header poisoning) and catch the token."""
        if self.config.public_url:
            return self.config.public_url
        host = request.url.host or ""
        return self.base_url(request) if host in LOOPBACK_HOSTS else None

    def secure(self, request: web.Request) -> bool:
        return request.secure or (self.config.public_url or "").startswith("https://")

    def client(self, name: str) -> OidcClient | None:
        if name not in self._clients:
            provider = next((p for p in self.config.providers if p.name == name), None)
            if provider is None:
                return None
            if self._http is None:
                self._http = new_http_session()
            self._clients[name] = OidcClient(provider, self._http)
        return self._clients[name]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    # -- pages -------------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self.pages / "signin.html", headers={"Cache-Control": "no-cache"})

    async def me(self, request: web.Request) -> web.Response:
        """The page's view: who is signed in (and their CSRF token), and how one can sign in."""
        account = await signed_in(request)
        token = request.cookies.get(SESSION_COOKIE)
        body: dict[str, Any] = {
            "account": {"id": account.id, "email": account.email, "name": account.name} if account else None,
            "csrf": csrf_token(token) if account and token else None,
            "providers": [{"name": p.name, "label": p.label, "url": f"{FLOW_PATH}/{p.name}"}
                          for p in self.config.providers],
            "email": self.mailer is not None,
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    # -- OpenID Connect ----------------------------------------------------------------------

    def redirect_uri(self, request: web.Request, provider: str) -> str:
        return f"{self.base_url(request)}{FLOW_PATH}/{quote(provider, safe='')}/callback"

    async def oidc_start(self, request: web.Request) -> web.StreamResponse:
        """Send the browser to the provider; the flow cookie ties the callback to this browser."""
        name = request.match_info["provider"]
        client = self.client(name)
        if client is None:
            raise web.HTTPNotFound()
        try:
            auth = await client.begin(self.redirect_uri(request, name))
        except OidcError as exc:
            return _failure_page(502, exc.message)
        flow = await self.store.start_flow(PendingFlow(
            name, auth.state, auth.nonce, auth.code_verifier, safe_next(request.query.get("next"))
        ))
        response = _see_other(auth.url)
        response.set_cookie(FLOW_COOKIE, flow, httponly=True, samesite="Lax", secure=self.secure(request),
                            max_age=int(FLOW_TTL_S), path=FLOW_PATH)
        return response

    async def oidc_callback(self, request: web.Request) -> web.StreamResponse:
        """The provider's answer: state, then code (with the PKCE verifier), then the ID token."""
        name = request.match_info["provider"]
        client = self.client(name)
        if client is None:
            raise web.HTTPNotFound()
        cookie = request.cookies.get(FLOW_COOKIE)
        flow = await self.store.take_flow(cookie) if cookie else None  # spent whatever happens next
        state = request.query.get("state", "")
        if flow is None or flow.provider != name or not _equal(state, flow.state):
            logger.info("sign-in callback from %s refused: unknown flow or state", name)
            return _failure_page(400, "This sign-in was not started here or has expired. Please start again.",
                                 clear_flow=True)
        if "error" in request.query:
            return _failure_page(400, f"{client.provider.label} did not sign you in "
                                 f"({request.query.get('error', '')[:64]}).", clear_flow=True)
        try:
            identity = await client.finish(request.query.get("code", ""), self.redirect_uri(request, name),
                                           flow.code_verifier, flow.nonce)
        except OidcError as exc:
            return _failure_page(400, exc.message, clear_flow=True)
        account = await self.store.account_for_identity(
            name, identity.subject, identity.email, identity.email_verified, identity.name
        )
        logger.info("account %s signed in with %s", account.id, name)
        response = _see_other(flow.return_to)
        response.del_cookie(FLOW_COOKIE, path=FLOW_PATH)
        await self._start_session(request, response, account.id)
        return response

    # -- e-mail links ------------------------------------------------------------------------

    async def email_request(self, request: web.Request) -> web.Response:
        """Mail a one-time link. The answer is the same for known and unknown addresses."""
        if self.mailer is None:
            return json_error(404, "email-signin-off", "Sign-in by e-mail is not set up on this hub.")
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        email = body.get("email")
        if not isinstance(email, str) or len(email) > 254 or not EMAIL_RE.fullmatch(email.strip()):
            return json_error(400, "bad-email", "Please give an e-mail address like name@example.org.")
        base = self.link_base(request)
        if base is None:
            logger.warning("e-mail sign-in needs %s: this hub is reached as %s", PUBLIC_URL_ENV, request.host)
            return json_error(503, "public-url-needed", f"E-mail sign-in needs {PUBLIC_URL_ENV} on this hub.")
        if not self._mail_limit.allow(request.remote or "?"):
            response = json_error(429, "rate-limited", "Too many sign-in e-mails asked for; try again in a minute.")
            response.headers["Retry-After"] = str(int(1 / MAIL_RATE))
            return response
        token = await self.store.create_link(email)
        if token is not None:
            link = f"{base}/signin/link?token={quote(token)}"
            next_path = safe_next(body.get("next"))
            if next_path != "/":
                link += f"&next={quote(next_path, safe='')}"
            try:
                await self.mailer.send(_link_message(email.strip(), link, _reader_language(body, request)))
            except MailError as exc:
                return json_error(502, exc.code, exc.message)
        else:
            logger.info("sign-in link not sent: too many live links for one address")
        return web.json_response({"sent": True}, status=202)

    async def email_verify(self, request: web.Request) -> web.Response:
        """Spend a link's token (once, within its 15 minutes) and start a session."""
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        token = body.get("token")
        email = await self.store.use_link(token) if isinstance(token, str) and 0 < len(token) <= 128 else None
        if email is None:
            return json_error(400, "link-invalid",
                              "This sign-in link has expired or was already used. Ask for a new one.")
        account = await self.store.account_for_email(email)
        logger.info("account %s signed in by e-mail link", account.id)
        response = web.json_response({"account": {"id": account.id, "email": account.email, "name": account.name},
                                      "next": safe_next(body.get("next"))})
        await self._start_session(request, response, account.id)
        return response

    # -- sessions ----------------------------------------------------------------------------

    async def signout(self, request: web.Request) -> web.Response:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return json_error(401, "not-signed-in", "Nobody is signed in.")
        if not csrf_ok(request):
            return json_error(403, "csrf", f"The request lacks its {CSRF_HEADER}; reload the page and try again.")
        await self.store.end_session(token)
        response = web.json_response({"signed_out": True})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def _start_session(self, request: web.Request, response: web.StreamResponse, account_id: str) -> None:
        old = request.cookies.get(SESSION_COOKIE)
        if old:  # a new sign-in replaces whatever session this browser had (no session fixation)
            await self.store.end_session(old)
        token = await self.store.create_session(account_id)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax", secure=self.secure(request),
                            max_age=int(SESSION_TTL_S), path="/")


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    """A small JSON object, sent as application/json: a cross-site form cannot send that type,
    and a cross-site fetch would need a CORS preflight this hub refuses (login CSRF)."""
    if request.content_type != "application/json" or request.headers.get("Sec-Fetch-Site") == "cross-site":
        return json_error(415, "json-only", "Send application/json from this hub's own pages.")
    if (request.content_length or 0) > MAX_BODY:
        return json_error(413, "too-large", "The request body is too large.")
    try:
        body = await request.json()
    except ValueError:
        return json_error(400, "bad-json", "The body is not JSON.")
    if not isinstance(body, dict):
        return json_error(400, "bad-json", "The body must be a JSON object.")
    return body


def _reader_language(body: dict[str, Any], request: web.Request) -> str:
    """The sign-in page's language (``lang`` in the request), else the browser's first."""
    asked = body.get("lang")
    tags = [asked] if isinstance(asked, str) else []
    tags += [part.split(";")[0].strip() for part in request.headers.get("Accept-Language", "").split(",")]
    return messages.language_for(t for t in tags if t)


def _link_message(email: str, link: str, lang: str = messages.FALLBACK) -> EmailMessage:
    message = EmailMessage()
    message["To"] = email
    message["Subject"] = messages.text(lang, "signin.subject")
    message.set_content(messages.text(lang, "signin.body", link=link, minutes=int(LINK_TTL_S // 60)))
    message["Content-Language"] = lang  # (after set_content, which clears Content-* headers)
    return message


def _failure_page(status: int, message: str, clear_flow: bool = False) -> web.Response:
    text = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in failed — unionhub</title>"
        "<link rel=\"stylesheet\" href=\"/static/style.css\"></head><body class=\"signin-page\">"
        f"<main class=\"signin\"><h1>Sign-in failed</h1><p data-testid=\"signin-failure\">{html.escape(message)}</p>"
        "<p><a href=\"/signin\">Sign in again</a></p></main></body></html>"
    )
    response = web.Response(status=status, text=text, content_type="text/html", headers={"Cache-Control": "no-store"})
    if clear_flow:
        response.del_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response


def add_routes(app: web.Application, database: Database, config: SigninConfig, pages: Path) -> SigninRoutes:
    """Install sign-in on ``app``: routes, :data:`SESSIONS_KEY` for :func:`signed_in`, the mailer."""
    store = AccountStore(database)
    routes = SigninRoutes(store, config, pages)
    app[SESSIONS_KEY] = store
    app[STORE_KEY] = store
    if routes.mailer is not None:
        app[MAILER_KEY] = routes.mailer
    app.router.add_get("/signin", routes.page)
    app.router.add_get("/signin/link", routes.page)
    app.router.add_get("/signout", routes.page)
    app.router.add_get(FLOW_PATH + "/{provider}", routes.oidc_start)
    app.router.add_get(FLOW_PATH + "/{provider}/callback", routes.oidc_callback)
    app.router.add_get("/api/signin/me", routes.me)
    app.router.add_post("/api/signin/email", routes.email_request)
    app.router.add_post("/api/signin/email/verify", routes.email_verify)
    app.router.add_post("/api/signin/signout", routes.signout)

    async def _close(app: web.Application) -> None:
        await routes.close()

    app.on_cleanup.append(_close)
    return routes
