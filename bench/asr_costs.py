"""What one final caption's decode costs, and whether the cheaper ways of doing it pay (issue #15).

Runs faster-whisper in this process, the hub's way (``FasterWhisperBackend``, int8 on CPU), and
reports CPU seconds (``os.times``: all threads), which depend much less on the load of a shared
machine than wall time does (wall time is printed too).

* ``split``: a final on a 5 s utterance (0.5 s before, 0.2 s of pause after, as the stream gives
  it): the whole call vs its encoder pass (Whisper's 30 s window) — the rest is the decoder.
* ``batch``: the encoder on 1, 2 and 4 windows in one call (CTranslate2 batches them): does
  encoding several speakers' finals together cost less per final on a CPU?
* ``frames``: the encoder on shorter windows (what a final would save with a shorter window).
* ``window``: every multilingual clip decoded whole as a final with Whisper's 30 s window and
  with shorter ones (``--windows``): WER (CER for ja/ko/zh) per language and CPU seconds.

    .venv/bin/python bench/asr_costs.py --parts split,batch,frames
    .venv/bin/python bench/asr_costs.py --parts window --windows 30,20 --out docs/bench/asr_window.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from captioning.asr import AsrSpec, FasterWhisperBackend, _encoder_frames  # noqa: E402
from captioning.audio import SAMPLE_RATE, read_wav  # noqa: E402
from captioning.metrics import error_counts  # noqa: E402
from captioning.models import ModelDirs, resolve_asr_model  # noqa: E402

SPEECH = ROOT.parent / "shared" / "data" / "speech"
CHARACTER_LANGS = {"ja", "zh", "ko"}


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def median_cost(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(CPU s, wall s) of ``fn``, the median of ``repeats`` calls after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeats):
        c, w = cpu_seconds(), time.perf_counter()
        fn()
        runs.append((cpu_seconds() - c, time.perf_counter() - w))
    runs.sort()
    return runs[len(runs) // 2]


def utterance() -> np.ndarray:
    audio = read_wav(str(SPEECH / "two_speakers_left.wav"))
    return np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), audio, np.zeros(SAMPLE_RATE // 5, np.float32)])


def features(backend: FasterWhisperBackend, frames: int, batch: int = 1) -> Any:
    import ctranslate2
    from faster_whisper.audio import pad_or_trim

    mel = pad_or_trim(backend.model.feature_extractor(utterance()), frames)
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack([mel] * batch).astype(np.float32)))


def encoder_costs(backend: FasterWhisperBackend, parts: list[str], repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def encoding(x: Any) -> Callable[[], object]:
        return lambda: backend.model.model.encode(x, to_cpu=False)

    if "split" in parts:
        audio = utterance()
        whole = median_cost(lambda: backend.transcribe(audio, "en", None), repeats)
        enc = median_cost(encoding(features(backend, 3000)), repeats)
        out["split"] = {"final_cpu_s": round(whole[0], 3), "final_wall_s": round(whole[1], 3),
                        "encoder_cpu_s": round(enc[0], 3), "encoder_wall_s": round(enc[1], 3)}
        print(f"final on 5 s: {whole[0]:.3f} CPU s ({whole[1]:.3f} wall), of which the encoder "
              f"{enc[0]:.3f} CPU s ({enc[1]:.3f} wall)", flush=True)
    if "batch" in parts:
        out["batch"] = {}
        for b in (1, 2, 4):
            c, w = median_cost(encoding(features(backend, 3000, b)), repeats)
            out["batch"][b] = {"cpu_s_per_window": round(c / b, 3), "wall_s_per_window": round(w / b, 3)}
            print(f"encoder, {b} x 30 s windows in one call: {c / b:.3f} CPU s per window ({w / b:.3f} wall)",
                  flush=True)
    if "frames" in parts:
        out["frames"] = {}
        for frames in (1000, 1500, 2000, 2500, 3000):
            c, w = median_cost(encoding(features(backend, frames)), repeats)
            out["frames"][frames] = {"cpu_s": round(c, 3), "wall_s": round(w, 3)}
            print(f"encoder, {frames} frames: {c:.3f} CPU s ({w:.3f} wall)", flush=True)
    return out


def window_wer(backend: FasterWhisperBackend, windows: list[int]) -> dict[str, Any]:
    """Each clip decoded whole as a final, once per encoder window (s): per-language WER, CPU."""
    rows = list(csv.DictReader((SPEECH / "multilingual" / "MANIFEST.tsv").open(), delimiter="\t"))
    errors: dict[int, dict[str, list[int]]] = {w: {} for w in windows}
    cpu = dict.fromkeys(windows, 0.0)
    texts: dict[int, dict[str, str]] = {w: {} for w in windows}
    for row in rows:
        audio = read_wav(str(SPEECH / "multilingual" / row["file"]))
        lang = row["lang"].split("-")[0]
        for w in windows:
            token = _encoder_frames.set(w * 100 if w < 30 else None)
            c = cpu_seconds()
            try:
                text = backend.transcribe(audio, lang, None).text
            finally:
                _encoder_frames.reset(token)
            cpu[w] += cpu_seconds() - c
            e, n = error_counts(row["reference_transcript"], text, characters=lang in CHARACTER_LANGS)
            acc = errors[w].setdefault(lang, [0, 0])
            acc[0] += e
            acc[1] += n
            texts[w][row["file"]] = text
        same = len({texts[w][row["file"]] for w in windows}) == 1
        print(f"{row['file']:28} {'same text' if same else 'text differs'}", flush=True)
    wer = {w: {lang: round(100 * e / n, 1) for lang, (e, n) in sorted(errors[w].items())} for w in windows}
    for w in windows:
        print(f"window {w} s: CPU {cpu[w]:.1f} s, WER/CER per language {wer[w]}")
    changed = sum(len({texts[w][f] for w in windows}) > 1 for f in texts[windows[0]])
    return {"wer": wer, "cpu_s": {w: round(c, 1) for w, c in cpu.items()}, "clips": len(rows),
            "clips_with_other_text": changed, "texts": texts}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="base")
    p.add_argument("--models-dir", type=Path, default=ROOT / "data" / "models")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--parts", default="split,batch,frames")
    p.add_argument("--windows", default="30,20", help="encoder windows (s) for the 'window' part")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="write the figures here as JSON")
    args = p.parse_args()
    path = resolve_asr_model(args.model, ModelDirs(args.models_dir))
    if path is None:
        raise SystemExit(f"speech model {args.model!r} is not installed")
    backend = FasterWhisperBackend(AsrSpec("faster-whisper", str(path), device="cpu", threads=args.threads))
    parts = args.parts.split(",")
    load = os.getloadavg()
    result: dict[str, Any] = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "model": args.model, "threads": args.threads, "load_start": load}
    result.update(encoder_costs(backend, parts, args.repeats))
    if "window" in parts:
        result["window"] = window_wer(backend, [int(w) for w in args.windows.split(",")])
    result["load_end"] = os.getloadavg()
    print(f"load average {load[0]:.1f} -> {result['load_end'][0]:.1f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
