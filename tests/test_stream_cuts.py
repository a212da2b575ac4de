"""Where SpeakerStream cuts speech into utterances: at lulls, never losing or repeating audio."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from bench.captions_accuracy import load_manifest, trim_silence
from captioning.asr import Segment, Transcript
from captioning.audio import SAMPLE_RATE
from captioning.language import SpokenLanguage
from captioning.scheduler import AsrScheduler
from captioning.stream import CaptionEvent, SpeakerStream
from captioning.vad import WINDOW, StreamingVad


def scripted(probs: list[float]) -> Callable[[np.ndarray], Awaitable[list[float]]]:
    """A VAD that answers from a script, window by window."""
    position = 0

    async def vad(block: np.ndarray) -> list[float]:
        nonlocal position
        n = len(block) // WINDOW
        out = probs[position : position + n]
        position += n
        return out

    return vad


async def run(audio: np.ndarray, probs: list[float], **options: float) -> tuple[list[np.ndarray], list[CaptionEvent]]:
    """Stream ``audio``; returns the audio of every transcription (finals only: partial_interval
    is longer than the audio) and the finals."""
    heard: list[np.ndarray] = []

    async def transcribe(x: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        heard.append(x.copy())
        return Transcript(f"words {len(x)}", "en", 1.0)

    return heard, await run_with(transcribe, audio, probs, **options)


async def test_speech_without_pauses_is_cut_at_its_quietest_moment_and_nothing_is_lost() -> None:
    windows = 25 * SAMPLE_RATE // WINDOW
    audio = np.arange(windows * WINDOW, dtype=np.float32)  # every sample tells where it came from
    probs = [0.9] * windows
    dip = int(17.5 * SAMPLE_RATE / WINDOW)  # a breath 2.5 s before max_utterance (20 s)
    for i in range(dip - 2, dip + 3):
        probs[i] = 0.1
    probs[int(16.8 * SAMPLE_RATE / WINDOW)] = 0.4  # a softer syllable: speech, not a pause

    heard, finals = await run(audio, probs, max_utterance=20.0, min_silence=0.7, segment_cuts=False)

    assert len(heard) == 2 and len(finals) == 2
    first, second = heard
    cut = int(first[-1]) + 1
    assert abs(cut / SAMPLE_RATE - 17.5) < 0.1, f"cut at {cut / SAMPLE_RATE:.2f} s, not in the breath at 17.5 s"
    # the second utterance starts exactly where the first stopped: no sample lost or heard twice
    assert int(second[0]) == cut
    assert np.array_equal(np.concatenate(heard), audio[: len(first) + len(second)])
    assert len(first) + len(second) == len(audio)
    assert finals[0].end == finals[1].start


async def test_a_soft_onset_before_the_vad_fires_is_kept_by_the_pre_roll() -> None:
    windows = 8 * SAMPLE_RATE // WINDOW
    audio = np.arange(windows * WINDOW, dtype=np.float32)
    onset = int(2.0 * SAMPLE_RATE / WINDOW)
    fires = int(2.8 * SAMPLE_RATE / WINDOW)  # the first syllable scores under SPEECH_ON (0.5)
    probs = [0.0] * onset + [0.3] * (fires - onset) + [0.9] * int(3 * SAMPLE_RATE / WINDOW)
    probs += [0.0] * (windows - len(probs))

    heard, finals = await run(audio, probs)

    assert len(heard) == 1
    assert int(heard[0][0]) <= onset * WINDOW, "the utterance starts after the speaker did"
    assert finals[0].start <= 2.0


async def test_a_soft_onset_inside_the_pause_that_ended_an_utterance_starts_the_next_one() -> None:
    per_s = SAMPLE_RATE // WINDOW
    audio = np.arange(10 * per_s * WINDOW, dtype=np.float32)
    # speech 1-3 s; a 0.75 s "pause" whose last 0.25 s is a soft syllable; speech 3.75-6 s
    probs = [0.0] * per_s + [0.9] * (2 * per_s) + [0.1] * (per_s // 2) + [0.3] * (per_s // 4)
    onset = len(probs)  # where the VAD fires again
    soft = onset - per_s // 4
    probs += [0.9] * (onset + 2 * per_s - len(probs) + per_s // 4)
    probs += [0.0] * (10 * per_s - len(probs))

    heard, _ = await run(audio, probs, min_silence=0.7)

    assert len(heard) == 2
    first, second = heard
    assert int(second[0]) <= soft * WINDOW, (
        f"the next utterance starts at {second[0] / SAMPLE_RATE:.2f} s, after the soft onset at "
        f"{soft * WINDOW / SAMPLE_RATE:.2f} s"
    )
    assert int(first[-1]) < int(second[0])  # and the two do not overlap


#: what a speaker says with no pause: (start in seconds, sentence)
SCRIPT = [(0.0, "One two three."), (4.5, "Four five six."), (9.0, "Seven eight nine, um, and ten."),
          (17.0, "Eleven twelve."), (22.0, "Thirteen.")]


def whisper_like(script: list[tuple[float, str]]) -> Callable[[np.ndarray, str | None, str | None], Awaitable[Transcript]]:
    """A recogniser that knows which sentence starts where (the audio's samples are their own
    positions) and answers with one segment per sentence heard in the audio it gets."""

    async def transcribe(x: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        start, end = x[0] / SAMPLE_RATE, (x[-1] + 1) / SAMPLE_RATE
        ends = [t for t, _ in script[1:]] + [float("inf")]
        inside = [(t, text) for (t, text), stop in zip(script, ends, strict=True) if t < end and stop > start + 0.35]
        segments = tuple(
            Segment(max(0.0, t - start), (inside[i + 1][0] if i + 1 < len(inside) else end) - start, text)
            for i, (t, text) in enumerate(inside)
        )
        return Transcript(" ".join(s.text for s in segments), "en", 1.0, segments=segments)

    return transcribe


async def run_with(transcribe: Callable[[np.ndarray, str | None, str | None], Awaitable[Transcript]],
                   audio: np.ndarray, probs: list[float], **options: float) -> list[CaptionEvent]:
    finals: list[CaptionEvent] = []

    async def on_caption(event: CaptionEvent) -> None:
        if event.final:
            finals.append(event)

    scheduler = AsrScheduler(transcribe)
    # (the audio's samples are their own positions, not sound: nothing to level, no voice to change)
    options = {"level_speech": False, "speaker_cuts": False, **options}
    stream = SpeakerStream(scheduler, scripted(probs), on_caption, language="en", partial_interval=1000, **options)
    for i in range(0, len(audio), 1600):
        await stream.feed(audio[i : i + 1600])
        await asyncio.sleep(0)  # as the real VAD (in an executor) lets the finals run meanwhile
    await stream.close()
    await scheduler.close()
    return finals


async def test_run_on_speech_is_cut_where_a_sentence_starts_not_at_a_hesitation_inside_one() -> None:
    per_s = SAMPLE_RATE / WINDOW
    windows = int(25 * per_s)
    audio = np.arange(windows * WINDOW, dtype=np.float32)
    probs = [0.9] * windows
    probs[int(8.95 * per_s)] = 0.6  # the softest moment just before "Seven"
    for i in range(int(13.0 * per_s) - 2, int(13.0 * per_s) + 3):
        probs[i] = 0.1  # "um": the longest lull, in the middle of a sentence

    finals = await run_with(whisper_like(SCRIPT), audio, probs, max_utterance=15.0)

    assert [f.text for f in finals] == [
        "One two three. Four five six.", "Seven eight nine, um, and ten. Eleven twelve.", "Thirteen."
    ]
    assert abs(finals[0].end - 8.95) < 0.05, f"cut at {finals[0].end} s, not just before 'Seven' (9.0 s)"
    assert finals[0].end == finals[1].start and finals[1].end == finals[2].start


async def test_without_a_sentence_boundary_run_on_speech_is_still_cut_at_a_lull() -> None:
    windows = 25 * SAMPLE_RATE // WINDOW
    audio = np.arange(windows * WINDOW, dtype=np.float32)
    probs = [0.9] * windows
    dip = int(12.5 * SAMPLE_RATE / WINDOW)
    for i in range(dip - 2, dip + 3):
        probs[i] = 0.1
    one_sentence = [(0.0, "A sentence that never ends")]

    finals = await run_with(whisper_like(one_sentence), audio, probs, max_utterance=15.0)

    assert len(finals) == 2
    assert abs(finals[0].end - 12.5) < 0.1, f"cut at {finals[0].end} s, not in the lull at 12.5 s"
    assert finals[0].end == finals[1].start


def held_until(release: asyncio.Event, recogniser: Callable[[np.ndarray, str | None, str | None], Awaitable[Transcript]]
               ) -> Callable[[np.ndarray, str | None, str | None], Awaitable[Transcript]]:
    """The same recogniser on a machine so slow that nothing comes back before ``release``."""

    async def transcribe(x: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        await release.wait()
        return await recogniser(x, language, prompt)

    return transcribe


async def run_slowly(transcribe: Callable[[np.ndarray, str | None, str | None], Awaitable[Transcript]],
                     audio: np.ndarray, probs: list[float], **options: float) -> list[CaptionEvent]:
    """As :func:`run_with`, but no decode comes back until the speaker has stopped and paused."""
    release = asyncio.Event()
    finals: list[CaptionEvent] = []

    async def on_caption(event: CaptionEvent) -> None:
        if event.final:
            finals.append(event)

    scheduler = AsrScheduler(held_until(release, transcribe))
    stream = SpeakerStream(scheduler, scripted(probs), on_caption, language="en", partial_interval=1000,
                           level_speech=False, speaker_cuts=False, **options)
    for i in range(0, len(audio), 1600):
        await stream.feed(audio[i : i + 1600])
        await asyncio.sleep(0)
    release.set()
    await stream.close()
    await scheduler.close()
    return finals


async def test_run_on_speech_gets_the_same_captions_however_slow_the_machine() -> None:
    """A pause that arrives while a cut's decode is still running does not drop the cut (it did:
    English loops scored +1.0 or +10.2 WER points over offline by machine speed), and a closed
    utterance longer than max_utterance is cut at its sentences as it would have been live."""
    per_s = SAMPLE_RATE / WINDOW
    windows = int(28 * per_s)
    audio = np.arange(windows * WINDOW, dtype=np.float32)
    probs = [0.9] * int(25 * per_s)
    probs += [0.0] * (windows - len(probs))  # then the speaker pauses
    probs[int(8.95 * per_s)] = 0.6

    fast = await run_with(whisper_like(SCRIPT), audio, probs, max_utterance=15.0)
    slow = await run_slowly(whisper_like(SCRIPT), audio, probs, max_utterance=15.0)

    assert [f.text for f in fast] == [
        "One two three. Four five six.", "Seven eight nine, um, and ten. Eleven twelve.", "Thirteen."
    ]
    assert [(f.text, f.start, f.end) for f in slow] == [(f.text, f.start, f.end) for f in fast]
    assert len({f.utterance for f in slow}) == 3  # three captions, not one rewritten



async def test_whisper_hears_a_quiet_speaker_raised_next_to_a_loud_one() -> None:
    rng = np.random.default_rng(3)
    quiet = rng.standard_normal(3 * SAMPLE_RATE) * 0.001  # -60 dBFS, as en_fleurs_3..5 next to en_fleurs_6
    loud = rng.standard_normal(3 * SAMPLE_RATE) * 0.1  # -20 dBFS
    audio = np.concatenate([quiet, loud, np.zeros(2 * SAMPLE_RATE)]).astype(np.float32)
    windows = len(audio) // WINDOW
    probs = [0.9] * (6 * SAMPLE_RATE // WINDOW)
    probs += [0.0] * (windows - len(probs))
    heard: list[np.ndarray] = []

    async def transcribe(x: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        heard.append(x.copy())
        return Transcript("words", "en", 1.0)

    await run_with(transcribe, audio, probs, level_speech=True)

    assert len(heard) == 1
    level = 20 * np.log10(np.sqrt(np.mean(heard[0][SAMPLE_RATE : 2 * SAMPLE_RATE] ** 2)))
    assert level > -30, f"the quiet speaker reached Whisper at {level:.0f} dBFS"


async def stream_events(audio: np.ndarray, probs: list[float], early_final: float | None,
                        held: bool = False) -> tuple[list[np.ndarray], list[CaptionEvent]]:
    """Stream ``audio`` (no draft partials: the interval is longer than the audio); returns the
    audio of every decode and every caption event. ``held``: no decode comes back until the
    speaker has stopped and paused, as on a very slow machine."""
    heard: list[np.ndarray] = []
    events: list[CaptionEvent] = []
    release = asyncio.Event()
    if not held:
        release.set()

    async def transcribe(x: np.ndarray, language: SpokenLanguage, prompt: str | None) -> Transcript:
        heard.append(x.copy())
        await release.wait()
        return Transcript(f"words {int(x[0])}-{int(x[-1])}", "en", 1.0)

    async def on_caption(event: CaptionEvent) -> None:
        events.append(event)

    scheduler = AsrScheduler(transcribe)
    stream = SpeakerStream(scheduler, scripted(probs), on_caption, language="en", partial_interval=1000,
                           level_speech=False, speaker_cuts=False, early_final=early_final)
    for i in range(0, len(audio), 1600):
        await stream.feed(audio[i : i + 1600])
        await asyncio.sleep(0)
    release.set()
    await stream.close()
    await scheduler.close()
    return heard, events


def speech_then_pauses(*spans: tuple[float, float]) -> tuple[np.ndarray, list[float]]:
    """Numbered samples, and VAD probabilities with speech in the (start, end) second spans."""
    per_s = SAMPLE_RATE / WINDOW
    windows = int(9 * per_s)
    probs = [0.0] * windows
    for start, end in spans:
        for i in range(int(start * per_s), int(end * per_s)):
            probs[i] = 0.9
    return np.arange(windows * WINDOW, dtype=np.float32), probs


async def test_the_final_reuses_the_decode_started_early_in_the_pause() -> None:
    audio, probs = speech_then_pauses((1.0, 3.0))

    late_heard, late = await stream_events(audio, probs, early_final=None)
    heard, events = await stream_events(audio, probs, early_final=0.4)

    finals = [e for e in events if e.final]
    assert len(heard) == 1, f"{len(heard)} decodes for one utterance: the early one was not reused"
    assert np.array_equal(heard[0], late_heard[0])  # exactly the audio the final had without it
    assert [(f.text, f.start, f.end) for f in finals] == [(f.text, f.start, f.end) for f in late if f.final]
    # listeners read the final's words before the pause is over: as a partial, then settled
    partials = [e for e in events if not e.final]
    assert [p.text for p in partials] == [finals[0].text]
    assert partials[0].seq < finals[0].seq and partials[0].utterance == finals[0].utterance


async def test_speech_resuming_in_the_pause_makes_the_early_decode_a_partial_not_a_final() -> None:
    audio, probs = speech_then_pauses((1.0, 3.0), (3.6, 5.5))  # a 0.6 s pause: past 0.4, not 1.0 s

    for held in (False, True):
        late_heard, late = await stream_events(audio, probs, held=held, early_final=None)
        heard, events = await stream_events(audio, probs, held=held, early_final=0.4)

        finals = [e for e in events if e.final]
        assert [(f.text, f.start, f.end) for f in finals] == [(f.text, f.start, f.end) for f in late if f.final]
        assert len(finals) == 1, "the resumed utterance got a final of its own for its first half"
        assert int(heard[-1][-1]) > 5.5 * SAMPLE_RATE  # the final heard all of it
        assert np.array_equal(heard[-1], late_heard[-1])
        assert len(heard) == 2  # the first pause's early decode, and the final's (reused)
        assert all(e.utterance == finals[0].utterance for e in events)
        if not held:  # (held: the first pause's result only came back after the final)
            first_half = f"words 0-{len(heard[0]) - 1}"
            assert [e.text for e in events if not e.final] == [first_half, finals[0].text]


def two_voices_back_to_back() -> tuple[np.ndarray, float]:
    """Two real readers (FLEURS en_fleurs_1, en_fleurs_2) with no pause between them, then a pause;
    and the join in seconds."""
    first, second = (trim_silence(c.audio) for c in load_manifest(names=["en_fleurs_1.wav", "en_fleurs_2.wav"]))
    pause = np.zeros(2 * SAMPLE_RATE, np.float32)
    return np.concatenate([first, second, pause]), len(first) / SAMPLE_RATE


@pytest.mark.parametrize("max_utterance", [12.0, 20.0])
async def test_a_new_voice_with_no_pause_before_it_ends_the_final_at_the_join(max_utterance: float) -> None:
    """12 s: the run-on piece is cut where the voice changes, not where Whisper says a sentence
    starts (4.5 s in, here); 20 s: the piece the pause closes is split there too. Each voice is
    decoded alone, as offline decodes each recording alone."""
    audio, join = two_voices_back_to_back()
    probs = StreamingVad().process(audio)

    async def transcribe(x: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        seconds = len(x) / SAMPLE_RATE
        segments = (Segment(0.0, 4.5, "A sentence."), Segment(4.5, seconds, "Another one."))
        return Transcript("A sentence. Another one.", "en", 1.0, segments=segments)

    with_cuts = await run_with(transcribe, audio, probs, max_utterance=max_utterance, speaker_cuts=True)
    without = await run_with(transcribe, audio, probs, max_utterance=max_utterance)

    assert abs(without[0].end - join) > 1.0  # (the ordinary cut, or none, is elsewhere)
    assert len(with_cuts) == 2, [(f.start, f.end) for f in with_cuts]
    assert abs(with_cuts[0].end - join) <= 0.3, f"the first final ends at {with_cuts[0].end} s, the voice changes at {join:.2f} s"
    assert with_cuts[0].end == with_cuts[1].start  # nothing lost or heard twice
    assert with_cuts[1].end >= len(audio) / SAMPLE_RATE - 2.0
