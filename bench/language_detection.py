"""Per-utterance language detection on real speech: how often is Whisper right, live and offline?

With ``--spoken-language detect`` each utterance's language is decided by Whisper's language
identification. This bench streams every clip of ``MANIFEST.tsv`` (10 languages) through the hub's
own pipeline (streaming VAD → SpeakerStream → AsrScheduler → a real ASR worker, multilingual
``base``) as ONE speaker who switches language at every turn (clips interleaved so that
neighbours differ, 1.5 s of silence between them), and scores each final's language against the
clip it falls in:

* ``live``: the language the pipeline tags the final with (with ``--rule``: the room rule below;
  without: Whisper's own top language, on the whole utterance since the final decides);
* ``1.1s`` / ``2s`` / ``3s``: Whisper's top language on the utterance's first 1.1 / 2 / 3 s (its
  audio starts with up to 1 s of pre-roll): what the first partials see. The first partial is
  submitted one VAD window after speech starts, so ~1.1 s is what the pipeline used to decide an
  utterance's language on (and kept for the rest of it) before the final decided instead;
* ``utterance``: Whisper's top language on the whole utterance (the final's audio);
* ``offline``: Whisper's top language on the whole clip (30 s window), as offline Whisper does;
* rules (captioning/language.py): the most likely language among the room's languages, accepted
  when its share of their probability is ≥ a threshold, else the speaker's declared language —
  on each of those audio lengths, for a room that reads en/es/pt/fr/de and a speaker who declared
  English (scored on the clips of those five languages).

Audio is fed as fast as the pipeline takes it (as in bench/captions_accuracy.py: utterances are
cut by counting samples, not by the clock), so partials mostly go stale and are skipped; the
prefixes above stand for them.

    .venv/bin/python bench/language_detection.py --out docs/bench
    .venv/bin/python bench/language_detection.py --langs de,en,es,fr,pt --rule --out docs/bench

Writes <out>/language_detection.json (language_detection_rule.json with ``--rule``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.captions_accuracy import PAUSE, SPEECH, Clip, hardware, load_manifest, start_pool  # noqa: E402
from captioning.audio import SAMPLE_RATE  # noqa: E402
from captioning.language import LanguageHint, choose_language  # noqa: E402
from captioning.models import ModelDirs, resolve_asr_model  # noqa: E402
from captioning.scheduler import AsrScheduler  # noqa: E402
from captioning.stream import CaptionEvent, SpeakerStream  # noqa: E402
from captioning.vad import StreamingVad  # noqa: E402
from captioning.workers import WorkerPool, _detect_language, _transcribe  # noqa: E402

ROOM = ("de", "en", "es", "fr", "pt")  # the languages of the simulated twinning room
DECLARED = "en"  # what the switching speaker put in their profile
THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9)
#: audio lengths (s) from an utterance's start that detection is scored on, besides all of it
PREFIXES = (1.1, 2.0, 3.0)
SOURCES = (*(f"{p:g}s" for p in PREFIXES), "utterance")
Probs = list[tuple[str, float]]


def interleave(clips: list[Clip]) -> list[Clip]:
    """Clips in turns of alternating language: one of each language, round after round."""
    groups: dict[str, list[Clip]] = {}
    for clip in clips:
        groups.setdefault(clip.lang, []).append(clip)
    out: list[Clip] = []
    while any(groups.values()):
        for lang in sorted(groups, key=lambda lang: -len(groups[lang])):
            if groups[lang]:
                out.append(groups[lang].pop(0))
    return out


def switching_track(clips: list[Clip]) -> tuple[np.ndarray, list[tuple[int, int, Clip]]]:
    """The clips with PAUSE s of silence before each, and each clip's (start, end) sample."""
    silence = np.zeros(int(PAUSE * SAMPLE_RATE), np.float32)
    parts: list[np.ndarray] = []
    spans: list[tuple[int, int, Clip]] = []
    position = 0
    for clip in clips:
        parts.append(silence)
        position += len(silence)
        parts.append(clip.audio)
        spans.append((position, position + len(clip.audio), clip))
        position += len(clip.audio)
    parts.append(silence)
    return np.concatenate(parts), spans


async def stream_detecting(pool: WorkerPool, audio: np.ndarray, hint: LanguageHint) -> list[CaptionEvent]:
    """``audio`` through the pipeline, each utterance's language chosen by ``hint``; its finals."""

    async def transcribe(x: np.ndarray, lang: Any, prompt: str | None) -> Any:
        return await pool.call(_transcribe, x, lang, prompt)

    scheduler = AsrScheduler(transcribe, slots=pool.size)
    vad = StreamingVad()
    finals: list[CaptionEvent] = []

    async def on_caption(event: CaptionEvent) -> None:
        if event.final:
            finals.append(event)
            if hint.expected:  # the rule: the next utterance falls back on this one's language, as live
                stream.language = replace(hint, previous=event.language)

    async def run_vad(x: np.ndarray) -> list[float]:
        return vad.process(x)

    stream = SpeakerStream(scheduler, run_vad, on_caption, language=hint)
    step = int(0.1 * SAMPLE_RATE)
    for i in range(0, len(audio), step):
        await stream.feed(audio[i : i + step])
        while scheduler.pending > 1:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0)
    await stream.close(flush=True)
    await scheduler.close()
    return finals


def offline_detection(model_dir: Path, clips: list[Clip], threads: int) -> dict[str, Probs]:
    """Whisper's language probabilities on each whole clip (its 30 s window, as offline)."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
    out = {}
    for clip in clips:
        features = model.feature_extractor(clip.audio, chunk_length=30)
        _lang, _p, probs = model.detect_language(features=features)
        out[clip.name] = [(str(lang), float(p)) for lang, p in probs]
    del model
    return out


def top(probs: Probs) -> str:
    return probs[0][0] if probs else "?"


def accuracy(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    right = sum(truth == got for truth, got in pairs)
    return {"n": len(pairs), "right": right, "accuracy": round(100.0 * right / len(pairs), 1) if pairs else 0.0}


def confusions(pairs: list[tuple[str, str]]) -> dict[str, int]:
    return dict(Counter(f"{truth}->{got}" for truth, got in pairs if truth != got).most_common())


def rule_table(utterances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accuracy of each rule variant on the room-language utterances."""
    rows = []
    subset = [u for u in utterances if u["truth"] in ROOM]
    for source in SOURCES:
        for expected in ((), ROOM):
            for threshold in THRESHOLDS:
                hint = LanguageHint(DECLARED, expected, threshold)
                chosen = [(u["truth"], *choose_language(u[f"{source}_probs"], hint)) for u in subset]
                pairs = [(truth, lang) for truth, lang, _share in chosen]
                fell_back = sum(share == 0.0 for _truth, _lang, share in chosen)
                rows.append({"probs": source, "expected": ",".join(expected) or "any", "threshold": threshold,
                             **accuracy(pairs), "fell_back": fell_back, "confusions": confusions(pairs)})
    return rows


async def measure(pool: WorkerPool, audio: np.ndarray, spans: list[tuple[int, int, Clip]],
                  hint: LanguageHint) -> list[dict[str, Any]]:
    """Each final of the switching track, with its clip's language and Whisper's detections."""
    utterances = []
    for event in await stream_detecting(pool, audio, hint):
        a, b = int(round(event.start * SAMPLE_RATE)), int(round(event.end * SAMPLE_RATE))
        middle, margin = (a + b) // 2, PAUSE * SAMPLE_RATE / 2
        clip = next((c for s, e, c in spans if s - margin <= middle < e + margin), None)
        if clip is None:
            continue
        record: dict[str, Any] = {"clip": clip.name, "truth": clip.lang, "start": event.start,
                                  "seconds": round((b - a) / SAMPLE_RATE, 2), "text": event.text,
                                  "live": event.language}
        for prefix, name in zip(PREFIXES, SOURCES, strict=False):
            probs: Probs = await pool.call(_detect_language, audio[a : min(b, a + int(prefix * SAMPLE_RATE))])
            record[f"{name}_probs"] = probs[:8]
        record["utterance_probs"] = (await pool.call(_detect_language, audio[a:b]))[:8]
        utterances.append(record)
    return utterances


async def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="base")
    p.add_argument("--models-dir", type=Path, default=Path(os.environ.get("UNIONHUB_BENCH_MODELS", "/tmp/unionhub-models")))
    p.add_argument("--speech-dir", type=Path, default=SPEECH)
    p.add_argument("--langs", default="", help="comma-separated languages (default: all in the manifest)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rule", action="store_true",
                   help=f"stream with the room rule (room {','.join(ROOM)}, declared {DECLARED}), not Whisper's pick")
    p.add_argument("--out", type=Path, default=Path("/tmp/bench"))
    args = p.parse_args(argv)
    model_dir = resolve_asr_model(args.model, ModelDirs(args.models_dir))
    if model_dir is None:
        raise SystemExit(f"speech model {args.model!r} is not installed")
    clips = interleave(load_manifest(args.speech_dir, [x for x in args.langs.split(",") if x] or None))
    started = time.time()
    machine = hardware()
    offline = await asyncio.to_thread(offline_detection, model_dir, clips, args.threads)
    audio, spans = switching_track(clips)
    print(f"{len(clips)} clips, {len(audio) / SAMPLE_RATE:.0f} s as one switching speaker", flush=True)
    hint = LanguageHint.for_speaker(DECLARED, ROOM) if args.rule else LanguageHint(None)
    pool = await start_pool(model_dir, args.threads)
    try:
        utterances = await measure(pool, audio, spans, hint)
    finally:
        pool.close()
    per_language = []
    for lang in sorted({c.lang for c in clips}):
        us = [u for u in utterances if u["truth"] == lang]
        per_language.append({
            "lang": lang, "clips": sum(c.lang == lang for c in clips), "utterances": len(us),
            "live": accuracy([(lang, u["live"]) for u in us])["accuracy"],
            **{name: accuracy([(lang, top(u[f"{name}_probs"])) for u in us])["accuracy"] for name in SOURCES},
            "offline": accuracy([(lang, top(offline[c.name])) for c in clips if c.lang == lang])["accuracy"],
        })
    summary: dict[str, Any] = {}
    for name in ("live", *SOURCES):
        pairs = [(u["truth"], u["live"] if name == "live" else top(u[f"{name}_probs"])) for u in utterances]
        summary[name] = accuracy(pairs)
        summary[f"{name}_confusions"] = confusions(pairs)
    summary["offline"] = accuracy([(c.lang, top(offline[c.name])) for c in clips])
    summary["offline_confusions"] = confusions([(c.lang, top(offline[c.name])) for c in clips])
    rules = rule_table(utterances)
    columns = ["live", *SOURCES, "offline"]
    print(f"\n{'lang':<5} {'clips':>5} {'utts':>5} " + " ".join(f"{c:>9}" for c in columns))
    for r in per_language:
        print(f"{r['lang']:<5} {r['clips']:>5} {r['utterances']:>5} " + " ".join(f"{r[c]:>9}" for c in columns))
    for name in columns:
        print(f"{name}: {summary[name]} confusions {summary[name + '_confusions']}")
    print(f"\nrules on the {'/'.join(ROOM)} utterances (declared {DECLARED}):")
    for r in rules:
        print(f"  {r['probs']:<9} expected={r['expected']:<14} >= {r['threshold']:.1f}: {r['accuracy']:5.1f}% "
              f"({r['right']}/{r['n']}, fell back {r['fell_back']}) {r['confusions']}")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "command": " ".join([".venv/bin/python", "bench/language_detection.py", *(argv or sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "model": args.model, "rule": args.rule,
        "threads": args.threads, "hardware": machine, "loadavg_end": os.getloadavg(),
        "wall_seconds": round(time.time() - started, 1), "per_language": per_language, "summary": summary,
        "rules": rules, "utterances": utterances,
    }
    path = args.out / ("language_detection_rule.json" if args.rule else "language_detection.json")
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
