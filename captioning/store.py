"""Final captions (source and every translation) in SQLite, per room session.

The archive builds WebVTT per language from here, so every final caption is kept with its
session, speaker, language and media times. The tables are created by core/migrations.py and
every query runs on the database's own thread (core/database.py).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from core.database import Database


@dataclass(frozen=True)
class StoredCaption:
    session_id: str
    utterance: str
    speaker_id: str
    speaker_name: str
    source_lang: str
    lang: str
    text: str
    start: float
    end: float


class CaptionStore:
    """Sessions and captions in the hub's database (``core.database`` owns the file and schema)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def start_session(self, room: str) -> str:
        session_id = uuid.uuid4().hex[:16]
        await self._db.execute(
            "INSERT INTO sessions (id, room, started_at) VALUES (?, ?, ?)", (session_id, room, time.time())
        )
        return session_id

    async def end_session(self, session_id: str) -> None:
        await self._db.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (time.time(), session_id))

    async def add(self, captions: list[StoredCaption]) -> None:
        rows = [
            (c.session_id, c.utterance, c.speaker_id, c.speaker_name, c.source_lang, c.lang,
             c.text, c.start, c.end, time.time())
            for c in captions
        ]

        def insert(db: sqlite3.Connection) -> None:
            db.executemany(
                'INSERT OR REPLACE INTO captions (session_id, utterance, speaker_id, speaker_name, '
                'source_lang, lang, text, start, "end", created_at) VALUES (?,?,?,?,?,?,?,?,?,?)',
                rows,
            )

        await self._db.run(insert)

    @staticmethod
    def _select(db: sqlite3.Connection, session_id: str, lang: str | None) -> list[StoredCaption]:
        sql = ('SELECT session_id, utterance, speaker_id, speaker_name, source_lang, lang, text, start, "end" '
               "FROM captions WHERE session_id = ?")
        args: tuple[Any, ...] = (session_id,)
        if lang is not None:
            sql += " AND lang = ?"
            args += (lang,)
        sql += " ORDER BY start, id"
        return [StoredCaption(*row) for row in db.execute(sql, args).fetchall()]

    async def captions(self, session_id: str, lang: str | None = None) -> list[StoredCaption]:
        return await self._db.run(self._select, session_id, lang)

    async def sessions(self, room: str) -> list[str]:
        def q(db: sqlite3.Connection) -> list[str]:
            rows = db.execute("SELECT id FROM sessions WHERE room = ? ORDER BY started_at", (room,))
            return [r[0] for r in rows.fetchall()]

        return await self._db.run(q)
