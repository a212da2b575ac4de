"""The e-mails' words in the member's language: JSON catalogues (``meetings/locales/<lang>.json``)
in the ICU MessageFormat subset the web client's catalogues use — ``{name}`` placeholders and
``{n, plural, one {# minute} other {# minutes}}`` — with CLDR's plural categories.

A key missing from a language falls back to English (and is logged), never to the raw key; the
language a member reads is their branch's first language, else English (``language_for``).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LOCALES = Path(__file__).resolve().parent / "locales"
#: The languages the e-mails are written in (web_client/locales has the same, pt as pt-BR).
LANGUAGES = ("en", "es", "pt", "fr", "ar", "hi")
FALLBACK = "en"


def plural_category(lang: str, n: int) -> str:
    """CLDR cardinal plural category of the integer ``n`` (unicode.org/cldr plurals, v44)."""
    n = abs(n)
    if lang == "ar":
        if n == 0:
            return "zero"
        if n in (1, 2):
            return "one" if n == 1 else "two"
        if 3 <= n % 100 <= 10:
            return "few"
        return "many" if 11 <= n % 100 <= 99 else "other"
    if lang in ("fr", "pt"):
        if n in (0, 1):
            return "one"
        return "many" if n % 1_000_000 == 0 else "other"
    if lang == "es":
        if n == 1:
            return "one"
        return "many" if n != 0 and n % 1_000_000 == 0 else "other"
    if lang == "hi":
        return "one" if n in (0, 1) else "other"
    return "one" if n == 1 else "other"


def language_for(languages: Iterable[str]) -> str:
    """The first of ``languages`` (BCP 47 tags) the e-mails are written in; else English."""
    for tag in languages:
        base = tag.split("-")[0].lower()
        if base in LANGUAGES:
            return base
    return FALLBACK


@functools.cache
def catalogue(lang: str) -> Mapping[str, str]:
    path = LOCALES / f"{lang}.json"
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return data


def text(lang: str, key: str, **params: Any) -> str:
    """The message ``key`` in ``lang`` with ``params`` filled in."""
    pattern = catalogue(lang).get(key)
    if pattern is None:
        if lang != FALLBACK:
            logger.warning("e-mail text %r missing in %s: English instead", key, lang)
        pattern = catalogue(FALLBACK)[key]
        lang = FALLBACK
    return render(pattern, lang, params)


def render(pattern: str, lang: str, params: Mapping[str, Any]) -> str:
    """Fill ``{name}`` and ``{name, plural, …}`` in ``pattern``."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch != "{":
            out.append(ch)
            i += 1
            continue
        end = _closing(pattern, i)
        out.append(_argument(pattern[i + 1:end], lang, params))
        i = end + 1
    return "".join(out)


def _closing(pattern: str, start: int) -> int:
    depth = 0
    for j in range(start, len(pattern)):
        if pattern[j] == "{":
            depth += 1
        elif pattern[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unbalanced braces in {pattern!r}")


def _argument(body: str, lang: str, params: Mapping[str, Any]) -> str:
    name, _, rest = body.partition(",")
    name = name.strip()
    if not rest:
        return str(params[name])
    kind, _, options = rest.partition(",")
    if kind.strip() != "plural":
        raise ValueError(f"unsupported argument type {kind.strip()!r}")
    count = int(params[name])
    choices = _options(options)
    chosen = choices.get(f"={count}") or choices.get(plural_category(lang, count)) or choices["other"]
    return render(chosen, lang, params).replace("#", str(count))


def _options(text_: str) -> dict[str, str]:
    found: dict[str, str] = {}
    i = 0
    while i < len(text_):
        if text_[i].isspace():
            i += 1
            continue
        brace = text_.index("{", i)
        selector = text_[i:brace].strip()
        end = _closing(text_, brace)
        found[selector] = text_[brace + 1:end]
        i = end + 1
    return found
