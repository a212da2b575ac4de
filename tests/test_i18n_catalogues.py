"""The web client's message catalogues (web_client/locales/*.json, read by web_client/i18n.js).

Every catalogue has every key of en.json and no other, with the same placeholders, the plural
forms its language needs and no empty message; every key the pages and scripts use exists in
en.json, and every message of en.json is used somewhere. The catalogues are served to browsers
from /static/locales/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from unionhub.app import WEB_CLIENT, create_app

LOCALES_DIR = WEB_CLIENT / "locales"
LOCALES = ["en", "es", "pt-BR", "fr", "ar", "hi"]

#: CLDR cardinal plural categories of each locale (Unicode CLDR 46, "Language Plural Rules",
#: https://www.unicode.org/cldr/charts/46/supplemental/language_plural_rules.html). Since CLDR 42
#: Spanish, Portuguese and French have "many" (1 000 000 de …); Arabic has all six.
#: Chromium's Intl.PluralRules reports the same sets (checked in tests/e2e/test_i18n_browser.py).
PLURAL_CATEGORIES = {
    "en": {"one", "other"},
    "es": {"one", "many", "other"},
    "pt-BR": {"one", "many", "other"},
    "fr": {"one", "many", "other"},
    "ar": {"zero", "one", "two", "few", "many", "other"},
    "hi": {"one", "other"},
}
#: The forms where a language may spell the number out instead of `{count}` ("تسجيلان": two recordings).
COUNT_OPTIONAL = {"zero", "one", "two"}

PLACEHOLDER_RE = re.compile(r"\{([A-Za-z0-9_]+)\}")
# data-i18n="key", data-i18n-attr="attr:key attr:key", t('key' …), errorText(err, 'key')
DATA_I18N_RE = re.compile(r'data-i18n="([^"]+)"')
DATA_I18N_ATTR_RE = re.compile(r'data-i18n-attr="([^"]+)"')
T_CALL_RE = re.compile(r"(?<![\w.$])t\(\s*'([^']+)'")
ERROR_TEXT_RE = re.compile(r"errorText\([^)]*?'([^']+)'")
#: Messages looked up by a server error's code (`errors.<code>`, i18n.js errorText).
DYNAMIC_PREFIXES = ("errors.",)


def load(locale: str) -> dict[str, Any]:
    data = json.loads((LOCALES_DIR / f"{locale}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def forms(value: Any) -> dict[str, str]:
    """A message's texts by plural category ("other" for a plain string)."""
    return value if isinstance(value, dict) else {"other": value}


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER_RE.findall(text))


def client_sources() -> list[Path]:
    """The pages and scripts (not i18n.js itself, whose comments show the syntax)."""
    return sorted(p for p in WEB_CLIENT.iterdir()
                  if p.suffix in (".html", ".js") and p.is_file() and p.name != "i18n.js")


def used_keys() -> dict[str, set[str]]:
    """Keys named in the web client's pages and scripts, by file."""
    used: dict[str, set[str]] = {}
    for path in client_sources():
        text = path.read_text(encoding="utf-8")
        keys = set(DATA_I18N_RE.findall(text)) | set(T_CALL_RE.findall(text)) | set(ERROR_TEXT_RE.findall(text))
        for spec in DATA_I18N_ATTR_RE.findall(text):
            keys |= {pair.split(":", 1)[1] for pair in spec.split() if ":" in pair}
        if keys:
            used[path.name] = keys
    return used


def test_every_supported_locale_has_a_catalogue_and_i18n_js_lists_them() -> None:
    assert sorted(p.stem for p in LOCALES_DIR.glob("*.json")) == sorted(LOCALES)
    source = (WEB_CLIENT / "i18n.js").read_text(encoding="utf-8")
    listed = re.search(r"export const LOCALES = \[([^\]]*)\]", source)
    assert listed is not None
    assert re.findall(r"'([^']+)'", listed.group(1)) == LOCALES


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_has_exactly_the_keys_of_english(locale: str) -> None:
    english, catalogue = load("en"), load(locale)
    missing = sorted(set(english) - set(catalogue))
    extra = sorted(set(catalogue) - set(english))
    assert not missing, f"{locale}.json lacks {missing}"
    assert not extra, f"{locale}.json has keys that en.json does not: {extra}"


@pytest.mark.parametrize("locale", LOCALES)
def test_no_message_is_empty(locale: str) -> None:
    for key, value in load(locale).items():
        assert isinstance(value, (str, dict)), (locale, key)
        for form, text in forms(value).items():
            assert isinstance(text, str) and text.strip(), f"{locale}.json {key} ({form}) is empty"


@pytest.mark.parametrize("locale", LOCALES)
def test_plural_messages_have_the_forms_of_their_language(locale: str) -> None:
    english = load("en")
    for key, value in load(locale).items():
        if isinstance(english[key], dict) or isinstance(value, dict):
            assert isinstance(value, dict), f"{locale}.json {key}: plural in en.json, a plain string here"
            assert isinstance(english[key], dict), f"{locale}.json {key}: plural here, a plain string in en.json"
            assert set(value) == PLURAL_CATEGORIES[locale], (
                f"{locale}.json {key} has forms {sorted(value)}, CLDR: {sorted(PLURAL_CATEGORIES[locale])}")


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_match_english(locale: str) -> None:
    english = load("en")
    for key, value in load(locale).items():
        wanted = set().union(*(placeholders(text) for text in forms(english[key]).values()))
        for form, text in forms(value).items():
            found = placeholders(text)
            assert found <= wanted, f"{locale}.json {key} ({form}) has unknown placeholders {sorted(found - wanted)}"
            needed = wanted - {"count"} if form in COUNT_OPTIONAL else wanted
            assert needed <= found, f"{locale}.json {key} ({form}) lacks {sorted(needed - found)}"


def test_every_key_used_by_the_pages_is_in_english() -> None:
    english = load("en")
    used = used_keys()
    assert {"index.html", "recordings.js", "recording.js", "live.js", "signin.html", "routing.js"} <= set(used)
    missing = {name: sorted(keys - set(english)) for name, keys in used.items() if keys - set(english)}
    assert not missing, f"keys used but not in en.json: {missing}"


def test_every_english_message_is_used() -> None:
    used = set().union(*used_keys().values())
    unused = sorted(k for k in load("en") if k not in used and not k.startswith(DYNAMIC_PREFIXES))
    assert not unused, f"en.json messages nothing uses (remove them or use them): {unused}"


async def test_catalogues_are_served_and_nothing_else_is(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_app(tmp_path / "hub"))
    for locale in LOCALES:
        async with client.get(f"/static/locales/{locale}.json") as r:
            assert r.status == 200, locale
            assert json.loads(await r.text()) == load(locale)
    for bad in ("xx.json", "en.js", "..%2Fpackage.json", "EN.json"):
        async with client.get(f"/static/locales/{bad}") as r:
            assert r.status == 404, bad
