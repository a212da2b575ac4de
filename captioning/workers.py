"""Worker processes that host the models: ASR and translation never run on the event loop.

Each worker is a one-process ``ProcessPoolExecutor`` whose initializer loads the model once. A
worker that dies (segfault, OOM kill) is replaced and the caller gets :class:`WorkerCrashed`, so
one lost request never stops captions.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from .asr import AsrBackend, AsrSpec, Transcript, load_backend
from .language import LanguageHint
from .packing import transcribe_packed

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WorkerCrashed(Exception):
    """The worker process died during the call; it has been restarted."""


class ModelLoadError(Exception):
    """The worker could not load its model."""


class Pool(Protocol):
    """What the caption service needs of its model workers: local processes
    (:class:`WorkerPool`) or a cluster's worker pool over Redis (``remote.RemotePool``)."""

    name: str

    async def start(self, probe: Callable[[], Any]) -> Any: ...

    async def call(self, fn: Callable[..., T], *args: Any) -> T: ...

    @property
    def idle(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def restarts(self) -> int: ...

    def close(self) -> None: ...


# -- functions that run inside the worker processes --------------------------------------

_asr: AsrBackend | None = None
_translator: Any = None


def _init_asr(spec: AsrSpec) -> None:
    global _asr
    _asr = load_backend(spec)


def _transcribe(audio: np.ndarray, language: str | LanguageHint | None, prompt: str | None) -> Transcript:
    assert _asr is not None
    return _asr.transcribe(audio, language, prompt)


def _transcribe_draft(audio: np.ndarray, language: str | LanguageHint | None, prompt: str | None) -> Transcript:
    """A partial caption's decode: cheaper, a little less exact (``AsrBackend.transcribe``'s draft)."""
    assert _asr is not None
    return _asr.transcribe(audio, language, prompt, draft=True)


def _transcribe_packed(audios: list[np.ndarray], language: str) -> list[Transcript]:
    """Several speakers' finals of one language in one Whisper window (``packing``)."""
    assert _asr is not None
    return transcribe_packed(_asr, audios, language)


def _translate_speech(audio: np.ndarray, language: str) -> str:
    """Whisper's speech translation into English (the fallback when Argos has no model)."""
    assert _asr is not None
    return _asr.translate(audio, language)


def _detect_language(audio: np.ndarray) -> list[tuple[str, float]]:
    assert _asr is not None
    return _asr.detect_language(audio)


def _asr_info() -> dict[str, Any]:
    assert _asr is not None
    return {"multilingual": bool(getattr(_asr, "multilingual", False)), "pid": os.getpid()}


def _init_translation(packages_dir: str, threads: int) -> None:
    global _translator
    from .translate import Translator, configure

    configure(Path(packages_dir))
    _translator = Translator(threads)


def _translate_many(text: str, source: str, targets: list[str]) -> dict[str, str]:
    return dict(_translator.translate_many(text, source, targets))


def _translation_info() -> dict[str, Any]:
    return {"pairs": _translator.pairs, "pid": os.getpid()}


def _die() -> None:
    """Kill the worker abruptly (used by tests to prove recovery)."""
    os._exit(3)


# -- the parent side ----------------------------------------------------------------------


class Worker:
    """One model-hosting process; replaced when it crashes."""

    def __init__(self, name: str, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        self.name = name
        self._initializer = initializer
        self._initargs = initargs
        self._executor: ProcessPoolExecutor | None = None
        self.restarts = 0
        self.busy = False

    def _spawn(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=self._initializer,
            initargs=self._initargs,
        )

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            self._executor = self._spawn()
        loop = asyncio.get_running_loop()
        self.busy = True
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except BrokenProcessPool as exc:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            self.restarts += 1
            logger.warning("%s worker died; restarting (restart #%d)", self.name, self.restarts)
            raise WorkerCrashed(self.name) from exc
        finally:
            self.busy = False

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class WorkerPool:
    """A few workers of one kind; calls go to an idle one (callers queue in order)."""

    def __init__(
        self, name: str, initializer: Callable[..., None], initargs: tuple[Any, ...], size: int = 1
    ) -> None:
        self.name = name
        self.workers = [Worker(f"{name}-{i}", initializer, initargs) for i in range(size)]
        self._idle: asyncio.Queue[Worker] = asyncio.Queue()
        for w in self.workers:
            self._idle.put_nowait(w)

    async def start(self, probe: Callable[[], Any]) -> Any:
        """Start every worker and load its model; returns the first worker's probe result."""
        results = []
        for worker in self.workers:
            try:
                results.append(await worker.call(probe))
            except (WorkerCrashed, BrokenProcessPool, Exception) as exc:
                raise ModelLoadError(f"{self.name}: could not load the model: {exc}") from exc
        return results[0] if results else None

    @property
    def idle(self) -> int:
        return self._idle.qsize()

    @property
    def size(self) -> int:
        return len(self.workers)

    @property
    def restarts(self) -> int:
        return sum(w.restarts for w in self.workers)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        worker = await self._idle.get()
        try:
            return await worker.call(fn, *args)
        finally:
            self._idle.put_nowait(worker)

    def close(self) -> None:
        for w in self.workers:
            w.close()


def asr_pool(spec: AsrSpec, size: int = 1) -> WorkerPool:
    return WorkerPool("asr", _init_asr, (spec,), size)


def translation_pool(packages_dir: Path, threads: int = 1) -> WorkerPool:
    return WorkerPool("translate", _init_translation, (str(packages_dir), threads), 1)
