"""One speaker's utterance as the caption stream sees it: audio chunks with their VAD scores, cut
into pieces when speech runs on.

Kept apart from :mod:`~captioning.stream` (which decides *when* to decode and cut) because this is
the bookkeeping every cut relies on: a cut hands the head over as a piece of its own and nothing
is lost or heard twice (``Utterance.split_head``).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import numpy as np

from .asr import Transcript
from .language import SpokenLanguage
from .policy import LocalAgreement

SPEECH_ON = 0.5  # VAD probability that starts an utterance
SPEECH_OFF = 0.35  # under it a window counts as pause


class Utterance:
    """Speech between two pauses. Run-on speech is captioned in pieces: a cut hands the captioned
    head over as a piece of its own (:meth:`split_head`) and this goes on with the rest, under a
    new caption id — the pause that ends it is counted as if no cut had been made."""

    def __init__(self, start_sample: int, audio: list[np.ndarray], probs: list[float] | None = None) -> None:
        self.start_sample = start_sample  # of the current piece
        self.chunks = audio
        self.probs = probs if probs is not None else [0.0] * len(audio)  # VAD probability per chunk
        self.samples = sum(len(a) for a in audio)
        self.end: int | None = None  # once closed: where its speech ends (the closing pause trimmed)
        self.closed = False
        self.cut_asked = False  # a cut of the current piece is queued with the finals
        self._new_piece()

    def _new_piece(self) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.partial_at = 0
        self.seq = 0
        self.language: str | None = None
        self.agreement = LocalAgreement()
        self.shown = ""  # the last partial text listeners saw
        self.early: EarlyFinal | None = None  # the final's decode, started in the pause

    def append(self, window: np.ndarray, prob: float) -> None:
        self.chunks.append(window)
        self.probs.append(prob)
        self.samples += len(window)

    @property
    def speech_windows(self) -> int:
        return sum(p >= SPEECH_OFF for p in self.probs)

    def quietest_cut(self, lookback: int, upto: int) -> int:
        """Index of the chunk to cut before: the middle of the longest run of non-speech chunks
        in the ``lookback`` chunks before ``upto``, else the least speech-like chunk there."""
        upto = max(2, min(upto, len(self.probs)))
        first = max(1, upto - lookback)
        best_len, best_at, run = 0, -1, 0
        for i in range(first, upto):
            run = run + 1 if self.probs[i] < SPEECH_OFF else 0
            if run > best_len:
                best_len, best_at = run, i - run // 2
        if best_at >= 0:
            return best_at
        return min(range(first, upto), key=lambda i: self.probs[i])

    def audio(self, samples: int | None = None) -> np.ndarray:
        """The current piece's audio (its first ``samples`` only, if given)."""
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        return audio if samples is None else audio[:samples]

    def chunk_at(self, sample: int) -> int:
        """Index of the first chunk that starts at or after ``sample`` (from the piece's start)."""
        at = 0
        for i, chunk in enumerate(self.chunks):
            if at >= sample:
                return i
            at += len(chunk)
        return len(self.chunks)

    def split_head(self, cut: int) -> Utterance:
        """Hand ``chunks[:cut]`` over as a closed piece (with this piece's id, seq, partial text and
        language); this goes on from there as a new piece. Nothing is lost or heard twice."""
        head = Utterance(self.start_sample, self.chunks[:cut], self.probs[:cut])
        head.id, head.seq, head.shown, head.language = self.id, self.seq, self.shown, self.language
        head.closed, head.end = True, head.samples
        self.chunks, self.probs = self.chunks[cut:], self.probs[cut:]
        self.samples -= head.samples
        self.start_sample += head.samples
        if self.end is not None:
            self.end = max(0, self.end - head.samples)
        self.cut_asked = False
        self._new_piece()
        return head


@dataclass(frozen=True)
class EarlyFinal:
    """A piece's final decode, started early in a pause: what it was asked with, so the final
    reuses it only when it would ask exactly the same (same piece, audio end, language, prompt)."""

    piece: str
    end: int
    language: SpokenLanguage
    prompt: str | None
    task: asyncio.Task[Transcript | None]

    def answers(self, piece: str, end: int, language: SpokenLanguage, prompt: str | None) -> bool:
        return (self.piece, self.end, self.language, self.prompt) == (piece, end, language, prompt)
