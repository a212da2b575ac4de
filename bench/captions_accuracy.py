"""Live-caption accuracy per language: the hub's streaming pipeline vs the same model offline.

Every clip of ``MANIFEST.tsv`` (real speech, 10 languages) goes through the hub's own caption
pipeline — streaming Silero VAD → :class:`~captioning.stream.SpeakerStream` (partials, finals,
prompts) → :class:`~captioning.scheduler.AsrScheduler` → a real ASR worker process — in two shapes:

* ``turns``: one speaker per language reads its clips with 1.5 s of silence between them;
* ``loop``: the same clips with their leading/trailing silence cut off, concatenated with no gap
  (a looping fake microphone: speech that never pauses between turns).

The finals' WER (CER for ja/zh/ko) is compared with the same model run offline on each whole clip
(faster-whisper ``transcribe``, greedy: ``beam_size=1``, temperature 0, its default 30 s window).
Text is normalised (case, punctuation) before scoring.
For the loop, offline also decodes the very audio the loop streams — each trimmed clip alone
(``offline_trimmed``) and the whole track as one recording (``offline_track``) — since offline's
own words move when a clip's silence is cut away (``bench/offline_spread.py``).

Audio is fed as fast as the pipeline takes it, not in real time: speed changes nothing the finals
depend on. Utterances end by counting VAD windows of the audio (samples, not wall-clock), a
run-on utterance's cuts are decided from its first ``max_utterance`` seconds whenever their decode
comes back (``--realtime`` feeds in real time to check: the same finals), finals run strictly in
order and the language is the speaker's profile language. The pipeline's other wall-clock decisions are
skipping stale *partials* and dropping finals once 90 s of audio is queued; the feeder waits while
finals are queued so none is ever dropped (checked: ``finals_dropped`` is reported and must be 0).

    .venv/bin/python bench/captions_accuracy.py --model base --out docs/bench
    .venv/bin/python bench/captions_accuracy.py --model base --langs en,es --shapes loop
    .venv/bin/python bench/captions_accuracy.py --model base --shapes loop \
        --variant default --variant max_utterance=14.5 --variant max_utterance=15.5

``--variant`` measures several SpeakerStream settings in one run, language by language, against
the same offline texts: the no-gap figures move by a few points with where the cuts fall, so a
change is judged against that spread (e.g. ``max_utterance`` ±0.5 s), not one run.

Writes <out>/captions_accuracy.json (with each clip's offline text, to read the differences).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from captioning.asr import AsrSpec  # noqa: E402
from captioning.audio import SAMPLE_RATE, read_wav  # noqa: E402
from captioning.language import SpokenLanguage  # noqa: E402
from captioning.metrics import error_counts  # noqa: E402
from captioning.models import ModelDirs, resolve_asr_model  # noqa: E402
from captioning.scheduler import AsrScheduler  # noqa: E402
from captioning.stream import CaptionEvent, SpeakerStream  # noqa: E402
from captioning.vad import WINDOW, StreamingVad  # noqa: E402
from captioning.workers import WorkerPool, _asr_info, _transcribe, asr_pool  # noqa: E402

SPEECH = ROOT.parent / "shared" / "data" / "speech" / "multilingual"
CHARACTER_LANGS = {"ja", "zh", "ko"}  # no spaces between words: score characters
PAUSE = 1.5  # seconds of silence between turns (more than the stream's min_silence)
SHAPES = ("turns", "loop")


@dataclass
class Clip:
    name: str
    lang: str
    reference: str
    audio: np.ndarray

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def load_manifest(speech_dir: Path = SPEECH, langs: Iterable[str] | None = None,
                  names: Iterable[str] | None = None) -> list[Clip]:
    """Clips from ``MANIFEST.tsv`` (file, lang, seconds, reference transcript, ...)."""
    wanted_langs = set(langs) if langs else None
    wanted_names = set(names) if names else None
    clips = []
    with (speech_dir / "MANIFEST.tsv").open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if wanted_langs is not None and row["lang"] not in wanted_langs:
                continue
            if wanted_names is not None and row["file"] not in wanted_names:
                continue
            clips.append(Clip(row["file"], row["lang"], row["reference_transcript"],
                              read_wav(str(speech_dir / row["file"]))))
    return clips


def by_language(clips: list[Clip]) -> dict[str, list[Clip]]:
    out: dict[str, list[Clip]] = {}
    for clip in clips:
        out.setdefault(clip.lang, []).append(clip)
    return out


def trim_silence(audio: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """The clip from its first to its last speech window (Silero), keeping ``margin`` s around."""
    probs = StreamingVad().process(audio)
    speech = [i for i, p in enumerate(probs) if p >= 0.5]
    if not speech:
        return audio
    pad = int(margin * SAMPLE_RATE)
    start = max(0, speech[0] * WINDOW - pad)
    end = min(len(audio), (speech[-1] + 1) * WINDOW + pad)
    return audio[start:end]


def build_track(clips: list[Clip], shape: str) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One speaker's audio for ``shape`` and each clip's (start, end) media seconds in it."""
    parts: list[np.ndarray] = []
    spans: list[tuple[float, float]] = []
    position = 0
    silence = np.zeros(int(PAUSE * SAMPLE_RATE), np.float32)
    for clip in clips:
        audio = clip.audio if shape == "turns" else trim_silence(clip.audio)
        if shape == "turns":
            parts.append(silence)
            position += len(silence)
        parts.append(audio)
        spans.append((position / SAMPLE_RATE, (position + len(audio)) / SAMPLE_RATE))
        position += len(audio)
    parts.append(silence)  # the speaker stops: the last utterance ends
    return np.concatenate(parts), spans


def score(lang: str, references: list[str], hypotheses: list[str]) -> tuple[int, int]:
    """(errors, reference units) of the hypotheses against the references, summed."""
    errors = units = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        e, n = error_counts(ref, hyp, characters=lang in CHARACTER_LANGS)
        errors += e
        units += n
    return errors, units


def rate(errors: int, units: int) -> float:
    return round(100.0 * errors / units, 2) if units else 0.0


# -- offline: the same model, whole clips -------------------------------------------------------


@dataclass
class Offline:
    """The same model offline: each whole clip (the goal's reference), and for the no-gap loop
    the very audio it streams — each trimmed clip alone, and the loop's track as one recording
    (Whisper's own long-form decoding) — because offline's words move too with such changes."""

    whole: dict[str, str]  # clip name -> text
    trimmed: dict[str, str]  # clip name -> text
    track: dict[str, str]  # language -> the loop track's text


def offline_decoder(model_dir: Path, threads: int) -> Callable[..., str]:
    """``decode(audio, lang, beam=1)``: faster-whisper as an offline user would run it (greedy
    unless ``beam`` says otherwise: temperature 0, its 30 s windows, no VAD filter)."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
    multilingual = model.model.is_multilingual

    def decode(audio: np.ndarray, lang: str, beam: int = 1) -> str:
        segments, _ = model.transcribe(
            audio, language=lang if multilingual else "en", beam_size=beam, best_of=1,
            temperature=0.0, vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    return decode


def transcribe_offline(model_dir: Path, clips: list[Clip], threads: int, loop: bool = False) -> Offline:
    """Each whole clip offline (greedy); ``loop``: the loop's audio too."""
    decode = offline_decoder(model_dir, threads)
    out = Offline({c.name: decode(c.audio, c.lang) for c in clips}, {}, {})
    if loop:
        out.trimmed = {c.name: decode(trim_silence(c.audio), c.lang) for c in clips}
        out.track = {lang: decode(build_track(group, "loop")[0], lang) for lang, group in by_language(clips).items()}
    return out


# -- streaming: the hub's pipeline ------------------------------------------------------------


@dataclass
class StreamRun:
    finals: list[CaptionEvent]
    finals_dropped: int
    compute_seconds: float
    partial_calls: int
    final_calls: int

    def text_between(self, start: float, end: float) -> str:
        """Finals whose middle falls in [start, end) (a turn's captions)."""
        return " ".join(e.text for e in self.finals if start <= (e.start + e.end) / 2 < end)

    def text(self) -> str:
        return " ".join(e.text for e in self.finals)


async def stream_audio(pool: WorkerPool, audio: np.ndarray, language: str, chunk: float = 0.1,
                       realtime: bool = False, **stream_options: Any) -> StreamRun:
    """``audio`` through a fresh SpeakerStream + AsrScheduler on ``pool``, as fast as it keeps up
    (or in real time)."""

    async def transcribe(x: np.ndarray, lang: SpokenLanguage, prompt: str | None) -> Any:
        return await pool.call(_transcribe, x, lang, prompt)

    scheduler = AsrScheduler(transcribe, slots=pool.size)
    vad = StreamingVad()
    finals: list[CaptionEvent] = []

    async def on_caption(event: CaptionEvent) -> None:
        if event.final:
            finals.append(event)

    async def run_vad(x: np.ndarray) -> list[float]:
        return vad.process(x)  # in-line: nothing else shares this loop

    stream = SpeakerStream(scheduler, run_vad, on_caption, language=language, **stream_options)
    step = int(chunk * SAMPLE_RATE)
    for i in range(0, len(audio), step):
        await stream.feed(audio[i : i + step])
        while scheduler.pending > 1:  # backpressure: never near the pending-audio cap
            await asyncio.sleep(0.005)
        await asyncio.sleep(step / SAMPLE_RATE if realtime else 0)
    await stream.close(flush=True)
    stats = scheduler.stats()
    await scheduler.close()
    return StreamRun(finals, int(stats["finals_dropped"]), float(stats["compute_seconds"]),
                     int(stats["partial_calls"]), int(stats["final_calls"]))


async def start_pool(model_dir: Path, threads: int) -> WorkerPool:
    pool = asr_pool(AsrSpec("faster-whisper", str(model_dir), threads=threads), 1)
    await pool.start(_asr_info)
    await pool.call(_transcribe, np.zeros(SAMPLE_RATE, np.float32), "en", None)  # warm up
    return pool


async def measure_language(pool: WorkerPool, clips: list[Clip], offline: Offline, shape: str,
                           realtime: bool = False, **stream_options: Any) -> dict[str, Any]:
    """Streaming vs offline error rate for one language's clips in one shape."""
    lang = clips[0].lang
    audio, spans = build_track(clips, shape)
    started = time.monotonic()
    run = await stream_audio(pool, audio, lang, realtime=realtime, **stream_options)
    elapsed = time.monotonic() - started
    refs = [c.reference for c in clips]
    off_errors, units = score(lang, refs, [offline.whole[c.name] for c in clips])
    extra: dict[str, float] = {}
    if shape == "turns":
        hyps = [run.text_between(a - PAUSE / 2, b + PAUSE / 2) for a, b in spans]
        errors, _ = score(lang, refs, hyps)
        per_clip = [
            {"clip": c.name, "streaming": rate(*score(lang, [c.reference], [h])),
             "offline": rate(*score(lang, [c.reference], [offline.whole[c.name]])), "streamed_text": h,
             "offline_text": offline.whole[c.name]}
            for c, h in zip(clips, hyps, strict=True)
        ]
    else:  # no pauses: utterances straddle clips, so score the whole run against all references
        errors, _ = score(lang, [" ".join(refs)], [run.text()])
        per_clip = [{"clip": c.name, "offline_text": offline.whole[c.name], "offline_trimmed_text": offline.trimmed.get(c.name)}
                    for c in clips]
        if offline.trimmed:
            extra["offline_trimmed"] = rate(*score(lang, refs, [offline.trimmed[c.name] for c in clips]))
            extra["offline_track"] = rate(*score(lang, [" ".join(refs)], [offline.track[lang]]))
    return {
        "lang": lang, "shape": shape, "metric": "CER" if lang in CHARACTER_LANGS else "WER",
        "clips": len(clips), "audio_seconds": round(len(audio) / SAMPLE_RATE, 2), "units": units,
        "streaming": rate(errors, units), "offline": rate(off_errors, units), **extra,
        "finals": [{"start": e.start, "end": e.end, "text": e.text} for e in run.finals],
        "finals_dropped": run.finals_dropped, "partial_calls": run.partial_calls, "final_calls": run.final_calls,
        "compute_seconds": round(run.compute_seconds, 2), "wall_seconds": round(elapsed, 2),
        "per_clip": per_clip, **({"offline_track_text": offline.track[lang]} if extra else {}),
    }


# -- the command ---------------------------------------------------------------------------------


def hardware() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):  # (not Linux: the generic name stays)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
            "loadavg_start": os.getloadavg()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="base", help="faster-whisper model name or directory (default: base)")
    p.add_argument("--models-dir", type=Path, default=Path(os.environ.get("UNIONHUB_BENCH_MODELS", "/tmp/unionhub-models")),
                   help="where the packaged base model is joined (once)")
    p.add_argument("--speech-dir", type=Path, default=SPEECH)
    p.add_argument("--langs", default="", help="comma-separated languages (default: all in the manifest)")
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("/tmp/bench"))
    p.add_argument("--tag", default="", help="label stored with the results (e.g. before/after)")
    p.add_argument("--realtime", action="store_true",
                   help="feed the audio in real time (a live microphone) instead of as fast as it keeps up")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a SpeakerStream option for this run, e.g. segment_cuts=false or max_utterance=20")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
                   help="measure these SpeakerStream options too, in the same run (same offline texts, same "
                        "worker, interleaved per language); 'default' is the plain stream")
    return p.parse_args(argv)


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'lang':<5} {'shape':<6} {'metric':<6} {'clips':>5} {'units':>5} {'stream':>7} {'offline':>7} {'diff':>6}"
          "  variant    (loop: vs offline on each trimmed clip / on the loop track)")
    for r in rows:
        diff = r["streaming"] - r["offline"]
        print(f"{r['lang']:<5} {r['shape']:<6} {r['metric']:<6} {r['clips']:>5} {r['units']:>5} "
              f"{r['streaming']:>7.2f} {r['offline']:>7.2f} {diff:>+6.2f}  {r.get('variant', '')}"
              f"{'  <-- over goal' if diff > 3 else ''}"
              + (f"  ({r['streaming'] - r['offline_trimmed']:+.2f} / {r['streaming'] - r['offline_track']:+.2f})"
                 if "offline_trimmed" in r else ""))


def stream_options(pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as SpeakerStream keyword arguments (true/false, numbers)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if pair == "default":
            continue
        name, _, value = pair.partition("=")
        out[name] = value.lower() == "true" if value.lower() in ("true", "false") else float(value)
    return out


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    options = stream_options(args.option)
    variants = {v: {**options, **stream_options(v.split(","))} for v in args.variant} or {"default": options}
    model_dir = resolve_asr_model(args.model, ModelDirs(args.models_dir))
    if model_dir is None:
        raise SystemExit(f"speech model {args.model!r} is not installed")
    clips = load_manifest(args.speech_dir, [x for x in args.langs.split(",") if x] or None)
    started = time.time()
    machine = hardware()  # (its load average is the one at the start)
    print(f"offline: {len(clips)} clips, {sum(c.seconds for c in clips):.0f} s", flush=True)
    offline = await asyncio.to_thread(transcribe_offline, model_dir, clips, args.threads, "loop" in args.shapes.split(","))
    pool = await start_pool(model_dir, args.threads)
    rows = []
    try:
        for shape in args.shapes.split(","):
            for lang, group in by_language(clips).items():
                for variant, chosen in variants.items():
                    row = await measure_language(pool, group, offline, shape, realtime=args.realtime, **chosen)
                    row["variant"] = variant
                    rows.append(row)
                    print(f"{lang} {shape} [{variant}]: streaming {row['streaming']} offline {row['offline']} "
                          f"({row['wall_seconds']} s)", flush=True)
    finally:
        pool.close()
    print_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "command": " ".join([".venv/bin/python", "bench/captions_accuracy.py", *(argv or sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "tag": args.tag, "options": options, "variants": variants, "realtime": args.realtime, "model": args.model,
        "threads": args.threads,
        "hardware": machine,
        "loadavg_end": os.getloadavg(), "wall_seconds": round(time.time() - started, 1), "results": rows,
    }
    path = args.out / "captions_accuracy.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
