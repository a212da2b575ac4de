"""A pair's shared documents: PDFs members upload (agreements, leaflets), their text searchable.

A file counts as a PDF only if pypdf can read it (the name and the browser's content type are
not believed); the stored name is made safe for a download header and never used as a path:
the file lives at ``<root>/<pair id>/<document id>.pdf``. Extraction runs on a worker thread
with a page and text cap, so a huge or hostile PDF cannot hold the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import re
import sqlite3
import time
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdf
from pypdf.errors import PyPdfError

from core.database import Database

from .errors import TwinningError
from .pairs import new_id

logger = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
MAX_PAGES_READ = 300  # text is extracted from this many pages at most
MAX_TEXT = 2_000_000  # characters kept for search
MAX_NAME = 120
HEADER_WINDOW = 1024  # PDF 1.7, 7.5.2: the header may follow up to 1 KiB of other bytes
WORD_RE = re.compile(r"\w+", re.UNICODE)
MAX_QUERY = 200  # characters of a search
MAX_HITS = 50
SNIPPET_TOKENS = 16
#: FTS5 snippet markers around each match (private-use characters: no PDF text means them),
#: taken out again as (start, end) offsets so that a page marks matches without parsing HTML.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"


@dataclass(frozen=True)
class Document:
    id: str
    pair_id: str
    name: str
    size: int
    pages: int
    uploaded_by: str
    uploaded_at: float

    def public(self, pair_id: str) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "size": self.size, "pages": self.pages,
            "uploaded_by": self.uploaded_by, "uploaded_at": self.uploaded_at,
            "url": f"/api/twinnings/{pair_id}/documents/{self.id}/file",
        }


@dataclass(frozen=True)
class Found:
    """A document that matched a search: a snippet of its text and where the matches are in it."""

    document: Document
    snippet: str
    highlights: tuple[tuple[int, int], ...] = ()

    def public(self, pair_id: str) -> dict[str, Any]:
        return {**self.document.public(pair_id), "snippet": self.snippet,
                "highlights": [list(h) for h in self.highlights]}


def safe_name(raw: str | None) -> str:
    """A file name fit for a download: no directories, no control or odd characters, ``.pdf``."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch if ch.isalnum() or ch in " ._-()" else "_" for ch in name).strip(" ._")
    stem = name[:-4] if name.lower().endswith(".pdf") else name
    stem = re.sub(r"_+", "_", stem).strip(" ._") or "document"
    return f"{stem[: MAX_NAME - 4]}.pdf"


def read_pdf(data: bytes) -> tuple[int, str]:
    """(pages, text) of a real PDF; ``not-a-pdf`` for anything else (blocking: run on a thread)."""
    if b"%PDF-" not in data[:HEADER_WINDOW]:
        raise TwinningError("not-a-pdf", "This file is not a PDF (whatever its name says).")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise TwinningError("encrypted-pdf", "This PDF is password-protected: upload an unprotected copy.")
        pages = len(reader.pages)
        parts: list[str] = []
        size = 0
        for page in reader.pages[:MAX_PAGES_READ]:
            text = page.extract_text() or ""
            parts.append(text)
            size += len(text)
            if size >= MAX_TEXT:
                break
    except TwinningError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, OSError) as exc:
        logger.info("refused an upload that pypdf cannot read: %s", exc)
        raise TwinningError("not-a-pdf", "This file is not a readable PDF.") from None
    if pages == 0:
        raise TwinningError("not-a-pdf", "This PDF has no pages.")
    return pages, "\n".join(parts)[:MAX_TEXT]


def match_query(query: str) -> str | None:
    """An FTS5 query from what someone typed: every word must appear (prefix match on the last)."""
    words = WORD_RE.findall(query)[:12]
    if not words:
        return None
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def parse_snippet(marked: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Split the snippet markers out: (plain text, (start, end) of each match in it)."""
    out: list[str] = []
    highlights: list[tuple[int, int]] = []
    start: int | None = None
    length = 0
    for ch in marked:
        if ch == MARK_OPEN:
            start = length
        elif ch == MARK_CLOSE:
            if start is not None and length > start:
                highlights.append((start, length))
            start = None
        else:
            out.append(ch)
            length += 1
    return "".join(out), tuple(highlights)


class DocumentStore:
    """Documents' files under ``root`` and their rows (and search index) in the database."""

    def __init__(self, database: Database, root: Path) -> None:
        self._db = database
        self.root = root

    def path(self, doc: Document) -> Path:
        return self.root / doc.pair_id / f"{doc.id}.pdf"

    async def add(self, pair_id: str, raw_name: str | None, data: bytes, by: str) -> Document:
        pages, text = await asyncio.to_thread(read_pdf, data)
        doc = Document(new_id(), pair_id, safe_name(raw_name), len(data), pages, by, time.time())
        path = self.path(doc)
        await asyncio.to_thread(_write, path, data)
        try:
            await self._db.run(_insert, doc, hashlib.sha256(data).hexdigest(), text)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        logger.info("pair %s: document %s added (%d pages, %d bytes)", pair_id, doc.id, pages, len(data))
        return doc

    async def get(self, pair_id: str, doc_id: str) -> Document | None:
        return await self._db.run(_get, pair_id, doc_id)

    async def of_pair(self, pair_id: str) -> list[Document]:
        return await self._db.run(_list, pair_id)

    async def search(self, pair_id: str, query: str) -> list[tuple[Document, str]]:
        """Documents whose name or text has every word, best first, with a snippet."""
        match = match_query(query)
        if match is None:
            return []
        return await self._db.run(_search, pair_id, match)

    async def search_pairs(self, pair_ids: Collection[str], query: str) -> list[Found]:
        """Documents of any of ``pair_ids`` whose name or text has every word, best first (at
        most :data:`MAX_HITS`). The caller decides which pairs are the asker's: nothing else is searched."""
        match = match_query(query)
        if match is None or not pair_ids:
            return []
        return await self._db.run(_search_pairs, json.dumps(sorted(set(pair_ids))), match)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)  # never a half-written PDF under its real name


_COLUMNS = "id, twinning_id, name, size, pages, uploaded_by, uploaded_at"


def _row(r: tuple[Any, ...]) -> Document:
    return Document(id=r[0], pair_id=r[1], name=r[2], size=r[3], pages=r[4], uploaded_by=r[5], uploaded_at=r[6])


def _insert(conn: sqlite3.Connection, doc: Document, digest: str, text: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT INTO twinning_documents (id, twinning_id, name, size, pages, sha256, uploaded_by, uploaded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (doc.id, doc.pair_id, doc.name, doc.size, doc.pages, digest, doc.uploaded_by, doc.uploaded_at),
        )
        conn.execute("INSERT INTO twinning_documents_fts (document, twinning_id, name, text) VALUES (?, ?, ?, ?)",
                     (doc.id, doc.pair_id, doc.name, text))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _get(conn: sqlite3.Connection, pair_id: str, doc_id: str) -> Document | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM twinning_documents WHERE id = ? AND twinning_id = ?",
                       (doc_id, pair_id)).fetchone()
    return _row(row) if row else None


def _list(conn: sqlite3.Connection, pair_id: str) -> list[Document]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM twinning_documents WHERE twinning_id = ? ORDER BY uploaded_at DESC",
                        (pair_id,)).fetchall()
    return [_row(r) for r in rows]


def _search(conn: sqlite3.Connection, pair_id: str, match: str) -> list[tuple[Document, str]]:
    rows = conn.execute(
        "SELECT document, snippet(twinning_documents_fts, 3, '', '', '…', 16) FROM twinning_documents_fts "
        "WHERE twinning_documents_fts MATCH ? AND twinning_id = ? ORDER BY rank LIMIT 50", (match, pair_id),
    ).fetchall()
    found = []
    for doc_id, snippet in rows:
        doc = _get(conn, pair_id, doc_id)
        if doc is not None:
            found.append((doc, snippet))
    return found


def _search_pairs(conn: sqlite3.Connection, pair_ids: str, match: str) -> list[Found]:
    rows = conn.execute(
        "SELECT d.id, d.twinning_id, d.name, d.size, d.pages, d.uploaded_by, d.uploaded_at, "
        "snippet(twinning_documents_fts, 3, ?, ?, '…', ?) "
        "FROM twinning_documents_fts JOIN twinning_documents d "
        "ON d.id = twinning_documents_fts.document AND d.twinning_id = twinning_documents_fts.twinning_id "
        "WHERE twinning_documents_fts MATCH ? AND twinning_documents_fts.twinning_id IN (SELECT value FROM json_each(?)) "
        "ORDER BY twinning_documents_fts.rank, d.uploaded_at DESC LIMIT ?",
        (MARK_OPEN, MARK_CLOSE, SNIPPET_TOKENS, match, pair_ids, MAX_HITS),
    ).fetchall()
    return [Found(_row(r[:7]), *parse_snippet(r[7] or "")) for r in rows]
