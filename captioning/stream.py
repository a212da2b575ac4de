"""Streaming captions for one speaker: VAD-cut utterances, partials that settle into finals.

Audio is cut into utterances by the streaming VAD. While an utterance grows, it is
re-transcribed every ``partial_interval`` seconds and the LocalAgreement-2 policy turns the
hypotheses into a stable prefix plus a tentative tail (the partial caption). At a pause the whole
utterance is transcribed once more and becomes the final caption. Speech that never pauses is cut
soon after ``max_utterance``, where Whisper's own segments say a sentence starts: the utterance is
decoded (in order with the finals), the segments before that boundary are its final caption, and
the audio from there on carries over into the next utterance. Without such a boundary — or if the
decode has not come back ``split_grace`` seconds later — the cut goes at the quietest moment of
the last few seconds instead, never mid-word. Cutting at VAD lulls alone split sentences at
hesitations, and Whisper then lost the words on both sides (no-gap loops: English +9.2 WER
points over offline with lull cuts, +0.7 with sentence cuts).

What keeps the finals as accurate as Whisper offline (docs/BENCHMARKS.md, "Caption accuracy"):
the pre-roll (a second of audio before the VAD fires: soft onsets score under the speech
threshold; the trimmed end of the pause that closed an utterance is part of it), a 1 s pause to
end an utterance (0.7 s split phrases, and each half decodes worse alone), the lull-seeking cut
above, and no previous-final prompt by default (measured: it made Spanish and Portuguese finals
worse and let one bad final, e.g. "...", repeat into the next).

Transcription goes through :class:`~captioning.scheduler.AsrScheduler`, shared by all speakers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from .asr import Segment
from .audio import SAMPLE_RATE
from .language import LanguageHint, SpokenLanguage, fixed_language
from .policy import LocalAgreement
from .scheduler import AsrScheduler
from .vad import WINDOW

logger = logging.getLogger(__name__)

VadFn = Callable[[np.ndarray], Awaitable[list[float]]]

SPEECH_ON = 0.5
SPEECH_OFF = 0.35
SENTENCE_ENDS = (".", "?", "!", "。", "？", "！", "…", "؟", "।")


@dataclass(frozen=True)
class CaptionEvent:
    utterance: str
    seq: int  # increases with every update of the utterance
    text: str
    stable: int  # number of leading characters that will not change any more
    final: bool
    start: float  # media seconds
    end: float
    language: str
    audio: np.ndarray | None = field(default=None, repr=False, compare=False)  # a final's speech


class _Utterance:
    def __init__(self, start_sample: int, audio: list[np.ndarray], probs: list[float] | None = None) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.start_sample = start_sample
        self.chunks = audio
        self.probs = probs if probs is not None else [0.0] * len(audio)  # VAD probability per chunk
        self.samples = sum(len(a) for a in audio)
        self.speech_windows = 0
        self.partial_at = 0
        self.seq = 0
        self.language: str | None = None
        self.agreement = LocalAgreement()
        self.closed = False
        self.split_requested = False
        self.shown = ""  # the last partial text listeners saw

    def append(self, window: np.ndarray, prob: float) -> None:
        self.chunks.append(window)
        self.probs.append(prob)
        self.samples += len(window)

    def quietest_cut(self, lookback: int) -> int:
        """Index of the chunk to cut before: the middle of the longest run of non-speech chunks
        in the last ``lookback`` chunks, else the least speech-like chunk there."""
        first = max(1, len(self.probs) - lookback)
        best_len, best_at, run = 0, -1, 0
        for i in range(first, len(self.probs)):
            run = run + 1 if self.probs[i] < SPEECH_OFF else 0
            if run > best_len:
                best_len, best_at = run, i - run // 2
        if best_at >= 0:
            return best_at
        return min(range(first, len(self.probs)), key=lambda i: self.probs[i])

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)

    def chunk_at(self, sample: int) -> int:
        """Index of the first chunk that starts at or after ``sample`` (from the utterance's start)."""
        at = 0
        for i, chunk in enumerate(self.chunks):
            if at >= sample:
                return i
            at += len(chunk)
        return len(self.chunks)

    def detach_tail(self, cut: int) -> _Utterance:
        """Keep ``chunks[:cut]``; the rest, returned, starts the next utterance (nothing lost or
        heard twice)."""
        rest, rest_probs = self.chunks[cut:], self.probs[cut:]
        self.chunks, self.probs = self.chunks[:cut], self.probs[:cut]
        self.samples = sum(len(c) for c in self.chunks)
        nxt = _Utterance(self.start_sample + self.samples, rest, rest_probs)
        nxt.speech_windows = sum(p >= SPEECH_OFF for p in rest_probs)
        return nxt

    def trim(self, samples: int) -> np.ndarray:
        """Drop the last ``samples`` (to the sample: where a cut falls changes what Whisper hears,
        and a 32 ms shift alone moved French turns by 4 WER points); returns them."""
        keep = max(0, self.samples - samples)
        at = 0
        for i, chunk in enumerate(self.chunks):
            if at + len(chunk) > keep:
                tail = np.concatenate([chunk[keep - at :], *self.chunks[i + 1 :]])
                self.chunks = [*self.chunks[:i], chunk[: keep - at]] if keep > at else self.chunks[:i]
                self.probs = self.probs[: len(self.chunks)]
                self.samples = keep
                return tail
            at += len(chunk)
        return np.zeros(0, np.float32)

    def trailing_quiet(self) -> int:
        quiet = 0
        for p in reversed(self.probs):
            if p >= SPEECH_OFF:
                break
            quiet += 1
        return quiet * WINDOW


@dataclass(frozen=True)
class _SplitRequest:
    """Queued with the finals: decode a run-on utterance and end it at a Whisper segment boundary."""

    utterance: _Utterance
    samples: int  # the audio decoded: as long as it was when asked, however late the decode runs


class SpeakerStream:
    """Turns one speaker's 16 kHz audio into partial and final :class:`CaptionEvent`s."""

    def __init__(
        self,
        scheduler: AsrScheduler,
        vad: VadFn,
        on_caption: Callable[[CaptionEvent], Awaitable[None]],
        language: SpokenLanguage = None,
        partial_interval: float = 0.8,
        min_silence: float = 1.0,
        max_utterance: float = 15.0,
        min_speech: float = 0.25,
        pre_roll: float = 1.0,
        time_offset: float = 0.0,
        prompt_previous: bool = False,
        cut_lookback: float = 7.0,
        segment_cuts: bool = True,
        split_grace: float = 6.0,
        min_head: float = 4.0,
    ) -> None:
        self._scheduler = scheduler
        self._vad = vad
        self._on_caption = on_caption
        self.language = language
        self._partial_samples = int(partial_interval * SAMPLE_RATE)
        self._silence_limit = int(min_silence * SAMPLE_RATE)
        self._max_samples = int(max_utterance * SAMPLE_RATE)
        self._cut_lookback = max(1, int(cut_lookback * SAMPLE_RATE / WINDOW))
        self._prompt_previous = prompt_previous
        self._segment_cuts = segment_cuts
        self._split_grace = int(split_grace * SAMPLE_RATE)
        self._min_head = min_head
        self._min_speech_windows = max(1, int(min_speech * SAMPLE_RATE / WINDOW))
        self._pre_roll: deque[np.ndarray] = deque(maxlen=max(1, int(pre_roll * SAMPLE_RATE / WINDOW)))
        self._time_offset = time_offset
        self._pending = np.zeros(0, np.float32)
        self._position = 0  # samples classified so far
        self._utterance: _Utterance | None = None
        self._silence = 0
        self._partial_task: asyncio.Task[None] | None = None
        self._finals: asyncio.Queue[_Utterance | _SplitRequest | None] = asyncio.Queue()
        self._final_task: asyncio.Task[None] | None = None
        self._context = ""  # last final text: the prompt for the next utterance (if prompt_previous)

    @property
    def cutting(self) -> bool:
        """A run-on utterance is waiting for its segment cut (the finals loop decodes it)."""
        utt = self._utterance
        return utt is not None and utt.split_requested and not utt.closed

    def _seconds(self, sample: int) -> float:
        return round(self._time_offset + sample / SAMPLE_RATE, 3)

    async def feed(self, pcm: np.ndarray) -> None:
        """Add audio; runs VAD (in an executor) and schedules transcriptions."""
        if self._final_task is None:
            self._final_task = asyncio.create_task(self._final_loop(), name="captions-finals")
        self._pending = np.concatenate([self._pending, pcm.astype(np.float32, copy=False)])
        n = len(self._pending) // WINDOW
        if n == 0:
            return
        block = self._pending[: n * WINDOW]
        self._pending = self._pending[n * WINDOW :]
        probs = await self._vad(block)
        for i, prob in enumerate(probs):
            self._window(block[i * WINDOW : (i + 1) * WINDOW], prob)

    def _window(self, window: np.ndarray, prob: float) -> None:
        start = self._position
        self._position += len(window)
        utt = self._utterance
        if utt is None:
            if prob >= SPEECH_ON:
                pre = list(self._pre_roll)
                self._pre_roll.clear()
                utt = _Utterance(start - sum(len(p) for p in pre), [*pre, window], [0.0] * len(pre) + [prob])
                utt.speech_windows = 1
                self._utterance = utt
                self._silence = 0
            else:
                self._pre_roll.append(window)
            return
        utt.append(window, prob)
        if prob < SPEECH_OFF:
            self._silence += len(window)
        else:
            self._silence = 0
            utt.speech_windows += 1
        if self._silence >= self._silence_limit:
            self._end_utterance(trim=self._silence - int(0.2 * SAMPLE_RATE))
        elif utt.samples >= self._max_samples and self._long_utterance(utt):
            return
        elif utt.samples - utt.partial_at >= self._partial_samples and self._partial_task is None:
            utt.partial_at = utt.samples
            self._partial_task = asyncio.create_task(self._partial(utt), name="captions-partial")

    def _long_utterance(self, utt: _Utterance) -> bool:
        """Speech past ``max_utterance``: ask for a cut at a Whisper segment boundary (done by the
        finals loop, in order); if that has not happened ``split_grace`` later, or segment cuts are
        off, cut at the quietest recent moment now. True when the utterance was cut here."""
        if self._segment_cuts and not utt.split_requested:
            utt.split_requested = True
            self._finals.put_nowait(_SplitRequest(utt, utt.samples))
            return False
        if self._segment_cuts and utt.samples < self._max_samples + self._split_grace:
            return False
        self._cut_long_utterance(utt)
        return True

    def _cut_long_utterance(self, utt: _Utterance) -> None:
        """Speech with no pause: end the utterance at its quietest recent moment; the rest starts
        the next one (a hard cut at the limit splits a word, and both halves come out wrong)."""
        nxt = utt.detach_tail(utt.quietest_cut(self._cut_lookback))
        self._end_utterance(trim=0)
        self._utterance = nxt
        self._silence = nxt.trailing_quiet()

    def _segment_cut(self, utt: _Utterance, segments: tuple[Segment, ...], decoded: int) -> tuple[int, int] | None:
        """Where to end a run-on utterance: (chunk index, number of segments kept), before
        Whisper's last segment that begins a sentence — else its last segment — at least
        ``min_head`` seconds in. The exact chunk is the least speech-like from 0.3 s before that
        boundary to 0.1 s after it (Whisper's timestamps are approximate)."""
        last = decoded / SAMPLE_RATE - 0.3
        candidates = [i for i in range(1, len(segments)) if self._min_head <= segments[i].start <= last]
        if not candidates:
            return None
        sentences = [i for i in candidates if segments[i - 1].text.rstrip().endswith(SENTENCE_ENDS)]
        keep = (sentences or candidates)[-1]
        # the earlier of where the kept text ends and the next segment starts: when Whisper left
        # words out in between (seen: "A parte central ... deity yoga" between two segments), they
        # go to the next utterance instead of nowhere
        start = min(segments[keep - 1].end, segments[keep].start)
        first = max(1, utt.chunk_at(int((start - 0.3) * SAMPLE_RATE)))
        stop = max(first + 1, utt.chunk_at(int((start + 0.1) * SAMPLE_RATE)))
        cut = min(range(first, min(stop, len(utt.probs))), key=lambda i: utt.probs[i], default=first)
        return cut, keep

    async def _split(self, utt: _Utterance, samples: int) -> None:
        """Decode a run-on utterance and end it where Whisper's segments say a sentence ends: the
        kept segments' text (decoded with the words after it as context) is its final caption,
        and the audio from the cut on starts the next utterance."""
        if utt.closed:
            return
        # (the first ``samples`` only: what is decoded, and so where the cut falls, must not
        # depend on how long the finals before it took — the same speech, the same captions)
        audio = utt.audio()[:samples]
        result = await self._scheduler.final(audio, utt.language or self.language, self._prompt())
        if utt.closed or utt is not self._utterance:
            return  # a pause ended it meanwhile: its own final is queued
        found = self._segment_cut(utt, result.segments, len(audio)) if result is not None else None
        if result is None or found is None:
            self._cut_long_utterance(utt)
            return
        cut, keep = found
        nxt = utt.detach_tail(cut)
        self._utterance = nxt  # before any await: audio arriving meanwhile belongs to the next one
        self._silence = nxt.trailing_quiet()
        utt.closed = True
        if self._partial_task is not None:
            self._partial_task.cancel()
            self._partial_task = None
        # (nothing decoded before the boundary: settle what listeners already see, as any final does)
        text = " ".join(s.text for s in result.segments[:keep]).strip() or utt.shown
        if not text:
            return
        self._context = text[-200:]
        utt.seq += 1
        await self._on_caption(
            CaptionEvent(utt.id, utt.seq, text, len(text), True,
                         self._seconds(utt.start_sample), self._seconds(utt.start_sample + utt.samples),
                         utt.language or result.language or fixed_language(self.language) or "und",
                         utt.audio())
        )

    def _end_utterance(self, trim: int) -> None:
        utt = self._utterance
        assert utt is not None
        self._utterance = None
        self._silence = 0
        utt.closed = True
        if self._partial_task is not None:
            # its result would be thrown away: free the worker for the final instead
            self._partial_task.cancel()
            self._partial_task = None
        if trim > 0:
            tail = utt.trim(trim)
            # The pause's tail is the next utterance's pre-roll: a soft onset that the VAD scored
            # as silence would otherwise be in neither utterance.
            for i in range(0, len(tail) - WINDOW + 1, WINDOW):
                self._pre_roll.append(tail[i : i + WINDOW])
        if utt.speech_windows >= self._min_speech_windows or utt.shown:
            self._finals.put_nowait(utt)  # (a shown partial always gets settled by a final)

    async def _partial(self, utt: _Utterance) -> None:
        try:
            result = await self._scheduler.partial(utt.audio(), utt.language or self.language, self._prompt())
            if result is None or utt.closed or not result.text:
                return
            if not isinstance(self.language, LanguageHint):  # (detecting: the final decides, on it all)
                utt.language = utt.language or result.language
            committed, tentative = utt.agreement.update(result.text.split())
            stable_text = " ".join(committed)
            text = " ".join(committed + tentative)
            utt.seq += 1
            utt.shown = text
            await self._on_caption(
                CaptionEvent(utt.id, utt.seq, text, len(stable_text), False,
                             self._seconds(utt.start_sample), self._seconds(utt.start_sample + utt.samples),
                             utt.language or result.language)
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("partial caption failed")
        finally:
            if self._partial_task is asyncio.current_task():
                self._partial_task = None

    def _prompt(self) -> str | None:
        return self._context if self._prompt_previous and self._context else None

    async def _final_loop(self) -> None:
        while (utt := await self._finals.get()) is not None:
            if isinstance(utt, _SplitRequest):
                try:
                    await self._split(utt.utterance, utt.samples)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("cutting a long utterance failed")
                continue
            try:
                audio = utt.audio()
                result = await self._scheduler.final(audio, utt.language or self.language, self._prompt())
                text = result.text.strip() if result is not None else ""
                if not text:
                    # transcription failed, was dropped or heard nothing: settle what listeners
                    # already see rather than leaving a partial on screen forever
                    text = utt.shown
                if not text:
                    continue
                self._context = text[-200:]
                utt.seq += 1
                await self._on_caption(
                    CaptionEvent(utt.id, utt.seq, text, len(text), True,
                                 self._seconds(utt.start_sample), self._seconds(utt.start_sample + utt.samples),
                                 utt.language or (result.language if result else None)
                                 or fixed_language(self.language) or "und", audio)
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("final caption failed")

    async def close(self, flush: bool = True) -> None:
        """End of the stream: the utterance in progress becomes final (if ``flush``)."""
        if flush and self._utterance is not None:
            self._end_utterance(trim=0)
        if self._partial_task is not None:
            self._partial_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._partial_task
        if self._final_task is not None:
            self._finals.put_nowait(None)
            if flush:
                await self._final_task
            else:
                self._final_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._final_task
