"""How far offline Whisper's own words move on the same speech: the noise floor of the accuracy goal.

Issue #15's goal compares the live captions with the same model run offline on each whole clip
(``bench/captions_accuracy.py``). This decodes the same 47 clips offline with changes that leave the
speech as it was — the clip trimmed to its speech (the audio the no-gap loop streams), 0.3 s of
silence before it, 2 dB quieter — and with beam search (5) instead of greedy, and scores each per
language the project's way. A streaming difference smaller than these says little about the
pipeline.

    .venv/bin/python bench/offline_spread.py --model base --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.captions_accuracy import Clip, by_language, hardware, load_manifest, offline_decoder, rate, score, trim_silence  # noqa: E402
from captioning.audio import SAMPLE_RATE  # noqa: E402
from captioning.models import ModelDirs, resolve_asr_model  # noqa: E402

#: name -> (the audio Whisper gets, beam size)
VARIANTS: dict[str, tuple[Callable[[Clip], np.ndarray], int]] = {
    "whole": (lambda c: c.audio, 1),
    "trimmed": (lambda c: trim_silence(c.audio), 1),
    "lead_0.3s": (lambda c: np.concatenate([np.zeros(int(0.3 * SAMPLE_RATE), np.float32), c.audio]), 1),
    "gain_-2dB": (lambda c: (c.audio * 0.8).astype(np.float32), 1),
    "beam_5": (lambda c: c.audio, 5),
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="base")
    p.add_argument("--models-dir", type=Path,
                   default=Path(os.environ.get("UNIONHUB_BENCH_MODELS", "/tmp/unionhub-models")))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="write <out>/captions_offline_spread.json")
    args = p.parse_args(argv)
    model_dir = resolve_asr_model(args.model, ModelDirs(args.models_dir))
    if model_dir is None:
        raise SystemExit(f"speech model {args.model!r} is not installed")
    decode = offline_decoder(model_dir, args.threads)
    clips = load_manifest()
    machine, started = hardware(), time.time()
    texts: dict[str, dict[str, str]] = {}
    seconds: dict[str, float] = {}
    for name, (audio_of, beam) in VARIANTS.items():
        t = time.perf_counter()
        texts[name] = {}
        for clip in clips:
            texts[name][clip.name] = decode(audio_of(clip), clip.lang, beam)
        seconds[name] = round(time.perf_counter() - t, 1)
    rows = {}
    for lang, group in by_language(clips).items():
        refs = [c.reference for c in group]
        rows[lang] = {name: rate(*score(lang, refs, [texts[name][c.name] for c in group])) for name in VARIANTS}
        print(lang, "  ".join(f"{name} {value:.1f}" for name, value in rows[lang].items()))
    print("decode seconds:", seconds)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "captions_offline_spread.json").write_text(json.dumps({
            "command": " ".join([".venv/bin/python", "bench/offline_spread.py", *(argv or sys.argv[1:])]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "model": args.model,
            "hardware": machine, "loadavg_end": os.getloadavg(), "decode_seconds": seconds,
            "rates": rows, "texts": texts,
        }, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
