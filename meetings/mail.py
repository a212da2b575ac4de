"""Sending e-mail over SMTP: sign-in links, invitations and reminders all leave through here.

Settings come from the environment (``UNIONHUB_SMTP_*``) so that secrets stay out of config
files and command lines. The stdlib ``smtplib`` blocks, so each message is sent on a worker
thread; a hub sends a handful of messages a minute, not a mailing list.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage

from core.errors import HubError

logger = logging.getLogger(__name__)

HOST_ENV = "UNIONHUB_SMTP_HOST"
PORT_ENV = "UNIONHUB_SMTP_PORT"
USER_ENV = "UNIONHUB_SMTP_USER"
PASSWORD_ENV = "UNIONHUB_SMTP_PASSWORD"
FROM_ENV = "UNIONHUB_SMTP_FROM"
TLS_ENV = "UNIONHUB_SMTP_TLS"
TIMEOUT_S = 30.0


class SmtpTls(enum.StrEnum):
    """How the connection to the relay is protected."""

    STARTTLS = "starttls"  # port 587: plain connect, then upgrade (the submission default)
    SSL = "ssl"  # port 465: TLS from the first byte
    NONE = "none"  # a relay on this machine or a test server only: credentials travel in clear


DEFAULT_PORTS = {SmtpTls.STARTTLS: 587, SmtpTls.SSL: 465, SmtpTls.NONE: 25}


class MailError(HubError):
    """A message could not be handed to the relay."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and as whom the hub sends mail. ``password`` is never shown in repr or logs."""

    host: str
    sender: str
    port: int = 587
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: SmtpTls = SmtpTls.STARTTLS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpConfig | None:
        """The settings in ``env``; None when no host is set (the hub then sends no mail)."""
        host = env.get(HOST_ENV, "").strip()
        if not host:
            return None
        sender = env.get(FROM_ENV, "").strip()
        if not sender:
            raise ValueError(f"{FROM_ENV} must be set when {HOST_ENV} is (the From: address)")
        try:
            tls = SmtpTls(env.get(TLS_ENV, SmtpTls.STARTTLS.value).strip().lower())
        except ValueError:
            raise ValueError(f"{TLS_ENV} must be one of {', '.join(t.value for t in SmtpTls)}") from None
        port_text = env.get(PORT_ENV, "").strip()
        port = int(port_text) if port_text else DEFAULT_PORTS[tls]
        if not 0 < port < 65536:
            raise ValueError(f"{PORT_ENV} must be a TCP port")
        return cls(
            host=host, sender=sender, port=port, user=env.get(USER_ENV) or None,
            password=env.get(PASSWORD_ENV) or None, tls=tls,
        )


class Mailer:
    """Sends :class:`EmailMessage` objects through one relay; ``From`` is filled in if absent."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    @property
    def sender(self) -> str:
        return self.config.sender

    async def send(self, message: EmailMessage) -> None:
        """Hand ``message`` to the relay; ``MailError`` (code ``mail-failed``) if it refuses."""
        if "From" not in message:
            message["From"] = self.config.sender
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            logger.warning("mail to %s not sent: %s", message.get("To"), exc)
            raise MailError("mail-failed", "The e-mail could not be sent; try again later.") from exc

    def _send(self, message: EmailMessage) -> None:
        config = self.config
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if config.tls is SmtpTls.SSL:
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=TIMEOUT_S, context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_S)
        with smtp:
            if config.tls is SmtpTls.STARTTLS:
                smtp.starttls(context=context)
            if config.user and config.password:
                smtp.login(config.user, config.password)
            smtp.send_message(message)
