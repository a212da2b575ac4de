"""The recordings archive against a real SQLite file written by a real CaptionStore.

Covers the lifecycle (create/finish/status/list/rename/publish/delete), captions on the
recording's clock (offset and clipping), WebVTT parsed back and checked, SRT, and FTS5 search in
Spanish and English, including hostile input and the FTS index staying consistent with the
caption store's INSERT OR REPLACE.
"""

from __future__ import annotations

import contextlib
import html
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioning.store import CaptionStore, StoredCaption
from core.database import Database
from recordings.archive import (
    Archive,
    ArchiveError,
    Cue,
    Recording,
    fts_query,
    render_webvtt,
    srt_time,
    vtt_time,
)

T0 = 1_780_000_000.0  # a fixed wall-clock start


@dataclass
class Env:
    db: Path
    root: Path
    store: CaptionStore
    archive: Archive


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    db = tmp_path / "data" / "unionhub.sqlite3"
    database = Database(db)
    store = CaptionStore(database)
    archive = Archive(database, tmp_path / "data" / "recordings")
    try:
        yield Env(db, tmp_path / "data" / "recordings", store, archive)
    finally:
        database.close()


def cap(session: str, utterance: str, lang: str, text: str, start: float, end: float,
        speaker: str = "Ana García", source: str = "es") -> StoredCaption:
    return StoredCaption(session, utterance, f"id-{speaker}", speaker, source, lang, text, start, end)


async def finished(env: Env, room: str = "metal", offset: float = 0.0, started: float = T0,
                   duration: float = 100.0, session: str | None = None) -> tuple[Recording, str]:
    """A recording (with its own caption session unless given) that has ended."""
    session_id = session or await env.store.start_session(room)
    rec = await env.archive.create(room, session_id, offset, started)
    done = await env.archive.finish(rec.id, started + duration, duration, ["Ana García", "Bob"])
    assert done is not None
    return done, session_id


# ---- lifecycle ---------------------------------------------------------------------------------

async def test_create_finish_status(env: Env) -> None:
    session = await env.store.start_session("metal")
    rec = await env.archive.create("metal", session, 2.5, T0)
    assert re.fullmatch(r"[0-9a-f]{8,32}", rec.id)
    assert rec.status == "recording" and rec.room == "metal" and rec.session_id == session
    assert rec.caption_offset == 2.5 and rec.started_at == T0 and not rec.published
    assert rec.title.startswith("metal — ") and re.search(r"\d{4}-\d{2}-\d{2}", rec.title)
    assert (env.root / rec.id).is_dir()
    assert [r.id for r in await env.archive.unfinished()] == [rec.id]

    got = await env.archive.finish(rec.id, T0 + 60, 59.5, ["Bob", "Ana García"])
    assert got is not None
    assert (got.status, got.duration, got.ended_at, got.participants) == (
        "processing", 59.5, T0 + 60, ["Bob", "Ana García"])
    assert await env.archive.unfinished() == []

    got = await env.archive.set_status(rec.id, "processing", progress=1.7)
    assert got is not None and got.progress == 1.0
    got = await env.archive.set_status(rec.id, "processing", progress=0.25)
    assert got is not None and got.progress == 0.25
    got = await env.archive.set_status(rec.id, "failed", error="no media")
    assert got is not None and (got.status, got.error) == ("failed", "no media")
    got = await env.archive.set_status(rec.id, "ready")
    assert got is not None and (got.status, got.progress, got.error) == ("ready", 1.0, None)
    got = await env.archive.set_duration(rec.id, 61.25)
    assert got is not None and got.duration == 61.25
    with pytest.raises(ArchiveError):
        await env.archive.set_status(rec.id, "done")

    body = got.to_json()
    assert body["video"] == f"/api/recordings/{rec.id}/media/playback.mp4"
    assert body["audio"] == f"/api/recordings/{rec.id}/media/audio.m4a"
    assert body["url"] == f"/recordings/{rec.id}"


async def test_unknown_duration_falls_back_to_wall_clock(env: Env) -> None:
    rec, session = await finished(env, duration=0.0)  # crash recovery: length unknown yet
    assert rec.duration is None and rec.length == 0.0
    rec2 = await env.archive.create("metal", session, 0.0, T0)
    await env.archive.finish(rec2.id, T0 + 30, 0.0, [])
    await env.store.add([cap(session, "u1", "es", "hola", 10, 12), cap(session, "u2", "es", "tarde", 40, 42)])
    assert [c.text for c in await env.archive.cues(rec2.id, "es") or []] == ["hola"]


async def test_list_rename_publish_delete(env: Env) -> None:
    old, _ = await finished(env, room="old", started=T0 - 3600)
    new, _ = await finished(env, room="new", started=T0)
    mid, _ = await finished(env, room="mid", started=T0 - 60)
    assert [r.id for r in await env.archive.list()] == [new.id, mid.id, old.id]

    renamed = await env.archive.rename(mid.id, "  Asamblea   de\tdelegados \n")
    assert renamed is not None and renamed.title == "Asamblea de delegados"
    for bad in ["", "   ", "x" * 201]:
        with pytest.raises(ArchiveError):
            await env.archive.rename(mid.id, bad)
    with pytest.raises(ArchiveError):
        await env.archive.rename(mid.id, 42)  # type: ignore[arg-type]
    assert await env.archive.rename("0" * 12, "nobody") is None

    assert [r.id for r in await env.archive.list("asamblea")] == [mid.id]
    assert [r.id for r in await env.archive.list("BOB")] == [new.id, mid.id, old.id]  # participant

    published = await env.archive.set_published(old.id, True)
    assert published is not None and published.published
    assert [r.id for r in await env.archive.list(published_only=True)] == [old.id]
    unpublished = await env.archive.set_published(old.id, False)
    assert unpublished is not None and not unpublished.published

    (env.root / new.id / "tracks").mkdir(parents=True)
    (env.root / new.id / "tracks" / "01-a-mic.webm").write_bytes(b"x")
    assert await env.archive.delete(new.id)
    assert not (env.root / new.id).exists()
    assert await env.archive.get(new.id) is None
    assert [r.id for r in await env.archive.list()] == [mid.id, old.id]
    assert not await env.archive.delete(new.id)
    with pytest.raises(ArchiveError):
        await env.archive.delete("../etc")
    assert await env.archive.get("../../etc/passwd") is None


async def test_delete_removes_captions_unless_shared(env: Env) -> None:
    first, session = await finished(env)
    second, _ = await finished(env, session=session, started=T0 + 200)
    alone, own_session = await finished(env, room="other")
    await env.store.add([cap(session, "u1", "es", "hola compañeros", 1, 2),
                         cap(own_session, "u2", "es", "adiós compañeros", 1, 2)])
    assert await env.archive.delete(first.id)
    assert await env.archive.languages(second.id) == ["es"]  # still used by the second recording
    assert await env.archive.delete(alone.id)
    assert await env.store.captions(own_session) == []
    assert [h.recording.id for h in await env.archive.search("compañeros")] == [second.id]


# ---- captions on the recording's clock ------------------------------------------------------

async def test_caption_offset_and_clipping(env: Env) -> None:
    rec, session = await finished(env, offset=5.0, duration=100.0)
    await env.store.add([
        cap(session, "before", "es", "antes de grabar", 1.0, 4.0),     # ends before the recording
        cap(session, "straddle", "es", "empieza antes", 4.0, 6.0),     # clipped to 0..1
        cap(session, "inside", "es", "dentro", 10.0, 12.5),            # 5..7.5
        cap(session, "inside", "en", "inside", 10.0, 12.5),
        cap(session, "tail", "es", "al final", 104.0, 108.0),          # clipped to 99..100
        cap(session, "after", "es", "después", 106.0, 110.0),          # starts after the end
        cap(session, "after", "fr", "après", 106.0, 110.0),            # only outside: no "fr"
    ])
    lines = await env.archive.transcript(rec.id, "es")
    assert lines == [
        {"start": 0.0, "end": 1.0, "speaker": "Ana García", "text": "empieza antes"},
        {"start": 5.0, "end": 7.5, "speaker": "Ana García", "text": "dentro"},
        {"start": 99.0, "end": 100.0, "speaker": "Ana García", "text": "al final"},
    ]
    assert await env.archive.languages(rec.id) == ["es", "en"]  # most captioned first
    rec_json = (await env.archive.get(rec.id)).to_json()  # type: ignore[union-attr]
    assert set(rec_json["captions"]) == {"es", "en"}
    assert rec_json["captions"]["en"]["vtt"] == f"/api/recordings/{rec.id}/captions/en.vtt"
    assert await env.archive.transcript(rec.id, "fr") == []
    assert await env.archive.transcript("0" * 12, "es") is None


def parse_webvtt(text: str) -> list[tuple[float, float, str | None, str]]:
    """A strict reader of the subset we write: returns (start, end, voice, text)."""
    assert text.startswith("WEBVTT\n\n"), "header"
    timing = re.compile(r"(\d{2,}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2,}):(\d{2}):(\d{2})\.(\d{3})")

    def secs(h: str, m: str, s: str, ms: str) -> float:
        assert int(m) < 60 and int(s) < 60
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    cues = []
    for block in text[len("WEBVTT\n\n"):].strip("\n").split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        if not timing.fullmatch(lines[0]):
            assert "-->" not in lines[0], "cue identifier must not contain -->"
            lines = lines[1:]
        m = timing.fullmatch(lines[0])
        assert m, f"bad timing line {lines[0]!r}"
        start, end = secs(*m.groups()[:4]), secs(*m.groups()[4:])
        assert start <= end
        body = "\n".join(lines[1:])
        assert body and "-->" not in body
        voice = None
        vm = re.fullmatch(r"<v ([^>\n]+)>(.*)", body, re.S)
        if vm:
            voice, body = vm.group(1), vm.group(2)
        assert "<" not in body and ">" not in body, "unescaped markup in cue text"
        assert not re.search(r"&(?!amp;|lt;|gt;)", body), "unescaped ampersand"
        cues.append((start, end, None if voice is None else html.unescape(voice), html.unescape(body)))
    starts = [c[0] for c in cues]
    assert starts == sorted(starts), "cues must be in start order"
    return cues


async def test_webvtt_is_valid(env: Env) -> None:
    rec, session = await finished(env, offset=2.0, duration=4000.0)
    await env.store.add([
        cap(session, "u3", "es", "tercera <b>negrita</b> & más", 3725.25, 3727.0, speaker="Bob"),
        cap(session, "u1", "es", "Hola  a\ntodos --> bienvenidos", 2.0, 4.5),
        cap(session, "u2", "es", "sin nombre", 3.0, 3.5, speaker=""),
        cap(session, "u4", "es", "voz rara", 10.0, 11.0, speaker="<Tom & Jerry>"),
    ])
    text = await env.archive.webvtt(rec.id, "es")
    assert text is not None
    cues = parse_webvtt(text)
    assert cues == [
        (0.0, 2.5, "Ana García", "Hola a todos --> bienvenidos"),
        (1.0, 1.5, None, "sin nombre"),
        (8.0, 9.0, "<Tom & Jerry>", "voz rara"),
        (3723.25, 3725.0, "Bob", "tercera <b>negrita</b> & más"),
    ]
    assert "\n01:02:03.250 --> 01:02:05.000\n" in text
    assert parse_webvtt(await env.archive.webvtt(rec.id, "de") or "") == []  # no cues: header only


def test_time_formats() -> None:
    assert vtt_time(0) == "00:00:00.000"
    assert vtt_time(3723.4567) == "01:02:03.457"
    assert vtt_time(59.9996) == "00:01:00.000"
    assert srt_time(3723.4567) == "01:02:03,457"
    assert vtt_time(-1) == "00:00:00.000"
    assert render_webvtt([]) .startswith("WEBVTT\n")
    assert "<v A &amp; B>x &lt;y&gt;" in render_webvtt([Cue(0, 1, "A & B", "x <y>")])


async def test_srt_format(env: Env) -> None:
    rec, session = await finished(env, offset=1.0)
    await env.store.add([
        cap(session, "u1", "en", "Hello everyone", 1.5, 3.0, source="en"),
        cap(session, "u2", "en", "second\nline", 61.0, 62.25, speaker="Bob", source="en"),
    ])
    srt = await env.archive.srt(rec.id, "en")
    assert srt is not None
    blocks = srt.strip("\n").split("\n\n")
    assert blocks == [
        "1\n00:00:00,500 --> 00:00:02,000\nAna García: Hello everyone",
        "2\n00:01:00,000 --> 00:01:01,250\nBob: second line",
    ]
    for n, block in enumerate(blocks, 1):
        index, timing, _ = block.split("\n", 2)
        assert index == str(n)
        assert re.fullmatch(r"\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}", timing)


# ---- search ----------------------------------------------------------------------------------

async def test_search_spanish_and_english(env: Env) -> None:
    older, s1 = await finished(env, room="metal", offset=10.0, started=T0 - 86400)
    newer, s2 = await finished(env, room="puertos", offset=0.0, started=T0)
    await env.store.add([
        cap(s1, "a", "es", "Los trabajadores del metal exigen un convenio", 40.0, 44.0),
        cap(s1, "a", "en", "The metal workers demand an agreement", 40.0, 44.0),
        cap(s1, "b", "es", "Buenos días a todos", 20.0, 22.0),
        cap(s1, "z", "es", "los trabajadores antes de grabar", 1.0, 3.0),  # before the recording
        cap(s2, "c", "es", "Los trabajadores portuarios también", 75.0, 78.0, speaker="Bob"),
        cap(s2, "c", "en", "The port workers too", 75.0, 78.0, speaker="Bob"),
    ])
    hits = await env.archive.search("trabajadores")
    assert [h.recording.id for h in hits] == [newer.id, older.id]  # newest first
    by_id = {h.recording.id: h for h in hits}
    assert by_id[older.id].time == 30.0 and by_id[older.id].lang == "es"  # 40 - offset 10
    assert by_id[older.id].hits == 1  # the caption before the recording started is not in it
    assert by_id[newer.id].time == 75.0 and by_id[newer.id].speaker == "Bob"
    hit = by_id[older.id]
    assert hit.snippet is not None
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["trabajadores"]
    assert hit.to_json()["match"]["time"] == 30.0

    english = await env.archive.search("workers")
    assert {h.recording.id: h.lang for h in english} == {newer.id: "en", older.id: "en"}
    assert [h.recording.id for h in await env.archive.search("agreement")] == [older.id]
    assert [h.recording.id for h in await env.archive.search("dias")] == [older.id]  # días
    assert [h.recording.id for h in await env.archive.search("CONVEN")] == [older.id]  # prefix
    assert [h.recording.id for h in await env.archive.search("metal exigen")] == [older.id]
    assert await env.archive.search("metal portuarios") == []  # every word, same caption

    await env.archive.set_published(older.id, True)
    assert [h.recording.id for h in await env.archive.search("workers", published_only=True)] == [older.id]

    await env.archive.rename(newer.id, "Reunión portuaria")
    title_hits = await env.archive.search("reunión")
    assert [(h.recording.id, h.time, h.snippet) for h in title_hits] == [(newer.id, None, None)]


ODD_INPUTS = [
    '"', '""', "'", "*", "**", "AND", "OR", "NOT", "NEAR", "NEAR(a b)", "a OR b", "a AND", "-x",
    "^x", "+x", "text:foo", "captions_fts:x", "(", ")", "{a b}:c", "\x00", "\x00trabajadores",
    "a" * 1000, "🙂", "\\", "%", "_", "col:*", "trabajadores*", '"trabajadores"', 'trab"ajadores',
    "trabajadores OR nada", "metal NOT workers", "' OR 1=1 --", "--", "—", "\u202e", "日本語",
    "العمال", "rank:1", "x" * 5 + " " * 300 + "y",
]


async def test_search_odd_inputs_never_crash(env: Env) -> None:
    rec, session = await finished(env)
    await env.store.add([cap(session, "a", "es", "Los trabajadores del metal", 1.0, 3.0)])
    for q in ODD_INPUTS:
        hits = await env.archive.search(q)
        assert isinstance(hits, list), q
    assert [h.recording.id for h in await env.archive.search('"trabajadores"')] == [rec.id]
    assert [h.recording.id for h in await env.archive.search("trabajadores*")] == [rec.id]
    assert [h.recording.id for h in await env.archive.search("\x00trabajadores")] == [rec.id]
    assert await env.archive.search("trabajadores OR nada") == []  # OR is a word, not an operator


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fts_query_is_always_valid_syntax(text: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE f USING fts5(text, tokenize='unicode61 remove_diacritics 2')")
    db.execute("INSERT INTO f (text) VALUES ('trabajadores del metal')")
    query = fts_query(text)
    if query is not None:
        db.execute("SELECT rowid FROM f WHERE f MATCH ?", (query,)).fetchall()


async def test_index_follows_replace_and_existing_rows(tmp_path: Path) -> None:
    db = tmp_path / "unionhub.sqlite3"
    # Captions written before the index existed: unionhub 0.1's CaptionStore alone made this file
    # (session "metal", caption u1/es "palabra antigua" 1-2 s; see tests/test_database.py).
    dump = Path(__file__).parent / "data" / "db-v0.1-captions-only.sql"
    with contextlib.closing(sqlite3.connect(str(db))) as old:
        old.executescript(dump.read_text(encoding="utf-8"))
    database = Database(db)  # migration 1 builds the index from the existing rows
    store = CaptionStore(database)
    (session,) = await store.sessions("metal")
    archive = Archive(database, tmp_path / "recordings")
    try:
        rec = await archive.create("metal", session, 0.0, T0)
        assert [h.recording.id for h in await archive.search("antigua")] == [rec.id]  # rebuilt
        # partial -> corrected final of the same utterance: INSERT OR REPLACE
        await store.add([cap(session, "u1", "es", "palabra corregida", 1, 2)])
        await store.add([cap(session, "u1", "es", "palabra definitiva", 1, 2.5)])
        assert await archive.search("antigua") == []
        assert await archive.search("corregida") == []
        assert [h.recording.id for h in await archive.search("definitiva")] == [rec.id]
        # the same through a connection with recursive triggers (REPLACE then fires delete triggers)
        other = sqlite3.connect(str(db), isolation_level=None)
        other.execute("PRAGMA recursive_triggers = ON")
        other.execute(
            'INSERT OR REPLACE INTO captions (session_id, utterance, speaker_id, speaker_name, source_lang, '
            'lang, text, start, "end", created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            (session, "u1", "p", "Ana", "es", "es", "palabra final", 1, 2.5, T0),
        )
        other.execute("DELETE FROM captions WHERE utterance = 'nothing'")
        # the index matches the content table exactly (rank=1 compares with external content)
        other.execute("INSERT INTO captions_fts(captions_fts, rank) VALUES ('integrity-check', 1)")
        stale = other.execute(
            "SELECT rowid FROM captions_fts WHERE captions_fts MATCH 'palabra' "
            "AND rowid NOT IN (SELECT id FROM captions)"
        ).fetchall()
        assert stale == []
        other.close()
        assert [c.text for c in await store.captions(session)] == ["palabra final"]
        # a second Database and Archive on the same file (restart) neither duplicate nor break the index
        reopened = Database(db)
        again = Archive(reopened, tmp_path / "recordings")
        assert [h.hits for h in await again.search("palabra")] == [1]
        reopened.close()
    finally:
        database.close()
