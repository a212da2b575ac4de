"""What the interface-language and accessibility tests share: pages in a browser speaking a given
language, the English left on them, the messages missing from a catalogue, and axe-core.

On 127.0.0.1 the client is in development mode: a message missing from a catalogue is shown
marked ⟦…⟧ and listed in window.unionhubI18n.missing (web_client/i18n.js). axe-core (npm, served
from /vendor/axe.min.js) checks a page against WCAG 2.2 A and AA.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from e2e_helpers import WAIT_MS

ROOT = Path(__file__).resolve().parents[2]
LOCALES_DIR = ROOT / "web_client/locales"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]

# Visible texts and the translatable attributes of visible elements (what a person reads or hears).
VISIBLE_TEXTS_JS = """() => {
  const seen = (el) => !!el && el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })
    && !el.closest('.visually-hidden');
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (text && seen(node.parentElement) && !node.parentElement.closest('option')) texts.push(text);
  }
  for (const el of document.body.querySelectorAll('[placeholder], [aria-label], [title]')) {
    if (!seen(el)) continue;
    for (const attr of ['placeholder', 'aria-label', 'title']) {
      const value = el.getAttribute(attr);
      if (value) texts.push(value.replace(/\\s+/g, ' ').trim());
    }
  }
  return texts;
}"""

RUN_AXE_JS = """async (tags) => {
  const result = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary),
  }));
}"""


@contextmanager
def locale_pages(browser: Any, width: int, height: int,
                 timezone: str | None = None) -> Iterator[Callable[..., Any]]:
    """`factory(locale, timezone)`: a page in a new context whose browser speaks `locale` (what
    navigator.languages says), in `timezone`. When the block ends the contexts close, and it fails
    if a page threw or broke the Content-Security-Policy."""
    contexts: list[Any] = []
    problems: list[str] = []

    def factory(locale: str = "en-US", timezone: str | None = timezone) -> Any:
        options: dict[str, Any] = {"locale": locale, "viewport": {"width": width, "height": height}}
        if timezone is not None:
            options["timezone_id"] = timezone
        context = browser.new_context(**options)
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"uncaught exception: {exc}"))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error"
                and "Content Security Policy" in m.text else None)
        return page

    try:
        yield factory
    finally:
        for context in contexts:
            context.close()
    assert not problems, problems


def catalogue(locale: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((LOCALES_DIR / f"{locale}.json").read_text(encoding="utf-8"))
    return data


def english_fragments() -> set[str]:
    """The English catalogue's texts, cut at their placeholders: none may show in another language."""
    fragments: set[str] = set()
    for value in catalogue("en").values():
        for text in (value.values() if isinstance(value, dict) else [value]):
            for part in re.split(r"\{[A-Za-z0-9_]+\}", text):
                part = part.strip(" .:,()“”")
                if re.search(r"[A-Za-z]{2}", part) and part not in ("unionhub",):
                    fragments.add(part)
    return fragments


def english_left(texts: list[str], locale: str) -> list[str]:
    """English catalogue texts shown on a page in `locale` (words the language shares with
    English, like "Chat" in Portuguese, do not count)."""
    own = " ".join(t for v in catalogue(locale).values() for t in (v.values() if isinstance(v, dict) else [v]))
    fragments = {f for f in english_fragments() if f not in own}
    return sorted({f for f in fragments for text in texts if f in text})


def wait_translated(page: Any, locale: str) -> None:
    """The page is in `locale` and its script has run (window.unionhubI18n.ready: web_client/i18n.js).

    `<html lang="en">` alone is true of the static page before any script ran: a test reading the
    focus or typing into a form right after it raced the page's script.
    """
    page.wait_for_function(
        "(l) => !!(window.unionhubI18n && window.unionhubI18n.ready) && document.documentElement.lang === l",
        arg=locale)


def missing_messages(page: Any) -> list[str]:
    """The keys the page looked up and its catalogue lacked (shown in English instead)."""
    result: list[str] = page.evaluate("window.unionhubI18n.missing")
    return result


def run_axe(page: Any) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(url="/vendor/axe.min.js")
    result: list[dict[str, Any]] = page.evaluate(RUN_AXE_JS, AXE_TAGS)
    return result
