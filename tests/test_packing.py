"""Finals packed into one Whisper window: one encoder pass, each speaker their own words and times."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from captioning.asr import AsrSpec, FasterWhisperBackend, Segment, Transcript
from captioning.audio import SAMPLE_RATE, read_wav
from captioning.language import LanguageHint
from captioning.metrics import wer
from captioning.models import ModelDirs, resolve_asr_model
from captioning.packing import GAP_SECONDS, pack, split, transcribe_packed
from captioning.scheduler import AsrScheduler
from whisperkit import count_encoder_passes

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"


# -- the split, on Whisper's segments --------------------------------------------------------------


def test_each_utterance_gets_the_segments_in_its_span_in_its_own_time() -> None:
    packed = pack([np.zeros(3 * SAMPLE_RATE, np.float32), np.zeros(2 * SAMPLE_RATE, np.float32)])
    assert packed.spans == ((0.0, 3.0), (3.0 + GAP_SECONDS, 5.0 + GAP_SECONDS))
    whole = Transcript("one two three", "en", 1.0, segments=(
        Segment(0.1, 1.5, "one"), Segment(1.5, 2.9, "two"), Segment(4.2, 5.8, "three")))
    first, second = split(whole, packed)
    assert first is not None and second is not None
    assert first.text == "one two" and second.text == "three"
    assert second.segments == (Segment(0.2, 1.8, "three"),)  # shifted back to its own audio


def utterance(quiet: float, loud: float) -> np.ndarray:
    """``quiet`` s of near-silence (the pre-roll), then ``loud`` s of sound."""
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(0, 0.001, int(quiet * SAMPLE_RATE)),
                           rng.normal(0, 0.2, int(loud * SAMPLE_RATE))]).astype(np.float32)


def test_a_segment_that_took_the_next_speakers_first_words_sends_both_back_to_be_decoded_alone() -> None:
    packed = pack([utterance(1, 2)] * 3)  # spans 0-3, 4-7, 8-11 s; speech from 1, 5 and 9 s
    assert [round(o, 2) for o in packed.onsets] == [1.0, 5.0, 9.0]
    whole = Transcript("a b c", "en", 1.0, segments=(
        Segment(1.0, 3.0, "a"), Segment(5.0, 7.0, "b and"), Segment(7.0, 10.2, "the start of c"),
        Segment(10.2, 11.0, "c")))
    assert [t is None for t in split(whole, packed)] == [False, True, True]


def test_a_segment_whose_end_runs_on_through_the_silence_is_not_a_merge() -> None:
    packed = pack([utterance(1, 2)] * 2)  # spans 0-3 and 4-7 s; the second speaks from 5 s
    whole = Transcript("a b", "en", 1.0, segments=(Segment(1.0, 5.2, "a"), Segment(5.2, 7.0, "b")))
    first, second = split(whole, packed)
    assert first is not None and second is not None and (first.text, second.text) == ("a", "b")
    assert first.segments == (Segment(1.0, 3.0, "a"),)  # (its end kept within its own audio)


def test_an_utterance_whisper_gave_no_words_is_decoded_alone() -> None:
    packed = pack([np.zeros(3 * SAMPLE_RATE, np.float32)] * 2)
    whole = Transcript("a", "en", 1.0, segments=(Segment(0.0, 2.5, "a"),))
    first, second = split(whole, packed)
    assert first is not None and first.text == "a" and second is None


# -- which finals the scheduler packs --------------------------------------------------------------


class Recorder:
    """Fake ASR calls: which audio each decode got (by length in seconds), and with what."""

    def __init__(self) -> None:
        self.alone: list[tuple[float, Any]] = []
        self.packed: list[list[float]] = []

    async def transcribe(self, audio: np.ndarray, language: Any, prompt: str | None) -> Transcript:
        self.alone.append((len(audio) / SAMPLE_RATE, language))
        return Transcript(f"alone {len(audio) / SAMPLE_RATE:g}", str(language), 1.0)

    async def pack(self, audios: list[np.ndarray], language: str) -> list[Transcript]:
        self.packed.append([len(a) / SAMPLE_RATE for a in audios])
        return [Transcript(f"packed {len(a) / SAMPLE_RATE:g}", language, 1.0) for a in audios]


def seconds(s: float) -> np.ndarray:
    return np.zeros(int(s * SAMPLE_RATE), np.float32)


async def run_together(scheduler: AsrScheduler, *calls: Callable[[], Awaitable[Transcript | None]]) -> list[str]:
    """Submit every call before the worker takes the first (as finals queue behind a busy worker)."""
    futures = [asyncio.ensure_future(c()) for c in calls]
    results = await asyncio.gather(*futures)
    await scheduler.close()
    return [r.text if r is not None else "" for r in results]


async def test_finals_waiting_in_one_language_are_decoded_in_one_call_each_getting_its_own() -> None:
    asr = Recorder()
    scheduler = AsrScheduler(asr.transcribe, pack=asr.pack)
    texts = await run_together(scheduler, lambda: scheduler.final(seconds(5), "en", None),
                               lambda: scheduler.final(seconds(4), "en", None),
                               lambda: scheduler.final(seconds(6), "en", None))
    assert asr.packed == [[5, 4, 6]] and asr.alone == []
    assert texts == ["packed 5", "packed 4", "packed 6"]
    assert scheduler.finals_packed == 3 and scheduler.packed_calls == 1 and scheduler.calls["final"] == 1


async def test_different_languages_prompts_and_detection_are_never_packed() -> None:
    asr = Recorder()
    scheduler = AsrScheduler(asr.transcribe, pack=asr.pack)
    hint = LanguageHint("en", ("en", "es"))
    texts = await run_together(scheduler, lambda: scheduler.final(seconds(5), "en", None),
                               lambda: scheduler.final(seconds(4), "es", None),
                               lambda: scheduler.final(seconds(3), "en", "the previous sentence"),
                               lambda: scheduler.final(seconds(2), hint, None),
                               lambda: scheduler.final(seconds(6), "es", None))
    assert asr.packed == [[4, 6]]  # the two Spanish finals; each of the others alone
    assert sorted(s for s, _lang in asr.alone) == [2, 3, 5]
    assert texts == ["alone 5", "packed 4", "alone 3", "alone 2", "packed 6"]


async def test_a_window_holds_what_fits_and_a_lone_final_is_not_packed() -> None:
    asr = Recorder()
    scheduler = AsrScheduler(asr.transcribe, pack=asr.pack)
    await run_together(scheduler, lambda: scheduler.final(seconds(10), "en", None),
                       lambda: scheduler.final(seconds(15), "en", None),
                       lambda: scheduler.final(seconds(12), "en", None))
    assert asr.packed == [[10, 12]]  # 10 + 1 + 15 s does not fit 24 s; the 12 s final does
    assert asr.alone == [(15, "en")]


async def test_without_pack_every_final_is_its_own_call() -> None:
    asr = Recorder()
    scheduler = AsrScheduler(asr.transcribe)
    await run_together(scheduler, lambda: scheduler.final(seconds(5), "en", None),
                       lambda: scheduler.final(seconds(4), "en", None))
    assert asr.packed == [] and [s for s, _ in asr.alone] == [5, 4]


# -- the real model -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> FasterWhisperBackend:
    path = resolve_asr_model("base", ModelDirs(tmp_path_factory.mktemp("models")))
    assert path is not None, "the bundled multilingual base model is a test dependency"
    return FasterWhisperBackend(AsrSpec("faster-whisper", str(path), device="cpu", threads=2))


@pytest.fixture
def encoder_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return count_encoder_passes(monkeypatch)


async def test_two_speakers_finals_take_one_encoder_pass_and_keep_their_own_words_and_times(
    backend: FasterWhisperBackend, encoder_calls: list[int]
) -> None:
    jfk = read_wav(str(SPEECH / "jfk.wav"))
    wizard = read_wav(str(SPEECH / "two_speakers_left.wav"))
    alone = [backend.transcribe(a, "en", None) for a in (jfk, wizard)]
    assert len(encoder_calls) == 2
    encoder_calls.clear()

    def transcribe(audio: np.ndarray, language: Any, prompt: str | None) -> Awaitable[Transcript]:
        return asyncio.to_thread(backend.transcribe, audio, language, prompt)

    def packed(audios: list[np.ndarray], language: str) -> Awaitable[list[Transcript]]:
        return asyncio.to_thread(transcribe_packed, backend, audios, language)

    scheduler = AsrScheduler(transcribe, pack=packed)
    first, second = await asyncio.gather(scheduler.final(jfk, "en", None), scheduler.final(wizard, "en", None))
    await scheduler.close()
    assert len(encoder_calls) == 1 and scheduler.packed_calls == 1  # one window for both speakers
    assert first is not None and second is not None
    assert wer(alone[0].text, first.text) == 0.0 and "country" in first.text and "wizard" not in first.text
    assert wer(alone[1].text, second.text) == 0.0 and "wizard" in second.text and "country" not in second.text
    # each one's times are in its own audio: the wizard's words start near 0, not 12 s in
    assert second.segments[0].start < 1.0 and second.segments[-1].end <= len(wizard) / SAMPLE_RATE
    assert first.segments[-1].end <= len(jfk) / SAMPLE_RATE


async def test_a_lone_final_decodes_as_without_packing(backend: FasterWhisperBackend,
                                                       encoder_calls: list[int]) -> None:
    wizard = read_wav(str(SPEECH / "two_speakers_left.wav"))
    alone = backend.transcribe(wizard, "en", None)

    def transcribe(audio: np.ndarray, language: Any, prompt: str | None) -> Awaitable[Transcript]:
        return asyncio.to_thread(backend.transcribe, audio, language, prompt)

    def packed(audios: list[np.ndarray], language: str) -> Awaitable[list[Transcript]]:
        return asyncio.to_thread(transcribe_packed, backend, audios, language)

    scheduler = AsrScheduler(transcribe, pack=packed)
    result = await scheduler.final(wizard, "en", None)
    await scheduler.close()
    assert result == alone and scheduler.packed_calls == 0
    assert encoder_calls == [3000, 3000]


def test_two_speakers_saying_the_same_sentence_is_not_taken_for_a_decoding_loop(
    backend: FasterWhisperBackend, encoder_calls: list[int]
) -> None:
    # (the whole window's text compresses like a loop; each speaker's part does not)
    jfk = read_wav(str(SPEECH / "jfk.wav"))
    alone = backend.transcribe(jfk, "en", None).text
    encoder_calls.clear()
    first, second = transcribe_packed(backend, [jfk, jfk], "en")
    assert len(encoder_calls) == 1  # one greedy pass: no beam search over the pack, no second decode
    assert wer(alone, first.text) == 0.0 and wer(alone, second.text) == 0.0
