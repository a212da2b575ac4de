"""Accounts, web sessions, one-time e-mail links and pending sign-in flows, in SQLite.

Every secret handed to a browser (a session cookie, an e-mail link, a sign-in flow cookie) is a
random token of which only the SHA-256 hash is stored: reading the database (a backup, a stolen
disk) does not let anyone sign in. Single use is enforced by the database itself (``UPDATE …
WHERE used_at IS NULL``, ``DELETE … RETURNING``), so two tabs racing for one link cannot both
win. Schema: migration 2 in :mod:`core.migrations`.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from core.database import Database

from .identity import Account

SESSION_TTL_S = 14 * 24 * 3600.0
"""A web session lasts two weeks from sign-in, then the person signs in again."""
LINK_TTL_S = 15 * 60.0
"""An e-mail link works for 15 minutes (and once)."""
FLOW_TTL_S = 10 * 60.0
"""Time to get through the identity provider's login form."""
MAX_LIVE_LINKS = 5
"""Unused, unexpired links per address: asking again and again does not flood an inbox."""


def new_secret() -> str:
    """A 256-bit URL-safe random token."""
    return secrets.token_urlsafe(32)


def secret_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normal_email(email: str) -> str:
    """Addresses compare without case and surrounding space (local parts are, in practice)."""
    return email.strip().lower()


@dataclass(frozen=True)
class PendingFlow:
    """An OpenID Connect sign-in between the redirect to the provider and its callback."""

    provider: str
    state: str
    nonce: str
    code_verifier: str
    return_to: str


class AccountStore:
    """The sign-in tables, through the hub's one :class:`Database`."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self.clock = clock
        """Wall-clock seconds: expiry of sessions, links and flows (a test moves it forward)."""

    # -- accounts ----------------------------------------------------------------------------

    async def account(self, account_id: str) -> Account | None:
        return await self._db.run(_account_by_id, account_id)

    async def account_for_email(self, email: str, name: str = "") -> Account:
        """The account a verified ``email`` signs in to, created on first use."""
        return await self._db.run(_account_for_email, normal_email(email), name)

    async def account_for_identity(
        self, provider: str, subject: str, email: str, email_verified: bool, name: str
    ) -> Account:
        """The account an identity provider's ``subject`` signs in to, created on first use.

        A new identity joins the account of its e-mail address only when the provider vouches
        for that address (``email_verified``); otherwise it gets an account of its own.
        """
        return await self._db.run(
            _account_for_identity, provider, subject, normal_email(email), email_verified, name
        )

    # -- web sessions ------------------------------------------------------------------------

    async def create_session(self, account_id: str, ttl: float = SESSION_TTL_S) -> str:
        """A new session for ``account_id``; returns the cookie value (stored only hashed)."""
        token = new_secret()
        now = self.clock()
        await self._db.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (now,))
        await self._db.execute(
            "INSERT INTO web_sessions (id_hash, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (secret_hash(token), account_id, now, now + ttl),
        )
        return token

    async def session_account(self, token: str) -> Account | None:
        """The account of a live session cookie, or None (unknown, ended or expired)."""
        return await self._db.run(_session_account, secret_hash(token), self.clock())

    async def end_session(self, token: str) -> bool:
        """Sign-out: the cookie value stops working everywhere. True if it was a live session."""
        return await self._db.execute("DELETE FROM web_sessions WHERE id_hash = ?", (secret_hash(token),)) > 0

    # -- one-time e-mail links ---------------------------------------------------------------

    async def create_link(self, email: str, ttl: float = LINK_TTL_S) -> str | None:
        """A one-time sign-in token for ``email``; None if it already has too many live links."""
        token = new_secret()
        created = await self._db.run(_create_link, secret_hash(token), normal_email(email), self.clock(), ttl)
        return token if created else None

    async def use_link(self, token: str) -> str | None:
        """Spend a link: its e-mail address, or None if unknown, expired or already used."""
        return await self._db.run(_use_link, secret_hash(token), self.clock())

    # -- pending OpenID Connect flows --------------------------------------------------------

    async def start_flow(self, flow: PendingFlow, ttl: float = FLOW_TTL_S) -> str:
        """Remember ``flow``; returns the value of the browser's flow cookie that finds it again."""
        token = new_secret()
        await self._db.execute("DELETE FROM signin_flows WHERE expires_at <= ?", (self.clock(),))
        await self._db.execute(
            "INSERT INTO signin_flows (flow_hash, provider, state, nonce, code_verifier, return_to, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (secret_hash(token), flow.provider, flow.state, flow.nonce, flow.code_verifier, flow.return_to,
             self.clock() + ttl),
        )
        return token

    async def take_flow(self, token: str) -> PendingFlow | None:
        """The flow of a flow cookie, removed so that its state and code verifier serve once."""
        return await self._db.run(_take_flow, secret_hash(token), self.clock())


# -- on the database thread ------------------------------------------------------------------

_ACCOUNT_COLUMNS = "id, email, name"


def _row_account(row: tuple[str, str, str] | None) -> Account | None:
    return Account(id=row[0], email=row[1], name=row[2]) if row is not None else None


def _account_by_id(conn: sqlite3.Connection, account_id: str) -> Account | None:
    return _row_account(conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)).fetchone())


def _insert_account(conn: sqlite3.Connection, email: str, verified: bool, name: str) -> Account:
    account = Account(id=uuid.uuid4().hex, email=email, name=name or email.split("@", 1)[0])
    conn.execute(
        "INSERT INTO accounts (id, email, email_verified, name, created_at) VALUES (?, ?, ?, ?, ?)",
        (account.id, account.email, int(verified), account.name, time.time()),
    )
    return account


def _verified_account(conn: sqlite3.Connection, email: str) -> Account | None:
    return _row_account(conn.execute(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE email = ? AND email_verified = 1", (email,)
    ).fetchone())


def _account_for_email(conn: sqlite3.Connection, email: str, name: str) -> Account:
    conn.execute("BEGIN IMMEDIATE")
    try:
        account = _verified_account(conn, email) or _insert_account(conn, email, True, name)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return account


def _account_for_identity(
    conn: sqlite3.Connection, provider: str, subject: str, email: str, verified: bool, name: str
) -> Account:
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts JOIN account_identities ON accounts.id = account_id "
            "WHERE provider = ? AND subject = ?", (provider, subject),
        ).fetchone()
        account = _row_account(row)
        if account is None:
            account = (_verified_account(conn, email) if verified else None) or _insert_account(
                conn, email, verified, name
            )
            conn.execute(
                "INSERT INTO account_identities (provider, subject, account_id, created_at) VALUES (?, ?, ?, ?)",
                (provider, subject, account.id, time.time()),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return account


def _session_account(conn: sqlite3.Connection, id_hash: str, now: float) -> Account | None:
    return _row_account(conn.execute(
        "SELECT accounts.id, accounts.email, accounts.name FROM web_sessions JOIN accounts ON accounts.id = account_id "
        "WHERE id_hash = ? AND expires_at > ?", (id_hash, now),
    ).fetchone())


def _create_link(conn: sqlite3.Connection, token_hash: str, email: str, now: float, ttl: float) -> bool:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM signin_links WHERE expires_at <= ?", (now,))  # expired links: nothing to keep
        live = conn.execute(
            "SELECT COUNT(*) FROM signin_links WHERE email = ? AND used_at IS NULL", (email,)
        ).fetchone()[0]
        created = live < MAX_LIVE_LINKS
        if created:
            conn.execute(
                "INSERT INTO signin_links (token_hash, email, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (token_hash, email, now, now + ttl),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return bool(created)


def _use_link(conn: sqlite3.Connection, token_hash: str, now: float) -> str | None:
    row = conn.execute(
        "UPDATE signin_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? "
        "RETURNING email", (now, token_hash, now),
    ).fetchone()
    return str(row[0]) if row is not None else None


def _take_flow(conn: sqlite3.Connection, flow_hash: str, now: float) -> PendingFlow | None:
    conn.execute("DELETE FROM signin_flows WHERE expires_at <= ?", (now,))
    row = conn.execute(
        "DELETE FROM signin_flows WHERE flow_hash = ? RETURNING provider, state, nonce, code_verifier, return_to",
        (flow_hash,),
    ).fetchone()
    return PendingFlow(*row) if row is not None else None
