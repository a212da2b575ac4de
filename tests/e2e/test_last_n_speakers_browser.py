"""Last-N video follows who speaks, in real browsers (#12): five publishers take turns to talk and
a listening host, with the room's N set to 2, sees the videos of the two latest speakers and the
others' names; switched to audio only, it keeps hearing them and receives no video.

Each publisher is its own Chromium (a fake microphone is per browser process) with the fake
camera at 5 frames a second (six browsers share two cores) and its own speech file, written
here: in a cycle of five turns of TURN_S seconds, publisher i speaks real speech (a different
clip each) for TALK_S seconds at the start of its turn and is digitally silent otherwise.
Chromium loops the file from the moment the page opens the microphone, and plays it slower than
the clock when the machine is too busy to keep up, so the browsers' turns line up only roughly:
the pages open the room at once, so they come one after the other, and each page logs when its
own microphone actually carries speech. That log, not a prediction, says who spoke when. The
hub's active-speaker detection reads the RFC 6464 levels Chromium puts on every audio packet;
the hub runs without captions, so nothing else listens.

What a user notices is read from the listening page: tiles playing video or showing a name,
and, from its own RTCPeerConnection's stats, which video streams receive frames and how much
audio arrives.
"""

from __future__ import annotations

import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from e2e_helpers import SPEECH, WAIT_MS, join, room_url, unique_room, wait_joined, wait_until

try:
    from playwright.sync_api import expect
except ImportError:
    pytest.fail("playwright is not installed: run `make setup`", pytrace=False)

pytestmark = pytest.mark.browser

WAIT_S = WAIT_MS / 1000
LAST_N = 2
#: The publishers, in the order their browsers start, and the speech each one's microphone plays.
CLIPS = {
    "Ana": "jfk.wav",
    "Ben": "multilingual/es_fleurs_1.wav",
    "Chiara": "multilingual/en_librispeech_1.wav",
    "Dev": "multilingual/pt_fleurs_2.wav",
    "Eli": "multilingual/de_fleurs_2.wav",
}
#: Whose turn it is, in each browser's own cycle: the last to join first, so each turn changes
#: whose video is shown.
TURNS = ("Eli", "Dev", "Chiara", "Ben", "Ana")
TURN_S = 6.0
#: Speech at the start of a turn, then silence: browsers whose microphones opened up to about
#: TURN_S - TALK_S apart still take their turns one after the other.
TALK_S = 3.0
CYCLE_S = TURN_S * len(TURNS)
RATE = 16_000  # the clips' rate (16 kHz mono, 16-bit)
#: Chromium's fake camera at 5 frames a second (the page asks for 24): five encoders, twelve decoders.
SMALL_CAMERA = "--use-fake-device-for-media-stream=fps=5"
#: Video frames a stream that plays decodes at least over FRAMES_WINDOW_MS (it gets about 5).
MIN_FRAMES = 2
FRAMES_WINDOW_MS = 1000
#: Opus speech is a few kB a second: this much more audio is a couple of seconds of someone talking.
AUDIO_MORE = 8_000
#: Samples the page's audio streams played out, at 48 kHz: at least one second's worth.
SAMPLES_MORE = 48_000

# Logs when this page's microphone carries speech: `window.__speech`, [start, end] in ms since the
# epoch of each turn, sound above -50 dBFS (the files are digital silence between turns, which
# come CYCLE_S apart; pauses of under 5 s are part of a turn).
SPEECH_LOG_JS = """
(() => {
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) return;
    const getUserMedia = md.getUserMedia.bind(md);
    window.__speech = [];
    md.getUserMedia = async (constraints) => {
        const stream = await getUserMedia(constraints);
        const track = stream.getAudioTracks()[0];
        if (track && !window.__speechContext) {
            const context = (window.__speechContext = new AudioContext());
            const analyser = context.createAnalyser();
            analyser.fftSize = 2048;
            context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
            const samples = new Float32Array(analyser.fftSize);
            setInterval(() => {
                analyser.getFloatTimeDomainData(samples);
                let energy = 0;
                for (const x of samples) energy += x * x;
                if (Math.sqrt(energy / samples.length) < 0.003) return;
                const now = Date.now();
                const last = window.__speech[window.__speech.length - 1];
                if (last && now - last[1] < 5000) last[1] = now;
                else window.__speech.push([now, now]);
            }, 50);
        }
        return stream;
    };
})();
"""

# The remote camera tiles as the user sees them (a video playing, or the name placeholder; in the
# viewport or not), each with the video frames its stream decoded so far (the page's getStats),
# the frames decoded by every inbound video stream, whether a tile shows it or not, who the page
# highlights as speaking, and what it says (errors and notices shown).
TILES_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    const streams = {};
    const byTrack = {};
    if (pc) (await pc.getStats()).forEach((s) => {
        if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
        streams[s.id] = s.framesDecoded || 0;
        byTrack[s.trackIdentifier] = s.framesDecoded || 0;
    });
    const tiles = [...document.querySelectorAll('.tile.remote[data-source="camera"]')].map((t) => {
        const v = t.querySelector('video');
        const avatar = t.querySelector('.avatar');
        const track = v && v.srcObject ? v.srcObject.getVideoTracks()[0] : null;
        const box = t.getBoundingClientRect();
        return {
            name: t.dataset.name,
            playing: !!v && v.checkVisibility() && v.videoWidth > 0 && v.readyState >= 2 && !v.paused,
            placeholder: !!avatar && avatar.checkVisibility(),
            onScreen: box.bottom > 0 && box.top < innerHeight && box.right > 0 && box.left < innerWidth,
            frames: track && track.id in byTrack ? byTrack[track.id] : 0,
        };
    });
    const says = [...document.querySelectorAll('[data-testid="error"], [data-testid="notice-text"]')]
        .filter((e) => e.checkVisibility()).map((e) => e.textContent);
    const speaking = document.querySelector('.tile.remote.speaking');
    return {tiles, streams, says, speaking: speaking ? speaking.dataset.name : null};
}
"""

# What the page's inbound RTP streams received so far: bytes by kind, and audio samples played out.
RECEIVED_JS = """
async () => {
    const pc = window.unionhub && window.unionhub.pc;
    const out = {audio: 0, video: 0, samples: 0};
    if (!pc) return out;
    (await pc.getStats()).forEach((s) => {
        if (s.type !== 'inbound-rtp' || !(s.kind in out)) return;
        out[s.kind] += s.bytesReceived || 0;
        if (s.kind === 'audio') out.samples += s.totalSamplesReceived || 0;
    });
    return out;
}
"""


# ---- the speech files ---------------------------------------------------------------------------


def speech(clip: str) -> np.ndarray:
    """TALK_S seconds of `clip` (float samples), from the start of its densest stretch of speech,
    at the same peak level for everyone (some clips were recorded 40 dB quieter than others)."""
    with wave.open(str(SPEECH / clip)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2), clip
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    frame = RATE // 50  # 20 ms
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    level = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9)
    voiced = level > level.max() - 30
    width = int(TALK_S * 50)
    assert len(voiced) > width, f"{clip} is shorter than {TALK_S} s"
    start = max(range(len(voiced) - width), key=lambda i: bool(voiced[i]) * int(voiced[i : i + width].sum()))
    talk = samples[start * frame : start * frame + int(TALK_S * RATE)]
    return talk * (0.7 / float(np.abs(talk).max()))  # peak −3 dBFS


def write_turn_file(path: Path, name: str) -> Path:
    """A CYCLE_S-second WAV: `name`'s speech at the start of its turn, digital silence elsewhere."""
    cycle = np.zeros(int(CYCLE_S * RATE), dtype=np.float32)
    start = int(TURNS.index(name) * TURN_S * RATE)
    talk = speech(CLIPS[name])
    cycle[start : start + len(talk)] = talk
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.round(cycle * 32767).astype("<i2").tobytes())
    return path


@dataclass(frozen=True)
class Speech:
    """A stretch of speech on one publisher's microphone, as its page logged it."""

    speaker: str
    start: float  # wall-clock time (time.time())
    end: float


def spoken(publishers: dict[str, Any]) -> list[Speech]:
    """Everything the publishers' microphones said so far, in order."""
    said = [
        Speech(name, start / 1000, end / 1000)
        for name, page in publishers.items()
        for start, end in page.evaluate("() => window.__speech")
    ]
    return sorted(said, key=lambda s: s.start)


# ---- what the listener sees ---------------------------------------------------------------------


def tiles(page: Any) -> dict[str, Any]:
    return page.evaluate(TILES_JS)


def playing(snapshot: dict[str, Any]) -> set[str]:
    return {t["name"] for t in snapshot["tiles"] if t["playing"] and not t["placeholder"]}


def watch(page: Any) -> dict[str, Any]:
    """What the page shows over FRAMES_WINDOW_MS: the tiles playing in two looks that far apart
    (None if they changed in between), the tiles showing a name, the tiles whose video decoded new
    frames in between, and how many inbound video streams did (whether a tile shows them or not)."""
    before = tiles(page)
    page.wait_for_timeout(FRAMES_WINDOW_MS)
    after = tiles(page)
    frames = {t["name"]: t["frames"] for t in before["tiles"]}
    return {
        "names": sorted(t["name"] for t in after["tiles"]),
        "playing": playing(after) if playing(after) == playing(before) else None,
        "placeholders": {t["name"] for t in after["tiles"] if t["placeholder"] and not t["playing"]},
        "receiving": {t["name"] for t in after["tiles"] if t["frames"] >= frames.get(t["name"], 0) + MIN_FRAMES},
        "streams": sum(1 for sid, n in after["streams"].items() if n >= before["streams"].get(sid, 0) + MIN_FRAMES),
        "off_screen": sorted(t["name"] for t in after["tiles"] if not t["onScreen"]),
        "speaking": after["speaking"],
        "says": after["says"],
    }


def shows(seen: dict[str, Any], videos: set[str] | None = None) -> bool:
    """LAST_N videos play (`videos`, if given) and receive frames, no other stream does, and every
    other publisher shows their name."""
    now = seen["playing"]
    return (
        now is not None
        and len(now) == LAST_N
        and (videos is None or now == videos)
        and seen["names"] == sorted(CLIPS)
        and seen["receiving"] == now
        and seen["streams"] == LAST_N
        and seen["placeholders"] == set(CLIPS) - now
    )


def wait_turn(page: Any, publishers: dict[str, Any], after: float, previous: str | None, since: float) -> Speech:
    """The first speech by someone other than `previous` to start after `after`: while it is the
    latest, the page shows that speaker's video and `previous`'s (None: someone's), and the other
    publishers' names.

    Fails once the next speech has started a while ago (the page has moved on) or, if nobody
    speaks, after a cycle of turns. `since`: the time the failure's message counts from."""

    def ok(seen: dict[str, Any], speaker: str) -> bool:
        if previous is not None:
            return shows(seen, {speaker, previous})
        return shows(seen) and speaker in seen["playing"]

    history: list[str] = []  # what was seen meanwhile (for a failure's message)
    give_up = after + CYCLE_S + WAIT_S
    while True:
        said = spoken(publishers)
        turn = next((s for s in said if s.start > after and s.speaker != previous), None)
        if turn is not None:
            seen = watch(page)
            if ok(seen, turn.speaker):
                return turn
            history.append(
                f"+{time.time() - since:.1f} s: {seen['speaking']} speaking, {sorted(seen['playing'] or ())} play, "
                f"{sorted(seen['receiving'])} get frames" + (f", the page says {seen['says']}" if seen["says"] else "")
            )
            following = next((s for s in said if s.start > turn.start and s.speaker != turn.speaker), None)
            if following is not None:
                give_up = min(give_up, following.start + TURN_S / 2)
        else:
            page.wait_for_timeout(200)
        if time.time() > give_up:
            log = [f"{s.speaker} +{s.start - since:.1f}–{s.end - since:.1f} s" for s in spoken(publishers)]
            who = turn.speaker if turn is not None else "the next speaker"
            pytest.fail(
                f"while {who} spoke, the listener did not show {who} and {previous or 'one other'} playing and "
                f"the other {len(CLIPS) - LAST_N} as names; microphones: {log}; listener: {history}",
                pytrace=False,
            )


def received(page: Any) -> dict[str, int]:
    return page.evaluate(RECEIVED_JS)


def test_two_videos_follow_who_speaks_and_audio_only_keeps_the_voices(hub_factory, launch_browser, new_page, tmp_path):
    # Captions off: the speech is for the active-speaker detection only, not for Whisper on two cores.
    hub = hub_factory("--asr-model", "none", "--no-recordings", "--no-live")
    room = unique_room("lastn-talk")
    host = join(new_page(), hub.url, room, "Host", audio=False, video=False)
    n = host.get_by_test_id("room-last-n")
    n.fill(str(LAST_N))
    n.press("Tab")
    expect(host.get_by_test_id("host-controls")).to_have_attribute("data-last-n", str(LAST_N), timeout=WAIT_MS)

    publishers = {}
    for name in CLIPS:
        wav = write_turn_file(tmp_path / f"{name}.wav", name)
        page = new_page(launch_browser(f"--use-file-for-fake-audio-capture={wav}", SMALL_CAMERA))
        page.add_init_script(SPEECH_LOG_JS)
        page.set_viewport_size({"width": 400, "height": 300})  # nobody watches: less to draw
        publishers[name] = page
    since = time.time()
    for name, page in publishers.items():  # all at once: their microphones open close together
        page.goto(room_url(hub.url, room, name), wait_until="commit")
    for page in publishers.values():
        wait_joined(page)

    # Five cameras, N = 2: two videos play, three tiles show a name (whoever has spoken so far).
    seen = wait_until(lambda: watch(host), shows, 2 * WAIT_S, "two of five videos play, the others show names", page=host)
    assert not seen["off_screen"], f"every tile must be on screen (hidden ones come last): {seen}"

    # Then whose video plays follows who speaks: the speaker's and the previous speaker's. For the
    # first to speak from now on, the other is whoever the hub heard before; for the next three,
    # exactly the one before, each speaker's video starting from the name shown in the turn before.
    turn = wait_turn(host, publishers, time.time(), None, since)
    for _ in range(3):
        turn = wait_turn(host, publishers, turn.start, turn.speaker, since)

    # Audio only: the videos stop (every tile a name), the voices go on.
    button = host.get_by_test_id("audio-only")
    expect(button).to_have_attribute("aria-pressed", "false")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(host.get_by_test_id("remote-video")).to_have_count(0, timeout=WAIT_MS)
    expect(host.locator('.tile.remote[data-source="camera"].no-video')).to_have_count(len(CLIPS))
    expect(host.get_by_test_id("remote-audio")).to_have_count(len(CLIPS))
    before = received(host)
    after = wait_until(
        lambda: received(host),
        lambda now: now["audio"] >= before["audio"] + AUDIO_MORE and now["samples"] >= before["samples"] + SAMPLES_MORE,
        WAIT_S,
        "audio keeps arriving and playing",
        page=host,
    )
    assert after["video"] <= before["video"], f"video bytes still arrive in audio-only mode: {before} → {after}"
