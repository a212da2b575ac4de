"""What a user of the unionhub web client notices, as Playwright checks."""

from __future__ import annotations

import itertools
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

WAIT_MS = 20_000  # generous: 2 cores run the browsers, the encoders and the SFU
#: Until the hub notices a page whose connection dropped without its close reaching the hub (the
#: network cut): its Socket.IO ping interval + ping timeout (signalling/server.py, 10 + 10 s),
#: and a margin for a loaded machine.
DROP_NOTICED_MS = 25_000

#: The English → Spanish words the shared hub's tiny Argos model knows (conftest.py installs it);
#: other words pass through untranslated.
EN_ES = {
    "and": "y", "And": "Y", "so": "así", "my": "mis", "fellow": "compañeros",
    "ask": "pregunta", "Ask": "Pregunta", "not": "no", "what": "qué", "What": "Qué",
    "your": "tu", "country": "país", "can": "puede", "do": "hacer", "for": "por", "you": "ti",
}

_room_counter = itertools.count()


def unique_room(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_room_counter)}"


def room_url(base: str, room: str, name: str | None = None, lang: str = "en",
             audio: bool = True, video: bool = True) -> str:
    params: dict[str, str] = {}
    if name is not None:
        params["name"] = name
        params["lang"] = lang
    if not audio:
        params["audio"] = "0"
    if not video:
        params["video"] = "0"
    query = f"?{urlencode(params)}" if params else ""
    return f"{base}/r/{quote(room, safe='')}{query}"


def join(page: Any, base: str, room: str, name: str, **kwargs: Any) -> Any:
    """Open the room URL and wait until the server confirmed the join."""
    page.goto(room_url(base, room, name, **kwargs))
    wait_joined(page)
    return page


def wait_joined(page: Any) -> str:
    page.wait_for_function(
        "() => !!(window.unionhub && window.unionhub.state.myId)", timeout=WAIT_MS
    )
    return page.evaluate("() => window.unionhub.state.myId")


def participant(page: Any, name: str) -> Any:
    """The participant-list entry of `name`."""
    return page.locator(f'[data-testid="participant"][data-name="{name}"]')


# A video element counts as "playing" when it has decoded frames and is not paused.
_PLAYING_JS = """
(v) => v.isConnected && v.videoWidth > 0 && v.readyState >= 2 && !v.paused && !v.ended
"""


def wait_remote_videos(page: Any, count: int, timeout: int = WAIT_MS) -> None:
    """Wait until exactly `count` remote videos are shown and all of them are playing."""
    page.wait_for_function(
        f"""(n) => {{
            const playing = {_PLAYING_JS};
            const vs = [...document.querySelectorAll('[data-testid="remote-video"]')];
            return vs.length === n && vs.every(playing);
        }}""",
        arg=count,
        timeout=timeout,
    )


def remote_videos(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="remote-video"]')].map((v) => {
            const tile = v.closest('.tile');
            return {participant: tile && tile.dataset.participant,
                    source: tile && tile.dataset.source,
                    width: v.videoWidth, height: v.videoHeight, time: v.currentTime};
        })"""
    )


def wait_videos_advance(page: Any, seconds: float = 0.5, timeout: int = WAIT_MS) -> None:
    """Every remote video's currentTime moves on by `seconds` (the stream is live, not frozen)."""
    start = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="remote-video"]')]
                 .map((v) => v.currentTime)"""
    )
    page.wait_for_function(
        """([start, delta]) => {
            const vs = [...document.querySelectorAll('[data-testid="remote-video"]')];
            return vs.length === start.length && vs.every((v, i) => v.currentTime > start[i] + delta);
        }""",
        arg=[start, seconds],
        timeout=timeout,
    )


# Luma mean and standard deviation of the current frame of each remote video, from a small
# canvas copy. Chromium's fake camera draws a coloured, moving test pattern: clearly neither black
# nor a flat colour.
FRAME_STATS_JS = """
(v) => {
    const c = document.createElement('canvas');
    c.width = 80; c.height = 60;
    const g = c.getContext('2d', {willReadFrequently: true});
    g.drawImage(v, 0, 0, c.width, c.height);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let sum = 0, sq = 0;
    const n = d.length / 4;
    for (let i = 0; i < d.length; i += 4) {
        const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
        sum += y; sq += y * y;
    }
    const mean = sum / n;
    return {mean, std: Math.sqrt(Math.max(0, sq / n - mean * mean))};
}
"""

MIN_MEAN = 20.0
MIN_STD = 5.0


def frame_stats(page: Any) -> list[dict[str, float]]:
    return page.evaluate(
        f"""() => {{
            const stats = {FRAME_STATS_JS};
            return [...document.querySelectorAll('[data-testid="remote-video"]')].map(stats);
        }}"""
    )


def wait_frames_not_black(page: Any, timeout: int = WAIT_MS) -> None:
    """Every remote camera video shows a picture (not black, not a flat colour)."""
    page.wait_for_function(
        f"""([minMean, minStd]) => {{
            const stats = {FRAME_STATS_JS};
            const vs = [...document.querySelectorAll(
                '.tile[data-source="camera"] [data-testid="remote-video"]')];
            return vs.length > 0 && vs.every((v) => {{
                const s = stats(v);
                return s.mean > minMean && s.std > minStd;
            }});
        }}""",
        arg=[MIN_MEAN, MIN_STD],
        timeout=timeout,
    )


# ---- live captions (a browser whose microphone plays CLIP) ---------------------------------------

SPEECH = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech"  # /work/shared/…
CLIP = SPEECH / "jfk.wav"  # "… ask not what your country can do for you, ask what you can do for your country."
PHRASE = "ask not what your country can do for you"
# Speech recognition shares 2 cores with the browsers, and tiny.en sometimes mishears the short
# "Ask not!" utterance ("Yes, not!", "Ask, Doc!"): the clip loops, so wait for a good round.
CAPTION_WAIT_MS = 180_000


def hub_status(hub) -> dict[str, Any]:
    with urllib.request.urlopen(hub.url + "/healthz", timeout=5) as response:
        return json.load(response).get("captions") or {}


def wait_captions_ready(hub, translation: bool = False, timeout: float = 90.0) -> dict[str, Any]:
    """The hub loads its models in the background; wait for them (via /healthz).

    Fails the test if speech recognition (and, if asked, translation) does not come up.
    """
    deadline = time.monotonic() + timeout
    while True:
        status = hub_status(hub)
        if status.get("available") and (status.get("translation") or not translation):
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"captions did not become available on the hub: {status}", pytrace=False)
        time.sleep(0.5)


def normalise(text: str) -> str:
    """Lowercase, punctuation removed, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()


# Every final caption the page has shown so far, in order of appearance. The panel keeps only
# the last few utterances, so the page remembers them (polled more often than captions arrive).
COLLECT_FINALS_JS = """
() => {
    const seen = window.__testFinals || (window.__testFinals = new Map());
    for (const c of document.querySelectorAll('[data-testid="caption"][data-final="true"]')) {
        if (seen.has(c.dataset.utterance)) continue;
        seen.set(c.dataset.utterance, {
            utterance: c.dataset.utterance, lang: c.dataset.lang, speaker: c.dataset.speaker,
            name: c.dataset.speakerName, final: c.dataset.final,
            text: c.querySelector('[data-testid="caption-text"]').textContent,
            original: (c.querySelector('[data-testid="caption-original"]') || {}).textContent || null,
        });
    }
    return [...seen.values()];
}
"""

UTTERANCES_JS = """
() => [...document.querySelectorAll('[data-testid="caption"]')].map((c) => c.dataset.utterance)
"""


def transcript(finals: list[dict[str, Any]], lang: str | None = None) -> str:
    """The final captions (of one language), concatenated in order and normalised."""
    return normalise(" ".join(f["text"] for f in finals if lang is None or f["lang"] == lang))


def wait_finals(page, done: Callable[[list[dict[str, Any]]], bool],
                timeout_ms: int = CAPTION_WAIT_MS) -> list[dict[str, Any]]:
    """Poll the final captions shown in `page` until `done(finals)`; returns them."""
    deadline = time.monotonic() + timeout_ms / 1000
    seen: list[str] = []
    while True:
        finals = page.evaluate(COLLECT_FINALS_JS)
        if done(finals):
            return finals
        seen.extend(page.evaluate(UTTERANCES_JS))
        if time.monotonic() > deadline:
            pytest.fail(
                f"final captions did not arrive in {timeout_ms / 1000:.0f}s; finals shown: "
                f"{json.dumps(finals, ensure_ascii=False, indent=1)}; "
                f"utterances shown (any state): {len(set(seen))}",
                pytrace=False,
            )
        page.wait_for_timeout(250)


# ---- polling page state without page.wait_for_function -------------------------------------------


def poll(page: Any, script: str, arg: Any = None, timeout: int = WAIT_MS, what: str = "") -> Any:
    """Evaluate `script` (a JS function, called with `arg`) every 100 ms until it returns a truthy
    value, and return that value; fails the test after `timeout` ms.

    Unlike page.wait_for_function, page.evaluate is never subject to the page's CSP.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(script, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout / 1000:.0f}s waiting for {what or script}; last value: {value!r}",
                        pytrace=False)
        page.wait_for_timeout(100)


def joined_id(page: Any, timeout: int = WAIT_MS) -> str:
    """Wait (polling) until the page's `joined` arrived; its participant id."""
    return poll(page, "() => window.unionhub && window.unionhub.state.myId", timeout=timeout,
                what="the server's `joined`")


# ---- polling and HTTP without a browser ------------------------------------------------------------

def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str,
         page: Any = None, interval: float = 0.25) -> Any:
    """Call ``probe()`` until ``done(value)``; fails the test with the last value on timeout.

    Pages are probed with ``page.evaluate`` rather than ``page.wait_for_function``, which may not
    work under the pages' ``script-src 'self'``. (Where it is used, mind that it fails at once if
    its predicate throws: the page's globals, e.g. ``window.unionhub``, do not exist until the
    page's script ran, which can be after ``goto``/``reload`` returned — web_client/i18n.js
    awaits its catalogue first, and the load event does not wait for that.)
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s; last seen: {value!r}", pytrace=False)
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)


def get(url: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str) -> Any:
    status, _, body = get(url)
    assert status == 200, (url, status, body[:500])
    return json.loads(body)
