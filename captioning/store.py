"""Final captions (source and every translation) in SQLite, per room session.

The archive builds WebVTT per language from here, so every final caption is kept with its
session, speaker, language and media times. SQLite calls run on one dedicated thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL
);
CREATE TABLE IF NOT EXISTS captions (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    utterance TEXT NOT NULL,
    speaker_id TEXT NOT NULL,
    speaker_name TEXT NOT NULL,
    source_lang TEXT NOT NULL,
    lang TEXT NOT NULL,
    text TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (utterance, lang)
);
CREATE INDEX IF NOT EXISTS captions_session ON captions(session_id, lang, start);
"""


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
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="caption-db")
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def start_session(self, room: str) -> str:
        session_id = uuid.uuid4().hex[:16]
        await self._run(
            self._db.execute, "INSERT INTO sessions (id, room, started_at) VALUES (?, ?, ?)",
            (session_id, room, time.time()),
        )
        return session_id

    async def end_session(self, session_id: str) -> None:
        await self._run(
            self._db.execute, "UPDATE sessions SET ended_at = ? WHERE id = ?", (time.time(), session_id)
        )

    async def add(self, captions: list[StoredCaption]) -> None:
        rows = [
            (c.session_id, c.utterance, c.speaker_id, c.speaker_name, c.source_lang, c.lang,
             c.text, c.start, c.end, time.time())
            for c in captions
        ]
        await self._run(
            self._db.executemany,
            'INSERT OR REPLACE INTO captions (session_id, utterance, speaker_id, speaker_name, '
            'source_lang, lang, text, start, "end", created_at) VALUES (?,?,?,?,?,?,?,?,?,?)',
            rows,
        )

    def _select(self, session_id: str, lang: str | None) -> list[StoredCaption]:
        sql = ('SELECT session_id, utterance, speaker_id, speaker_name, source_lang, lang, text, start, "end" '
               "FROM captions WHERE session_id = ?")
        args: tuple[Any, ...] = (session_id,)
        if lang is not None:
            sql += " AND lang = ?"
            args += (lang,)
        sql += " ORDER BY start, id"
        return [StoredCaption(*row) for row in self._db.execute(sql, args).fetchall()]

    async def captions(self, session_id: str, lang: str | None = None) -> list[StoredCaption]:
        return list(await self._run(self._select, session_id, lang))

    async def sessions(self, room: str) -> list[str]:
        def q() -> list[str]:
            rows = self._db.execute("SELECT id FROM sessions WHERE room = ? ORDER BY started_at", (room,))
            return [r[0] for r in rows.fetchall()]

        return list(await self._run(q))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._db.close()
