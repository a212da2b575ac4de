BEGIN TRANSACTION;
CREATE TABLE captions (
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
INSERT INTO "captions" VALUES(1,'3380187438da48a7','u1','id-Ana García','Ana García','es','es','palabra antigua',1.0,2.0,1.79594586827713775635e+09);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL
);
INSERT INTO "sessions" VALUES('3380187438da48a7','metal',1.79594586827174472814e+09,NULL);
CREATE INDEX captions_session ON captions(session_id, lang, start);
COMMIT;
