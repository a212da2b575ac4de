"""Streaming captions for one speaker: VAD-cut utterances, partials that settle into finals.

Audio is cut into utterances by the streaming VAD. While an utterance grows, it is
re-transcribed every ``partial_interval`` seconds and the LocalAgreement-2 policy turns the
hypotheses into a stable prefix plus a tentative tail (the partial caption). At a pause the whole
utterance is transcribed once more and becomes the final caption. Speech that never pauses is
captioned in pieces: once the piece being shown reaches ``max_utterance``, exactly its first
``max_utterance`` seconds are decoded (in order with the finals), and it is cut before Whisper's
last segment that starts a sentence; the segments before that are the piece's final caption, and
the rest goes on as the next piece of the same utterance. Without such a boundary the cut goes at
the quietest moment of the last few seconds instead, never mid-word. Cutting at VAD lulls alone
split sentences at hesitations, and Whisper then lost the words on both sides (German no-gap
loop: +6.4 WER points over offline with lull cuts, −4.3 with sentence cuts). With
``speaker_cuts``, a piece is first cut where the voice changes (:mod:`~captioning.speaker_change`,
on the audio a cut decodes, and on a closed piece before its final), and the head is decoded alone,
as offline decodes each recording alone (no-gap loops, mean over three ``max_utterance``
settings: en +4.2 → +2.5, es +4.0 → +3.0, pt +6.5 → +2.0, fr +5.2 → +4.3 WER points over
offline; docs/BENCHMARKS.md, "Run-on speech cut where the voice changes").

The same audio always gives the same captions, however fast the machine: a cut never ends an
utterance (pauses are counted across cuts, as if there were none), what a cut decodes is fixed
when the piece reaches ``max_utterance``, and a cut still pending when a pause ends the utterance
is made all the same when its turn comes — as is any further cut of a closed utterance that is
longer than ``max_utterance``. (Before, a pause that came while the cut's decode was running
dropped the cut: English loops scored +1.0 or +10.2 WER points over offline by machine speed.)

What keeps the finals as accurate as Whisper offline (docs/BENCHMARKS.md, "Caption accuracy"):
the pre-roll (a second of audio before the VAD fires: soft onsets score under the speech
threshold; the trimmed end of the pause that closed an utterance is part of it), a 1 s pause to
end an utterance (0.7 s split phrases, and each half decodes worse alone), the cuts above, and no
previous-final prompt by default (measured: it made Spanish and Portuguese finals worse and let
one bad final, e.g. "...", repeat into the next), and a quiet speaker next to a loud one raised
before Whisper hears them (:func:`~captioning.audio.level_quiet_speech`).

The final does not wait for the whole pause to start decoding: ``early_final`` seconds into it,
the final's decode starts on exactly the audio the final will have if the pause lasts (the pause
is trimmed the same way, and the utterance is one that no cut will split), and the final reuses
that result — the same text by construction. Its result is shown as a partial meanwhile; if
speech resumes before the pause is over and it is not back yet, it is dropped (still queued, at
a final's priority, it would hold up other speakers' finals; a running decode cannot be
interrupted, and its result is discarded). (Measured: the pause added 0.84 s of a final's
2.75 s p50; docs/BENCHMARKS.md, "Live captions".)

Transcription goes through :class:`~captioning.scheduler.AsrScheduler`, shared by all speakers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from .asr import Segment, Transcript
from .audio import SAMPLE_RATE, level_quiet_speech
from .language import LanguageHint, SpokenLanguage, fixed_language
from .pieces import SPEECH_OFF, SPEECH_ON, EarlyFinal, Utterance
from .scheduler import AsrScheduler
from .speaker_change import change_cuts
from .vad import WINDOW

logger = logging.getLogger(__name__)

VadFn = Callable[[np.ndarray], Awaitable[list[float]]]

SENTENCE_ENDS = (".", "?", "!", "。", "？", "！", "…", "؟", "।")
PAUSE_KEPT = int(0.2 * SAMPLE_RATE)  # of the pause that ends an utterance: the rest is trimmed


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


@dataclass(frozen=True)
class _CutRequest:
    """Queued with the finals: caption the first ``max_utterance`` of a run-on utterance's current
    piece and cut it there (whether or not a pause has ended the utterance meanwhile)."""

    utterance: Utterance


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
        min_head: float = 4.0,
        level_speech: bool = True,
        early_final: float | None = 0.25,  # (not under PAUSE_KEPT: the final's audio must all be there)
        speaker_cuts: bool = True,
    ) -> None:
        self._scheduler = scheduler
        self._vad = vad
        self._on_caption = on_caption
        self.language = language
        self._partial_samples = int(partial_interval * SAMPLE_RATE)
        self._silence_limit = int(min_silence * SAMPLE_RATE)
        self._closing_silence = -(-self._silence_limit // WINDOW) * WINDOW  # (counted in whole windows)
        self._early_silence = int(early_final * SAMPLE_RATE) if early_final else None
        self._max_samples = int(max_utterance * SAMPLE_RATE)
        self._cut_lookback = max(1, int(cut_lookback * SAMPLE_RATE / WINDOW))
        self._prompt_previous = prompt_previous
        self._segment_cuts = segment_cuts
        self._min_head = min_head
        self._level_speech = level_speech
        self._speaker_cuts = speaker_cuts
        self._min_speech_windows = max(1, int(min_speech * SAMPLE_RATE / WINDOW))
        self._pre_roll: deque[np.ndarray] = deque(maxlen=max(1, int(pre_roll * SAMPLE_RATE / WINDOW)))
        self._time_offset = time_offset
        self._pending = np.zeros(0, np.float32)
        self._position = 0  # samples classified so far
        self._utterance: Utterance | None = None
        self._silence = 0
        self._partial_task: asyncio.Task[None] | None = None
        self._finals: asyncio.Queue[Utterance | _CutRequest | None] = asyncio.Queue()
        self._final_task: asyncio.Task[None] | None = None
        self._early_tasks: set[asyncio.Task[Transcript | None]] = set()  # (cancelled if not flushed)
        self._context = ""  # last final text: the prompt for the next utterance (if prompt_previous)

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
                utt = Utterance(start - sum(len(p) for p in pre), [*pre, window], [0.0] * len(pre) + [prob])
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
            if utt.early is not None:  # the pause did not last: nobody needs that final any more
                utt.early.task.cancel()  # (if still queued: then it holds up no other speaker's final)
                utt.early = None
        if self._silence >= self._silence_limit:
            self._end_utterance(trim=self._silence - PAUSE_KEPT)
            return
        if utt.samples >= self._max_samples and not utt.cut_asked:
            utt.cut_asked = True
            self._finals.put_nowait(_CutRequest(utt))
        if self._early_due(utt):
            self._start_early_final(utt)
        elif (utt.samples - utt.partial_at >= self._partial_samples and self._partial_task is None
              and utt.early is None):
            utt.partial_at = utt.samples
            self._partial_task = asyncio.create_task(self._partial(utt), name="captions-partial")

    def _early_due(self, utt: Utterance) -> bool:
        """Whether the final's decode can start now: ``early_final`` into a pause, once per pause,
        for a piece that will be decoded whole (no cut pending, none due by the pause's end)."""
        return (
            self._early_silence is not None
            and utt.early is None
            and self._silence >= self._early_silence
            and not utt.cut_asked
            and utt.samples - self._silence + self._closing_silence < self._max_samples
            and utt.speech_windows >= self._min_speech_windows
        )

    def _start_early_final(self, utt: Utterance) -> None:
        # where the final's audio ends if the pause lasts: _end_utterance keeps PAUSE_KEPT of it
        end = max(0, utt.samples - self._silence + PAUSE_KEPT)
        language, prompt = utt.language or self.language, self._prompt()
        task = asyncio.create_task(self._scheduler.final(self._heard(utt, end), language, prompt),
                                   name="captions-early-final")
        self._early_tasks.add(task)
        task.add_done_callback(self._early_tasks.discard)
        utt.early = EarlyFinal(utt.id, end, language, prompt, task)
        if self._partial_task is not None:
            self._partial_task.cancel()  # (the early decode is newer and, being a final's, better)
        utt.partial_at = utt.samples
        self._partial_task = asyncio.create_task(self._partial(utt, task), name="captions-partial")

    def _segment_cut(self, utt: Utterance, segments: tuple[Segment, ...], decoded: int) -> tuple[int, int] | None:
        """Where to cut a run-on piece: (chunk index, number of segments kept), before Whisper's
        last segment that begins a sentence — else its last segment — at least ``min_head``
        seconds in. The exact chunk is the least speech-like from 0.3 s before that boundary to
        0.1 s after it (Whisper's timestamps are approximate), within the ``decoded`` samples."""
        last = decoded / SAMPLE_RATE - 0.3
        candidates = [i for i in range(1, len(segments)) if self._min_head <= segments[i].start <= last]
        if not candidates:
            return None
        sentences = [i for i in candidates if segments[i - 1].text.rstrip().endswith(SENTENCE_ENDS)]
        keep = (sentences or candidates)[-1]
        # the earlier of where the kept text ends and the next segment starts: when Whisper left
        # words out in between (seen: "A parte central ... deity yoga" between two segments), they
        # go to the next piece instead of nowhere
        start = min(segments[keep - 1].end, segments[keep].start)
        first = max(1, utt.chunk_at(int((start - 0.3) * SAMPLE_RATE)))
        stop = min(max(first + 1, utt.chunk_at(int((start + 0.1) * SAMPLE_RATE))), utt.chunk_at(decoded))
        cut = min(range(first, stop), key=lambda i: utt.probs[i], default=first)
        return cut, keep

    async def _cut(self, utt: Utterance) -> None:
        """Caption the first ``max_utterance`` of a run-on piece up to where Whisper's segments say
        its last sentence starts (the kept segments' text, decoded with the words after it as
        context, is the final caption); the rest goes on as the next piece. What is decoded
        depends on the audio alone — never on how long the finals before it took, nor on whether
        a pause has closed the utterance meanwhile — so the same speech gives the same captions."""
        audio = self._heard(utt, self._max_samples)
        change = await self._voice_change(utt, len(audio))
        if change is not None:  # (the head alone, as offline decodes one recording alone)
            await self._finalise(self._split(utt, change))
            return
        result: Transcript | None = None
        found = None
        if self._segment_cuts:
            result = await self._scheduler.final(audio, utt.language or self.language, self._prompt())
            found = self._segment_cut(utt, result.segments, len(audio)) if result is not None else None
        if found is None:  # no boundary to cut at (or segment cuts off): the quietest recent moment
            head = self._split(utt, utt.quietest_cut(self._cut_lookback, utt.chunk_at(len(audio))))
            await self._finalise(head)
            return
        assert result is not None
        cut, keep = found
        head = self._split(utt, cut)
        # (nothing decoded before the boundary: settle what listeners already see, as any final does)
        text = " ".join(s.text for s in result.segments[:keep]).strip() or head.shown
        if text:
            await self._emit_final(head, text, result.language, self._heard(head))

    def _split(self, utt: Utterance, cut: int) -> Utterance:
        if self._partial_task is not None and utt is self._utterance:
            self._partial_task.cancel()  # (of the piece being cut: its result would be stale)
            self._partial_task = None
        return utt.split_head(cut)

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
        utt.end = max(0, utt.samples - trim)
        if trim > 0:
            tail = utt.audio()[utt.end :]
            # The pause's tail is the next utterance's pre-roll: a soft onset that the VAD scored
            # as silence would otherwise be in neither utterance.
            for i in range(0, len(tail) - WINDOW + 1, WINDOW):
                self._pre_roll.append(tail[i : i + WINDOW])
        self._finals.put_nowait(utt)

    async def _partial(self, utt: Utterance, early: asyncio.Task[Transcript | None] | None = None) -> None:
        """Show a partial: a draft decode of the piece so far, or (``early``) the final's decode
        started in a pause — shielded, as the final may still want it when this is cancelled."""
        piece = utt.id
        try:
            if early is not None:
                result = await asyncio.shield(early)
            else:
                result = await self._scheduler.partial(self._heard(utt), utt.language or self.language, self._prompt())
            if result is None or utt.closed or utt.id != piece or not result.text:
                return
            # (detecting: the final decides, on it all; an early final's language is not a
            # partial's guess to pin either — the final must be asked as it was)
            if not isinstance(self.language, LanguageHint) and early is None:
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

    def _heard(self, utt: Utterance, samples: int | None = None) -> np.ndarray:
        """What Whisper gets of a piece: its audio, a quiet speaker next to a loud one raised."""
        audio = utt.audio(samples)
        if not self._level_speech:
            return audio
        return level_quiet_speech(audio, [p >= SPEECH_OFF for p in utt.probs], WINDOW)

    def _prompt(self) -> str | None:
        return self._context if self._prompt_previous and self._context else None

    async def _finish(self, utt: Utterance) -> None:
        """A closed utterance: the cuts it still needs (as if it had gone on), then its last piece."""
        while utt.samples >= self._max_samples:
            await self._cut(utt)
        while (change := await self._voice_change(utt, utt.samples if utt.end is None else utt.end)) is not None:
            await self._finalise(self._split(utt, change))
        await self._finalise(utt)

    async def _voice_change(self, utt: Utterance, samples: int) -> int | None:
        """The chunk to cut the piece's first ``samples`` before where the voice changes, if any."""
        if not self._speaker_cuts or samples <= 0:
            return None
        probs = utt.probs[: utt.chunk_at(samples)]
        cuts = await asyncio.to_thread(change_cuts, utt.audio(samples), probs, WINDOW, SPEECH_OFF)
        return cuts[0] if cuts else None

    async def _finalise(self, utt: Utterance) -> None:
        """Decode a closed piece (up to its end) as one final caption."""
        end = utt.samples if utt.end is None else utt.end
        if end <= 0 or (utt.speech_windows < self._min_speech_windows and not utt.shown):
            return  # (a shown partial always gets settled by a final)
        audio = self._heard(utt, end)
        language, prompt = utt.language or self.language, self._prompt()
        early, utt.early = utt.early, None
        if early is not None and early.answers(utt.id, end, language, prompt):
            result = await early.task  # the same audio, asked the same way: already decoding or decoded
        else:
            result = await self._scheduler.final(audio, language, prompt)
        text = result.text.strip() if result is not None else ""
        # transcription failed, was dropped or heard nothing: settle what listeners already see
        # rather than leaving a partial on screen forever
        text = text or utt.shown
        if text:
            await self._emit_final(utt, text, result.language if result else None, audio)

    async def _emit_final(self, utt: Utterance, text: str, language: str | None, audio: np.ndarray) -> None:
        self._context = text[-200:]
        utt.seq += 1
        await self._on_caption(
            CaptionEvent(utt.id, utt.seq, text, len(text), True,
                         self._seconds(utt.start_sample), self._seconds(utt.start_sample + len(audio)),
                         utt.language or language or fixed_language(self.language) or "und", audio)
        )

    async def _final_loop(self) -> None:
        while (item := await self._finals.get()) is not None:
            try:
                if isinstance(item, _CutRequest):
                    await self._cut(item.utterance)
                else:
                    await self._finish(item)
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
        for task in list(self._early_tasks):  # (flushed: every one was awaited or superseded)
            task.cancel()
