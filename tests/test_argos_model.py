"""Self-check of tests/argos_model.py: the built package installs and translates via Argos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from argos_model import build_argosmodel

MAPPING = {
    "hello": "hola",
    "world": "mundo",
    "friends": "amigos",
    "good": "buenos",
    "morning": "días",
    "the": "el",
    "union": "sindicato",
    "workers": "trabajadores",
}

# Runs in a fresh interpreter: argostranslate reads its settings (ARGOS_PACKAGES_DIR, XDG
# dirs) at import time. Argos' own sentence splitters may download models, so a trivial
# one is passed to apply_packaged_translation instead.
_CHILD = textwrap.dedent(
    """
    import json, socket, sys
    from pathlib import Path

    def _no_network(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    socket.socket.connect = _no_network
    socket.socket.connect_ex = _no_network

    import ctranslate2
    import argostranslate.package
    import argostranslate.sbd
    import argostranslate.translate
    from argostranslate import settings

    class WholeText(argostranslate.sbd.ISentenceBoundaryDetectionModel):
        def split_sentences(self, text):
            return [text]

    argostranslate.package.install_from_path(Path(sys.argv[1]))
    packages = argostranslate.package.get_installed_packages()
    pkg = next(p for p in packages if (p.from_code, p.to_code) == ("en", "es"))

    def translate(text, compute_type="default"):
        translator = ctranslate2.Translator(
            str(pkg.package_path / "model"), device="cpu", compute_type=compute_type
        )
        hypotheses = argostranslate.translate.apply_packaged_translation(
            pkg, text, translator, WholeText(), num_hypotheses=1
        )
        return hypotheses[0].value

    print(json.dumps({
        "packages": [[p.from_code, p.to_code, p.type] for p in packages],
        "package_path": str(pkg.package_path),
        "packages_dir": str(settings.package_data_dir),
        "names": [pkg.from_name, pkg.to_name],
        "tokenizer": type(pkg.tokenizer).__name__,
        "hello_world": translate("hello world"),
        "sentence": translate("good morning friends hello union workers"),
        "unknown": translate("hello comrades"),
        "auto": translate("hello world", compute_type="auto"),
    }))
    """
)


def test_built_model_translates_through_argos(tmp_path: Path) -> None:
    archive = build_argosmodel(tmp_path / "build", "en", "es", MAPPING)
    assert archive == tmp_path / "build" / "translate-en_es.argosmodel"
    with zipfile.ZipFile(archive) as zipf:
        names = set(zipf.namelist())
        metadata = json.loads(zipf.read("translate-en_es/metadata.json"))
    assert {n.split("/")[0] for n in names} == {"translate-en_es"}
    assert {
        "translate-en_es/sentencepiece.model",
        "translate-en_es/model/model.bin",
        "translate-en_es/model/config.json",
    } <= names
    assert metadata["type"] == "translate"
    assert (metadata["from_code"], metadata["to_code"]) == ("en", "es")

    home = tmp_path / "home"
    packages_dir = tmp_path / "argos-packages"
    env = {
        **os.environ,
        "ARGOS_PACKAGES_DIR": str(packages_dir),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(archive)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    assert result["packages"] == [["en", "es", "translate"]]
    assert Path(result["packages_dir"]) == packages_dir
    assert Path(result["package_path"]) == packages_dir / "translate-en_es"
    assert result["names"] == ["English", "Spanish"]
    assert result["tokenizer"] == "SentencePieceTokenizer"
    assert result["hello_world"] == "hola mundo"
    assert result["sentence"] == "buenos días amigos hola sindicato trabajadores"
    assert result["unknown"] == "hola comrades"  # unknown words are copied
    assert result["auto"] == "hola mundo"  # Argos' default; int8 weights on most CPUs


def test_build_is_deterministic(tmp_path: Path) -> None:
    first = build_argosmodel(tmp_path / "a", "en", "es", MAPPING).read_bytes()
    second = build_argosmodel(tmp_path / "b", "en", "es", MAPPING).read_bytes()
    assert first == second
