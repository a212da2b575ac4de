"""Interpreter channels for audiences in Chromium (issue #14): the live viewer page and the
recording player switch between the floor and the Spanish interpreter's channel.

The call is two aiortc participants on a thread of the test (testkit's ``HubClient``): the floor
speaks a 440 Hz tone, Lucía, the live Spanish interpreter, 880 Hz. What the viewer hears is read
from the page's own audio: the video element goes through a Web Audio AnalyserNode, and the level
at 880 Hz against the level at 440 Hz says which channel plays.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from e2e_helpers import WAIT_MS, get_json, unique_room
from e2e_helpers import wait_until as poll
from testkit.rtc_client import HubClient, encode_test_audio

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

FLOOR_HZ, LUCIA_HZ = 440, 880

# Levels (dB) at 440 Hz and 880 Hz of what the page's video element plays, averaged over 2 s.
LEVELS_JS = """
async () => {
    const video = document.querySelector('video');
    if (!window.channelAnalyser) {
        const context = new AudioContext();
        const source = context.createMediaElementSource(video);
        const analyser = context.createAnalyser();
        analyser.fftSize = 4096;
        source.connect(analyser);
        analyser.connect(context.destination);
        window.channelAnalyser = analyser;
        await context.resume();
    }
    video.muted = false;
    const analyser = window.channelAnalyser;
    const bins = new Float32Array(analyser.frequencyBinCount);
    const hz = analyser.context.sampleRate / analyser.fftSize;
    const band = (f) => Math.max(...bins.slice(Math.round(f / hz) - 2, Math.round(f / hz) + 3));
    const power = {floor: 0, channel: 0};
    const n = 20;
    for (let i = 0; i < n; i++) {
        await new Promise((r) => setTimeout(r, 100));
        analyser.getFloatFrequencyData(bins);
        power.floor += 10 ** (band(440) / 10) / n;
        power.channel += 10 ** (band(880) / 10) / n;
    }
    return {floor: 10 * Math.log10(power.floor), channel: 10 * Math.log10(power.channel),
            time: video.currentTime, playing: !video.paused};
}
"""


class Call:
    """The floor and the live Spanish interpreter, on an event loop of their own."""

    def __init__(self, url: str, room: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.floor = HubClient(url, room, "Fiona", lang="en", audio=encode_test_audio(seconds=4, hz=FLOOR_HZ))
        self.lucia = HubClient(url, room, "Lucía", lang="es", audio=encode_test_audio(seconds=4, hz=LUCIA_HZ))
        self.run(self.floor.join())  # first in: hosts
        self.run(self.lucia.join())
        self.emit(self.floor, "interpreter", {"id": self.lucia.id, "lang": "es"})
        self.emit(self.lucia, "booth", {"action": "live"})

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def emit(self, client: HubClient, event: str, data: Any) -> None:
        before = len(client.errors)
        self.run(client.sio.call(event, data, timeout=10))
        assert client.errors[before:] == [], client.errors[before:]

    def close(self) -> None:
        for client in (self.floor, self.lucia):
            self.run(client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def levels(page: Any) -> dict[str, Any]:
    result = page.evaluate(LEVELS_JS)
    assert isinstance(result, dict)
    return result


def hears(page: Any, channel: str, what: str) -> dict[str, Any]:
    """Wait until the page plays ``channel`` ("floor": 440 Hz over 880 Hz, "es": the reverse)."""
    def done(heard: dict[str, Any]) -> bool:
        margin = heard["channel"] - heard["floor"] if channel == "es" else heard["floor"] - heard["channel"]
        return bool(heard["playing"]) and margin > 10
    result: dict[str, Any] = poll(lambda: levels(page), done, 60, what)
    return result


def test_a_viewer_picks_the_interpreter_channel_live_and_in_the_recording(hub: Any, new_page: Any) -> None:
    room = unique_room("channels")
    call = Call(hub.url, room)
    try:
        call.emit(call.floor, "live", {"on": True})
        poll(lambda: get_json(f"{hub.url}/api/live/{room}")["channels"], lambda c: c == ["es"], 60,
             "the stream's Spanish channel")
        page = new_page()
        page.goto(f"{hub.url}/live/{room}")
        picker = page.get_by_label("Listen to")
        expect(picker).to_be_visible(timeout=60_000)
        expect(picker).to_have_attribute("data-testid", "audio-channel")
        expect(picker.locator("option")).to_have_text(["Floor (no interpretation)", "Español"])
        expect(picker).to_have_value("floor")  # an English-speaking viewer: the floor
        hears(page, "floor", "the live floor")
        picker.select_option("es")
        hears(page, "es", "the live Spanish channel")
        assert "audio=es" in page.url
        picker.select_option("floor")
        hears(page, "floor", "the live floor again")
        # a Spanish-speaking viewer's page starts on the Spanish channel
        spanish = new_page()
        spanish.goto(f"{hub.url}/live/{room}?audio=es")
        expect(spanish.get_by_test_id("audio-channel")).to_have_value("es", timeout=60_000)
        hears(spanish, "es", "the Spanish channel for ?audio=es")
        spanish.close()
        page.close()
        call.emit(call.floor, "live", {"on": False})
    finally:
        call.close()

    # the stream was archived with its channel
    def archived() -> dict[str, Any] | None:
        found = [r for r in get_json(f"{hub.url}/api/recordings")["recordings"] if r["room"] == room]
        return found[0] if found else None
    rec = poll(archived, lambda r: r is not None and r["status"] == "ready", 180, "the stream's recording")
    assert [c["lang"] for c in rec["channels"]] == ["es"]
    page = new_page()
    page.goto(f"{hub.url}/recordings/{rec['id']}?t=2")
    picker = page.get_by_label("Listen to")
    expect(picker.locator("option")).to_have_text(["Floor (no interpretation)", "Español"], timeout=WAIT_MS)
    expect(picker).to_have_value("floor")
    video = page.get_by_test_id("recording-video")
    expect(video).to_have_attribute("src", rec["video"])
    page.evaluate("document.querySelector('video').play()")
    before = hears(page, "floor", "the recording's floor")
    picker.select_option("es")
    expect(video).to_have_attribute("src", rec["channels"][0]["video"])
    after = hears(page, "es", "the recording's Spanish channel")
    assert after["time"] >= before["time"], "the channel plays on from the same moment, not from the start"
    expect(page.get_by_test_id("moment-link")).to_have_attribute("href", re.compile(r"audio=es"))
    # the library says which interpretation channels a recording has
    page.goto(f"{hub.url}/recordings")
    item = page.locator(f'[data-testid="recording-item"][data-id="{rec["id"]}"]')
    expect(item.get_by_test_id("recording-channels")).to_have_text("Interpretation: Español", timeout=WAIT_MS)
