"""The recordings archive: metadata in SQLite, captions as WebVTT/SRT/transcript, full-text search.

One row per recording in ``recordings`` (the same SQLite file the caption store writes), files
under ``<root>/<id>/``. Captions are not copied: they are read from the caption store's
``captions`` table by session, moved onto the recording's clock (minus ``caption_offset``) and
clipped to its duration, so there is one source of truth. An external-content FTS5 index over
``captions.text``, kept current by triggers, answers searches in any language. The tables, the
index and its triggers are created by core/migrations.py; queries run on the database's own
thread (core/database.py).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.database import Database
from core.errors import HubError

logger = logging.getLogger(__name__)

STATUSES = ("recording", "processing", "ready", "failed")
MEDIA_FILES = ("playback.mp4", "audio.m4a")
#: An interpreter channel's files (issue #14): ``playback-es.mp4``, ``audio-es.m4a``.
CHANNEL_FILE_RE = re.compile(r"(playback-(?P<v>[a-z]{2,3}(-[A-Za-z0-9]{2,8})?)\.mp4"
                             r"|audio-(?P<a>[a-z]{2,3}(-[A-Za-z0-9]{2,8})?)\.m4a)")
#: The composer's list of a recording's channels, beside the files it made (no table: the files
#: on disk are what can be played).
CHANNELS_FILE = "channels.json"
ID_RE = re.compile(r"[0-9a-f]{8,32}")
LANG_RE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
MAX_TITLE = 200
MAX_QUERY = 200
MAX_TERMS = 16
SNIPPET_TOKENS = 16
_MARK_OPEN, _MARK_CLOSE = "\x02", "\x03"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WORD = re.compile(r"[^\W_]")

# Captions that overlap a recording (aliases r, c): the SQL twin of Recording.length.
_LENGTH = "COALESCE(r.duration, r.ended_at - r.started_at)"
_WINDOW = f'c."end" > r.caption_offset AND ({_LENGTH} IS NULL OR c.start < r.caption_offset + {_LENGTH})'

_COLUMNS = ("id, room, title, session_id, caption_offset, started_at, ended_at, duration, status, "
            "progress, error, published, participants")


class ArchiveError(HubError, ValueError):
    """Bad input to the archive (the HTTP layer turns it into a 400)."""


def valid_id(rec_id: object) -> bool:
    return isinstance(rec_id, str) and ID_RE.fullmatch(rec_id) is not None


def valid_lang(lang: object) -> bool:
    return isinstance(lang, str) and LANG_RE.fullmatch(lang) is not None


@dataclass(frozen=True)
class Recording:
    id: str
    room: str
    title: str
    started_at: float
    ended_at: float | None
    duration: float | None
    status: str
    progress: float | None
    error: str | None
    published: bool
    participants: list[str]
    languages: list[str]
    session_id: str | None
    caption_offset: float
    channels: list[str] = field(default_factory=builtins.list)  # interpreter channels, languages

    @property
    def length(self) -> float | None:
        """Seconds the captions are clipped to: the duration, else the wall-clock span."""
        if self.duration is not None:
            return self.duration
        if self.ended_at is not None:
            return max(0.0, self.ended_at - self.started_at)
        return None

    def to_json(self) -> dict[str, Any]:
        base = f"/api/recordings/{self.id}"
        ready = self.status == "ready"
        return {
            "id": self.id,
            "room": self.room,
            "title": self.title,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "status": self.status,
            "progress": self.progress,
            "error": self.error,
            "published": self.published,
            "participants": list(self.participants),
            "languages": list(self.languages),
            "session_id": self.session_id,
            "caption_offset": self.caption_offset,
            "url": f"/recordings/{self.id}",
            "api": base,
            "video": f"{base}/media/playback.mp4" if ready else None,
            "audio": f"{base}/media/audio.m4a" if ready else None,
            # the floor is video/audio; each channel has its own files, the same video
            "channels": [
                {"lang": lang, "video": f"{base}/media/playback-{lang}.mp4", "audio": f"{base}/media/audio-{lang}.m4a"}
                for lang in (self.channels if ready else [])
            ],
            "captions": {
                lang: {
                    "vtt": f"{base}/captions/{lang}.vtt",
                    "srt": f"{base}/captions/{lang}.srt",
                    "transcript": f"{base}/transcript/{lang}",
                }
                for lang in self.languages
            },
        }


@dataclass(frozen=True)
class Cue:
    """One caption on the recording's clock."""

    start: float
    end: float
    speaker: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "speaker": self.speaker, "text": self.text}


@dataclass(frozen=True)
class SearchHit:
    """A recording that matches a search; ``time`` is None when only its title matched."""

    recording: Recording
    time: float | None = None
    lang: str | None = None
    speaker: str | None = None
    snippet: str | None = None
    highlights: list[tuple[int, int]] = field(default_factory=builtins.list)
    hits: int = 0

    def to_json(self) -> dict[str, Any]:
        out = self.recording.to_json()
        out["match"] = {
            "time": None if self.time is None else round(self.time, 3),
            "lang": self.lang,
            "speaker": self.speaker,
            "snippet": self.snippet,
            "highlights": [list(h) for h in self.highlights],
            "hits": self.hits,
        }
        return out


# ---- caption formats ---------------------------------------------------------------------------

def _clock(seconds: float, sep: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def vtt_time(seconds: float) -> str:
    return _clock(seconds, ".")


def srt_time(seconds: float) -> str:
    return _clock(seconds, ",")


def _one_line(text: str) -> str:
    """Cue text must not contain blank lines; captions are one line anyway."""
    return " ".join(_CONTROL.sub(" ", text).split())


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_webvtt(cues: builtins.list[Cue], ids: bool = True) -> str:
    """WebVTT with voice tags; ``ids=False`` for live segments (players dedupe cues by id)."""
    lines = ["WEBVTT", ""]
    for n, cue in enumerate(cues, 1):
        text = _vtt_escape(_one_line(cue.text))
        speaker = _vtt_escape(_one_line(cue.speaker))
        lines += [str(n)] if ids else []
        lines += [f"{vtt_time(cue.start)} --> {vtt_time(cue.end)}",
                  f"<v {speaker}>{text}" if speaker else text, ""]
    return "\n".join(lines) + "\n"


def render_srt(cues: builtins.list[Cue]) -> str:
    lines: builtins.list[str] = []
    for n, cue in enumerate(cues, 1):
        text = _one_line(cue.text)
        speaker = _one_line(cue.speaker)
        lines += [str(n), f"{srt_time(cue.start)} --> {srt_time(cue.end)}",
                  f"{speaker}: {text}" if speaker else text, ""]
    return "\n".join(lines) + "\n"


def fts_query(text: str) -> str | None:
    """User text as an FTS5 query: every word a quoted prefix phrase, all required.

    Quoting makes operators (AND, OR, NEAR, ``*``, ``^``, column filters) plain words; terms
    without a letter or digit are dropped because an empty phrase never matches.
    """
    terms = []
    for raw in _CONTROL.sub(" ", text[:MAX_QUERY]).split():
        if _WORD.search(raw):
            terms.append('"' + raw.replace('"', '""') + '"*')
        if len(terms) == MAX_TERMS:
            break
    return " ".join(terms) or None


def _parse_snippet(marked: str) -> tuple[str, builtins.list[tuple[int, int]]]:
    """Split FTS5 snippet markers out into (plain text, [(start, end)] highlight offsets)."""
    out: builtins.list[str] = []
    highlights: builtins.list[tuple[int, int]] = []
    length = 0
    start: int | None = None
    for ch in marked:
        if ch == _MARK_OPEN:
            start = length
        elif ch == _MARK_CLOSE:
            if start is not None and length > start:
                highlights.append((start, length))
            start = None
        else:
            out.append(ch)
            length += 1
    return "".join(out), highlights


# ---- the archive -----------------------------------------------------------------------------

class Archive:
    """Recordings metadata and captions; ``root`` holds one folder per recording."""

    def __init__(self, db: Database, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self._db = db

    def folder(self, rec_id: str) -> Path:
        """The recording's folder; the id is checked so no path can leave ``root``."""
        if not valid_id(rec_id):
            raise ArchiveError("bad-id", "A recording id is 8–32 lowercase hex digits.")
        return self.root / rec_id

    def media_path(self, rec_id: str, name: str) -> Path:
        if name not in MEDIA_FILES and not CHANNEL_FILE_RE.fullmatch(name):
            raise ArchiveError("bad-name", f"Media is one of {', '.join(MEDIA_FILES)} or a channel's "
                                           "playback-<lang>.mp4 / audio-<lang>.m4a.")
        return self.folder(rec_id) / name

    def _channels(self, rec_id: str) -> builtins.list[str]:
        """The recording's interpreter channels (what the composer wrote; [] before or without)."""
        try:
            langs = json.loads((self.root / rec_id / CHANNELS_FILE).read_text())
        except (OSError, ValueError):
            return []
        return [lang for lang in langs if valid_lang(lang)] if isinstance(langs, builtins.list) else []

    # -- rows ------------------------------------------------------------------------------------

    def _row(self, row: tuple[Any, ...], languages: builtins.list[str]) -> Recording:
        (rec_id, room, title, session_id, offset, started_at, ended_at, duration, status,
         progress, error, published, participants) = row
        try:
            names = [str(p) for p in json.loads(participants)]
        except (ValueError, TypeError):
            names = []
        channels = self._channels(rec_id) if status == "ready" else []
        return Recording(rec_id, room, title, started_at, ended_at, duration, status, progress,
                         error, bool(published), names, languages, session_id, offset or 0.0, channels)

    @staticmethod
    def _languages(
        db: sqlite3.Connection, rec_ids: builtins.list[str] | None = None
    ) -> dict[str, builtins.list[str]]:
        """Languages with captions inside each recording, the most captioned first."""
        sql = ("SELECT r.id, c.lang, COUNT(*) AS n FROM recordings r "
               f"JOIN captions c ON c.session_id = r.session_id AND {_WINDOW}")
        args: tuple[Any, ...] = ()
        if rec_ids is not None:
            sql += f" WHERE r.id IN ({','.join('?' * len(rec_ids))})"
            args = tuple(rec_ids)
        sql += " GROUP BY r.id, c.lang ORDER BY r.id, n DESC, c.lang"
        out: dict[str, builtins.list[str]] = {}
        for rec_id, lang, _ in db.execute(sql, args):
            out.setdefault(rec_id, []).append(lang)
        return out

    def _get(self, db: sqlite3.Connection, rec_id: str) -> Recording | None:
        if not valid_id(rec_id):
            return None
        row = db.execute(f"SELECT {_COLUMNS} FROM recordings WHERE id = ?", (rec_id,)).fetchone()
        if row is None:
            return None
        return self._row(row, self._languages(db, [rec_id]).get(rec_id, []))

    def _all(
        self, db: sqlite3.Connection, published_only: bool, where: str = "", args: tuple[Any, ...] = ()
    ) -> builtins.list[Recording]:
        sql = f"SELECT {_COLUMNS} FROM recordings WHERE 1 = 1 {where}"
        if published_only:
            sql += " AND published = 1"
        sql += " ORDER BY started_at DESC, id"
        rows = db.execute(sql, args).fetchall()
        langs = self._languages(db) if rows else {}
        return [self._row(row, langs.get(row[0], [])) for row in rows]

    # -- lifecycle -------------------------------------------------------------------------------

    async def create(self, room: str, session_id: str | None, caption_offset: float, started_at: float) -> Recording:
        """A new recording in status "recording" with its (empty) folder."""
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(started_at))
        title = f"{room} — {date}"

        def insert(db: sqlite3.Connection) -> str:
            for _ in range(8):
                rec_id = secrets.token_hex(6)
                try:
                    db.execute(
                        "INSERT INTO recordings (id, room, title, session_id, caption_offset, started_at, status) "
                        "VALUES (?, ?, ?, ?, ?, ?, 'recording')",
                        (rec_id, room, title, session_id, float(caption_offset), float(started_at)),
                    )
                    return rec_id
                except sqlite3.IntegrityError:
                    continue
            raise RuntimeError("could not allocate a recording id")

        rec_id = await self._db.run(insert)
        self.folder(rec_id).mkdir(parents=True, exist_ok=True)
        logger.info("recording %s of room %s started", rec_id, room)
        return Recording(rec_id, room, title, float(started_at), None, None, "recording", None, None,
                         False, [], [], session_id, float(caption_offset))

    async def finish(
        self, rec_id: str, ended_at: float, duration: float, participants: builtins.list[str],
        status: str = "processing",
    ) -> Recording | None:
        """The session ended: record its end, length and who took part.

        A duration <= 0 means "not known yet" (crash recovery): until ``set_duration``, captions
        are then clipped to the wall-clock span instead of to nothing.
        """
        self._check_status(status)
        length = float(duration) if duration and duration > 0 else None
        await self._db.execute(
            "UPDATE recordings SET ended_at = ?, duration = ?, participants = ?, status = ?, "
            "progress = NULL, error = NULL WHERE id = ?",
            (float(ended_at), length, json.dumps([str(p) for p in participants]), status, rec_id),
        )
        return await self.get(rec_id)

    async def set_status(
        self, rec_id: str, status: str, progress: float | None = None, error: str | None = None
    ) -> Recording | None:
        """``progress`` is a fraction 0–1 (the composer's progress.json); "ready" implies 1."""
        self._check_status(status)
        if progress is not None:
            progress = min(1.0, max(0.0, float(progress)))
        elif status == "ready":
            progress = 1.0
        await self._db.execute(
            "UPDATE recordings SET status = ?, progress = ?, error = ? WHERE id = ?",
            (status, progress, error, rec_id),
        )
        return await self.get(rec_id)

    async def set_duration(self, rec_id: str, seconds: float) -> Recording | None:
        await self._db.execute("UPDATE recordings SET duration = ? WHERE id = ?", (max(0.0, float(seconds)), rec_id))
        return await self.get(rec_id)

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in STATUSES:
            raise ArchiveError("bad-status", f"Status is one of {', '.join(STATUSES)}.")

    # -- reading and editing ---------------------------------------------------------------------

    async def get(self, rec_id: str) -> Recording | None:
        return await self._db.run(self._get, rec_id)

    async def list(self, query: str | None = None, published_only: bool = False) -> builtins.list[Recording]:
        """Newest first; ``query`` keeps those whose title, room or a participant contains it."""
        recordings = await self._db.run(self._all, published_only)
        if query and query.strip():
            needle = query.strip().casefold()
            recordings = [r for r in recordings if _metadata_matches(r, needle)]
        return recordings

    async def unfinished(self) -> builtins.list[Recording]:
        """Recordings still marked "recording": after a crash, these need recovering."""
        return await self._db.run(self._all, False, "AND status = 'recording'")

    async def rename(self, rec_id: str, title: str) -> Recording | None:
        if not isinstance(title, str):
            raise ArchiveError("bad-title", "The title must be a string.")
        clean = " ".join(_CONTROL.sub(" ", title).split())
        if not clean or len(clean) > MAX_TITLE:
            raise ArchiveError("bad-title", f"The title must have 1–{MAX_TITLE} characters.")
        await self._db.execute("UPDATE recordings SET title = ? WHERE id = ?", (clean, rec_id))
        return await self.get(rec_id)

    async def set_published(self, rec_id: str, published: bool) -> Recording | None:
        await self._db.execute("UPDATE recordings SET published = ? WHERE id = ?", (1 if published else 0, rec_id))
        return await self.get(rec_id)

    async def delete(self, rec_id: str) -> bool:
        """Remove the recording, its folder, and its session's captions if no other recording uses them."""
        folder = self.folder(rec_id)

        def remove(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT session_id FROM recordings WHERE id = ?", (rec_id,)).fetchone()
            if row is None:
                return False
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM recordings WHERE id = ?", (rec_id,))
                session_id = row[0]
                if session_id is not None:
                    shared = db.execute(
                        "SELECT 1 FROM recordings WHERE session_id = ? LIMIT 1", (session_id,)
                    ).fetchone()
                    if shared is None:
                        db.execute("DELETE FROM captions WHERE session_id = ?", (session_id,))
            return True

        found = await self._db.run(remove)
        if folder.exists():
            await asyncio.to_thread(shutil.rmtree, folder, True)
        if found:
            logger.info("recording %s deleted", rec_id)
        return found

    # -- captions --------------------------------------------------------------------------------

    @staticmethod
    def _cues(db: sqlite3.Connection, rec: Recording, lang: str) -> builtins.list[Cue]:
        if rec.session_id is None:
            return []
        rows = db.execute(
            'SELECT speaker_name, text, start, "end" FROM captions WHERE session_id = ? AND lang = ? '
            "ORDER BY start, id",
            (rec.session_id, lang),
        ).fetchall()
        limit = rec.length
        cues = []
        for speaker, text, start, end in rows:
            start, end = start - rec.caption_offset, end - rec.caption_offset
            start = max(0.0, start)
            if limit is not None:
                end = min(end, limit)
            if end <= start or not text.strip():
                continue
            cues.append(Cue(start, end, speaker, text))
        cues.sort(key=lambda c: c.start)
        return cues

    async def cues(self, rec_id: str, lang: str) -> builtins.list[Cue] | None:
        """The recording's captions in ``lang`` on its own clock; None if there is no recording."""
        rec = await self.get(rec_id)
        if rec is None or not valid_lang(lang):
            return None
        return await self._db.run(self._cues, rec, lang)

    async def languages(self, rec_id: str) -> builtins.list[str]:
        rec = await self.get(rec_id)
        return builtins.list(rec.languages) if rec is not None else []

    async def webvtt(self, rec_id: str, lang: str) -> str | None:
        cues = await self.cues(rec_id, lang)
        return None if cues is None else render_webvtt(cues)

    async def srt(self, rec_id: str, lang: str) -> str | None:
        cues = await self.cues(rec_id, lang)
        return None if cues is None else render_srt(cues)

    async def transcript(self, rec_id: str, lang: str) -> builtins.list[dict[str, Any]] | None:
        cues = await self.cues(rec_id, lang)
        return None if cues is None else [c.to_json() for c in cues]

    # -- search ----------------------------------------------------------------------------------

    def _search(self, db: sqlite3.Connection, match: str, published_only: bool) -> builtins.list[SearchHit]:
        sql = (
            'SELECT r.id, c.id, MAX(0.0, c.start - r.caption_offset) AS t, c.lang, c.speaker_name '
            "FROM captions_fts JOIN captions c ON c.id = captions_fts.rowid "
            "JOIN recordings r ON r.session_id = c.session_id "
            f"WHERE captions_fts MATCH ? AND {_WINDOW}"
        )
        if published_only:
            sql += " AND r.published = 1"
        first: dict[str, tuple[int, float, str, str]] = {}
        counts: dict[str, int] = {}
        for rec_id, caption_id, t, lang, speaker in db.execute(sql, (match,)):
            counts[rec_id] = counts.get(rec_id, 0) + 1
            if rec_id not in first or t < first[rec_id][1]:
                first[rec_id] = (caption_id, t, lang, speaker)
        hits = []
        for rec_id, (caption_id, t, lang, speaker) in first.items():
            rec = self._get(db, rec_id)
            if rec is None:
                continue
            row = db.execute(
                "SELECT snippet(captions_fts, 0, ?, ?, '…', ?) FROM captions_fts "
                "WHERE captions_fts MATCH ? AND rowid = ?",
                (_MARK_OPEN, _MARK_CLOSE, SNIPPET_TOKENS, match, caption_id),
            ).fetchone()
            snippet, highlights = _parse_snippet(row[0] if row and row[0] else "")
            hits.append(SearchHit(rec, t, lang, speaker, snippet, highlights, counts[rec_id]))
        return hits

    async def search(self, q: str, published_only: bool = False) -> builtins.list[SearchHit]:
        """Recordings whose captions (any language) or title match ``q``, newest first.

        Each caption hit carries the time of its first match on the recording's clock and a
        snippet. Any input is safe: it is quoted, never parsed as FTS5 syntax.
        """
        if not isinstance(q, str):
            return []
        match = fts_query(q)
        hits: builtins.list[SearchHit] = []
        if match is not None:
            try:
                hits = await self._db.run(self._search, match, published_only)
            except sqlite3.Error:
                logger.exception("search for %r failed", q)
                hits = []
        found = {h.recording.id for h in hits}
        for rec in await self.list(q, published_only):
            if rec.id not in found:
                hits.append(SearchHit(rec))
        hits.sort(key=lambda h: (-h.recording.started_at, h.recording.id))
        return hits


def _metadata_matches(rec: Recording, needle: str) -> bool:
    return any(needle in value.casefold() for value in (rec.title, rec.room, *rec.participants))


__all__ = [
    "CHANNEL_FILE_RE", "MEDIA_FILES", "STATUSES", "Archive", "ArchiveError", "Cue", "Recording", "SearchHit",
    "fts_query", "render_srt", "render_webvtt", "srt_time", "valid_id", "valid_lang", "vtt_time",
]
