"""The voice-change detector alone (captioning/speaker_change.py) on the multilingual clips.

Per language, the clips of ``MANIFEST.tsv`` back to back with their silence cut off (the ``loop``
shape of bench/captions_accuracy.py): how many joins between two clips it finds within ±0.3 s
(recall; two clips of one speaker are a join too, which it should not find), how many changes it
reports away from any join (false, per minute); and each clip alone (the ``turns`` shape: any
change found is false). The VAD is the stream's (Silero, streaming; speech ≥ 0.35). CPU is
the detector's own, per second of audio, on the whole track.

    .venv/bin/python bench/speaker_changes.py --out docs/bench
    .venv/bin/python bench/speaker_changes.py --langs en,es,fr --option penalty=4 --option span=2.0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.captions_accuracy import SPEECH, build_track, by_language, load_manifest, trim_silence  # noqa: E402
from captioning.audio import SAMPLE_RATE  # noqa: E402
from captioning.speaker_change import speaker_changes  # noqa: E402
from captioning.stream import SPEECH_OFF  # noqa: E402
from captioning.vad import WINDOW, StreamingVad  # noqa: E402

TOLERANCE = 0.3  # seconds either side of a join


def changes_in(audio: Any, **options: float) -> tuple[list[float], float]:
    """(changes in seconds, CPU seconds the detector took) for ``audio``, with the stream's VAD."""
    speech = [p >= SPEECH_OFF for p in StreamingVad().process(audio)]
    started = time.process_time()
    found = speaker_changes(audio, speech, WINDOW, **options)
    return [c / SAMPLE_RATE for c in found], time.process_time() - started


def measure(langs: list[str] | None, options: dict[str, float], speech_dir: Path = SPEECH) -> list[dict[str, Any]]:
    rows = []
    for lang, clips in by_language(load_manifest(speech_dir, langs)).items():
        audio, spans = build_track(clips, "loop")
        audio = audio[: int(spans[-1][1] * SAMPLE_RATE)]  # (without the closing silence)
        joins = [start for start, _ in spans[1:]]
        found, cpu = changes_in(audio, **options)
        hits = [j for j in joins if any(abs(c - j) <= TOLERANCE for c in found)]
        false = [c for c in found if not any(abs(c - j) <= TOLERANCE for j in joins)]
        alone = [changes_in(trim_silence(c.audio), **options)[0] for c in clips]
        alone_minutes = sum(len(trim_silence(c.audio)) for c in clips) / SAMPLE_RATE / 60
        minutes = len(audio) / SAMPLE_RATE / 60
        rows.append({
            "lang": lang, "clips": len(clips), "joins": len(joins), "found": len(hits),
            "missed": [round(j, 2) for j in joins if j not in hits],
            "false_in_loop": len(false), "loop_minutes": round(minutes, 2),
            "false_alone": sum(len(a) for a in alone), "alone_minutes": round(alone_minutes, 2),
            "cpu_seconds": round(cpu, 4), "audio_seconds": round(len(audio) / SAMPLE_RATE, 2),
        })
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--langs", default="", help="comma-separated languages (default: all in the manifest)")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a speaker_changes option, e.g. penalty=4 or span=2.0")
    p.add_argument("--out", type=Path, default=Path("/tmp/bench"))
    args = p.parse_args(argv)
    options = {k: float(v) for k, _, v in (o.partition("=") for o in args.option)}
    rows = measure([x for x in args.langs.split(",") if x] or None, options)
    print(f"{'lang':<5} {'joins':>5} {'found':>5} {'false/min loop':>14} {'false/min alone':>15}  missed")
    for r in rows:
        print(f"{r['lang']:<5} {r['joins']:>5} {r['found']:>5} {r['false_in_loop'] / r['loop_minutes']:>14.2f} "
              f"{r['false_alone'] / r['alone_minutes']:>15.2f}  {r['missed']}")
    joins, found = sum(r["joins"] for r in rows), sum(r["found"] for r in rows)
    total = {
        "recall": round(found / joins, 3) if joins else None, "joins": joins, "found": found,
        "false_per_minute_loop": round(sum(r["false_in_loop"] for r in rows) / sum(r["loop_minutes"] for r in rows), 2),
        "false_per_minute_alone": round(sum(r["false_alone"] for r in rows) / sum(r["alone_minutes"] for r in rows), 2),
        "cpu_ms_per_audio_second": round(1000 * sum(r["cpu_seconds"] for r in rows)
                                         / sum(r["audio_seconds"] for r in rows), 2),
    }
    print(total)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "speaker_changes.json"
    path.write_text(json.dumps({"command": " ".join([".venv/bin/python", "bench/speaker_changes.py",
                                                     *(argv or sys.argv[1:])]),
                                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "options": options,
                                "total": total, "results": rows}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
