"""Simultaneous interpretation in real browsers (#14): a Spanish listener hears the Spanish
interpreter with the floor mixed underneath at the volume they choose, and the interpreters hand
the microphone over in their booth.

Each speaker is its own Chromium (a fake microphone is per browser process) whose microphone plays
a tone in syllables written here: the floor 440 Hz, Lucía 880 Hz, Luis 660 Hz. The listener's mix is read from
its own Web Audio graph (the AnalyserNode after the floor and channel gains): the level at 880 Hz
against the level at 440 Hz follows the floor-volume slider.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from e2e_helpers import WAIT_MS, join, participant, poll, unique_room

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

RATE = 48_000

# Levels (dB) of the listener's mix at 440 Hz and 880 Hz: power averaged over three seconds of readings.
MIX_LEVELS_JS = """
async () => {
    const mod = await import('/static/interpretation.js');
    const analyser = mod.mixAnalyser();
    if (!analyser) return null;
    const bins = new Float32Array(analyser.frequencyBinCount);
    const hz = analyser.context.sampleRate / analyser.fftSize;
    const band = (f) => Math.max(...bins.slice(Math.round(f / hz) - 2, Math.round(f / hz) + 3));
    const power = {floor: 0, channel: 0};
    const n = 30;
    for (let i = 0; i < n; i++) {
        await new Promise((r) => setTimeout(r, 100));
        analyser.getFloatFrequencyData(bins);
        power.floor += 10 ** (band(440) / 10) / n;
        power.channel += 10 ** (band(880) / 10) / n;
    }
    return {floor: 10 * Math.log10(power.floor), channel: 10 * Math.log10(power.channel)};
}
"""


def write_tone(path: Path, hz: float) -> Path:
    """A tone in syllables (200 ms on, 100 ms off, each at its own level around -14 dBFS), as
    speech comes: a steady tone would be taken for noise by the browsers' noise suppression (and
    then for silence by the hub). 20 s, looped by Chromium."""
    t = np.arange(RATE * 20) / RATE
    syllable = (t / 0.3).astype(int)
    levels = np.random.default_rng(int(hz)).uniform(0.12, 0.3, syllable.max() + 1)
    envelope = np.where((t % 0.3) < 0.2, levels[syllable], 0.0)
    samples = (32767 * np.sin(2 * np.pi * hz * t) * envelope).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return path


def mix(page: Any) -> dict[str, float]:
    levels = poll(page, MIX_LEVELS_JS, what="the listener's mix")
    assert isinstance(levels, dict)
    return levels


def set_floor_volume(page: Any, value: int) -> None:
    page.get_by_test_id("floor-volume").fill(str(value))
    page.wait_for_timeout(300)


def test_the_listener_hears_the_interpreter_over_the_floor_and_the_booth_hands_over(
    hub_factory: Any, launch_browser: Any, new_page: Any, tmp_path: Path
) -> None:
    hub = hub_factory("--asr-model", "none", "--no-recordings", "--no-live")
    room = unique_room("interpretation")
    speakers = {
        name: new_page(launch_browser(f"--use-file-for-fake-audio-capture={write_tone(tmp_path / f'{hz}.wav', hz)}"))
        for name, hz in (("Fiona", 440), ("Lucía", 880), ("Luis", 660))
    }
    floor, lucia, luis = speakers["Fiona"], speakers["Lucía"], speakers["Luis"]
    join(floor, hub.url, room, "Fiona", video=False)  # first in: hosts
    join(lucia, hub.url, room, "Lucía", lang="es", video=False)
    join(luis, hub.url, room, "Luis", lang="es", video=False)
    listener = join(new_page(), hub.url, room, "Sofía", lang="es", audio=False, video=False)

    # the host makes both interpreters into Spanish from the participant list
    for name in ("Lucía", "Luis"):
        participant(floor, name).get_by_test_id("host-interpreter").select_option("es")
        expect(participant(floor, name).get_by_test_id("host-interpreter")).to_have_value("es")
    expect(lucia.get_by_test_id("booth")).to_be_visible()
    expect(lucia.get_by_test_id("booth-member")).to_have_count(2)
    expect(floor.get_by_test_id("booth")).to_be_hidden()
    # an interpreter speaks over the floor they hear: no echo cancellation, noise suppression on
    settings = poll(lucia, """() => { const s = window.unionhub.state.mic.getSettings();
        return s.echoCancellation === false && s; }""", what="the interpreter's microphone settings")
    assert settings["noiseSuppression"] is True, settings

    # the Spanish channel exists: the listener is on it (her language) and told nobody is live
    select = listener.get_by_test_id("audio-channel")
    expect(select).to_have_value("es")
    expect(listener.get_by_test_id("channel-notice")).to_be_visible()
    expect(listener.get_by_test_id("floor-volume")).to_have_value("20")

    lucia.get_by_test_id("booth-live").click()
    expect(listener.get_by_test_id("channel-live")).to_have_text("Spanish — Lucía")
    expect(listener.get_by_test_id("channel-notice")).to_be_hidden()
    expect(luis.get_by_test_id("booth-live")).to_be_disabled()  # never two live
    expect(luis.get_by_test_id("booth-status")).to_have_text("Lucía is live.")

    # the mix follows the floor volume: the interpreter on top, the floor underneath
    poll(listener, "async () => { const l = await (" + MIX_LEVELS_JS + ")(); return l && l.channel > -90 && l; }",
         what="the interpreter in the listener's mix")
    # (Chromium's gain control moves each microphone's level: every volume is measured twice)
    readings: dict[int, list[dict[str, float]]] = {100: [], 20: [], 0: []}
    for volume in (100, 20, 0, 100, 20):
        set_floor_volume(listener, volume)
        readings[volume].append(mix(listener))
    at = {v: {band: float(np.mean([r[band] for r in rs])) for band in ("floor", "channel")} for v, rs in readings.items()}
    over = {v: at[v]["channel"] - at[v]["floor"] for v in at}  # how far the interpreter is over the floor
    assert at[20]["channel"] > at[20]["floor"] + 6, at  # the default: the interpreter on top
    assert over[20] > over[100] + 7, at  # 20 % is 14 dB under full
    assert at[0]["floor"] < at[20]["floor"] - 5, at  # (at 0 the 440 Hz band holds only the channel's noise)

    # the floor page hears no interpreter: it is sent none
    assert floor.evaluate(
        "(ids) => [...document.querySelectorAll('#audio-sink audio')].filter(a => ids.includes(a.dataset.participant)).length",
        [lucia.evaluate("() => window.unionhub.state.myId"), luis.evaluate("() => window.unionhub.state.myId")],
    ) == 0

    # hand-over in one click: Luis live, Lucía off, never both
    lucia.get_by_test_id("booth-handover").click()
    expect(luis.get_by_test_id("booth-status")).to_have_text("You are live.")
    expect(lucia.get_by_test_id("booth-status")).to_have_text("Luis is live.")
    for page in (lucia, luis):
        expect(page.locator('[data-testid="booth-member"].live')).to_have_count(1)
    expect(listener.get_by_test_id("channel-live")).to_have_text("Spanish — Luis")
    # a cough: the live interpreter mutes (the call's own microphone state) and unmutes
    luis.get_by_test_id("booth-mute").click()
    expect(luis.get_by_test_id("booth-mute")).to_have_attribute("aria-pressed", "true")
    assert luis.evaluate("() => window.unionhub.state.mic.enabled") is False
    expect(luis.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "true")
    luis.get_by_test_id("booth-mute").click()
    expect(luis.get_by_test_id("booth-mute")).to_have_attribute("aria-pressed", "false")

    # back to the floor: no interpreter arrives any more
    select.select_option("floor")
    expect(listener.get_by_test_id("floor-volume")).to_be_hidden()
    luis_id = luis.evaluate("() => window.unionhub.state.myId")
    poll(listener, "(id) => !document.querySelector(`#audio-sink audio[data-participant=\"${id}\"]`)", luis_id,
         timeout=WAIT_MS, what="the interpreter's audio to stop")
