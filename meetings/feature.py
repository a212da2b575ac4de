"""Twinning pairs, scheduled sessions and shared documents as one feature of the hub: what ``create_app`` adds.

It owns the pieces (store, rules, documents, notifier, session rooms), the notifier's background task
(started with the app, cancelled when it stops), and the routes.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from core.database import Database
from signalling import SignallingServer
from signalling.features import Switchable

from . import http
from .documents import DocumentStore
from .mail import Mailer
from .notifier import INTERVAL_S, Notifier
from .pairs import PairStore
from .rooms import SessionRooms
from .service import Twinnings


class TwinningFeature:
    """Pairs, sessions, their e-mails and their rooms on one hub."""

    def __init__(self, database: Database, server: SignallingServer, mailer: Mailer | None, documents: Path,
                 interval: float = INTERVAL_S) -> None:
        """``documents``: the folder of the pairs' PDFs (created when the first arrives)."""
        self.store = PairStore(database)
        self.documents = DocumentStore(database, documents)
        self.twinnings = Twinnings(self.store, server.security)
        self.notifier = Notifier(self.twinnings, mailer, interval)
        self.twinnings.wake = self.notifier.wake
        self.rooms = SessionRooms(self.store, server.store, self._recording)
        self.twinnings.revoked = self.rooms.revoke
        self._server = server
        self._mailer = mailer

    def _recording(self) -> Switchable | None:
        """The hub's recording feature, found by its name in ``joined`` (meetings does not import it)."""
        feature = self._server.feature("recording")
        return feature if isinstance(feature, Switchable) else None

    def install(self, app: web.Application, page: Path) -> None:
        """Routes, the session-room feature, and start/stop with the app."""
        security = self._server.security
        http.add_routes(app, self.twinnings, self.documents, lambda: security.api_key, page,
                        self._mailer.sender if self._mailer else None)
        self._server.add(self.rooms)

        async def _start(app: web.Application) -> None:
            await self.twinnings.start()
            self.notifier.start()

        async def _stop(app: web.Application) -> None:
            await self.notifier.close()

        app.on_startup.append(_start)
        app.on_shutdown.append(_stop)
