"""Speech recognition backends behind one small interface.

faster-whisper (CTranslate2, int8 on CPU, CUDA when present) is the default; openai-whisper is
an optional extra that loads a checkpoint file. Both run inside worker processes
(:mod:`captioning.workers`), never on the event loop.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    language_probability: float


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
        self, audio: np.ndarray, language: str | None, prompt: str | None
    ) -> Transcript: ...


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

    def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        if not self.multilingual:
            language = "en"
        # Whisper pads every input to a 30 s window; a live utterance is a few seconds long, and
        # a window just longer than the audio halves the cost of each call (docs/BENCHMARKS.md).
        window = min(30, int(len(audio) / 16000) + 2)
        segments, info = self.model.transcribe(
            audio,
            language=language,
            beam_size=1,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            without_timestamps=True,
            vad_filter=False,  # utterances are already cut by our streaming VAD
            chunk_length=window,
        )
        text = " ".join(s.text.strip() for s in segments).strip()
        return Transcript(text, info.language, float(info.language_probability))


class OpenAIWhisperBackend:
    """openai-whisper (PyTorch), loading a local checkpoint such as ``base.pt``."""

    def __init__(self, spec: AsrSpec) -> None:
        import torch
        import whisper  # type: ignore[import-not-found]

        torch.set_num_threads(spec.threads)
        device = "cuda" if spec.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
        self.model = whisper.load_model(spec.model, device=device)
        self.multilingual = self.model.is_multilingual

    def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None) -> Transcript:
        result = self.model.transcribe(
            audio.astype(np.float32),
            language=language if self.multilingual else "en",
            temperature=0.0,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            fp16=False,
            without_timestamps=True,
        )
        lang = str(result.get("language") or language or "en")
        return Transcript(str(result["text"]).strip(), lang, 1.0)


def load_backend(spec: AsrSpec) -> AsrBackend:
    if spec.backend == "faster-whisper":
        return FasterWhisperBackend(spec)
    if spec.backend == "openai-whisper":
        return OpenAIWhisperBackend(spec)
    raise ValueError(f"unknown ASR backend {spec.backend!r}")


def default_threads() -> int:
    return max(1, (os.cpu_count() or 1) // 2)
