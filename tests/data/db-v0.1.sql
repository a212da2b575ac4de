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
INSERT INTO "captions" VALUES(1,'204bb531ad5f4407','u1','id-Ana García','Ana García','es','es','Los trabajadores del metal',12.0,15.0,1.79594586823169350625e+09);
INSERT INTO "captions" VALUES(2,'204bb531ad5f4407','u1','id-Ana García','Ana García','es','en','The metal workers',12.0,15.0,1.79594586823169469831e+09);
INSERT INTO "captions" VALUES(3,'204bb531ad5f4407','u2','id-Bob','Bob','en','en','We stand together',20.0,22.5,1.79594586823309898373e+09);
INSERT INTO "captions" VALUES(4,'204bb531ad5f4407','u2','id-Bob','Bob','en','es','Estamos juntos',20.0,22.5,1.7959458682330994606e+09);
INSERT INTO "captions" VALUES(5,'25a1746335464542','u3','id-Dominique','Dominique','fr','fr','Les dockers en grève',3.0,5.0,1.79594586824317979808e+09);
INSERT INTO "captions" VALUES(6,'53dae5ca86a24724','u4','id-Eva','Eva','es','es','Nadie grabó esto',1.0,2.0,1.79594586824815773962e+09);
PRAGMA writable_schema=ON;
INSERT INTO sqlite_master(type,name,tbl_name,rootpage,sql)VALUES('table','captions_fts','captions_fts',0,'CREATE VIRTUAL TABLE captions_fts USING fts5(
    text, content=''captions'', content_rowid=''id'', tokenize=''unicode61 remove_diacritics 2''
)');
CREATE TABLE 'captions_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID;
INSERT INTO "captions_fts_config" VALUES('version',4);
CREATE TABLE 'captions_fts_data'(id INTEGER PRIMARY KEY, block BLOB);
INSERT INTO "captions_fts_data" VALUES(1,X'0613');
INSERT INTO "captions_fts_data" VALUES(10,X'000000000107070007010101020101030101040101050101060101070101');
INSERT INTO "captions_fts_data" VALUES(137438953473,X'0000002F043064656C01020401036C6F7301020201056D6574616C010205010C74726162616A61646F7265730102030408080A');
INSERT INTO "captions_fts_data" VALUES(274877906945,X'0000002206306D6574616C02020301037468650202020107776F726B657273020204040A08');
INSERT INTO "captions_fts_data" VALUES(412316860417,X'0000002106307374616E640302030107746F676574657203020401027765030202040A0C');
INSERT INTO "captions_fts_data" VALUES(549755813889,X'0000002806307374616E640303030107746F67657465720301060368657203020401027765030302040A0B08');
INSERT INTO "captions_fts_data" VALUES(687194767361,X'0000001B0830657374616D6F7304020201066A756E746F73040203040C');
INSERT INTO "captions_fts_data" VALUES(824633720833,X'000000290830646F636B6572730502030102656E0502040105677265766505020501036C6573050202040C070A');
INSERT INTO "captions_fts_data" VALUES(962072674305,X'0000002105306573746F0602040105677261626F06020301056E6164696506020204090A');
CREATE TABLE 'captions_fts_docsize'(id INTEGER PRIMARY KEY, sz BLOB);
INSERT INTO "captions_fts_docsize" VALUES(1,X'04');
INSERT INTO "captions_fts_docsize" VALUES(2,X'03');
INSERT INTO "captions_fts_docsize" VALUES(3,X'03');
INSERT INTO "captions_fts_docsize" VALUES(4,X'02');
INSERT INTO "captions_fts_docsize" VALUES(5,X'04');
INSERT INTO "captions_fts_docsize" VALUES(6,X'03');
CREATE TABLE 'captions_fts_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;
INSERT INTO "captions_fts_idx" VALUES(1,X'',2);
INSERT INTO "captions_fts_idx" VALUES(2,X'',2);
INSERT INTO "captions_fts_idx" VALUES(3,X'',2);
INSERT INTO "captions_fts_idx" VALUES(4,X'',2);
INSERT INTO "captions_fts_idx" VALUES(5,X'',2);
INSERT INTO "captions_fts_idx" VALUES(6,X'',2);
INSERT INTO "captions_fts_idx" VALUES(7,X'',2);
CREATE TABLE recordings (
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
INSERT INTO "recordings" VALUES('f7c6875a6a4b','metal','Asamblea del metal','204bb531ad5f4407',10.0,1780000000.0,1780000060.0,60.0,'ready',1.0,NULL,1,'["Ana Garc\u00eda", "Bob"]');
INSERT INTO "recordings" VALUES('a62b10463098','oficina','oficina — 2026-05-28 20:28',NULL,0.0,1780000100.0,1780000130.0,30.0,'failed',NULL,'composer crashed',0,'["Carla"]');
INSERT INTO "recordings" VALUES('d76ed1c06632','puertos','puertos — 2026-05-28 20:30','25a1746335464542',0.0,1780000200.0,NULL,NULL,'recording',NULL,NULL,0,'[]');
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL
);
INSERT INTO "sessions" VALUES('204bb531ad5f4407','metal',1.79594586822737860678e+09,1.79594586823358225817e+09);
INSERT INTO "sessions" VALUES('25a1746335464542','puertos',1.79594586824298167227e+09,NULL);
INSERT INTO "sessions" VALUES('53dae5ca86a24724','lone',1.79594586824799060825e+09,1.79594586824838852879e+09);
CREATE INDEX captions_session ON captions(session_id, lang, start);
CREATE INDEX recordings_started ON recordings(started_at);
CREATE INDEX recordings_session ON recordings(session_id);
CREATE TRIGGER captions_fts_insert AFTER INSERT ON captions BEGIN
    INSERT INTO captions_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER captions_fts_delete AFTER DELETE ON captions BEGIN
    INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER captions_fts_update AFTER UPDATE ON captions BEGIN
    INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO captions_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER captions_fts_replace BEFORE INSERT ON captions BEGIN
    DELETE FROM captions WHERE utterance = new.utterance AND lang = new.lang;
END;
PRAGMA writable_schema=OFF;
COMMIT;
