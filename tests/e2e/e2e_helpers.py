"""What a user of the unionhub web client notices, as Playwright checks."""

from __future__ import annotations

import itertools
import os
from typing import Any
from urllib.parse import quote, urlencode

WAIT_MS = 20_000  # generous: 2 cores run the browsers, the encoders and the SFU

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
_FRAME_STATS_JS = """
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
            const stats = {_FRAME_STATS_JS};
            return [...document.querySelectorAll('[data-testid="remote-video"]')].map(stats);
        }}"""
    )


def wait_frames_not_black(page: Any, timeout: int = WAIT_MS) -> None:
    """Every remote camera video shows a picture (not black, not a flat colour)."""
    page.wait_for_function(
        f"""([minMean, minStd]) => {{
            const stats = {_FRAME_STATS_JS};
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
