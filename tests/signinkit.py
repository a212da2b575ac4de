"""Real servers for the sign-in tests: an OpenID provider (oidc-provider-mock) and an SMTP server
(aiosmtpd), each on a free port of 127.0.0.1 in a thread of the test process.

The provider is wrapped to record every request it answers, so a test can check what the hub
sent it (the PKCE challenge and verifier) — the mock itself does not enforce PKCE.
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs

import oidc_provider_mock
import werkzeug.serving
from aiosmtpd.controller import Controller

CLIENT_ID = "unionhub-test"
CLIENT_SECRET = "unionhub-test-secret-0123456789"
LINK_RE = re.compile(r"https?://\S+/signin/link\?token=\S+")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Seen:
    """One request the provider answered: its path, query and (form) body parameters."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]


@dataclass
class Provider:
    """A running provider: ``issuer`` is its URL; ``seen`` what it was asked, in order.

    With ``forge_email`` set, the ID tokens it hands out claim that address instead, keeping
    the original signature (a token altered on its way to the hub).
    """

    issuer: str
    seen: list[Seen] = field(default_factory=list)
    forge_email: str | None = None

    def env(self, name: str = "MOCK", label: str = "Union Federation") -> dict[str, str]:
        """The hub's environment for this provider."""
        prefix = f"UNIONHUB_OIDC_{name}_"
        return {prefix + "ISSUER": self.issuer, prefix + "CLIENT_ID": CLIENT_ID,
                prefix + "CLIENT_SECRET": CLIENT_SECRET, prefix + "LABEL": label}

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def _single(values: dict[str, list[str]]) -> dict[str, str]:
    return {key: items[0] for key, items in values.items()}


@contextmanager
def oidc_provider(users: Iterable[oidc_provider_mock.User]) -> Iterator[Provider]:
    """An OpenID provider that requires a nonce and knows ``users`` (sign in by typing a ``sub``)."""
    app = oidc_provider_mock.app(require_nonce=True, user_claims=tuple(users))
    port = free_port()
    provider = Provider(f"http://127.0.0.1:{port}")

    def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        form: dict[str, str] = {}
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            form = _single(parse_qs(body.decode("latin-1")))
        provider.seen.append(Seen(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                                  _single(parse_qs(environ.get("QUERY_STRING", ""))), form))
        if provider.forge_email is None or environ.get("PATH_INFO") != "/oauth2/token":
            return app(environ, start_response)  # type: ignore[no-any-return]
        captured: list[Any] = []
        body = b"".join(app(environ, lambda status, headers, *rest: captured.extend([status, headers])))
        answer = json.loads(body)
        if "id_token" in answer:
            answer["id_token"] = _forged(answer["id_token"], provider.forge_email)
        body = json.dumps(answer).encode()
        headers = [(k, v) for k, v in captured[1] if k.lower() != "content-length"]
        start_response(captured[0], [*headers, ("Content-Length", str(len(body)))])
        return [body]

    with serving(recording, port):
        yield provider


@contextmanager
def serving(app: Any, port: int) -> Iterator[None]:
    """A WSGI app (the provider, or a wrapper around it) on 127.0.0.1:``port`` for the block."""
    server = werkzeug.serving.make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def _forged(id_token: str, email: str) -> str:
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["email"] = email
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def user(sub: str, email: str, name: str, verified: bool = True) -> oidc_provider_mock.User:
    return oidc_provider_mock.User(sub=sub, claims={"email": email, "email_verified": verified, "name": name})


class Mailbox:
    """Every message the SMTP server accepted (aiosmtpd handler)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def wait(self, count: int, timeout: float = 20.0) -> list[EmailMessage]:
        """The first ``count`` messages, once that many have arrived (from a browser test)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} e-mail(s) expected, {len(self.messages)} arrived")
            time.sleep(0.05)

    def link(self, index: int = -1) -> str:
        """The sign-in link in a message (the last one by default)."""
        body = self.messages[index].get_body(("plain",))
        assert body is not None
        match = LINK_RE.search(body.get_content())
        assert match is not None, body.get_content()
        return match.group(0)


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox

    def env(self) -> dict[str, str]:
        """The hub's environment for this server (plain SMTP: it is on 127.0.0.1)."""
        return {"UNIONHUB_SMTP_HOST": "127.0.0.1", "UNIONHUB_SMTP_PORT": str(self.port),
                "UNIONHUB_SMTP_FROM": "hub@unionhub.test", "UNIONHUB_SMTP_TLS": "none"}


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, mailbox)
    finally:
        controller.stop()
