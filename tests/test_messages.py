"""meetings/messages.py: the e-mails' catalogues are complete in every language, their
placeholders match English, every plural has the forms CLDR gives that language, and the
formatter picks the right form (Arabic's six)."""

from __future__ import annotations

import json
import re

import pytest

from meetings.messages import FALLBACK, LANGUAGES, LOCALES, language_for, plural_category, text

CATEGORIES = {  # CLDR v44 cardinal categories for integers
    "en": {"one", "other"}, "hi": {"one", "other"}, "es": {"one", "many", "other"}, "pt": {"one", "many", "other"},
    "fr": {"one", "many", "other"}, "ar": {"zero", "one", "two", "few", "many", "other"},
}


def load(lang: str) -> dict[str, str]:
    return dict(json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8")))


def placeholders(pattern: str) -> set[str]:
    return set(re.findall(r"\{([A-Za-z_]\w*)[,}]", pattern))  # (option texts may be one word)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_catalogue_has_every_key_and_the_same_placeholders(lang: str) -> None:
    english, other = load(FALLBACK), load(lang)
    assert set(other) == set(english)
    for key, pattern in english.items():
        assert other[key].strip(), f"{lang} {key} is empty"
        assert placeholders(other[key]) == placeholders(pattern), f"{lang} {key}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_plurals_offer_every_form_the_language_has(lang: str) -> None:
    for key, pattern in load(lang).items():
        for plural in re.findall(r"\{\w+, plural,((?:[^{}]|\{[^{}]*\})*)\}", pattern):
            forms = set(re.findall(r"(\w+) \{", plural))
            missing = (CATEGORIES[lang] - {"many"} if lang != "ar" else CATEGORIES[lang]) - forms - {"other"}
            assert not missing and "other" in forms, f"{lang} {key}: {forms}"


@pytest.mark.parametrize(("lang", "n", "category"), [
    ("ar", 0, "zero"), ("ar", 1, "one"), ("ar", 2, "two"), ("ar", 3, "few"), ("ar", 10, "few"), ("ar", 11, "many"),
    ("ar", 15, "many"), ("ar", 100, "other"), ("ar", 103, "few"), ("fr", 0, "one"), ("fr", 2, "other"),
    ("pt", 0, "one"), ("es", 0, "other"), ("es", 1_000_000, "many"), ("hi", 0, "one"), ("en", 0, "other"),
])
def test_plural_categories_follow_cldr(lang: str, n: int, category: str) -> None:
    assert plural_category(lang, n) == category


def test_the_formatter_fills_names_and_picks_the_form() -> None:
    assert text("en", "remind.subject.soon", title="Pay", minutes=1) == "Reminder: “Pay” in 1 minute"
    assert text("en", "remind.subject.soon", title="Pay", minutes=15) == "Reminder: “Pay” in 15 minutes"
    assert text("ar", "remind.subject.soon", title="الأجور", minutes=15).endswith("بعد 15 دقيقة")
    assert text("ar", "remind.subject.soon", title="الأجور", minutes=3).endswith("بعد 3 دقائق")
    assert text("ar", "remind.subject.soon", title="الأجور", minutes=2).endswith("بعد دقيقتين")
    assert text("pt", "cancel.subject", title="Salários") == "Cancelado: “Salários”"


def test_a_member_reads_the_first_language_the_e_mails_are_written_in() -> None:
    assert language_for(["pt-BR", "en"]) == "pt"
    assert language_for(["de", "fr"]) == "fr"
    assert language_for(["de"]) == "en"
