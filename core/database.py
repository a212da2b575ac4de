"""The hub's one SQLite database: one connection, one thread, one schema version.

Captions and recordings share a file because the archive joins and searches the captions;
owning it here means one place opens it, migrates it (:mod:`core.migrations`) and serialises
every query. The connection lives on a single worker thread: sqlite3 calls block, and one
connection used by one thread needs no locking of its own. Callers hand that thread a function
of the connection with :meth:`Database.run`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from .errors import HubError
from .migrations import MIGRATIONS, Migration

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

BUSY_TIMEOUT = 10.0
"""Seconds a statement waits for another connection's write lock (a second hub process, a tool)."""


class DatabaseError(HubError):
    """The database cannot be used as it is."""


class DatabaseTooNew(DatabaseError):
    """The file was migrated by a newer unionhub: this code would misread or damage it."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            "database-too-new",
            f"{path} has schema version {found}, but this unionhub knows versions up to {known}. "
            "Run a unionhub at least as new as the one that last opened it (or restore a backup).",
        )
        self.found = found
        self.known = known


class Database:
    """Opens ``path`` (WAL), brings its schema up to date, and runs queries on its own thread.

    Opening is synchronous (it happens once, at start-up, before serving); migrations run on the
    worker thread like every other query. :meth:`close` belongs to whoever created it.
    """

    def __init__(
        self, path: Path, migrations: Sequence[Migration] = MIGRATIONS, timeout: float = BUSY_TIMEOUT
    ) -> None:
        for number, migration in enumerate(migrations, 1):
            if migration.version != number:
                raise ValueError(f"migration {number} is numbered {migration.version}")
        self.path = path
        self._migrations = tuple(migrations)
        self._timeout = timeout
        self._closed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db")
        try:
            self._conn = self._executor.submit(self._open).result()
            self.version = self._executor.submit(self._migrate).result()
        except BaseException:
            self._executor.submit(self._close_connection).result()
            self._executor.shutdown(wait=True)
            self._closed = True
            raise

    @property
    def latest(self) -> int:
        """The schema version this code brings databases to."""
        return len(self._migrations)

    @property
    def closed(self) -> bool:
        return self._closed

    async def run(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(connection, *args, **kwargs)`` on the database thread, in submission order.

        The connection is in autocommit mode (isolation_level=None): a statement is its own
        transaction unless ``fn`` opens one (``BEGIN IMMEDIATE`` … ``COMMIT``).
        """
        if self._closed:
            raise RuntimeError(f"database {self.path} is closed")
        call = functools.partial(fn, self._conn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """One statement for its effect; returns the number of rows it changed."""
        return await self.run(_execute, sql, params)

    def close(self) -> None:
        """Wait for queued queries, then close the connection and the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._executor.submit(self._close_connection).result()
        finally:
            self._executor.shutdown(wait=True)

    # -- on the database thread --------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=self._timeout, isolation_level=None)
        try:
            found = _user_version(conn)
            if found > self.latest:  # refused before anything, even the journal mode, is written
                raise DatabaseTooNew(self.path, found, self.latest)
            _set_wal(conn, self._timeout)  # readers never wait for the writer
            conn.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; only the last commits can be lost on power loss
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_connection(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    def _migrate(self) -> int:
        """Apply the missing migrations, each in its own IMMEDIATE transaction; return the version.

        The version is read again under the write lock, so two processes opening the same file
        at once apply each migration exactly once.
        """
        conn = self._conn
        latest = self.latest
        version = _user_version(conn)
        if version > latest:
            raise DatabaseTooNew(self.path, version, latest)
        while version < latest:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = _user_version(conn)
                if version > latest:
                    raise DatabaseTooNew(self.path, version, latest)
                migration = self._migrations[version] if version < latest else None
                if migration is not None:  # else another process got there first
                    migration.apply(conn)
                    if not conn.in_transaction:
                        raise RuntimeError(f"migration {migration.version} committed on its own")
                    conn.execute(f"PRAGMA user_version = {int(migration.version)}")
                    version = migration.version
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if migration is not None:
                logger.info("database %s: migrated to schema version %d (%s)", self.path, version,
                            migration.summary)
        logger.debug("database %s open at schema version %d", self.path, version)
        return version


def _set_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, waiting for other connections like any statement would.

    SQLite answers this pragma "database is locked" at once, without its busy handler, while
    another connection opening the same new file holds a lock (seen: 3 in 15 runs of four hubs
    opening one file at once); retry it until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> int:
    return conn.execute(sql, params).rowcount


__all__ = ["BUSY_TIMEOUT", "Database", "DatabaseError", "DatabaseTooNew"]
