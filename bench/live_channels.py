"""Interpreter channels in the live stream (issue #14): what a channel rendition costs the live
worker, and how far a channel's audio is from the floor's in the stream.

The live worker (``recordings.live_worker.run``, the process the hub starts per live room) is fed
what the hub feeds it — one camera (VP8, 640x480, 30 fps), the floor's microphone (Opus, a 440 Hz
tone) and, for K = 0..4, K live interpreters (880 Hz, one per channel) — in real time for
``--seconds``, ``--repeat`` times in turn. Its CPU (user + system time of the process, /proc) over
that window is compared: what a channel adds is the slope of a line through K = 1..4, and what
the first one adds (it also starts ``video_only.m3u8`` and the floor's own audio rendition) the
difference between K = 1 and K = 0.

On a shared machine the process figures are noisy, so the work a channel adds per tick is also
timed on its own (``channel_work``): decoding the interpreter's Opus, mixing it over the floor,
encoding AAC and writing the HLS rendition, for 60 s of stream, in this process (CPU time).

Delay: with one channel, the floor and the interpreter go silent in the same instant (no packet
from either for 1.5 s); the silence starts in ``audio_floor.m3u8`` and ``audio_es.m3u8`` at stream
times that differ by the pipeline's relative delay (the interpreter's own lag and network path
come on top in a real meeting: they are not the hub's).

    .venv/bin/python bench/live_channels.py --seconds 20 --repeat 3

Writes docs/bench/live_channels.json; results in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recordings import live_worker  # noqa: E402
from recordings.channels import channel_mix  # noqa: E402
from recordings.composer import AudioEncoder  # noqa: E402
from testkit.rtc_client import encode_test_audio, encode_test_video  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
GAP_AT, GAP = 0.6, 1.5  # the silence: at this fraction of the run, this long


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run(channels: int, seconds: float, folder: Path) -> dict[str, Any]:
    """Feed the worker in real time; its CPU seconds per second of stream."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue(600)
    process = ctx.Process(target=live_worker.run, args=(queue, str(folder), "vp8", "-00000000"), daemon=True)
    process.start()
    video = [bytes(p) for p in encode_test_video(seconds=4, fps=30, width=640, height=480)]
    floor = [bytes(p) for p in encode_test_audio(seconds=4, hz=440)]
    voice = [bytes(p) for p in encode_test_audio(seconds=4, hz=880)]
    langs = ["es", "fr", "ar", "pt"][:channels]
    start = time.monotonic()
    cpu_start: float | None = None
    gap = (seconds * GAP_AT, seconds * GAP_AT + GAP)
    n_audio = n_video = 0
    while (now := time.monotonic() - start) < seconds:
        if cpu_start is None and now > 2.0:  # (after start-up: imports, encoder set-up)
            cpu_start, cpu_t0 = cpu_seconds(process.pid or 0), now
        while n_video / 30 <= now:
            queue.put(("video", "cam", video[n_video % len(video)]))
            n_video += 1
        while n_audio / 50 <= now:
            if not gap[0] <= n_audio / 50 < gap[1]:
                queue.put(("audio", "mic", floor[n_audio % len(floor)]))
                for lang in langs:
                    queue.put(("chan", lang, f"voice-{lang}", voice[n_audio % len(voice)]))
            n_audio += 1
        time.sleep(0.005)
    assert cpu_start is not None
    cpu = (cpu_seconds(process.pid or 0) - cpu_start) / (time.monotonic() - start - cpu_t0)
    queue.put(("stop",))
    process.join(30)
    return {"channels": channels, "cpu": round(cpu, 4), "gap_wall": gap}


def channel_work(seconds: float = 60.0) -> float:
    """CPU seconds one channel costs per second of stream: what the worker does for it per tick."""
    packets = encode_test_audio(seconds=4, hz=880)
    floor = np.sin(2 * np.pi * 440 * np.arange(48000 * 4) / 48000).astype(np.float32) * 0.3
    with tempfile.TemporaryDirectory() as tmp:
        out = av.open(f"{tmp}/audio_es.m3u8", "w", format="hls",
                      options={"hls_time": "2", "hls_segment_type": "fmp4", "hls_list_size": "10",
                               "hls_flags": "delete_segments", "hls_segment_filename": f"{tmp}/s%05d.m4s"})
        encoder = AudioEncoder(out)
        decoder = av.CodecContext.create("opus", "r")
        per_tick = 48000 // live_worker.FPS
        started = time.process_time()
        pending = np.zeros(0, np.float32)
        n = 0
        for tick in range(int(seconds * live_worker.FPS)):
            while len(pending) < per_tick:  # the interpreter's packets of this tick, decoded
                packet, n = packets[n % len(packets)], n + 1
                for frame in decoder.decode(av.Packet(bytes(packet))):
                    pending = np.concatenate([pending, frame.to_ndarray()[0].astype(np.float32)])
            voice, pending = pending[:per_tick], pending[per_tick:]
            start = tick * per_tick % (len(floor) - per_tick)
            encoder.write(channel_mix(floor[start:start + per_tick], voice, True))
        encoder.write(np.zeros(0, np.float32), final=True)
        out.close()
        return (time.process_time() - started) / seconds


def silence_onset(folder: Path, playlist: str, after: float) -> float:
    """Stream time (s) at which the rendition's audio first goes quiet after ``after``."""
    text = (folder / playlist).read_text()
    init = next(line.split('"')[1] for line in text.splitlines() if line.startswith("#EXT-X-MAP"))
    segments = [line for line in text.splitlines() if line and not line.startswith("#")]
    joined = folder / f"{playlist}.mp4"
    joined.write_bytes(b"".join((folder / name).read_bytes() for name in [init, *segments]))
    with av.open(str(joined)) as media:
        for frame in media.decode(audio=0):
            t = float(frame.time or 0.0)
            samples = frame.to_ndarray().reshape(-1)
            if t > after and float(np.sqrt(np.mean(samples**2))) < 0.01:
                return t
    raise RuntimeError(f"no silence in {playlist}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "live_channels.json")
    args = parser.parse_args()
    results = []
    for channels in [k for _ in range(args.repeat) for k in range(5)]:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(channels, args.seconds, Path(tmp))
            if channels == 1:
                # (stream time runs behind the bench's clock by the worker's start-up, < 4 s; the
                # tone is continuous until the gap)
                after = result["gap_wall"][0] - 4.0
                floor = silence_onset(Path(tmp), "audio_floor.m3u8", after)
                channel = silence_onset(Path(tmp), "audio_es.m3u8", after)
                result["delay_ms"] = round((channel - floor) * 1000, 1)
            results.append(result)
            print(json.dumps(result), flush=True)
    by_k = {k: [r["cpu"] for r in results if r["channels"] == k] for k in range(5)}
    mean = {k: float(np.mean(v)) for k, v in by_k.items()}
    slope = float(np.polyfit([k for k in range(1, 5) for _ in by_k[k]],
                             [c for k in range(1, 5) for c in by_k[k]], 1)[0])
    summary = {
        "seconds": args.seconds,
        "repeat": args.repeat,
        "cpu_per_second": {k: [round(c, 4) for c in v] for k, v in by_k.items()},
        "mean_cpu_per_second": {k: round(v, 4) for k, v in mean.items()},
        "added_by_first_channel": round(mean[1] - mean[0], 4),
        "added_per_further_channel": round(slope, 4),
        "channel_work_cpu_per_second": round(channel_work(), 4),
        "channel_minus_floor_delay_ms": sorted(r["delay_ms"] for r in results if "delay_ms" in r),
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
