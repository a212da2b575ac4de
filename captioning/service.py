"""Captions for every speaker of every room: SFU audio taps in, per-language captions out.

One :class:`~captioning.stream.SpeakerStream` per audio publication, fed from the SFU's
decoded-once audio tap. Each caption is translated once per language requested in the room
(never per listener), emitted through ``emit`` and, when final, stored for the archive.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from media_server import SFU, MediaRoom, Publication

from .asr import AsrSpec, default_threads
from .audio import PcmConverter
from .language import LanguageHint, SpokenLanguage
from .models import ModelDirs, ModelError, model_label, resolve_asr_model
from .remote import Kind, RemotePool
from .scheduler import PACK_BEHIND_SECONDS, AsrScheduler, PackFinals
from .store import CaptionStore, StoredCaption
from .stream import CaptionEvent, SpeakerStream
from .vad import StreamingVad
from .vocabulary import CaptionState, TranslatedBy, Untranslated
from .workers import (
    ModelLoadError,
    Pool,
    WorkerCrashed,
    WorkerPool,
    _asr_info,
    _transcribe,
    _transcribe_draft,
    _transcribe_packed,
    _translate_many,
    _translate_speech,
    _translation_info,
    asr_pool,
    translation_pool,
)

logger = logging.getLogger(__name__)

Emit = Callable[[str, str, dict[str, Any]], Awaitable[None]]  # (room, lang, caption)

INSTALL_HINT = "Install a speech model with `unionhub models install --asr base`, then restart the hub."


@dataclass
class CaptionConfig:
    models_dir: Path
    asr_model: str = "auto"
    asr_backend: str = "faster-whisper"
    asr_workers: int = 1
    asr_threads: int = field(default_factory=default_threads)
    spoken_language: str = "profile"  # "profile": the speaker's language; "detect": per utterance
    partial_interval: float = 0.8
    #: finals of several speakers waiting together decoded in one Whisper window: never, only
    #: while the worker is behind, or always (local workers only: a cluster's caption pool
    #: decodes one utterance per request)
    pack_finals: PackFinals = PackFinals.BEHIND
    #: a cluster's caption worker pool (``unionhub caption-worker``, ``remote.py``): no model here
    pool_url: str | None = None
    node: str = "hub"  # (this node's name: where the pool's workers reply)


class Interpretation(Protocol):
    """Who interprets (``signalling``'s RoomHub): an interpreter's words are the captions of their
    language, as the human translation they are; machine translation fills in elsewhere."""

    def interprets(self, participant_id: str) -> str | None: ...

    def live_channels(self, room: str) -> dict[str, str]: ...


@dataclass
class _Session:
    id: str
    started: float  # wall clock; caption times are seconds since this


class CaptionService:
    """Owns the model workers and one caption stream per speaking participant."""

    def __init__(
        self,
        config: CaptionConfig,
        emit: Emit,
        participant: Callable[[str], tuple[str, str] | None],
        room_languages: Callable[[str], set[str]],
        store: CaptionStore | None = None,
        interpretation: Interpretation | None = None,
    ) -> None:
        self.config = config
        self._interpretation = interpretation
        self._emit = emit
        self._participant = participant
        self._room_languages = room_languages
        self._store = store
        self._dirs = ModelDirs(config.models_dir)
        self._asr: Pool | None = None
        self._translation: Pool | None = None
        self._scheduler: AsrScheduler | None = None
        self._vad_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        self._streams: dict[str, asyncio.Task[None]] = {}
        self._sessions: dict[str, _Session] = {}
        self._start_task: asyncio.Task[None] | None = None
        self.available = False
        self.translation_available = False
        self.multilingual = False
        self.pairs: list[tuple[str, str]] = []
        self.message = "Captions are starting…"
        self.emitted = 0
        self.translations = 0
        self._translation_seconds: collections.deque[float] = collections.deque(maxlen=100)
        self.on_status: Callable[[], None] | None = None  # called when start-up has finished
        self._sfu: SFU | None = None  # set by attach(): the SFU whose publications we caption
        self._unwatch: Callable[[], None] | None = None

    def attach(self, sfu: SFU) -> None:
        """Caption every audio publication of ``sfu``, including ones that exist already (from
        when the models are loaded: people who spoke meanwhile get captions from then on)."""
        self._sfu = sfu
        if self.available and self._unwatch is None:
            self._unwatch = sfu.watch(self.on_publication)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Load models in the background; calls work meanwhile and captions start when ready."""
        if self._start_task is None:
            self._start_task = asyncio.create_task(self._start(), name="captions-start")

    async def ready(self) -> None:
        if self._start_task is not None:
            await asyncio.shield(self._start_task)

    async def _start(self) -> None:
        if self.config.pool_url is not None:
            await self._start_remote(self.config.pool_url)
            return
        from .translate import configure

        configure(self._dirs.argos)
        try:
            model = await asyncio.to_thread(resolve_asr_model, self.config.asr_model, self._dirs)
        except ModelError as exc:
            model = None
            self.message = f"Captions are unavailable: {exc}"
        if model is None:
            if self.config.asr_model == "none":
                self.message = "Captions are turned off on this server."
            elif not self.message.startswith("Captions are unavailable"):
                self.message = f"Captions are unavailable: no speech model is installed. {INSTALL_HINT}"
            logger.warning(self.message)
        else:
            spec = AsrSpec(self.config.asr_backend, str(model), threads=self.config.asr_threads)
            pool = asr_pool(spec, self.config.asr_workers)
            try:
                info = await pool.start(_asr_info)
            except ModelLoadError as exc:
                pool.close()
                self.message = f"Captions are unavailable: the speech model failed to load ({exc})."
                logger.error(self.message)
            else:
                self._asr = pool
                self.multilingual = bool(info["multilingual"])
                packs = self.config.pack_finals is not PackFinals.OFF
                self._scheduler = AsrScheduler(
                    self._transcribe, slots=pool.size, draft=self._transcribe_draft,
                    pack=self._transcribe_packed if packs else None,
                    pack_behind=PACK_BEHIND_SECONDS if self.config.pack_finals is PackFinals.BEHIND else None)
                self._scheduler.start()
                self.available = True
                self.message = f"Captions on ({model_label(Path(model))})."
                logger.info("speech model %s loaded (multilingual=%s)", model, self.multilingual)
        await self._start_translation()
        if self._sfu is not None:
            self.attach(self._sfu)
        if self.on_status is not None:
            self.on_status()

    async def _start_remote(self, url: str) -> None:
        """Models served by a cluster's caption workers (``remote.py``)."""
        asr = RemotePool(Kind.ASR, url, self.config.node)
        try:
            info = await asr.start(_asr_info)
        except ModelLoadError as exc:
            asr.close()
            self.message = f"Captions are unavailable: {exc}."
            logger.error(self.message)
        else:
            self._asr = asr
            self.multilingual = bool(info.get("multilingual"))
            self._scheduler = AsrScheduler(self._transcribe, slots=asr.size)
            self._scheduler.start()
            self.available = True
            self.message = f"Captions on (a pool of {asr.size} caption workers)."
            logger.info(self.message)
        translation = RemotePool(Kind.TRANSLATE, url, self.config.node, wait=2.0)
        try:
            info = await translation.start(_translation_info)
        except ModelLoadError as exc:
            translation.close()
            logger.info("no translation in the caption pool: %s", exc)
        else:
            self._translation = translation
            self.pairs = [(str(a), str(b)) for a, b in info.get("pairs", [])]
            self.translation_available = bool(self.pairs)
        if self._sfu is not None:
            self.attach(self._sfu)
        if self.on_status is not None:
            self.on_status()

    async def _start_translation(self) -> None:
        argos = self._dirs.argos  # ARGOS_PACKAGES_DIR: one folder per installed package
        if not argos.is_dir() or not any((p / "metadata.json").is_file() for p in argos.iterdir()):
            logger.info("no translation models installed in %s", argos)
            return
        pool = translation_pool(self._dirs.argos)
        try:
            info = await pool.start(_translation_info)
        except ModelLoadError as exc:
            pool.close()
            logger.error("translation unavailable: %s", exc)
            return
        self._translation = pool
        self.pairs = [(str(a), str(b)) for a, b in info["pairs"]]
        self.translation_available = bool(self.pairs)

    async def close(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
        if self._start_task is not None:
            self._start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._start_task
        for task in list(self._streams.values()):
            task.cancel()
        for task in list(self._streams.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._scheduler is not None:
            await self._scheduler.close()
        for pool in (self._asr, self._translation):
            if pool is not None:
                pool.close()
        self._vad_executor.shutdown(wait=False, cancel_futures=True)

    # -- what the server can serve -----------------------------------------------------------

    def can_translate(self, source: str, target: str) -> bool:
        pairs = set(self.pairs)
        return source == target or (source, target) in pairs or (
            (source, "en") in pairs and ("en", target) in pairs
        )

    def languages(self) -> list[str]:
        """Caption languages a listener can choose: every reachable translation, plus English."""
        langs = {"en"} if self.available else set()
        for a, b in self.pairs:
            langs.update((a, b))
        return sorted(langs)

    def state(self) -> CaptionState:
        if self.available:
            return CaptionState.ON
        if self._start_task is not None and not self._start_task.done():
            return CaptionState.STARTING
        return CaptionState.OFF if self.config.asr_model == "none" else CaptionState.UNAVAILABLE

    def status(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "state": str(self.state()),
            "translation": self.translation_available,
            "languages": self.languages(),
            "message": self.message,
        }

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"speakers": len(self._streams), "emitted": self.emitted,
                               "translations": self.translations}
        if self._translation_seconds:
            recent = sorted(self._translation_seconds)
            out["translation_p50"] = recent[len(recent) // 2]
            out["translation_max"] = recent[-1]
        if self._scheduler is not None:
            out.update(self._scheduler.stats())
            out["pack_finals"] = str(self._scheduler.packing)
        if self._asr is not None:
            out["asr_restarts"] = self._asr.restarts
        return out

    # -- sessions --------------------------------------------------------------------------

    async def session(self, room: str) -> _Session:
        """The room's caption session (created on first use); caption times count from its start."""
        session = self._sessions.get(room)
        if session is None:
            sid = await self._store.start_session(room) if self._store else f"{room}-{int(time.time())}"
            session = self._sessions.setdefault(room, _Session(sid, time.time()))
        return session

    async def end_session(self, room: str) -> None:
        session = self._sessions.pop(room, None)
        if session is not None and self._store is not None:
            await self._store.end_session(session.id)

    def session_id(self, room: str) -> str | None:
        session = self._sessions.get(room)
        return session.id if session else None

    # -- speakers ----------------------------------------------------------------------------

    def on_publication(self, room: MediaRoom, publication: Publication) -> None:
        """SFU hook: start captioning each new audio publication."""
        if publication.audio is None or not self.available or publication.id in self._streams:
            return
        key = publication.id
        self._streams[key] = asyncio.create_task(
            self._run_speaker(room.name, publication), name=f"captions-{publication.owner}"
        )

    async def _vad(self, vad: StreamingVad, audio: np.ndarray) -> list[float]:
        return await asyncio.get_running_loop().run_in_executor(self._vad_executor, vad.process, audio)

    async def _run_speaker(self, room: str, publication: Publication) -> None:
        assert publication.audio is not None and self._scheduler is not None
        queue = publication.audio.subscribe()
        session = await self.session(room)
        info = self._participant(publication.owner)
        declared = info[1] if info is not None else None
        previous: str | None = None  # the language of the speaker's last final

        def spoken() -> SpokenLanguage:
            """What the speaker's next utterances are transcribed in (asked again after each caption:
            made an interpreter or no longer, readers of a new language joined the room)."""
            if not self.multilingual:
                return "en"
            booth = self._interpretation.interprets(publication.owner) if self._interpretation else None
            if booth is not None:
                return booth  # an interpreter speaks the language they interpret into
            if self.config.spoken_language == "detect":  # per utterance, among the room's languages
                return LanguageHint.for_speaker(declared, self._room_languages(room), previous)
            return declared

        vad = await asyncio.get_running_loop().run_in_executor(self._vad_executor, StreamingVad)
        converter = PcmConverter()

        name = info[0] if info else "?"

        async def on_caption(event: CaptionEvent) -> None:
            nonlocal name, previous
            if event.final:
                previous = event.language
            now = self._participant(publication.owner)
            name = now[0] if now else name  # the last final may come after the speaker left
            stream.language = spoken()
            await self._publish(room, session, publication.owner, name, event)

        stream = SpeakerStream(
            self._scheduler,
            lambda audio: self._vad(vad, audio),
            on_caption,
            language=spoken(),
            partial_interval=self.config.partial_interval,
            time_offset=time.time() - session.started,
        )
        try:
            while (frame := await queue.get()) is not None:
                await stream.feed(converter.convert(frame))
            await stream.close(flush=True)
        except asyncio.CancelledError:
            await stream.close(flush=False)
            raise
        finally:
            publication.audio.unsubscribe(queue)
            self._streams.pop(publication.id, None)

    async def _transcribe(self, audio: np.ndarray, language: SpokenLanguage, prompt: str | None) -> Any:
        assert self._asr is not None
        return await self._asr.call(_transcribe, audio, language, prompt)

    async def _transcribe_packed(self, audios: list[np.ndarray], language: str) -> Any:
        """Several speakers' finals in one decode, in a local worker (``packing``)."""
        assert self._asr is not None
        return await self._asr.call(_transcribe_packed, audios, language)

    async def _transcribe_draft(self, audio: np.ndarray, language: SpokenLanguage, prompt: str | None) -> Any:
        """A partial's decode in a local worker (a cluster's caption pool serves full decodes only)."""
        assert self._asr is not None
        return await self._asr.call(_transcribe_draft, audio, language, prompt)

    # -- translation and delivery ----------------------------------------------------------------

    async def _publish_interpretation(self, room: str, session: _Session, speaker: str, name: str,
                                      event: CaptionEvent, lang: str, live: bool) -> None:
        """An interpreter's words go to their channel's readers only, marked as interpretation;
        a booth partner who is not live is heard by nobody and captioned for nobody."""
        if not live:
            return
        await self._emit(room, lang, {
            "utterance": event.utterance, "seq": event.seq, "speaker": speaker, "name": name,
            "source_lang": lang, "original": event.text, "final": event.final, "stable": event.stable,
            "start": event.start, "end": event.end, "lang": lang, "text": event.text, "interpretation": True,
        })
        self.emitted += 1
        if event.final and self._store is not None:
            await self._store.add([StoredCaption(session.id, event.utterance, speaker, name, lang, lang, event.text,
                                                 event.start, event.end)])

    async def translate_many(self, text: str, source: str, targets: set[str], wait: bool = True) -> dict[str, str]:
        """``{lang: text}`` for each reachable target; {} if translation is busy and not ``wait``."""
        wanted = sorted(t for t in targets if t != source)
        if not wanted or self._translation is None:
            return {}
        if not wait and self._translation.idle == 0:
            return {}
        started = time.monotonic()
        try:
            result = await self._translation.call(_translate_many, text, source, wanted)
            self._translation_seconds.append(time.monotonic() - started)
        except WorkerCrashed:
            return {}
        except Exception:
            logger.exception("translation failed")
            return {}
        self.translations += len(result)
        return result

    def speech_translation(self, source: str) -> bool:
        """Whether English readers get Whisper's own speech translation of ``source``: no Argos model
        reaches English from it, and a local multilingual speech model can (a cluster's caption
        pool serves transcription only)."""
        return (source not in ("en", "und") and self.multilingual and isinstance(self._asr, WorkerPool)
                and not self.can_translate(source, "en"))

    async def translate_speech(self, audio: np.ndarray, source: str) -> str:
        """Whisper's English translation of an utterance, run in an ASR worker; "" if it failed."""
        assert self._asr is not None
        started = time.monotonic()
        try:
            text = await self._asr.call(_translate_speech, audio, source)
        except WorkerCrashed:
            return ""
        except Exception:
            logger.exception("speech translation failed")
            return ""
        self._translation_seconds.append(time.monotonic() - started)
        self.translations += 1
        return text.strip()

    async def _publish(self, room: str, session: _Session, speaker: str, name: str, event: CaptionEvent) -> None:
        live = self._interpretation.live_channels(room) if self._interpretation is not None else {}
        booth = self._interpretation.interprets(speaker) if self._interpretation is not None else None
        if booth is not None:
            await self._publish_interpretation(room, session, speaker, name, event, booth, live.get(booth) == speaker)
            return
        source = event.language
        # a language with a live interpreter reads the interpreter, not a machine translation
        targets = {lang for lang in self._room_languages(room) if lang != source and lang not in live}
        translated = await self.translate_many(event.text, source, targets, wait=event.final)
        # English readers of a language Argos cannot translate get Whisper's translation of the speech
        by_whisper = "en" in targets and "en" not in translated and self.speech_translation(source)
        base = {
            "utterance": event.utterance,
            "seq": event.seq,
            "speaker": speaker,
            "name": name,
            "source_lang": source,
            "original": event.text,
            "final": event.final,
            "stable": event.stable,
            "start": event.start,
            "end": event.end,
        }
        deliveries = [(source, {**base, "lang": source, "text": event.text})]
        for lang in sorted(targets):
            if lang in translated:
                text = translated[lang]
                deliveries.append((lang, {**base, "lang": lang, "text": text, "stable": len(text) if event.final else 0}))
            elif lang == "en" and by_whisper and event.final and event.audio is not None:
                continue  # delivered below, once Whisper has translated it (the others need not wait)
            elif lang == "en" and by_whisper:  # a partial: the final will be translated
                deliveries.append((lang, {**base, "lang": source, "text": event.text,
                                          "untranslated": {"reason": str(Untranslated.BUSY), "wanted": lang}}))
            else:  # no model for this pair (or busy on a partial): show the original, and why
                reason = Untranslated.BUSY if self.can_translate(source, lang) else Untranslated.NO_MODEL
                deliveries.append((lang, {**base, "lang": source, "text": event.text,
                                          "untranslated": {"reason": str(reason), "wanted": lang}}))
        for lang, caption in deliveries:
            await self._emit(room, lang, caption)
        if by_whisper and event.final and event.audio is not None:
            english = await self.translate_speech(event.audio, source)
            if english:
                translated = {**translated, "en": english}
                caption = {**base, "lang": "en", "text": english, "stable": len(english),
                           "translated_by": str(TranslatedBy.WHISPER)}
            else:
                caption = {**base, "lang": source, "text": event.text,
                           "untranslated": {"reason": str(Untranslated.NO_MODEL), "wanted": "en"}}
            await self._emit(room, "en", caption)
        self.emitted += 1
        if event.final and self._store is not None:
            rows = [StoredCaption(session.id, event.utterance, speaker, name, source, source, event.text,
                                  event.start, event.end)]
            rows += [StoredCaption(session.id, event.utterance, speaker, name, source, lang, text,
                                   event.start, event.end) for lang, text in translated.items()]
            await self._store.add(rows)
