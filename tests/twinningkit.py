"""Helpers for the twinning tests: a hub with an API key and an SMTP relay, signed-in people, PDFs.

People sign in for real: an account and a web session in the hub's own account store (what the
e-mail link or the identity provider ends in), sent as the session cookie with its CSRF token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from hubtest import RunningHub
from meetings.identity import CSRF_HEADER, SESSION_COOKIE, csrf_token
from meetings.mail import SmtpConfig, SmtpTls
from meetings.signin import STORE_KEY, SigninConfig
from signalling.auth import Security, TokenSigner

API_KEY = "twinning-test-api-key-0123456789"
SECRET = "twinning-test-jwt-secret-long-enough-for-hs256"
SENDER = "hub@unionhub.test"
MakeHub = Callable[..., Awaitable[RunningHub]]

PAIR = {
    "name": "Leeds–São Paulo health workers",
    "branches": [
        {"name": "Leeds Teaching Hospitals", "union": "UNISON", "sector": "health", "employer": "NHS",
         "country": "GB", "timezone": "Europe/London", "languages": ["en"]},
        {"name": "Hospital das Clínicas", "union": "SindSaúde", "sector": "health", "employer": "HC-FMUSP",
         "country": "BR", "timezone": "America/Sao_Paulo", "languages": ["pt"]},
    ],
}


def security() -> Security:
    return Security(signer=TokenSigner(SECRET), api_key=API_KEY)


def smtp(port: int) -> SigninConfig:
    return SigninConfig(smtp=SmtpConfig(host="127.0.0.1", sender=SENDER, port=port, tls=SmtpTls.NONE))


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


async def sign_in(hub: RunningHub, email: str, name: str) -> dict[str, str]:
    """Headers of a browser signed in as ``email``: the session cookie and its CSRF token."""
    store = hub.app[STORE_KEY]
    account = await store.account_for_email(email, name)
    token = await store.create_session(account.id)
    return {"Cookie": f"{SESSION_COOKIE}={token}", CSRF_HEADER: csrf_token(token)}


async def call(http: aiohttp.ClientSession, hub: RunningHub, method: str, path: str,
               headers: dict[str, str] | None = None, body: Any = None) -> tuple[int, Any]:
    async with http.request(method, hub.url + path, headers=headers or {}, json=body) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.read()


def soon(minutes: float, tz: str = "Africa/Johannesburg") -> str:
    """A local start ``minutes`` from now in ``tz`` (to the minute, rounded down). Use zones
    without daylight saving time: the clocks cannot skip the time whenever the test runs."""
    moment = datetime.now(UTC) + timedelta(minutes=minutes)
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def attachment(message: EmailMessage) -> bytes | None:
    """The .ics attached to an e-mail, if any."""
    for part in message.iter_attachments():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    return None


def pdf(*lines: str) -> bytes:
    """A one-page PDF 1.4 whose page shows ``lines`` in Helvetica, with a correct xref table."""
    text = "".join(f"({line}) Tj 0 -16 Td " for line in lines)
    stream = f"BT /F1 12 Tf 72 720 Td {text}ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


AGREEMENT = pdf("Collective agreement 2026", "Minimum wage: 15 per hour", "Sal\xe1rio m\xednimo e horas extras")
