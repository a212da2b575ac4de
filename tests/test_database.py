"""core.database: opening, versioned migrations, and adopting databases made before versions.

The fixtures in tests/data/ are databases written by unionhub 0.1's *own* code (commit f510ced,
the last without core/database.py), not reconstructed by hand. They were made with::

    git worktree add /tmp/unionhub-old f510ced
    cd /tmp/unionhub-old && PYTHONPATH=/tmp/unionhub-old /work/main/.venv/bin/python \\
        /work/main/tests/data/make_db_v0_1.py /work/main/tests/data
    git worktree remove /tmp/unionhub-old

make_db_v0_1.py drives that release's CaptionStore(path) and Archive(path, root) the way its
create_app did (store first, then archive, one file) and dumps the result with sqlite3's
``iterdump`` (minus the rows iterdump reads through the FTS5 table, which cannot be replayed;
the index itself is in its shadow tables, which are dumped). db-v0.1.sql has three sessions,
six captions (one partial replaced by its final), three recordings: ready and published,
failed without captions, and one still "recording" (the hub was killed); plus a session that
was never recorded. db-v0.1-captions-only.sql is a 0.1 hub run without recordings: caption
tables only, no search index. Both have user_version 0.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from captioning.store import CaptionStore, StoredCaption
from core.database import Database, DatabaseError, DatabaseTooNew
from core.errors import HubError
from core.migrations import LATEST, MIGRATIONS, Migration, statements
from recordings.archive import Archive

DATA = Path(__file__).parent / "data"
T0 = 1_780_000_000.0  # the started_at make_db_v0_1.py gave the first recording


def load_dump(dump: Path, path: Path) -> Path:
    conn = sqlite3.connect(str(path))
    try:
        conn.executescript(dump.read_text(encoding="utf-8"))
    finally:
        conn.close()
    return path


def user_version(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def schema(path: Path) -> list[tuple[str, str, str, str]]:
    """Everything sqlite_master says about the schema but where it is stored (rootpage)."""
    conn = sqlite3.connect(str(path))
    try:
        return sorted(conn.execute("SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master"))
    finally:
        conn.close()


def contents(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(str(path))
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("sessions", "captions", "recordings")}
    finally:
        conn.close()


def fts_consistent(path: Path) -> None:
    """FTS5's own check that the index matches the captions table exactly (raises if not)."""
    conn = sqlite3.connect(str(path))
    try:
        conn.execute("INSERT INTO captions_fts(captions_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        conn.close()


def db_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("db_"))


def cap(session: str, utterance: str, lang: str, text: str, start: float, end: float) -> StoredCaption:
    return StoredCaption(session, utterance, "id-ana", "Ana", "es", lang, text, start, end)


# ---- a new file ----------------------------------------------------------------------------------

async def test_fresh_file_migrates_to_latest(tmp_path: Path) -> None:
    path = tmp_path / "data" / "unionhub.sqlite3"  # the folder does not exist yet either
    db = Database(path)
    try:
        assert db.version == db.latest == LATEST == len(MIGRATIONS)
        assert await db.run(lambda c: c.execute("PRAGMA user_version").fetchone()[0]) == LATEST
        assert await db.run(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
        assert await db.run(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 1  # NORMAL
        assert await db.run(lambda c: c.in_transaction) is False  # autocommit between calls
        names = {name for (_, name, _, _) in schema(path)}
        assert {"sessions", "captions", "captions_session", "recordings", "recordings_started",
                "recordings_session", "captions_fts", "captions_fts_insert", "captions_fts_delete",
                "captions_fts_update", "captions_fts_replace"} <= names
        # the store and the archive work together on it: the triggers index what the store writes
        store, archive = CaptionStore(db), Archive(db, tmp_path / "recordings")
        session = await store.start_session("metal")
        rec = await archive.create("metal", session, 0.0, T0)
        await store.add([cap(session, "u1", "es", "huelga general", 1, 2)])
        assert [h.recording.id for h in await archive.search("huelga")] == [rec.id]
        assert await db.execute("UPDATE sessions SET ended_at = 1 WHERE room = ?", ("metal",)) == 1
    finally:
        db.close()
    assert user_version(path) == LATEST
    fts_consistent(path)


# ---- a database made by 0.1 ------------------------------------------------------------------

async def test_database_from_0_1_migrates_in_place_with_its_data(tmp_path: Path) -> None:
    path = load_dump(DATA / "db-v0.1.sql", tmp_path / "unionhub.sqlite3")
    assert user_version(path) == 0
    before = contents(path)
    assert [len(rows) for rows in before.values()] == [3, 6, 3]

    db = Database(path)
    try:
        assert db.version == LATEST
        store, archive = CaptionStore(db), Archive(db, tmp_path / "recordings")
        # recordings, newest first, as 0.1 left them
        recordings = await archive.list()
        assert [(r.room, r.status) for r in recordings] == [
            ("puertos", "recording"), ("oficina", "failed"), ("metal", "ready")]
        puertos, oficina, metal = recordings
        assert metal.title == "Asamblea del metal" and metal.published and metal.started_at == T0
        assert metal.participants == ["Ana García", "Bob"] and metal.duration == 60.0
        assert sorted(metal.languages) == ["en", "es"]
        assert oficina.error == "composer crashed" and oficina.languages == []
        assert [r.id for r in await archive.unfinished()] == [puertos.id]
        # captions on the recording's clock (offset 10 s) and the corrected final, not the partial
        cues = await archive.cues(metal.id, "en")
        assert cues is not None
        assert [(c.start, c.end, c.speaker, c.text) for c in cues] == [
            (2.0, 5.0, "Ana García", "The metal workers"), (10.0, 12.5, "Bob", "We stand together")]
        # searchable through the index 0.1 built, in every language, with snippets
        hits = await archive.search("trabajadores")
        assert [(h.recording.id, h.time, h.lang, h.snippet) for h in hits] == [
            (metal.id, 2.0, "es", "Los trabajadores del metal")]
        assert [h.recording.id for h in await archive.search("together")] == [metal.id]
        assert await archive.search("togeter") == []  # the replaced partial left no stale entry
        assert [h.recording.id for h in await archive.search("greve")] == [puertos.id]  # diacritics
        assert await archive.search("grabó") == []  # captions of a session nobody recorded
        # sessions
        assert len(await store.sessions("metal")) == 1 and len(await store.sessions("lone")) == 1
        (lone,) = await store.sessions("lone")
        assert [c.text for c in await store.captions(lone)] == ["Nadie grabó esto"]
        # and the migrated file keeps working: new captions are indexed by the old triggers
        (ports,) = await store.sessions("puertos")
        await store.add([cap(ports, "u9", "es", "Los estibadores en huelga", 6.0, 8.0)])
        assert [h.recording.id for h in await archive.search("estibadores")] == [puertos.id]
    finally:
        db.close()

    after = contents(path)
    after["captions"] = [row for row in after["captions"] if row[2] != "u9"]
    assert after == before  # migration 1 changed no row
    assert user_version(path) == LATEST
    fts_consistent(path)

    # the adopted file is the same database a new hub makes, object for object
    fresh = tmp_path / "fresh.sqlite3"
    Database(fresh).close()
    assert schema(path) == schema(fresh)


async def test_captions_only_database_from_0_1_gets_its_index_built(tmp_path: Path) -> None:
    path = load_dump(DATA / "db-v0.1-captions-only.sql", tmp_path / "unionhub.sqlite3")
    names = {name for (_, name, _, _) in schema(path)}
    assert {"sessions", "captions"} <= names and not {"recordings", "captions_fts"} & names
    db = Database(path)
    try:
        store, archive = CaptionStore(db), Archive(db, tmp_path / "recordings")
        (session,) = await store.sessions("metal")
        rec = await archive.create("metal", session, 0.0, T0)
        assert [h.recording.id for h in await archive.search("antigua")] == [rec.id]
    finally:
        db.close()
    fts_consistent(path)
    fresh = tmp_path / "fresh.sqlite3"
    Database(fresh).close()
    assert schema(path) == schema(fresh)


# ---- a database from the future ------------------------------------------------------------------

def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "unionhub.sqlite3"
    Database(path).close()
    conn = sqlite3.connect(str(path))
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    before, threads = schema(path), db_threads()

    with pytest.raises(DatabaseTooNew) as refused:
        Database(path)
    error = refused.value
    assert isinstance(error, DatabaseError) and isinstance(error, HubError)
    assert error.code == "database-too-new"
    assert error.to_json()["code"] == "database-too-new"
    assert str(path) in error.message and f"version {LATEST + 1}" in error.message
    assert (error.found, error.known) == (LATEST + 1, LATEST)
    assert user_version(path) == LATEST + 1 and schema(path) == before  # untouched
    assert db_threads() == threads  # its thread did not outlive the refusal


# ---- reopening, later migrations ---------------------------------------------------------------

async def test_reopening_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "unionhub.sqlite3"
    db = Database(path)
    store, archive = CaptionStore(db), Archive(db, tmp_path / "recordings")
    session = await store.start_session("metal")
    rec = await archive.create("metal", session, 0.0, T0)
    await store.add([cap(session, "u1", "es", "palabra", 1, 2)])
    db.close()
    first_schema, first_rows = schema(path), contents(path)

    for _ in range(3):
        again = Database(path)
        try:
            assert again.version == LATEST
            archive = Archive(again, tmp_path / "recordings")
            assert [h.hits for h in await archive.search("palabra")] == [1]  # indexed once
            assert [r.id for r in await archive.list()] == [rec.id]
        finally:
            again.close()
        assert schema(path) == first_schema and contents(path) == first_rows
    fts_consistent(path)


async def test_later_migrations_run_once_in_order_and_roll_back_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "unionhub.sqlite3"
    Database(path).close()
    runs: list[int] = []

    def add_notes(conn: sqlite3.Connection) -> None:
        runs.append(2)
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (id INTEGER)")
        raise sqlite3.OperationalError("migration 3 failed")

    v2 = (*MIGRATIONS, Migration(LATEST + 1, "notes", add_notes))
    with pytest.raises(sqlite3.OperationalError):
        Database(path, (*v2, Migration(LATEST + 2, "broken", broken)))
    assert runs == [2] and user_version(path) == LATEST + 1  # 2 committed, 3 rolled back
    names = {name for (_, name, _, _) in schema(path)}
    assert "notes" in names and "half_done" not in names

    db = Database(path, v2)
    try:
        assert db.version == LATEST + 1 and runs == [2]  # not run again
        await db.execute("INSERT INTO notes (text) VALUES (?)", ("hola",))
    finally:
        db.close()
    with pytest.raises(DatabaseTooNew):
        Database(path)  # this code's own list is now behind the file
    with pytest.raises(ValueError, match="numbered"):
        Database(tmp_path / "other.sqlite3", (*MIGRATIONS, Migration(LATEST + 5, "gap", add_notes)))


def test_a_migration_must_not_commit(tmp_path: Path) -> None:
    def commits(conn: sqlite3.Connection) -> None:
        conn.executescript("CREATE TABLE early (id INTEGER);")  # executescript COMMITs first

    path = tmp_path / "unionhub.sqlite3"
    with pytest.raises(RuntimeError, match="committed on its own"):
        Database(path, (*MIGRATIONS, Migration(LATEST + 1, "commits", commits)))
    assert user_version(path) == LATEST


def test_connections_opening_a_new_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "unionhub.sqlite3"
    opened: list[int] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            db = Database(path)
            opened.append(db.version)
            db.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and opened == [LATEST] * 4
    fts_consistent(path)


async def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    db = Database(tmp_path / "unionhub.sqlite3")
    assert not db.closed
    db.close()
    db.close()
    assert db.closed
    with pytest.raises(RuntimeError, match="closed"):
        await db.run(lambda c: c.execute("SELECT 1"))


def test_statements_keep_trigger_bodies_and_strings_whole() -> None:
    script = """
    CREATE TABLE t (a TEXT DEFAULT 'x;y'); -- a comment; with a semicolon
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        INSERT INTO t VALUES ('a;b'); UPDATE t SET a = 'c';
    END;
    """
    parts = list(statements(script))
    assert len(parts) == 2
    assert parts[0] == "CREATE TABLE t (a TEXT DEFAULT 'x;y');"
    assert parts[1].startswith("-- a comment; with a semicolon") and parts[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        list(statements("CREATE TABLE t (a)"))
