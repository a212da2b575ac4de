"""Writes db-v0.1.sql and db-v0.1-captions-only.sql: databases made by unionhub 0.1's own code.

0.1 had no schema versions (user_version 0): CaptionStore(path) and Archive(path, root) each
created their tables with IF NOT EXISTS, and the Archive added the caption search index. These
dumps let tests/test_database.py check that migration 1 adopts such files with their data.

Run it against the released code, never the working tree's (from the repository root; the
dumps in tests/data/ were made from commit f510ced)::

    git worktree add /tmp/unionhub-old f510ced
    (cd /tmp/unionhub-old && PYTHONPATH=/tmp/unionhub-old "$OLDPWD/.venv/bin/python" \
        "$OLDPWD/tests/data/make_db_v0_1.py" "$OLDPWD/tests/data")
    git worktree remove /tmp/unionhub-old

Recording ids, session ids and wall-clock times are random or current, so each run differs.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
from pathlib import Path

from captioning.store import CaptionStore, StoredCaption  # the released modules (PYTHONPATH)
from recordings.archive import Archive

T0 = 1_780_000_000.0


def cap(session: str, utterance: str, lang: str, text: str, start: float, end: float,
        speaker: str, source: str) -> StoredCaption:
    return StoredCaption(session, utterance, f"id-{speaker}", speaker, source, lang, text, start, end)


async def full(path: Path, root: Path) -> None:
    """As unionhub 0.1's create_app: the caption store first, then the archive, on one file."""
    store = CaptionStore(path)
    archive = Archive(path, root)
    try:
        metal = await store.start_session("metal")
        await store.add([cap(metal, "u1", "es", "Los trabajadores del metal", 12.0, 15.0, "Ana García", "es"),
                         cap(metal, "u1", "en", "The metal workers", 12.0, 15.0, "Ana García", "es")])
        # a partial corrected by its final: INSERT OR REPLACE through the FTS triggers
        await store.add([cap(metal, "u2", "en", "We stand togeter", 20.0, 22.0, "Bob", "en")])
        await store.add([cap(metal, "u2", "en", "We stand together", 20.0, 22.5, "Bob", "en"),
                         cap(metal, "u2", "es", "Estamos juntos", 20.0, 22.5, "Bob", "en")])
        await store.end_session(metal)
        ready = await archive.create("metal", metal, 10.0, T0)
        await archive.finish(ready.id, T0 + 60, 60.0, ["Ana García", "Bob"])
        await archive.set_status(ready.id, "ready")
        await archive.rename(ready.id, "Asamblea del metal")
        await archive.set_published(ready.id, True)

        quiet = await archive.create("oficina", None, 0.0, T0 + 100)  # no captions at all
        await archive.finish(quiet.id, T0 + 130, 30.0, ["Carla"])
        await archive.set_status(quiet.id, "failed", error="composer crashed")

        ports = await store.start_session("puertos")  # the hub was killed while recording
        await store.add([cap(ports, "u3", "fr", "Les dockers en grève", 3.0, 5.0, "Dominique", "fr")])
        await archive.create("puertos", ports, 0.0, T0 + 200)

        lone = await store.start_session("lone")  # captions, never recorded
        await store.add([cap(lone, "u4", "es", "Nadie grabó esto", 1.0, 2.0, "Eva", "es")])
        await store.end_session(lone)
    finally:
        archive.close()
        store.close()


async def captions_only(path: Path) -> None:
    """A 0.1 hub run without recordings: captions tables, no search index yet."""
    store = CaptionStore(path)
    try:
        session = await store.start_session("metal")
        await store.add([cap(session, "u1", "es", "palabra antigua", 1.0, 2.0, "Ana García", "es")])
    finally:
        store.close()


def dump(path: Path, out: Path) -> None:
    """``iterdump``, less the rows it reads *through* virtual tables.

    It writes an FTS5 table into sqlite_master, its shadow tables (which hold the index) with
    their rows, and also ``INSERT INTO "captions_fts" VALUES(text)`` for every caption: those
    cannot replay (the table is not loaded until the schema is re-read) and would index every
    caption a second time if they did, so they are left out.
    """
    db = sqlite3.connect(str(path))
    try:
        assert db.execute("PRAGMA user_version").fetchone() == (0,)
        virtual = [name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")]
        skip = tuple('INSERT INTO "{}" VALUES('.format(name.replace('"', '""')) for name in virtual)
        lines = [line for line in db.iterdump() if not (skip and line.startswith(skip))]
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    finally:
        db.close()


def main() -> None:
    target = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        asyncio.run(full(work / "full.sqlite3", work / "recordings"))
        dump(work / "full.sqlite3", target / "db-v0.1.sql")
        asyncio.run(captions_only(work / "captions.sqlite3"))
        dump(work / "captions.sqlite3", target / "db-v0.1-captions-only.sql")


if __name__ == "__main__":
    main()
