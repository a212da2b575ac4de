"""captioning.translate (Argos without its sentence splitter) and the translation worker pool.

Uses real, tiny word-for-word Argos packages built by tests/argos_model.py: en→es directly,
pt→es only through the English pivot (pt→en + en→es).

The :class:`Translator` checks run in a fresh interpreter because argostranslate reads
ARGOS_PACKAGES_DIR (and creates XDG dirs) at import time; that interpreter also blocks every
socket connection and DNS lookup, to prove translation never touches the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from argos_model import argos_env, build_argosmodel, install_argos_models
from captioning.workers import (
    WorkerCrashed,
    _die,
    _translate_many,
    _translation_info,
    translation_pool,
)

EN_ES = {
    "hello": "hola",
    "world": "mundo",
    "good": "buenos",
    "morning": "días",
    "friends": "amigos",
    "union": "sindicato",
    "workers": "trabajadores",
}
PT_EN = {
    "olá": "hello",
    "mundo": "world",
    "bom": "good",
    "dia": "morning",
    "amigos": "friends",
    "sindicato": "union",
    "trabalhadores": "workers",
}


@pytest.fixture(scope="module")
def packages_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Argos packages dir holding translate-en_es and translate-pt_en."""
    root = tmp_path_factory.mktemp("argos")
    models = [
        build_argosmodel(root / "build", "en", "es", EN_ES),
        build_argosmodel(root / "build", "pt", "en", PT_EN),
    ]
    packages = root / "packages"
    install_argos_models(packages, models)
    assert sorted(p.name for p in packages.iterdir()) == ["translate-en_es", "translate-pt_en"]
    return packages


# -- Translator, in a subprocess without network ----------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, socket, sys
    from pathlib import Path

    attempts = []

    def _no_network(*args, **kwargs):
        attempts.append(repr(args[1:] or args))
        raise OSError("network access is disabled in this test")

    socket.socket.connect = _no_network
    socket.socket.connect_ex = _no_network
    socket.getaddrinfo = _no_network

    from captioning.translate import Translator, configure

    configure(Path(sys.argv[1]))  # before argostranslate is imported

    hops = []
    _hop = Translator._hop

    def counting_hop(self, text, pair):
        hops.append([text, list(pair)])
        return _hop(self, text, pair)

    Translator._hop = counting_hop

    import argostranslate.settings

    translator = Translator()
    out = {
        "packages_dir": str(argostranslate.settings.package_data_dir),
        "pairs": translator.pairs,
        "languages": sorted(translator.languages()),
        "routes": {
            f"{s}>{t}": translator.route(s, t)
            for s, t in [("en", "es"), ("pt", "en"), ("pt", "es"), ("pt", "pt"),
                         ("es", "en"), ("es", "pt"), ("en", "pt"), ("pt", "fr"), ("xx", "yy")]
        },
        "can_translate": {
            "pt>es": translator.can_translate("pt", "es"),
            "es>pt": translator.can_translate("es", "pt"),
        },
    }

    def run(name, fn, *args):
        del hops[:]
        try:
            out[name] = {"result": fn(*args)}
        except Exception as exc:
            out[name] = {"error": type(exc).__name__, "message": str(exc)}
        out[name]["hops"] = list(hops)

    run("direct", translator.translate, "hello world", "en", "es")
    run("direct_sentence", translator.translate, "good morning union workers", "en", "es")
    run("unknown_word", translator.translate, "hello comrades", "en", "es")
    run("pivot", translator.translate, "olá mundo", "pt", "es")
    run("to_pivot", translator.translate, "bom dia amigos", "pt", "en")
    run("same_language", translator.translate, "olá mundo", "pt", "pt")
    run("unreachable", translator.translate, "hola mundo", "es", "pt")
    run("many_en_es", translator.translate_many, "olá mundo", "pt", ["en", "es"])
    run("many_es_en", translator.translate_many, "olá mundo", "pt", ["es", "en"])
    run("many_pivot_only", translator.translate_many, "bom dia", "pt", ["es"])
    run("many_skips_unreachable", translator.translate_many, "olá mundo", "pt", ["fr", "pt", "es"])
    run("many_direct", translator.translate_many, "hello friends", "en", ["es", "pt"])
    out["network_attempts"] = attempts
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def child(packages_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Everything the subprocess Translator did, as JSON."""
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, **argos_env(Path("/nonexistent-set-by-configure"), home)}
    env.pop("ARGOS_PACKAGES_DIR")  # configure() must be what points Argos at the packages
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(packages_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_loads_the_installed_packages(child: dict[str, Any], packages_dir: Path) -> None:
    assert Path(child["packages_dir"]) == packages_dir
    assert child["pairs"] == [["en", "es"], ["pt", "en"]]
    assert child["languages"] == ["en", "es", "pt"]


def test_no_network_is_used(child: dict[str, Any]) -> None:
    assert child["network_attempts"] == []


def test_direct_pair(child: dict[str, Any]) -> None:
    assert child["direct"] == {"result": "hola mundo", "hops": [["hello world", ["en", "es"]]]}
    assert child["direct_sentence"]["result"] == "buenos días sindicato trabajadores"
    assert child["unknown_word"]["result"] == "hola comrades"  # unknown words are copied


def test_pivot_through_english(child: dict[str, Any]) -> None:
    assert child["pivot"] == {
        "result": "hola mundo",
        "hops": [["olá mundo", ["pt", "en"]], ["hello world", ["en", "es"]]],
    }
    assert child["to_pivot"]["result"] == "good morning friends"
    assert child["to_pivot"]["hops"] == [["bom dia amigos", ["pt", "en"]]]


def test_same_language_is_returned_untouched(child: dict[str, Any]) -> None:
    assert child["same_language"] == {"result": "olá mundo", "hops": []}


def test_routes(child: dict[str, Any]) -> None:
    routes = child["routes"]
    assert routes["en>es"] == [["en", "es"]]
    assert routes["pt>en"] == [["pt", "en"]]
    assert routes["pt>es"] == [["pt", "en"], ["en", "es"]]
    assert routes["pt>pt"] == []
    for unreachable in ("es>en", "es>pt", "en>pt", "pt>fr", "xx>yy"):
        assert routes[unreachable] is None, unreachable
    assert child["can_translate"] == {"pt>es": True, "es>pt": False}


def test_unreachable_pair_raises_lookup_error(child: dict[str, Any]) -> None:
    assert child["unreachable"] == {
        "error": "LookupError",
        "message": "no translation from es to pt",
        "hops": [],
    }


def test_translate_many_translates_to_english_once(child: dict[str, Any]) -> None:
    assert child["many_en_es"] == {
        "result": {"en": "hello world", "es": "hola mundo"},
        "hops": [["olá mundo", ["pt", "en"]], ["hello world", ["en", "es"]]],
    }


def test_translate_many_pivot_only_and_unreachable(child: dict[str, Any]) -> None:
    assert child["many_pivot_only"]["result"] == {"es": "buenos días"}
    assert child["many_pivot_only"]["hops"] == [["bom dia", ["pt", "en"]], ["good morning", ["en", "es"]]]
    # fr is unreachable (skipped); pt is the source language (returned as is).
    assert child["many_skips_unreachable"]["result"] == {"pt": "olá mundo", "es": "hola mundo"}
    assert len(child["many_skips_unreachable"]["hops"]) == 2
    assert child["many_direct"] == {
        "result": {"es": "hola amigos"},
        "hops": [["hello friends", ["en", "es"]]],
    }


def test_translate_many_translates_to_english_once_in_any_order(child: dict[str, Any]) -> None:
    assert child["many_es_en"]["result"] == {"es": "hola mundo", "en": "hello world"}
    assert child["many_es_en"]["hops"] == [["olá mundo", ["pt", "en"]], ["hello world", ["en", "es"]]]


# -- the worker pool --------------------------------------------------------------------------


@pytest.fixture
def worker_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep spawned workers' argostranslate out of ~ (and undo configure()'s env changes)."""
    for key, value in argos_env(tmp_path / "unused-packages", tmp_path / "home").items():
        monkeypatch.setenv(key, value)


async def test_pool_lists_pairs_and_translates(packages_dir: Path, worker_env: None) -> None:
    pool = translation_pool(packages_dir)
    try:
        info = await pool.start(_translation_info)
        assert info["pairs"] == [("en", "es"), ("pt", "en")]
        assert info["pid"] != os.getpid()
        assert await pool.call(_translate_many, "hello world", "en", ["es"]) == {"es": "hola mundo"}
        assert await pool.call(_translate_many, "olá mundo", "pt", ["en", "es"]) == {
            "en": "hello world",
            "es": "hola mundo",
        }
        assert await pool.call(_translate_many, "hola", "es", ["pt"]) == {}
        assert pool.idle == 1
    finally:
        pool.close()


async def test_pool_restarts_a_crashed_worker(packages_dir: Path, worker_env: None) -> None:
    pool = translation_pool(packages_dir)
    try:
        first = await pool.start(_translation_info)
        with pytest.raises(WorkerCrashed):
            await pool.call(_die)
        assert pool.restarts == 1
        assert pool.idle == 1  # the worker went back to the queue
        assert await pool.call(_translate_many, "hello world", "en", ["es"]) == {"es": "hola mundo"}
        second = await pool.call(_translation_info)
        assert second["pid"] != first["pid"]
        assert second["pairs"] == first["pairs"]
        assert pool.restarts == 1
    finally:
        pool.close()
