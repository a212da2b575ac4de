"""Speech recognition backends behind one small interface.

faster-whisper (CTranslate2, int8 on CPU, CUDA when present) is the default; openai-whisper is
an optional extra that loads a checkpoint file. Both run inside worker processes
(:mod:`captioning.workers`), never on the event loop.
"""

from __future__ import annotations

import logging
import os
import zlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .language import LanguageHint, choose_language

logger = logging.getLogger(__name__)

#: Whisper's own test for a decoding stuck in a loop ("o que é o que é o que é ..."): text that
#: compresses better than this is repetition, not speech (openai-whisper's default threshold).
MAX_COMPRESSION_RATIO = 2.4


MAX_REPEATS = 4  # "words, words, words, words" is speech; a fifth repetition in a row is a loop


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def collapse_repeats(text: str, longest: int = 8) -> str:
    """Drop the extra copies of any run of 1..``longest`` words repeated over MAX_REPEATS times."""
    words = text.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(1, longest + 1):
            gram = words[i : i + n]
            count = 1
            while words[i + count * n : i + (count + 1) * n] == gram:
                count += 1
            if len(gram) == n and count > MAX_REPEATS:
                out.extend(gram)
                i += count * n
                break
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


@dataclass(frozen=True)
class Segment:
    """One of Whisper's segments: where it starts and ends in the audio (seconds), and its text.

    Whisper ends segments at phrase and sentence boundaries; the stream cuts run-on speech there
    (:mod:`captioning.stream`)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    language_probability: float
    #: Whisper's language identification, most likely first, when it was asked to detect (else empty)
    language_probs: tuple[tuple[str, float], ...] = ()
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class AsrSpec:
    """What a worker process loads: picklable, so it crosses the process boundary."""

    backend: str  # "faster-whisper" | "openai-whisper"
    model: str  # directory (faster-whisper) or checkpoint file (openai-whisper)
    device: str = "auto"
    compute_type: str = "int8"
    threads: int = 1


class AsrBackend(Protocol):
    def transcribe(
        self, audio: np.ndarray, language: str | LanguageHint | None, prompt: str | None, draft: bool = False
    ) -> Transcript: ...

    def translate(self, audio: np.ndarray, language: str) -> str: ...

    def detect_language(self, audio: np.ndarray) -> list[tuple[str, float]]: ...


#: mel frames the encoder sees in a draft decode (100 a second); None: Whisper's 30 s window
_encoder_frames: ContextVar[int | None] = ContextVar("encoder_frames", default=None)


def _install_short_window() -> None:
    """Let draft decodes encode only their own window instead of 30 s.

    faster-whisper 1.2 pads every window's features to 30 s (``pad_or_trim``) whatever
    ``chunk_length`` says, so the encoder — 80 % of a live call, measured — costs the same for
    1 s of audio as for 30 s. CTranslate2 encodes shorter inputs (base, 2 threads: 1.22 s for
    3000 frames, 0.13 s for 1000); Whisper, trained on 30 s windows, transcribes a little worse
    that way (47 clips: the same or within about a word), so only partials — drafts, replaced by
    the final — use it (docs/BENCHMARKS.md, "Live captions")."""
    import faster_whisper.transcribe as fw

    if getattr(fw.pad_or_trim, "short_window", False):
        return
    original = fw.pad_or_trim

    def pad_or_trim(array: np.ndarray, length: int = 3000, *, axis: int = -1) -> np.ndarray:
        return original(array, _encoder_frames.get() or length, axis=axis)

    pad_or_trim.short_window = True  # type: ignore[attr-defined]
    fw.pad_or_trim = pad_or_trim


def _cuda_available() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:
        return False


class FasterWhisperBackend:
    def __init__(self, spec: AsrSpec) -> None:
        from faster_whisper import WhisperModel

        device = spec.device
        if device == "auto":
            device = "cuda" if _cuda_available() else "cpu"
        compute = spec.compute_type if device == "cpu" else "int8_float16"
        self.model = WhisperModel(
            spec.model, device=device, compute_type=compute, cpu_threads=spec.threads, num_workers=1
        )
        self.multilingual = self.model.model.is_multilingual
        _install_short_window()

    def transcribe(
        self, audio: np.ndarray, language: str | LanguageHint | None, prompt: str | None, draft: bool = False
    ) -> Transcript:
        """``draft``: a partial caption, soon replaced by the final: the encoder sees a window of
        at least 10 s (:meth:`_draft_frames`) instead of Whisper's 30 s, for a fraction of the cost
        — only when the language is known: a partial's detected language can become its
        utterance's (``SpeakerStream``), and detection is not to change with the window."""
        if not self.multilingual:
            language = "en"
        # The decode window (``chunk_length``) just longer than the audio. (It once halved the
        # cost of a call; faster-whisper 1.2 pads each window's features to 30 s again, so now
        # only drafts encode less: _install_short_window.)
        window = self._window(audio)
        hint = language if isinstance(language, LanguageHint) else None
        fixed = None if isinstance(language, LanguageHint) else language
        if hint is not None and not hint.detects(len(audio) / 16000):
            fixed = hint.fallback  # too little audio to tell (captioning/language.py)
            hint = None
        if draft and hint is None and fixed is not None:
            token = _encoder_frames.set(self._draft_frames(audio))
            try:
                return self.transcribe(audio, fixed, prompt)
            finally:
                _encoder_frames.reset(token)
        text, segments, info = self._decode(audio, fixed, prompt, window, beam=1)
        probs: tuple[tuple[str, float], ...] = ()
        if hint is not None:
            # Whisper detected the language while decoding; decode again only when the rule
            # overrules it (an unexpected or unsure language: the previous or declared one instead)
            probs = tuple((str(lang), float(p)) for lang, p in info.all_language_probs or ())
            chosen, _p = choose_language(probs, hint)
            fixed = chosen
            if chosen != info.language:
                text, segments, info = self._decode(audio, chosen, prompt, window, beam=1)
        if compression_ratio(text) > MAX_COMPRESSION_RATIO:
            # Greedy decoding sometimes gets stuck repeating a phrase, and which audio does it
            # is chaotic (a few samples more or less at the start). Offline Whisper falls back to
            # sampling; beam search is deterministic and escaped every loop we saw. Rare, so the
            # second pass costs little overall.
            logger.info("repetitive transcript (%d chars); decoding again with beam search", len(text))
            text, segments, info = self._decode(audio, fixed, prompt, window, beam=5)
            text = collapse_repeats(text)
        return Transcript(text, str(fixed or info.language), float(info.language_probability),
                          language_probs=probs, segments=segments)

    def transcribe_window(self, audio: np.ndarray, language: str) -> Transcript:
        """One greedy timestamped decode of ``audio`` in ``language``, without the repetition
        check: for packed finals (``packing``), whose text is several utterances' — the check
        belongs to each utterance's part (the same sentence from two speakers is no loop)."""
        text, segments, info = self._decode(audio, language if self.multilingual else "en", None,
                                            self._window(audio), beam=1)
        return Transcript(text, language if self.multilingual else "en", float(info.language_probability),
                          segments=segments)

    @staticmethod
    def _draft_frames(audio: np.ndarray) -> int:
        """At least 10 s: in a window just longer than the audio Whisper's timestamps ran short
        and faster-whisper decoded the rest again (a sentence two or three times over, 2 of 47
        clips; without timestamps 2 others looped to the token limit instead). With >= 10 s no clip
        looped and the text was within about a word of the 30 s window's (BENCHMARKS.md)."""
        return min(3000, max(1000, FasterWhisperBackend._window(audio) * 100))

    @staticmethod
    def _window(audio: np.ndarray) -> int:
        return min(30, int(len(audio) / 16000) + 2)

    def translate(self, audio: np.ndarray, language: str) -> str:
        """Whisper's own speech translation into English (``task="translate"``): the caption for
        English readers when no Argos model translates ``language`` into English."""
        if not self.multilingual:
            raise ValueError("an English-only model cannot translate speech")
        text, _segments, _info = self._decode(audio, language, None, self._window(audio), beam=1, task="translate")
        if compression_ratio(text) > MAX_COMPRESSION_RATIO:
            text, _segments, _info = self._decode(audio, language, None, self._window(audio), beam=5,
                                                  task="translate")
            text = collapse_repeats(text)
        return text

    def detect_language(self, audio: np.ndarray) -> list[tuple[str, float]]:
        """Whisper's language probabilities for ``audio``, on the same window as :meth:`transcribe`."""
        if not self.multilingual:
            return [("en", 1.0)]
        features = self.model.feature_extractor(audio, chunk_length=self._window(audio))
        _lang, _p, probs = self.model.detect_language(features=features)
        return [(str(lang), float(p)) for lang, p in probs]

    def _decode(
        self, audio: np.ndarray, language: str | None, prompt: str | None, window: int, beam: int,
        task: str = "transcribe",
    ) -> tuple[str, tuple[Segment, ...], Any]:
        segments, info = self.model.transcribe(
            audio,
            language=language,
            task=task,
            beam_size=beam,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            # timestamp mode, as offline: decoding without timestamp tokens scored 1-3 WER points
            # worse on the multilingual clips (docs/BENCHMARKS.md, "Caption accuracy")
            without_timestamps=False,
            vad_filter=False,  # utterances are already cut by our streaming VAD
            chunk_length=window,
        )
        decoded = tuple(Segment(float(s.start), float(s.end), s.text.strip()) for s in segments)
        return " ".join(s.text for s in decoded).strip(), decoded, info


class OpenAIWhisperBackend:
    """openai-whisper (PyTorch), loading a local checkpoint such as ``base.pt``."""

    def __init__(self, spec: AsrSpec) -> None:
        import torch
        import whisper  # type: ignore[import-not-found]

        torch.set_num_threads(spec.threads)
        device = "cuda" if spec.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
        self.model = whisper.load_model(spec.model, device=device)
        self.multilingual = self.model.is_multilingual

    def transcribe(
        self, audio: np.ndarray, language: str | LanguageHint | None, prompt: str | None, draft: bool = False
    ) -> Transcript:
        hint = language if isinstance(language, LanguageHint) else None
        fixed = None if isinstance(language, LanguageHint) else language
        if hint is not None and not hint.detects(len(audio) / 16000):
            fixed = hint.fallback
            hint = None
        result = self._run(audio, fixed if self.multilingual else "en", prompt, "transcribe")
        lang = str(result.get("language") or fixed or "en")
        if hint is not None:  # (openai-whisper gives no probabilities: the top language counts as sure)
            chosen, _p = choose_language([(lang, 1.0)], hint)
            if chosen != lang:
                result, lang = self._run(audio, chosen, prompt, "transcribe"), chosen
        return Transcript(str(result["text"]).strip(), lang, 1.0)

    def translate(self, audio: np.ndarray, language: str) -> str:
        return str(self._run(audio, language, None, "translate")["text"]).strip()

    def detect_language(self, audio: np.ndarray) -> list[tuple[str, float]]:
        return [(str(self._run(audio, None, None, "transcribe").get("language") or "en"), 1.0)]

    def _run(self, audio: np.ndarray, language: str | None, prompt: str | None, task: str) -> dict[str, Any]:
        result: dict[str, Any] = self.model.transcribe(
            audio.astype(np.float32),
            language=language,
            task=task,
            temperature=0.0,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            fp16=False,
            without_timestamps=True,
        )
        return result


def load_backend(spec: AsrSpec) -> AsrBackend:
    if spec.backend == "faster-whisper":
        return FasterWhisperBackend(spec)
    if spec.backend == "openai-whisper":
        return OpenAIWhisperBackend(spec)
    raise ValueError(f"unknown ASR backend {spec.backend!r}")


def default_threads() -> int:
    return max(1, (os.cpu_count() or 1) // 2)
