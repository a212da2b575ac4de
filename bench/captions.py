"""Live captions: latency, accuracy, compute cost and how many speakers one machine keeps up with.

Per speech model (faster-whisper, int8 on CPU, in the hub's own worker processes):

1. caption latency: each clip is streamed in real time (20 ms chunks on a monotonic schedule,
   then 1.5 s of silence) through :class:`~captioning.stream.SpeakerStream`. A word's latency is
   the wall time at which the captions first show it (previous finals + current caption, aligned
   to the reference transcript) minus the wall time at which the word ended in the audio. Word
   end times come from an offline faster-whisper ``word_timestamps=True`` pass over each clip,
   aligned to the reference transcripts in the speech directory's README.md.
2. WER of the streamed captions (concatenated finals) vs the whole clip transcribed offline with
   the same model and decoding options (the hub's backend: greedy, without timestamps).
3. real-time factor: worker transcription seconds / audio seconds, and calls for partials vs
   finals.
4. simultaneous speakers: K real-time streams (~``--seconds`` of looped clips each, starts
   staggered by 0.37 s) share one AsrScheduler over ``--asr-workers`` workers. K keeps up when the
   final-caption p95 latency is under 3 s and no final was dropped. Word-level final latency
   includes waiting for the utterance to end (a final covers the whole utterance), so the
   utterance lag (end of an utterance's audio to its final caption) is reported too, with the
   same test applied to it.
5. faster-whisper vs openai-whisper, when openai-whisper and a ``.pt`` checkpoint exist offline.

With 1, a latency profile (``profile``): where each word's and each final's time went — waiting
for the partial interval or the end-of-utterance pause, queued for a worker, decoding.
``--variant`` compares pipeline settings in one run, taking turns clip by clip and K by K (the
machine is shared: load that changes between two runs would decide a comparison).

    .venv/bin/python bench/captions.py --models tiny.en,base --seconds 30 --speakers 1,2,3,4,6
    .venv/bin/python bench/captions.py --models base --variant before:drafts=False --variant drafts
    .venv/bin/python bench/captions.py --quick --out /tmp/bench   # tiny.en, one clip, K=1

Writes <out>/captions.json and <out>/captions.png.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import bisect
import inspect
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from captioning.asr import AsrSpec, Transcript  # noqa: E402
from captioning.audio import SAMPLE_RATE, read_wav  # noqa: E402
from captioning.metrics import wer, words  # noqa: E402
from captioning.models import ModelDirs, resolve_asr_model  # noqa: E402
from captioning.scheduler import AsrScheduler, JobKind, JobTiming  # noqa: E402
from captioning.stream import CaptionEvent, SpeakerStream  # noqa: E402
from captioning.vad import StreamingVad  # noqa: E402
from captioning.workers import WorkerPool, _asr_info, _transcribe, _transcribe_draft, _transcribe_packed, asr_pool  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
NO_OPENAI = "not measured: no openai-whisper weights offline"
CLIP_GAP = 1.1  # silence between looped clips: > the stream's 1.0 s min_silence, so each clip ends an utterance


# -- small pure helpers ------------------------------------------------------------------------


def read_references(readme: Path) -> dict[str, str]:
    """``{file: transcript}`` from the table in the speech directory's README.md."""
    refs: dict[str, str] = {}
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].endswith(".wav"):
            refs[cells[0]] = cells[-1]
    return refs


def _distance_table(ref: list[str], hyp: list[str]) -> list[list[int]]:
    """Levenshtein table: ``d[i][j]`` = edit distance between ``ref[:i]`` and ``hyp[:j]``."""
    d = [list(range(len(hyp) + 1))]
    for i, r in enumerate(ref, 1):
        prev, row = d[-1], [i]
        for j, h in enumerate(hyp, 1):
            row.append(min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h)))
        d.append(row)
    return d


def _backtrack(
    ref: list[str], hyp: list[str], d: list[list[int]], i: int, j: int
) -> list[tuple[int | None, int | None]]:
    """Alignment pairs (ref index, hyp index) ending at ``(i, j)``, in order; matches preferred."""
    pairs: list[tuple[int | None, int | None]] = []
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def reference_end_times(ref: list[str], timed: list[tuple[str, float]], duration: float) -> list[float]:
    """End time of each reference word, from timed (recognised) words aligned to the reference.

    Substituted words take their counterpart's time; reference words the recogniser missed are
    placed between their neighbours.
    """
    hyp = [w for w, _ in timed]
    ends: list[float | None] = [None] * len(ref)
    for ri, hi in _backtrack(ref, hyp, _distance_table(ref, hyp), len(ref), len(hyp)):
        if ri is not None and hi is not None:
            ends[ri] = timed[hi][1]
    known = [i for i, e in enumerate(ends) if e is not None]
    if not known:
        return [duration * (i + 1) / max(1, len(ref)) for i in range(len(ref))]
    out: list[float] = []
    for i, e in enumerate(ends):
        if e is None:
            before = [ends[k] for k in known if k < i]
            after = [ends[k] for k in known if k > i]
            lo = before[-1] if before else 0.0
            hi_ = after[0] if after else duration
            e = (lo + hi_) / 2  # type: ignore[operator]
        out.append(round(max(out[-1] if out else 0.0, float(e)), 3))  # type: ignore[arg-type]
    return out


def covered_words(ref: list[str], hyp: list[str]) -> int:
    """How many leading reference words a caption hypothesis shows.

    The hypothesis is aligned to the reference prefix it matches best (the longest on ties);
    the count runs up to the last reference word it reproduces exactly, so a wrong word in the
    middle does not hide the words after it and a wrong word at the end does not count.
    """
    if not hyp or not ref:
        return 0
    d = _distance_table(ref, hyp)
    m = len(hyp)
    best = min(row[m] for row in d)
    k = max(i for i, row in enumerate(d) if row[m] == best)
    for ri, hi in reversed(_backtrack(ref, hyp, d, k, m)):
        if ri is not None and hi is not None and ref[ri] == hyp[hi]:
            return ri + 1
    return 0


def first_cover_times(ref: list[str], timeline: list[tuple[float, list[str]]]) -> list[float | None]:
    """For each reference word, the first time at which the captions showed it (or None)."""
    times: list[float | None] = [None] * len(ref)
    done = 0
    for t, hyp in timeline:
        covered = covered_words(ref, hyp)
        while done < covered:
            times[done] = t
            done += 1
    return times


def caption_timeline(events: list[tuple[float, CaptionEvent]], finals_only: bool) -> list[tuple[float, list[str]]]:
    """What the captions show after each event: every utterance's latest text, in media order."""
    latest: dict[str, CaptionEvent] = {}
    timeline: list[tuple[float, list[str]]] = []
    for t, ev in events:
        if finals_only and not ev.final:
            continue
        shown = latest.get(ev.utterance)
        if shown is not None and shown.final and not ev.final:
            continue
        latest[ev.utterance] = ev
        text = " ".join(e.text for e in sorted(latest.values(), key=lambda e: (e.start, e.end)))
        timeline.append((t, words(text)))
    return timeline


def finals_text(events: list[tuple[float, CaptionEvent]]) -> str:
    finals = sorted((ev for _, ev in events if ev.final), key=lambda e: (e.start, e.end))
    return " ".join(e.text for e in finals)


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def summary(values: list[float], total: int) -> dict[str, Any]:
    return {"p50": pct(values, 50), "p95": pct(values, 95),
            "mean": round(float(np.mean(values)), 3) if values else None,
            "words": len(values), "words_total": total}


def weighted_wer(rows: list[tuple[int, float]]) -> float | None:
    """Overall WER from per-clip (reference words, WER): total errors over total words."""
    total = sum(n for n, _ in rows)
    return round(sum(n * w for n, w in rows) / total, 4) if total else None


def keeps_up(final_p95: float | None, finals_dropped: int, limit: float) -> bool:
    return final_p95 is not None and final_p95 < limit and finals_dropped == 0


def max_realtime_speakers(results: list[tuple[int, bool]]) -> int:
    """The largest K such that it and every smaller K tried kept up (0 if K=1 did not)."""
    best = 0
    for k, ok in sorted(results):
        if not ok:
            break
        best = k
    return best


# -- measurement -------------------------------------------------------------------------------


@dataclass
class Clip:
    name: str
    audio: np.ndarray
    reference: str
    words: list[str]
    ends: list[float]  # end of each reference word, seconds into the clip

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass
class Track:
    """What one speaker says: clips back to back, with the reference words and their end times."""

    name: str
    audio: np.ndarray
    reference: str
    words: list[str]
    ends: list[float]

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def make_track(clips: list[Clip], seconds: float, rotate: int = 0) -> Track:
    """The clips (starting at ``rotate``) looped until at least ``seconds`` long (at least one clip)."""
    order = clips[rotate % len(clips):] + clips[: rotate % len(clips)]
    parts: list[np.ndarray] = []
    names: list[str] = []
    refs: list[str] = []
    ws: list[str] = []
    ends: list[float] = []
    offset = 0.0
    i = 0
    while not parts or offset < seconds:
        clip = order[i % len(order)]
        if parts:
            parts.append(np.zeros(int(CLIP_GAP * SAMPLE_RATE), np.float32))
            offset += CLIP_GAP
        parts.append(clip.audio)
        names.append(clip.name)
        refs.append(clip.reference)
        ws += clip.words
        ends += [offset + e for e in clip.ends]
        offset += clip.seconds
        i += 1
    return Track("+".join(names), np.concatenate(parts), " ".join(refs), ws, ends)


@dataclass(frozen=True)
class Variant:
    """A labelled set of pipeline options to compare in the same run (``--variant``)."""

    label: str
    stream: dict[str, Any] = field(default_factory=dict)  # SpeakerStream keyword arguments
    scheduler: dict[str, Any] = field(default_factory=dict)  # AsrScheduler keyword arguments
    drafts: bool = True  # partials decoded as drafts (the hub's way), or as full decodes
    pack_finals: bool = False  # finals waiting together decoded in one window (AsrScheduler's ``pack``)

    def options(self) -> dict[str, Any]:
        return {**self.stream, **self.scheduler, "drafts": self.drafts, "pack_finals": self.pack_finals}


def parse_variant(text: str) -> Variant:
    """``LABEL`` (the defaults) or ``LABEL:NAME=VALUE,NAME=VALUE``; each NAME is a keyword of
    SpeakerStream or AsrScheduler, or ``drafts`` (False: partials decoded in full, as before
    drafts), or ``pack_finals`` (True: the scheduler packs waiting finals into one window; with
    ``pack_behind=S`` only while the worker is behind), each
    VALUE a Python literal (else a string; ``true``/``false`` too)."""
    label, _, spec = text.partition(":")
    stream_names = set(inspect.signature(SpeakerStream).parameters)
    scheduler_names = set(inspect.signature(AsrScheduler).parameters) - {"transcribe", "slots", "history", "draft",
                                                                          "pack", "clock"}
    stream: dict[str, Any] = {}
    scheduler: dict[str, Any] = {}
    drafts = True
    pack_finals = False
    for item in filter(None, spec.split(",")):
        name, _, raw = item.partition("=")
        try:
            value = ast.literal_eval({"true": "True", "false": "False"}.get(raw, raw))
        except (ValueError, SyntaxError):
            value = raw
        if name == "drafts":
            drafts = bool(value)
        elif name == "pack_finals":
            pack_finals = bool(value)
        elif name in stream_names:
            stream[name] = value
        elif name in scheduler_names:
            scheduler[name] = value
        else:
            raise SystemExit(f"--variant {text!r}: {name!r} is not an option of SpeakerStream or AsrScheduler")
    return Variant(label or "default", stream, scheduler, drafts, pack_finals)


@dataclass
class StreamRun:
    track: Track
    started: float  # monotonic time of audio sample 0
    events: list[tuple[float, CaptionEvent]] = field(default_factory=list)
    feed_lag_max: float = 0.0  # how far the feeder fell behind its real-time schedule

    def latencies(self, finals_only: bool) -> list[float | None]:
        """Per reference word: seconds from its end in the audio to its first display (None: never)."""
        firsts = first_cover_times(self.track.words, caption_timeline(self.events, True))
        if not finals_only:  # shown by a partial, or else by a final
            shown = first_cover_times(self.track.words, caption_timeline(self.events, False))
            firsts = [min((t for t in pair if t is not None), default=None) for pair in zip(shown, firsts)]
        return [None if t is None else round(t - (self.started + end), 3) for t, end in zip(firsts, self.track.ends)]

    def first_shown(self) -> list[tuple[float, JobKind] | None]:
        """Per reference word: when the captions first showed it, and whether a partial or a final did."""
        finals = first_cover_times(self.track.words, caption_timeline(self.events, True))
        shown = first_cover_times(self.track.words, caption_timeline(self.events, False))
        out: list[tuple[float, JobKind] | None] = []
        for s, f in zip(shown, finals):
            t = min((x for x in (s, f) if x is not None), default=None)
            out.append(None if t is None else (t, JobKind.FINAL if f is not None and f <= t else JobKind.PARTIAL))
        return out

    def utterance_lags(self) -> list[float]:
        """Per final caption: seconds from the end of its utterance's audio to its arrival."""
        return [round(t - (self.started + ev.end), 3) for t, ev in self.events if ev.final]

    def text(self) -> str:
        return finals_text(self.events)


async def stream_track(
    scheduler: AsrScheduler, vad_executor: ThreadPoolExecutor, track: Track, start_at: float,
    chunk: float, tail: float, options: dict[str, Any] | None = None,
) -> StreamRun:
    """Plays ``track`` into a SpeakerStream in real time from ``start_at`` (monotonic)."""
    loop = asyncio.get_running_loop()
    vad = await loop.run_in_executor(vad_executor, StreamingVad)
    run = StreamRun(track, start_at)

    async def on_caption(event: CaptionEvent) -> None:
        run.events.append((time.monotonic(), event))

    async def run_vad(x: np.ndarray) -> list[float]:
        return await loop.run_in_executor(vad_executor, vad.process, x)

    stream = SpeakerStream(scheduler, run_vad, on_caption, language="en", **(options or {}))
    step = int(round(chunk * SAMPLE_RATE))
    audio = np.concatenate([track.audio, np.zeros(int(tail * SAMPLE_RATE), np.float32)])
    for i in range(0, len(audio), step):
        due = start_at + (i + step) / SAMPLE_RATE  # the chunk is complete, as from a microphone
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            run.feed_lag_max = max(run.feed_lag_max, -delay)
        await stream.feed(audio[i : i + step])
    await stream.close(flush=True)
    return run


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all threads (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def hardware() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "machine": platform.machine()}


def load_clips(speech_dir: Path, names: list[str] | None) -> list[Clip]:
    refs = read_references(speech_dir / "README.md")
    chosen = names or list(refs)
    missing = [n for n in chosen if n not in refs or not (speech_dir / n).is_file()]
    if missing:
        raise SystemExit(f"no clip or reference transcript for {', '.join(missing)} in {speech_dir}")
    return [Clip(n, read_wav(str(speech_dir / n)), refs[n], words(refs[n]), []) for n in chosen]


def time_reference_words(clips: list[Clip], model_dir: Path, threads: int) -> None:
    """Fills each clip's word end times from an offline word-timestamped transcription."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
    for clip in clips:
        segments, _ = model.transcribe(
            clip.audio, language="en" if model.model.is_multilingual else None, word_timestamps=True,
            condition_on_previous_text=False, vad_filter=False,
        )
        timed = [(w, float(word.end)) for s in segments for word in (s.words or []) for w in words(word.word)]
        clip.ends = reference_end_times(clip.words, timed, clip.seconds)


class Model:
    """One speech model's worker pool plus the worker PIDs (to read their CPU time)."""

    def __init__(self, name: str, path: Path, workers: int, threads: int, executor: ThreadPoolExecutor) -> None:
        self.name = name
        self.path = path
        self.executor = executor  # runs the VAD of every stream, as the service's one VAD thread
        self.pool: WorkerPool = asr_pool(AsrSpec("faster-whisper", str(path), device="cpu",
                                                 compute_type="int8", threads=threads), workers)
        self.pids: list[int] = []

    async def start(self) -> None:
        await self.pool.start(_asr_info)
        self.pids = [int((await w.call(_asr_info))["pid"]) for w in self.pool.workers]

    def cpu(self) -> float:
        return sum(proc_cpu_seconds(p) for p in self.pids)

    def scheduler(self, variant: Variant) -> AsrScheduler:
        pool = self.pool
        def draft(a: np.ndarray, lang: Any, p: str | None) -> Awaitable[Transcript]:
            return pool.call(_transcribe_draft, a, lang, p)

        def pack(audios: list[np.ndarray], lang: str) -> Awaitable[list[Transcript]]:
            return pool.call(_transcribe_packed, audios, lang)

        return AsrScheduler(lambda a, lang, p: pool.call(_transcribe, a, lang, p), slots=pool.size,
                            history=100_000, draft=draft if variant.drafts else None,
                            pack=pack if variant.pack_finals else None, **variant.scheduler)


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def latency_profile(runs: list[StreamRun], jobs: list[JobTiming]) -> dict[str, Any]:
    """Where one speaker's caption latency goes (the runs were streamed one at a time, so each
    caption comes from the last decode that ended before it).

    A word first shown by a partial waited ``wait`` from its end in the audio until a decode
    that included it was asked for (the partial interval), then ``missed`` while decodes that
    included it did not show it yet, then ``queued`` for a worker, ``decode`` and ``deliver``
    (decode to caption). A final caption waited ``detect`` from the end of its utterance's audio
    (the pause that ends an utterance, less the 0.2 s of it kept), then ``queued``, ``decode``.
    """
    jobs = sorted(jobs, key=lambda j: j.ended)
    ended = [j.ended for j in jobs]
    created = sorted(j.created for j in jobs)
    words: dict[str, list[float]] = {k: [] for k in ("wait", "missed", "queued", "decode", "deliver")}
    finals: dict[str, list[float]] = {k: [] for k in ("detect", "queued", "decode", "deliver")}
    shown_by = dict.fromkeys(map(str, JobKind), 0)

    def decoded_before(t: float, kind: JobKind | None = None) -> JobTiming | None:
        i = bisect.bisect_right(ended, t + 1e-6)
        while i > 0:
            i -= 1
            if kind is None or jobs[i].kind is kind:
                return jobs[i]
        return None

    for run in runs:
        for end, shown in zip(run.track.ends, run.first_shown()):
            if shown is None:
                continue
            t, kind = shown
            shown_by[str(kind)] += 1
            job = decoded_before(t)
            if kind is JobKind.FINAL or job is None:
                continue
            said = run.started + end
            i = bisect.bisect_left(created, said)
            first = created[i] if i < len(created) else job.created
            first = min(first, job.created)
            words["wait"].append(first - said)
            words["missed"].append(job.created - first)
            words["queued"].append(job.queued)
            words["decode"].append(job.decode)
            words["deliver"].append(t - job.ended)
        for t, ev in run.events:
            job = decoded_before(t, JobKind.FINAL) if ev.final else None
            if job is None:
                continue
            finals["detect"].append(job.created - (run.started + ev.end))
            finals["queued"].append(job.queued)
            finals["decode"].append(job.decode)
            finals["deliver"].append(t - job.ended)

    def parts(d: dict[str, list[float]]) -> dict[str, dict[str, float | None]]:
        return {k: {"p50": pct(v, 50), "mean": round(float(np.mean(v)), 3) if v else None} for k, v in d.items()}

    return {"partial_words": parts(words), "finals": parts(finals), "words_first_shown_by": shown_by,
            "decode_seconds_by_audio": [[round(j.audio_seconds, 2), round(j.decode, 3), str(j.kind)] for j in jobs]}


async def measure_model(
    model: Model, clips: list[Clip], args: argparse.Namespace, variants: list[Variant]
) -> dict[str, dict[str, Any]]:
    """Every variant's figures (by label). The variants take turns clip by clip and K by K, so a
    change in the machine's load (it is shared) falls on all of them alike."""
    await model.start()
    for _ in model.pool.workers:  # warm-up: the first call of a fresh worker is slower
        await model.pool.call(_transcribe, clips[0].audio[: 2 * SAMPLE_RATE], "en", None)
    # offline transcription of each whole clip
    offline: dict[str, tuple[str, float]] = {}
    for clip in clips:
        t = time.perf_counter()
        result = await model.pool.call(_transcribe, clip.audio, "en", None)
        offline[clip.name] = (result.text, time.perf_counter() - t)
    progress(f"[{model.name}] offline transcription done")

    # 1-3: each clip streamed in real time, one after the other
    schedulers = {v.label: model.scheduler(v) for v in variants}
    cpu = dict.fromkeys(schedulers, 0.0)
    runs: dict[str, list[StreamRun]] = {v.label: [] for v in variants}
    for clip in clips:
        for v in variants:
            track = Track(clip.name, clip.audio, clip.reference, clip.words, clip.ends)
            cpu0 = model.cpu()
            start = time.monotonic() + 0.2
            runs[v.label].append(await stream_track(schedulers[v.label], model.executor, track, start,
                                                    args.chunk, args.tail, v.stream))
            cpu[v.label] += model.cpu() - cpu0
            progress(f"[{model.name}/{v.label}] streamed {clip.name}")
    out: dict[str, dict[str, Any]] = {v.label: {"path": str(model.path), "options": v.options()}
                                      for v in variants}
    for v in variants:
        scheduler = schedulers[v.label]
        out[v.label].update(single_speaker(runs[v.label], clips, offline, scheduler, cpu[v.label]))
        await scheduler.close()

    # 4: K simultaneous speakers sharing one scheduler
    speakers: dict[str, list[dict[str, Any]]] = {v.label: [] for v in variants}
    for k in args.speakers:
        for v in variants:
            row = await simultaneous(model, clips, args, v, k)
            speakers[v.label].append(row)
            progress(f"[{model.name}/{v.label}] K={k}: final p95 {row['final']['p95']} s, utterance lag p95 "
                     f"{row['utterance_lag']['p95']} s, dropped {row['finals_dropped']}, keeps up: {row['keeps_up']}")
    for v in variants:
        rows = speakers[v.label]
        out[v.label]["speakers"] = rows
        out[v.label]["max_speakers_realtime"] = max_realtime_speakers([(r["k"], r["keeps_up"]) for r in rows])
        out[v.label]["max_speakers_realtime_by_utterance_lag"] = max_realtime_speakers(
            [(r["k"], r["keeps_up_by_utterance_lag"]) for r in rows])
    return out


def single_speaker(
    runs: list[StreamRun], clips: list[Clip], offline: dict[str, tuple[str, float]], scheduler: AsrScheduler,
    worker_cpu: float,
) -> dict[str, Any]:
    """Sections 1-3 and the latency profile for one variant's runs (one per clip)."""
    stats = scheduler.stats()
    jobs = list(scheduler.history)
    partial_all: list[float] = []
    final_all: list[float] = []
    lags_all: list[float] = []
    per_clip_latency = {}
    wer_rows: list[dict[str, Any]] = []
    total_words = sum(len(c.words) for c in clips)
    for run, clip in zip(runs, clips):
        partial = [x for x in run.latencies(finals_only=False) if x is not None]
        final = [x for x in run.latencies(finals_only=True) if x is not None]
        partial_all += partial
        final_all += final
        lags_all += run.utterance_lags()
        per_clip_latency[clip.name] = {"partial": summary(partial, len(clip.words)),
                                       "final": summary(final, len(clip.words)),
                                       "feed_lag_max_s": round(run.feed_lag_max, 3)}
        text, _ = offline[clip.name]
        wer_rows.append({"clip": clip.name, "words": len(clip.words),
                         "streaming": round(wer(clip.reference, run.text()), 4),
                         "offline": round(wer(clip.reference, text), 4),
                         "streaming_text": run.text(), "offline_text": text})
    audio_s = sum(c.seconds for c in clips)
    compute = {str(kind): sum(j.decode for j in jobs if j.kind is kind) for kind in JobKind}
    compute_s = sum(compute.values())
    return {
        "latency": {
            "partial": summary(partial_all, total_words),
            "final": summary(final_all, total_words),
            "utterance_lag": {"p50": pct(lags_all, 50), "p95": pct(lags_all, 95), "finals": len(lags_all)},
            "per_clip": per_clip_latency,
            "samples": {"partial": sorted(partial_all), "final": sorted(final_all)},
        },
        "profile": latency_profile(runs, jobs),
        "wer": {
            "per_clip": wer_rows,
            "overall": {
                "streaming": weighted_wer([(r["words"], r["streaming"]) for r in wer_rows]),
                "offline": weighted_wer([(r["words"], r["offline"]) for r in wer_rows]),
            },
        },
        "rtf": {
            "audio_s": round(audio_s, 2),
            "compute_s": round(compute_s, 3),
            "rtf": round(compute_s / audio_s, 4),
            "worker_cpu_s": round(worker_cpu, 2),
            "worker_cpu_per_audio_s": round(worker_cpu / audio_s, 4),
            "calls": dict(scheduler.calls),
            "compute_by_kind_s": {k: round(v, 3) for k, v in compute.items()},
            "partials_skipped": stats["partials_skipped"],
            "partials_shed": stats["partials_shed"],
            "finals_dropped": stats["finals_dropped"],
            "crashes": stats["crashes"],
            "offline_compute_s": round(sum(s for _, s in offline.values()), 3),
            "offline_rtf": round(sum(s for _, s in offline.values()) / audio_s, 4),
        },
    }


async def simultaneous(model: Model, clips: list[Clip], args: argparse.Namespace, v: Variant, k: int) -> dict[str, Any]:
    """Section 4 for one K: K looped real-time speakers share one scheduler."""
    tracks = [make_track(clips, args.seconds, rotate=j) for j in range(k)]
    scheduler = model.scheduler(v)
    cpu0 = model.cpu()
    t0 = time.monotonic() + 0.5
    runs = await asyncio.gather(*(
        stream_track(scheduler, model.executor, tr, t0 + j * args.stagger, args.chunk, args.tail, v.stream)
        for j, tr in enumerate(tracks)
    ))
    worker_cpu = model.cpu() - cpu0
    stats = scheduler.stats()
    await scheduler.close()
    final = [x for r in runs for x in r.latencies(finals_only=True) if x is not None]
    partial = [x for r in runs for x in r.latencies(finals_only=False) if x is not None]
    n_words = sum(len(t.words) for t in tracks)
    audio_s = sum(t.seconds for t in tracks)
    fin = summary(final, n_words)
    lags = [x for r in runs for x in r.utterance_lags()]
    lag = {"p50": pct(lags, 50), "p95": pct(lags, 95), "finals": len(lags)}
    return {
        "k": k,
        "load_average": [round(x, 2) for x in os.getloadavg()],  # (at the end of this K's turn)
        "seconds_per_speaker": round(float(np.mean([t.seconds for t in tracks])), 2),
        "final": fin,
        "partial": summary(partial, n_words),
        "partials_skipped": stats["partials_skipped"],
        "partials_shed": stats["partials_shed"],
        "finals_dropped": stats["finals_dropped"],
        "finals_packed": stats["finals_packed"],
        "packed_calls": stats["packed_calls"],
        "behind_spells": stats["behind_spells"],  # (``pack_behind``: times the worker fell behind)
        "calls": dict(scheduler.calls),
        "queued_p50": {str(kind): stats[f"{kind}_queued_p50"] for kind in JobKind},
        "decode_p50": {str(kind): stats[f"{kind}_decode_p50"] for kind in JobKind},
        "rtf": round(scheduler.compute_seconds / audio_s, 4),  # (a packed call counted once)
        "worker_cpu_per_audio_s": round(worker_cpu / audio_s, 4),
        "wer": weighted_wer([(len(t.words), wer(t.reference, r.text())) for t, r in zip(tracks, runs)]),
        "feed_lag_max_s": round(max(r.feed_lag_max for r in runs), 3),
        "utterance_lag": lag,
        "keeps_up": keeps_up(fin["p95"], int(stats["finals_dropped"]), args.keep_up_p95),
        "keeps_up_by_utterance_lag": keeps_up(lag["p95"], int(stats["finals_dropped"]), args.keep_up_p95),
    }


def openai_whisper_checkpoints(models_dir: Path) -> tuple[str | None, dict[str, Path]]:
    """(why not, {model name: checkpoint}) for openai-whisper on this machine, offline."""
    try:
        import whisper  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return "openai-whisper is not installed", {}
    places = [models_dir / "whisper", Path.home() / ".cache" / "whisper"]
    found = {p.stem: p for d in places if d.is_dir() for p in sorted(d.glob("*.pt"))}
    if not found:
        return f"no .pt checkpoints in {', '.join(str(p) for p in places)}", {}
    return None, found


async def compare_openai_whisper(
    models: dict[str, dict[str, Any]], clip: Clip, models_dir: Path, threads: int
) -> dict[str, Any]:
    why, checkpoints = openai_whisper_checkpoints(models_dir)
    wanted = {name: p for name, p in checkpoints.items() if name in models}
    if why is not None or not wanted:
        detail = why or f"no checkpoint for {', '.join(models)} (found: {', '.join(checkpoints)})"
        return {"measured": False, "status": NO_OPENAI, "detail": detail}
    rows = []
    for name, ckpt in wanted.items():
        pool = asr_pool(AsrSpec("openai-whisper", str(ckpt), device="cpu", threads=threads))
        try:
            await pool.start(_asr_info)
            await pool.call(_transcribe, clip.audio[: SAMPLE_RATE], "en", None)  # warm-up
            t = time.perf_counter()
            result = await pool.call(_transcribe, clip.audio, "en", None)
            seconds = time.perf_counter() - t
        finally:
            pool.close()
        fw = next(r for r in models[name]["wer"]["per_clip"] if r["clip"] == clip.name)
        rows.append({"model": name, "clip": clip.name, "checkpoint": str(ckpt),
                     "openai_whisper": {"rtf": round(seconds / clip.seconds, 4),
                                        "wer": round(wer(clip.reference, result.text), 4), "text": result.text},
                     "faster_whisper": {"wer": fw["offline"]}})
    return {"measured": True, "rows": rows}


# -- output --------------------------------------------------------------------------------------


def print_tables(result: dict[str, Any]) -> None:
    models = result["models"]
    print("\n1. caption latency, seconds from the end of a word in the audio to its first display")
    print("   (utterance lag: from the end of an utterance's audio to its final caption)")
    print(f"{'model':10} {'partial p50':>11} {'p95':>6} {'final p50':>9} {'p95':>6} {'utt lag p50':>11} {'p95':>6} "
          f"{'words shown partial/final':>26}")
    for name, m in models.items():
        p, f, u = m["latency"]["partial"], m["latency"]["final"], m["latency"]["utterance_lag"]
        shown = f"{p['words']}/{p['words_total']} {f['words']}/{f['words_total']}"
        print(f"{name:10} {p['p50']!s:>11} {p['p95']!s:>6} {f['p50']!s:>9} {f['p95']!s:>6} {u['p50']!s:>11} "
              f"{u['p95']!s:>6} {shown:>26}")

    print("\n1b. where single-speaker latency goes (p50 seconds; bench/captions.py latency_profile)")
    print(f"{'model':10} {'partial: wait':>13} {'missed':>6} {'queued':>6} {'decode':>6} {'deliver':>7} "
          f"{'final: detect':>13} {'queued':>6} {'decode':>6} {'shown first by partial/final':>29}")
    for name, m in models.items():
        w, f, by = m["profile"]["partial_words"], m["profile"]["finals"], m["profile"]["words_first_shown_by"]
        print(f"{name:10} {w['wait']['p50']!s:>13} {w['missed']['p50']!s:>6} {w['queued']['p50']!s:>6} "
              f"{w['decode']['p50']!s:>6} {w['deliver']['p50']!s:>7} {f['detect']['p50']!s:>13} "
              f"{f['queued']['p50']!s:>6} {f['decode']['p50']!s:>6} {by['partial']!s:>15}/{by['final']!s:<13}")

    print("\n2. WER: streamed captions (finals) vs offline whole clip, same model and decoding")
    print(f"{'model':10} {'clip':24} {'words':>5} {'streaming':>9} {'offline':>7}")
    for name, m in models.items():
        for r in m["wer"]["per_clip"]:
            print(f"{name:10} {r['clip']:24} {r['words']:>5} {r['streaming']:>9.3f} {r['offline']:>7.3f}")
        o = m["wer"]["overall"]
        print(f"{name:10} {'overall (words-weighted)':24} {'':>5} {o['streaming']:>9.3f} {o['offline']:>7.3f}")

    print("\n3. real-time factor (worker transcription seconds / audio seconds)")
    print(f"{'model':10} {'audio s':>7} {'compute s':>9} {'RTF':>6} {'cpu/audio':>9} {'partials':>8} {'finals':>6} "
          f"{'skipped':>7} {'dropped':>7} {'offline RTF':>11}")
    for name, m in models.items():
        r = m["rtf"]
        print(f"{name:10} {r['audio_s']:>7} {r['compute_s']:>9} {r['rtf']:>6.3f} {r['worker_cpu_per_audio_s']:>9.3f} "
              f"{r['calls']['partial']:>8} {r['calls']['final']:>6} {r['partials_skipped']:>7} "
              f"{r['finals_dropped']:>7} {r['offline_rtf']:>11.3f}")

    cfg = result["config"]
    print(f"\n4. simultaneous speakers ({cfg['asr_workers']} worker(s) x {cfg['asr_threads']} threads; "
          f"keeps up = final p95 < {cfg['keep_up_p95_s']} s and no final dropped)")
    print("   (utt lag p95: final caption after the end of its utterance; 'by utt lag' applies the limit to it;")
    print("   packed: finals decoded in a packed window / final decode calls)")
    print(f"{'model':10} {'K':>2} {'final p50':>9} {'p95':>6} {'utt lag p95':>11} {'skip/shed':>9} {'dropped':>7} "
          f"{'utt lag p50':>11} {'partial p50':>11} {'packed':>7} "
          f"{'RTF':>6} {'WER':>6} {'feed lag':>8} {'keeps up':>8} {'by utt lag':>10}")
    for name, m in models.items():
        for r in m["speakers"]:
            skip_shed = f"{r['partials_skipped']}/{r.get('partials_shed', 0)}"
            packed = f"{r.get('finals_packed', 0)}/{r['calls']['final']}"
            print(f"{name:10} {r['k']:>2} {r['final']['p50']!s:>9} {r['final']['p95']!s:>6} "
                  f"{r['utterance_lag']['p95']!s:>11} {skip_shed:>9} "
                  f"{r['finals_dropped']:>7} {r['utterance_lag']['p50']!s:>11} {r['partial']['p50']!s:>11} "
                  f"{packed:>7} {r['rtf']:>6.3f} {r['wer']!s:>6} {r['feed_lag_max_s']:>8} {'yes' if r['keeps_up'] else 'no':>8} "
                  f"{'yes' if r['keeps_up_by_utterance_lag'] else 'no':>10}")
        print(f"{name:10} speakers captioned in real time on this machine: {m['max_speakers_realtime']} "
              f"(by utterance lag: {m['max_speakers_realtime_by_utterance_lag']})")

    ow = result["openai_whisper"]
    print("\n5. faster-whisper vs openai-whisper")
    if not ow["measured"]:
        print(f"{ow['status']} ({ow['detail']})")
    else:
        for r in ow["rows"]:
            print(f"{r['model']:10} {r['clip']}: openai-whisper RTF {r['openai_whisper']['rtf']} "
                  f"WER {r['openai_whisper']['wer']}; faster-whisper WER {r['faster_whisper']['wer']}")


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, m) in enumerate(result["models"].items()):
        color = f"C{i}"
        for kind, style in (("partial", "--"), ("final", "-")):
            xs = m["latency"]["samples"][kind]
            if xs:
                ax1.plot(xs, np.arange(1, len(xs) + 1) / len(xs), style, color=color, label=f"{name} {kind}")
        ks = [r["k"] for r in m["speakers"] if r["final"]["p95"] is not None]
        p95 = [r["final"]["p95"] for r in m["speakers"] if r["final"]["p95"] is not None]
        ax2.plot(ks, p95, "o-", color=color, label=name)
    ax1.set_xlabel("caption latency after the word ends (s)")
    ax1.set_ylabel("fraction of words")
    ax1.set_title("single speaker, real time")
    limit = result["config"]["keep_up_p95_s"]
    ax2.axhline(limit, color="grey", linestyle=":", label=f"{limit} s")
    ks = sorted({r["k"] for m in result["models"].values() for r in m["speakers"]})
    if ks:
        ax2.set_xticks(ks)
    ax2.set_xlabel("simultaneous speakers K")
    ax2.set_ylabel("final caption latency p95 (s)")
    ax2.set_title(f"{result['config']['asr_workers']} worker(s) x {result['config']['asr_threads']} threads")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("unionhub live captions (faster-whisper int8, CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny.en,base", help="speech model names or directories")
    parser.add_argument("--clips", default="", help="clip files (default: every clip in the README)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="audio per speaker in the simultaneous-speakers test (default 30; --quick: one clip)")
    parser.add_argument("--speakers", default="1,2,3,4,6", help="numbers of simultaneous speakers K")
    parser.add_argument("--stagger", type=float, default=0.37, help="seconds between speakers' starts")
    parser.add_argument("--asr-workers", type=int, default=1)
    parser.add_argument("--asr-threads", type=int, default=2)
    parser.add_argument("--chunk", type=float, default=0.02, help="seconds of audio per feed")
    parser.add_argument("--tail", type=float, default=1.5, help="seconds of silence after each track")
    parser.add_argument("--keep-up-p95", type=float, default=3.0, help="final p95 latency limit (s)")
    parser.add_argument("--timing-model", default="auto",
                        help="model for reference word times (default: base if measured, else the first model)")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "data" / "models")
    parser.add_argument("--speech-dir", type=Path, default=ROOT.parent / "shared" / "data" / "speech")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--name", default="captions")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny.en, one clip, K=1")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL[:NAME=VALUE,...]",
                        help="pipeline options to measure, e.g. 'short:partial_interval=0.4' (SpeakerStream or "
                             "AsrScheduler keywords); repeat to compare variants in the same run, taking turns "
                             "clip by clip (default: one variant, the defaults)")
    args = parser.parse_args(argv)
    args.variants = [parse_variant(v) for v in args.variant] or [Variant("default")]
    if len({v.label for v in args.variants}) != len(args.variants):
        parser.error("--variant labels must differ")
    args.models = [m for m in args.models.split(",") if m]
    args.clips = [c for c in args.clips.split(",") if c]
    args.speakers = sorted({int(k) for k in args.speakers.split(",") if k})
    if args.quick:
        args.models = ["tiny.en"]
        args.clips = args.clips[:1] or ["two_speakers_left.wav"]
        args.speakers = [1]
        if args.seconds is None:
            args.seconds = 0.0
    if args.seconds is None:
        args.seconds = 30.0
    if args.timing_model == "auto":
        args.timing_model = "base" if "base" in args.models else args.models[0]
    return args


async def main() -> None:
    args = parse_args()
    began = time.monotonic()
    load_start = os.getloadavg()
    dirs = ModelDirs(args.models_dir)
    paths: dict[str, Path] = {}
    for name in args.models:
        path = resolve_asr_model(name, dirs)
        if path is None:
            raise SystemExit(f"speech model {name!r} is not installed (see `unionhub models install --asr {name}`)")
        paths[name] = path
    timing_path = paths.get(args.timing_model) or resolve_asr_model(args.timing_model, dirs)
    if timing_path is None:
        raise SystemExit(f"timing model {args.timing_model!r} is not installed")

    clips = load_clips(args.speech_dir, args.clips)
    await asyncio.to_thread(time_reference_words, clips, timing_path, args.asr_threads)
    progress(f"reference word times from {args.timing_model} ({time.monotonic() - began:.1f} s)")

    vad_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
    by_variant: dict[str, dict[str, dict[str, Any]]] = {v.label: {} for v in args.variants}
    for name, path in paths.items():
        model = Model(name, path, args.asr_workers, args.asr_threads, vad_executor)
        try:
            for label, figures in (await measure_model(model, clips, args, args.variants)).items():
                by_variant[label][name] = figures
        finally:
            model.pool.close()
    vad_executor.shutdown(wait=False)
    results = by_variant[args.variants[0].label]
    openai = await compare_openai_whisper(results, clips[0], args.models_dir, args.asr_threads)

    result = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": hardware(),
        "load_average": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]},
        "config": {
            "backend": "faster-whisper", "device": "cpu", "compute_type": "int8",
            "asr_workers": args.asr_workers, "asr_threads": args.asr_threads, "chunk_s": args.chunk,
            "tail_silence_s": args.tail, "seconds_per_speaker": args.seconds, "speakers": args.speakers,
            "stagger_s": args.stagger, "keep_up_p95_s": args.keep_up_p95, "quick": args.quick,
            "timing_model": args.timing_model,
            "reference_times": "word end times from an offline faster-whisper word_timestamps pass, "
                               "aligned to the README transcripts",
        },
        "clips": [{"name": c.name, "seconds": round(c.seconds, 2), "reference": c.reference,
                   "word_ends": c.ends} for c in clips],
        "models": results,  # the first variant's
        "variants": {v.label: {"options": v.options(), "models": by_variant[v.label]}
                     for v in args.variants},
        "openai_whisper": openai,
        "elapsed_s": round(time.monotonic() - began, 1),
    }
    for v in args.variants:
        if len(args.variants) > 1:
            print(f"\n=== variant {v.label}: {json.dumps(v.options())}")
        print_tables({**result, "models": by_variant[v.label]})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / f"{args.name}.png")
    print(f"\nwrote {args.out / (args.name + '.json')} and .png ({result['elapsed_s']} s)")


if __name__ == "__main__":
    asyncio.run(main())
