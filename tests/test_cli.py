"""The `unionhub` command: models listing and install errors a user would see (no network)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

UNIONHUB = str(Path(sys.executable).with_name("unionhub"))


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(home / "d"),
           "XDG_CONFIG_HOME": str(home / "c"), "XDG_CACHE_HOME": str(home / "k")}
    return subprocess.run([UNIONHUB, *args], capture_output=True, text=True, timeout=120, env=env)


def test_models_list_shows_the_speech_models_that_ship_on_pypi(tmp_path: Path) -> None:
    result = run("models", "--data-dir", str(tmp_path / "data"), "list", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tiny.en" in result.stdout
    assert "translation models:" in result.stdout


def test_models_install_explains_bad_requests(tmp_path: Path) -> None:
    unknown = run("models", "--data-dir", str(tmp_path), "install", "--asr", "enormous", home=tmp_path)
    assert unknown.returncode == 1
    assert "unknown speech model 'enormous'" in unknown.stderr
    bad_pair = run("models", "--data-dir", str(tmp_path), "install", "--translate", "en", home=tmp_path)
    assert bad_pair.returncode == 1 and "use from:to" in bad_pair.stderr
    nothing = run("models", "--data-dir", str(tmp_path), "install", home=tmp_path)
    assert nothing.returncode == 2 and "nothing to install" in nothing.stderr


def test_serve_rejects_an_unknown_codec(tmp_path: Path) -> None:
    result = run("serve", "--codec", "av1", "--data-dir", str(tmp_path), home=tmp_path)
    assert result.returncode == 2 and "invalid choice: 'av1'" in result.stderr


def test_serve_says_packed_finals_do_not_reach_a_caption_pool(tmp_path: Path) -> None:
    result = run("serve", "--pack-finals", "--caption-pool", "redis://127.0.0.1:1/0", "--data-dir", str(tmp_path),
                 home=tmp_path)
    assert result.returncode == 2 and "--pack-finals" in result.stderr and "--caption-pool" in result.stderr
    assert not (tmp_path / "unionhub.sqlite3").exists()  # refused before anything was started or written


def test_serve_refuses_packing_behind_on_a_caption_pool_and_an_unknown_mode(tmp_path: Path) -> None:
    behind = run("serve", "--pack-finals", "behind", "--caption-pool", "redis://127.0.0.1:1/0",
                 "--data-dir", str(tmp_path), home=tmp_path)
    assert behind.returncode == 2 and "the pool's workers decode them" in behind.stderr
    assert not (tmp_path / "unionhub.sqlite3").exists()
    unknown = run("serve", "--pack-finals", "sometimes", "--data-dir", str(tmp_path), home=tmp_path)
    assert unknown.returncode == 2 and "invalid choice: 'sometimes'" in unknown.stderr


def test_serve_refuses_a_data_directory_from_a_newer_unionhub(tmp_path: Path) -> None:
    """A downgrade must not misread (or damage) the archive: a clear message, the file untouched."""
    import sqlite3

    data = tmp_path / "data"
    data.mkdir()
    db = data / "unionhub.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 999")
    before = db.read_bytes()
    result = run("serve", "--data-dir", str(data), "--asr-model", "none", "--port", "0", home=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "schema version 999" in result.stderr and "Traceback" not in result.stderr
    assert db.read_bytes() == before
