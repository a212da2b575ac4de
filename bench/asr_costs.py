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
* ``pack``: K = 1-4 short English utterances decoded one by one vs packed into one window
  (``captioning.packing``): CPU seconds of each way.
* ``packwer``: the multilingual clips of each language packed in twos and in threes (consecutive
  clips of the manifest that fit ``MAX_PACKED_SECONDS``) and each clip with its language's
  shortest other clip, once first and once second (``partner``); each clip's packed text vs its
  text decoded alone: WER per language, texts changed, utterances the split sent back to be
  decoded alone.

    .venv/bin/python bench/asr_costs.py --parts split,batch,frames
    .venv/bin/python bench/asr_costs.py --parts window --windows 30,20 --out docs/bench/asr_window.json
    .venv/bin/python bench/asr_costs.py --parts pack,packwer --pack-sizes 2,3,partner \
        --out docs/bench/asr_packing.json
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
from captioning.packing import fits, pack, split, transcribe_packed  # noqa: E402

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


#: short English clips of the multilingual set (4.3-6 s): the utterances of the ``pack`` part
PACK_CLIPS = ("en_fleurs_4.wav", "en_fleurs_5.wav", "en_librispeech_1.wav", "en_librispeech_2.wav")


def manifest() -> list[dict[str, str]]:
    return list(csv.DictReader((SPEECH / "multilingual" / "MANIFEST.tsv").open(), delimiter="\t"))


def pack_costs(backend: FasterWhisperBackend, repeats: int) -> dict[str, Any]:
    """CPU of K finals decoded one by one vs packed into one window (the same K utterances)."""
    audios = [read_wav(str(SPEECH / "multilingual" / name)) for name in PACK_CLIPS]
    out: dict[str, Any] = {}
    for k in (1, 2, 3, 4):
        chosen = audios[:k]
        alone = median_cost(lambda chosen=chosen: [backend.transcribe(a, "en", None) for a in chosen], repeats)
        packed = median_cost(lambda chosen=chosen: transcribe_packed(backend, chosen, "en"), repeats)
        seconds = sum(len(a) for a in chosen) / SAMPLE_RATE
        out[k] = {"audio_s": round(seconds, 2), "alone_cpu_s": round(alone[0], 3), "packed_cpu_s": round(packed[0], 3),
                  "alone_wall_s": round(alone[1], 3), "packed_wall_s": round(packed[1], 3),
                  "ratio": round(packed[0] / alone[0], 3)}
        print(f"K = {k} ({seconds:.1f} s of audio): alone {alone[0]:.2f} CPU s ({alone[1]:.2f} wall), "
              f"packed {packed[0]:.2f} CPU s ({packed[1]:.2f} wall): x{packed[0] / alone[0]:.2f}", flush=True)
    return out


def groups(clips: list[dict[str, str]], size: int) -> list[list[dict[str, str]]]:
    """Consecutive clips of one language, up to ``size`` that fit one packed window; a clip that
    fits with none is left out (it would decode alone, unchanged)."""
    out: list[list[dict[str, str]]] = []
    current: list[dict[str, str]] = []
    for clip in clips:
        lengths = [int(float(c["seconds"]) * SAMPLE_RATE) for c in [*current, clip]]
        if len(current) < size and fits(lengths):
            current.append(clip)
            continue
        if len(current) > 1:
            out.append(current)
        current = [clip] if fits([int(float(clip["seconds"]) * SAMPLE_RATE)]) else []
    if len(current) > 1:
        out.append(current)
    return out


def partners(clips: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    """Every clip packed with the shortest other clip of its language that fits, once first and
    once second (its partner's text in those packs is not scored: only the clip's own)."""
    out = []
    for clip in clips:
        others = sorted((c for c in clips if c is not clip), key=lambda c: float(c["seconds"]))
        partner = next((c for c in others if fits([int(float(x["seconds"]) * SAMPLE_RATE) for x in (clip, c)])), None)
        if partner is not None:
            out += [[clip, partner], [partner, clip]]
    return out


def pack_wer(backend: FasterWhisperBackend, sizes: list[str]) -> dict[str, Any]:
    """Each clip's packed text vs its text decoded alone, against the reference transcript.
    ``sizes``: "2", "3" (consecutive clips of the manifest), "partner" (:func:`partners`)."""
    rows = manifest()
    audio = {r["file"]: read_wav(str(SPEECH / "multilingual" / r["file"])) for r in rows}
    alone: dict[str, str] = {}
    cpu_alone: dict[str, float] = {}
    for r in rows:
        c = cpu_seconds()
        alone[r["file"]] = backend.transcribe(audio[r["file"]], r["lang"].split("-")[0], None).text
        cpu_alone[r["file"]] = cpu_seconds() - c
    result: dict[str, Any] = {"alone_texts": alone, "alone_cpu_s": round(sum(cpu_alone.values()), 1)}
    by_lang: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_lang.setdefault(r["lang"].split("-")[0], []).append(r)
    for size in sizes:
        errors: dict[str, list[int]] = {}
        texts: dict[str, str] = {}
        redone: list[str] = []
        cpu_packed = 0.0
        packs = 0
        raw: list[dict[str, Any]] = []  # each pack's Whisper segments, to judge the split by
        for lang, clips in by_lang.items():
            for n, group in enumerate(partners(clips) if size == "partner" else groups(clips, int(size))):
                packs += 1
                audios = [audio[c["file"]] for c in group]
                c0 = cpu_seconds()
                packed = pack(audios)
                whole = backend.transcribe_window(packed.audio, lang)  # (as transcribe_packed decodes)
                parts = split(whole, packed)
                raw.append({"lang": lang, "files": [c["file"] for c in group], "spans": packed.spans,
                            "segments": [(s.start, s.end, s.text) for s in whole.segments],
                            "redone": [p is None for p in parts]})
                scored = [group[n % 2]] if size == "partner" else group  # (partner: the clip, first then second)
                for clip, part, a in zip(group, parts, audios, strict=True):
                    if clip not in scored:
                        continue
                    key = f"{clip['file']} {'first' if clip is group[0] else 'second'}" if size == "partner" else clip["file"]
                    if part is None:
                        redone.append(key)
                    texts[key] = part.text if part is not None else backend.transcribe(a, lang, None).text
                cpu_packed += cpu_seconds() - c0
                for clip in scored:
                    key = f"{clip['file']} {'first' if clip is group[0] else 'second'}" if size == "partner" else clip["file"]
                    for way, text in (("alone", alone[clip["file"]]), ("packed", texts[key])):
                        e, n = error_counts(clip["reference_transcript"], text, characters=lang in CHARACTER_LANGS)
                        acc = errors.setdefault(f"{lang} {way}", [0, 0])
                        acc[0] += e
                        acc[1] += n
                    same = texts[key] == alone[clip["file"]]
                    print(f"{size} {key:30} {'same text' if same else 'OTHER: ' + texts[key]}", flush=True)
        # (the same clips decoded one by one; partner packs: the partner's alone decode counted too)
        cpu_same_alone = sum(cpu_alone[f.split()[0]] for f in texts) * (2 if size == "partner" else 1)
        wer = {k: round(100 * e / n, 1) for k, (e, n) in sorted(errors.items())}
        changed = sorted(f for f in texts if texts[f] != alone[f.split()[0]])
        print(f"packs of up to {size}: {packs} packs, {len(texts)} clips, {len(changed)} texts changed, "
              f"{len(redone)} decoded again alone; CPU {cpu_packed:.1f} s packed vs {cpu_same_alone:.1f} s alone; "
              f"WER {wer}", flush=True)
        result[f"size_{size}"] = {"packs": packs, "clips": len(texts), "changed": changed, "redone": redone,
                                  "wer": wer, "packed_cpu_s": round(cpu_packed, 1),
                                  "alone_cpu_s": round(cpu_same_alone, 1), "texts": texts, "raw": raw}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="base")
    p.add_argument("--models-dir", type=Path, default=ROOT / "data" / "models")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--parts", default="split,batch,frames")
    p.add_argument("--windows", default="30,20", help="encoder windows (s) for the 'window' part")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--pack-sizes", default="2,3", help="'packwer': most clips per packed window, or 'partner'")
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
    if "pack" in parts:
        result["pack"] = pack_costs(backend, args.repeats)
    if "packwer" in parts:
        result["packwer"] = pack_wer(backend, args.pack_sizes.split(","))
    result["load_end"] = os.getloadavg()
    print(f"load average {load[0]:.1f} -> {result['load_end'][0]:.1f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
