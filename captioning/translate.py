"""Argos Translate, without its sentence splitter.

Captions and chat lines are already short utterances, and Argos' sentence-boundary models
(MiniSBD, spaCy, Stanza) may download weights at run time. So we load installed packages
through argostranslate's own package code and call its ``apply_packaged_translation`` with a
splitter that keeps the text whole. When no direct pair exists we pivot through English.

``ARGOS_PACKAGES_DIR`` must be set before argostranslate is first imported (it reads its settings
at import time); :func:`configure` does that.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PIVOT = "en"


def configure(packages_dir: Path) -> None:
    """Point argostranslate at our models directory (call before importing it)."""
    packages_dir.mkdir(parents=True, exist_ok=True)
    os.environ["ARGOS_PACKAGES_DIR"] = str(packages_dir)
    os.environ.setdefault("ARGOS_DEVICE_TYPE", "cpu")


class _WholeText:
    """Sentence 'splitter' that keeps an utterance whole (no model, no download)."""

    def split_sentences(self, text: str) -> list[str]:
        return [text]


class Translator:
    """Translates between the installed Argos packages' languages, pivoting through English."""

    def __init__(self, threads: int = 1) -> None:
        import argostranslate.package as package

        self._threads = threads
        self._packages: dict[tuple[str, str], Any] = {
            (p.from_code, p.to_code): p for p in package.get_installed_packages() if p.type == "translate"
        }
        self._translators: dict[tuple[str, str], Any] = {}
        logger.info("translation pairs: %s", sorted(self._packages))

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return sorted(self._packages)

    def languages(self) -> set[str]:
        return {code for pair in self._packages for code in pair}

    def route(self, source: str, target: str) -> list[tuple[str, str]] | None:
        """The package hops from source to target, or None if unreachable."""
        if source == target:
            return []
        if (source, target) in self._packages:
            return [(source, target)]
        if (source, PIVOT) in self._packages and (PIVOT, target) in self._packages:
            return [(source, PIVOT), (PIVOT, target)]
        return None

    def can_translate(self, source: str, target: str) -> bool:
        return self.route(source, target) is not None

    def _hop(self, text: str, pair: tuple[str, str]) -> str:
        import ctranslate2
        from argostranslate.translate import apply_packaged_translation

        pkg = self._packages[pair]
        translator = self._translators.get(pair)
        if translator is None:
            translator = ctranslate2.Translator(
                str(pkg.package_path / "model"), device="cpu", intra_threads=self._threads
            )
            self._translators[pair] = translator
        hypotheses = apply_packaged_translation(pkg, text, translator, _WholeText(), 1)
        return str(hypotheses[0].value)

    def translate(self, text: str, source: str, target: str) -> str:
        route = self.route(source, target)
        if route is None:
            raise LookupError(f"no translation from {source} to {target}")
        for pair in route:
            text = self._hop(text, pair)
        return text

    def translate_many(self, text: str, source: str, targets: list[str]) -> dict[str, str]:
        """One translation per target language; an English pivot is computed only once."""
        out: dict[str, str] = {}
        pivot_text: str | None = None
        for target in targets:
            route = self.route(source, target)
            if route is None:
                continue
            if len(route) == 2:
                if pivot_text is None:
                    pivot_text = self._hop(text, route[0])
                out[target] = self._hop(pivot_text, route[1])
            elif route:
                if target == PIVOT and pivot_text is not None:
                    out[target] = pivot_text
                else:
                    out[target] = self._hop(text, route[0])
                    if target == PIVOT:
                        pivot_text = out[target]
            else:
                out[target] = text
        return out
