"""The hub's SQLite schema as an ordered list of migrations.

``PRAGMA user_version`` records how many of them a database has had: migration N takes it from
version N-1 to N, inside one transaction the runner (:class:`core.database.Database`) opens.
Append new migrations to :data:`MIGRATIONS`; never edit one that has shipped, because a
database stores only the number and would never see the change.

Migration 1 is the schema the hub had before versioning (captioning/store.py and
recordings/archive.py each created their part with IF NOT EXISTS, leaving user_version at 0),
kept byte for byte so that a database made by that code and a new one end up identical.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One step: ``apply`` runs inside the runner's transaction and must not commit."""

    version: int
    summary: str
    apply: Callable[[sqlite3.Connection], None]


def statements(script: str) -> Iterator[str]:
    """Split a script into single statements (trigger bodies stay whole).

    ``Connection.executescript`` would COMMIT the open transaction first, so migrations run
    their scripts one ``execute`` at a time instead.
    """
    pending = ""
    pieces = script.split(";")
    for piece in pieces[:-1]:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):  # false inside strings, comments and BEGIN…END
            yield pending.strip()
            pending = ""
    rest = (pending + pieces[-1]).strip()
    if rest:
        raise ValueError(f"incomplete SQL statement: {rest[:80]!r}")


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute every statement of ``script`` in the current transaction."""
    for statement in statements(script):
        conn.execute(statement)


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


# ---- 1: sessions, captions, recordings, caption search --------------------------------------

# Written by captioning.store.CaptionStore: final captions per room session.
_CAPTIONS = """
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

# Written by recordings.archive.Archive: one row per recording, files under data/recordings/<id>/.
_RECORDINGS = """
CREATE TABLE IF NOT EXISTS recordings (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    title TEXT NOT NULL,
    session_id TEXT,
    caption_offset REAL NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    ended_at REAL,
    duration REAL,
    status TEXT NOT NULL,
    progress REAL,
    error TEXT,
    published INTEGER NOT NULL DEFAULT 0,
    participants TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS recordings_started ON recordings(started_at);
CREATE INDEX IF NOT EXISTS recordings_session ON recordings(session_id);
"""

# The archive's full-text search over captions.text. External content: the index holds only
# tokens, the text stays in `captions`. CaptionStore writes with INSERT OR REPLACE, and REPLACE
# deletes the old row *without* firing delete triggers (unless recursive_triggers is on), which
# would leave a stale index entry. So a BEFORE INSERT trigger deletes the row being replaced
# itself; that delete fires the ordinary delete trigger whatever the connection's settings, and
# REPLACE then finds nothing to replace.
_CAPTIONS_FTS = """
CREATE VIRTUAL TABLE IF NOT EXISTS captions_fts USING fts5(
    text, content='captions', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS captions_fts_insert AFTER INSERT ON captions BEGIN
    INSERT INTO captions_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS captions_fts_delete AFTER DELETE ON captions BEGIN
    INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER IF NOT EXISTS captions_fts_update AFTER UPDATE ON captions BEGIN
    INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO captions_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS captions_fts_replace BEFORE INSERT ON captions BEGIN
    DELETE FROM captions WHERE utterance = new.utterance AND lang = new.lang;
END;
"""


def _initial(conn: sqlite3.Connection) -> None:
    """Today's schema; IF NOT EXISTS lets it adopt a database the unversioned code made.

    A hub run without recordings had captions but no index: a new index is filled from them.
    """
    fts_is_new = not table_exists(conn, "captions_fts")
    run_script(conn, _CAPTIONS + _RECORDINGS + _CAPTIONS_FTS)
    if fts_is_new:
        conn.execute("INSERT INTO captions_fts(captions_fts) VALUES ('rebuild')")


# ---- 2: accounts, sign-in identities, web sessions, e-mail links (meetings/accounts.py) ------

# Secrets (session ids, e-mail link tokens, sign-in flow ids) are stored as SHA-256 hashes: a
# copy of the database does not let anyone in. An e-mail is unique only once it is verified,
# so an identity provider that does not vouch for an address cannot take over its account.
_ACCOUNTS = """
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    email_verified INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX accounts_verified_email ON accounts(email) WHERE email_verified = 1;
CREATE TABLE account_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX account_identities_account ON account_identities(account_id);
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX web_sessions_account ON web_sessions(account_id);
CREATE TABLE signin_links (
    token_hash TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
CREATE INDEX signin_links_email ON signin_links(email);
CREATE TABLE signin_flows (
    flow_hash TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    state TEXT NOT NULL,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    return_to TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


def _accounts(conn: sqlite3.Connection) -> None:
    run_script(conn, _ACCOUNTS)


# ---- 3: twinning pairs, members, scheduled sessions, documents (meetings/pairs.py, documents.py)

# A session is kept as its organiser gave it (local start, IANA zone, RRULE) and expanded when
# needed; ``twinning_notices`` records every e-mail sent, so none is sent twice, even after a
# restart. Languages are a JSON list. E-mails compare case-insensitively. A document's PDF is a
# file (<data-dir>/documents/<pair>/<id>.pdf); its extracted text is only in the search index.
_TWINNINGS = """
CREATE TABLE twinnings (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_by TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE twinning_branches (
    twinning_id TEXT NOT NULL REFERENCES twinnings(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    union_name TEXT NOT NULL DEFAULT '',
    sector TEXT NOT NULL DEFAULT '',
    employer TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    timezone TEXT NOT NULL,
    languages TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (twinning_id, position)
);
CREATE TABLE twinning_members (
    twinning_id TEXT NOT NULL REFERENCES twinnings(id) ON DELETE CASCADE,
    email TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL CHECK (role IN ('organiser', 'member')),
    branch INTEGER,
    added_at REAL NOT NULL,
    PRIMARY KEY (twinning_id, email)
);
CREATE INDEX twinning_members_email ON twinning_members(email);
CREATE TABLE twinning_sessions (
    id TEXT PRIMARY KEY,
    twinning_id TEXT NOT NULL REFERENCES twinnings(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    start_local TEXT NOT NULL,
    timezone TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL,
    rrule TEXT,
    sequence INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    base_url TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX twinning_sessions_pair ON twinning_sessions(twinning_id);
CREATE TABLE twinning_notices (
    session_id TEXT NOT NULL,
    email TEXT NOT NULL COLLATE NOCASE,
    kind TEXT NOT NULL,
    occurrence TEXT NOT NULL DEFAULT '',
    sequence INTEGER NOT NULL DEFAULT 0,
    sent_at REAL NOT NULL,
    PRIMARY KEY (session_id, email, kind, occurrence, sequence)
);
CREATE TABLE twinning_activity (
    id INTEGER PRIMARY KEY,
    twinning_id TEXT NOT NULL REFERENCES twinnings(id) ON DELETE CASCADE,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX twinning_activity_pair ON twinning_activity(twinning_id, at);
CREATE TABLE twinning_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE twinning_documents (
    id TEXT PRIMARY KEY,
    twinning_id TEXT NOT NULL REFERENCES twinnings(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at REAL NOT NULL
);
CREATE INDEX twinning_documents_pair ON twinning_documents(twinning_id, uploaded_at);
CREATE VIRTUAL TABLE twinning_documents_fts USING fts5(
    document UNINDEXED, twinning_id UNINDEXED, name, text, tokenize = 'unicode61 remove_diacritics 2'
);
"""


def _twinnings(conn: sqlite3.Connection) -> None:
    run_script(conn, _TWINNINGS)


# ---- 4: twinning pairs' recording choice, structured activity, personal join links (meetings/) ----
# ``record_sessions``: the pair's session rooms record from their first participant on.
# ``fields``: an activity entry's data as JSON, which the pair page words in the reader's
# language (NULL in the rows written before: their English ``text`` is shown).
# ``twinning_links``: the id (JWT ``jti``) of every personal join link handed out, so that
# removing a member revokes theirs.
_TWINNINGS_4 = """
ALTER TABLE twinnings ADD COLUMN record_sessions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE twinning_activity ADD COLUMN fields TEXT;
CREATE TABLE twinning_links (
    jti TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES twinning_sessions(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX twinning_links_session ON twinning_links(session_id, email);
"""


def _twinnings_4(conn: sqlite3.Connection) -> None:
    run_script(conn, _TWINNINGS_4)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sessions, captions, recordings and caption full-text search", _initial),
    Migration(2, "accounts, sign-in identities, web sessions and e-mail sign-in links", _accounts),
    Migration(3, "twinning pairs, members, scheduled sessions, notices sent, activity and documents", _twinnings),
    Migration(4, "twinning pairs' recording choice, structured activity entries, personal join links", _twinnings_4),
)
"""Every migration in order; ``MIGRATIONS[n - 1].version == n``."""

LATEST = len(MIGRATIONS)
