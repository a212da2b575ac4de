"""Live streaming (HLS): encoder CPU per stream, glass-to-viewer latency, viewers served per node.

Starts the hub as a subprocess, joins one publisher from this process (pre-encoded VGA VP8 at
600 kbit/s + Opus, sent in real time; its frames carry their own frame number as a visual code of
black/white blocks) and makes the room go live (``live {on: true}``). Then:

1. CPU: the hub process over 10 s before going live, then the live worker process (a child of the
   hub: decode, compose 854x480, x264 + AAC, fMP4 HLS) and the hub over 20 s while live.
2. Latency, measured on the pictures: (a) segment latency — the time a segment first appears in
   ``video.m3u8`` (polled over HTTP every 50 ms) minus the send time of the newest frame number
   decoded from that segment; (b) player latency — headless Chromium plays ``/live/<room>`` (the
   viewer page, hls.js); every 500 ms the bench draws the <video> to a canvas, decodes the frame
   number and takes now − send time of that frame (same machine; wall clock ↔ monotonic clock
   converted with one time.time()/time.monotonic() pair).
3. Viewers served: ``wrk`` with a Lua script alternating the media playlist and the newest segment
   (one viewer ≈ 1 playlist + 1 segment per 2 s segment = 1 request/s, so viewers per node ≈
   requests/s), while the stream stays live. wrk, the hub, its live worker and this process (the
   publisher) share the machine's cores.

    .venv/bin/python bench/hls.py
    .venv/bin/python bench/hls.py --quick --no-browser --out /tmp/hls   # smoke run

Writes docs/bench/hls.json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import itertools
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nginx_hls import serve_live_folder  # noqa: E402
from sfu_forwarding import free_port, hardware, proc_cpu_seconds, proc_rss_mb  # noqa: E402
from testkit.rtc_client import HubClient, PreEncodedTrack, encode_test_audio  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
]
GOAL_LATENCY_S = 6.0
GOAL_VIEWERS = 5000
ROOM = "hlsbench"

# ---- frames that carry their own number ------------------------------------------------------------
#
# A 640x480 frame: a moving colour gradient (so the encoders have real work) above a band of
# CODE_COLS x CODE_ROWS black/white blocks, 80x80 px each: 12 bits of the frame number and a 4-bit
# check. Blocks that large survive VP8 at 600 kbit/s, scaling into the 854x480 composed picture,
# x264 at crf 28, and a browser's canvas at a quarter of the size.

SRC_W, SRC_H = 640, 480
CODE_COLS, CODE_ROWS = 8, 2
NUMBER_BITS, CHECK_BITS = 12, 4
BAND_TOP = 0.5  # the code band: the bottom half of the frame's height (rows of blocks, centred)


def _check(n: int) -> int:
    return (n ^ (n >> 4) ^ (n >> 8) ^ 0b1010) & 0xF  # ^0b1010: an all-black picture never checks


def _bits(n: int) -> list[int]:
    value = (n & 0xFFF) | (_check(n) << NUMBER_BITS)
    return [(value >> i) & 1 for i in range(NUMBER_BITS + CHECK_BITS)]


def _block_boxes(w: int, h: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of every code block in a w×h picture of the 640x480 source."""
    bw, bh = w / CODE_COLS, h * (1 - BAND_TOP) / CODE_ROWS
    top = h * BAND_TOP
    return [(round(top + r * bh), round(top + (r + 1) * bh), round(c * bw), round((c + 1) * bw))
            for r in range(CODE_ROWS) for c in range(CODE_COLS)]


def draw_number(img: np.ndarray, n: int) -> None:
    h, w = img.shape[:2]
    for bit, (y0, y1, x0, x1) in zip(_bits(n), _block_boxes(w, h)):
        img[y0:y1, x0:x1] = 255 if bit else 0


def read_number(gray: np.ndarray, src_aspect: float = SRC_W / SRC_H) -> int | None:
    """The frame number in a picture (2-D luma) showing the source fitted and centred, or None.

    Tolerant: the picture may be scaled or letterboxed (as in the live stream's composed 854x480
    frame or a canvas of any size); each block is read from the middle half of its area, and the
    check bits reject anything misread.
    """
    h, w = gray.shape
    cw, ch = (w, w / src_aspect) if w / h < src_aspect else (h * src_aspect, h)
    x0, y0 = (w - cw) / 2, (h - ch) / 2
    value = 0
    for i, (by0, by1, bx0, bx1) in enumerate(_block_boxes(round(cw), round(ch))):
        qy, qx = (by1 - by0) / 4, (bx1 - bx0) / 4
        patch = gray[int(y0 + by0 + qy): int(y0 + by1 - qy), int(x0 + bx0 + qx): int(x0 + bx1 - qx)]
        if patch.size == 0:
            return None
        mean = float(patch.mean())
        if 90 < mean < 165:
            return None  # neither black nor white: not our picture (or badly damaged)
        value |= (mean >= 128) << i
    n = value & 0xFFF
    return n if value >> NUMBER_BITS == _check(n) else None


def encode_numbered_video(seconds: float = 30, fps: int = 30, width: int = SRC_W, height: int = SRC_H,
                          bit_rate: int = 600_000, gop: int = 30) -> list[av.Packet]:
    """VP8 (as a browser's VGA camera) whose frame k shows the number k; pts in 1/90000."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    codec.gop_size = gop
    codec.bit_rate = bit_rate
    frames = int(seconds * fps)
    assert frames <= 1 << NUMBER_BITS, "clip too long for the frame code"
    packets: list[av.Packet] = []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(frames):
        img = np.zeros((height, width, 3), np.uint8)
        img[..., 0] = (xx + 4 * i) % 256
        img[..., 1] = (yy + 2 * i) % 256
        img[..., 2] = 128
        draw_number(img, i)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    for p in packets:
        p.pts = int(p.pts * 90000 / fps)
        p.time_base = fractions.Fraction(1, 90000)
    return packets


def frame_luma(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="gray")


class SendClock:
    """When the publisher sent frame k (bench monotonic clock), from its PreEncodedTrack."""

    def __init__(self, track: PreEncodedTrack, frames: int, fps: int) -> None:
        self.track, self.frames, self.fps = track, frames, fps
        self.period = frames / fps

    def sent(self, n: int, seen: float) -> float | None:
        """Send time of frame n, in the newest loop of the clip that is not after ``seen``."""
        start = self.track.started_at
        if start is None or not 0 <= n < self.frames:
            return None
        first = start + n / self.fps
        if seen < first:
            return None
        loops = int((seen - first) // self.period)
        return first + loops * self.period


# ---- the hub ---------------------------------------------------------------------------------------


class Hub:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def __aenter__(self) -> Hub:
        exe = Path(sys.executable).with_name("unionhub")
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
             "--asr-model", "none", "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: its workers are ended with it (see __aexit__)
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(self.url + "/healthz") as r:
                        if r.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        self.proc.kill()
        raise RuntimeError("server did not start")

    async def health(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url + "/healthz") as r:
                return dict(await r.json())

    def descendants(self) -> list[int]:
        return descendants(self.pid)

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        # The hub's worker processes can outlive it (the archive's composition of the stream's
        # recording, started when the stream ends, does): end the rest of the hub's own group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_or_zero(pid: int) -> float:
    try:
        return proc_cpu_seconds(pid)
    except OSError:
        return 0.0


async def cpu_window(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """CPU % of one core of each process (and of this bench process) over ``seconds``."""
    before = {k: cpu_or_zero(p) for k, p in pids.items()}
    own0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t0
    out = {k: round(100 * (cpu_or_zero(p) - before[k]) / elapsed, 1) for k, p in pids.items()}
    out["bench"] = round(100 * (time.process_time() - own0) / elapsed, 1)
    out["seconds"] = round(elapsed, 2)
    return out


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


# ---- 2a: segment latency ---------------------------------------------------------------------------


@dataclass
class Segment:
    name: str
    appeared: float  # bench monotonic
    frames: int = 0
    decoded: int = 0  # frames whose number could be read
    newest_latency_s: float | None = None
    oldest_latency_s: float | None = None
    seconds: float | None = None  # EXTINF
    repeats: int = 0  # frames showing the same source frame as the frame before (the feed stalled)
    max_step: int | None = None  # largest jump in source frames between consecutive frames (2 = smooth)


def decode_segment(init: bytes, data: bytes) -> list[int | None]:
    path = Path(tempfile.mkstemp(suffix=".mp4")[1])
    try:
        path.write_bytes(init + data)
        with av.open(str(path)) as media:
            return [read_number(frame_luma(f)) for f in media.decode(video=0)]
    finally:
        path.unlink(missing_ok=True)


async def segment_latency(http: aiohttp.ClientSession, base: str, clock: SendClock, count: int,
                          timeout: float) -> list[Segment]:
    loop = asyncio.get_running_loop()
    seen: set[str] = set()
    first = True
    init: bytes | None = None
    segments: list[Segment] = []
    pending: list[asyncio.Future[None]] = []
    deadline = time.monotonic() + timeout

    async def measure(seg: Segment) -> None:
        nonlocal init
        if init is None:
            async with http.get(f"{base}/video.m3u8") as r:
                found = re.search(r'#EXT-X-MAP:URI="([^"]+)"', await r.text())
            async with http.get(f"{base}/{found.group(1) if found else 'init.mp4'}") as r:
                init = await r.read()
        async with http.get(f"{base}/{seg.name}") as r:
            if r.status != 200:
                return
            data = await r.read()
        numbers = await loop.run_in_executor(None, decode_segment, init, data)
        seg.frames, seg.decoded = len(numbers), sum(n is not None for n in numbers)
        read = [n for n in numbers if n is not None]
        steps = [(b - a) % clock.frames for a, b in itertools.pairwise(read)]
        seg.repeats = sum(1 for d in steps if d == 0)
        seg.max_step = max(steps) if steps else None
        sends = [s for s in (clock.sent(n, seg.appeared) for n in numbers if n is not None) if s is not None]
        if sends:
            seg.newest_latency_s = round(seg.appeared - max(sends), 3)
            seg.oldest_latency_s = round(seg.appeared - min(sends), 3)

    while len(segments) < count and time.monotonic() < deadline:
        tick = time.monotonic()
        async with http.get(f"{base}/video.m3u8") as r:
            text = await r.text() if r.status == 200 else ""
        now = time.monotonic()
        extinf = re.findall(r"#EXTINF:([\d.]+),\s*\n(seg[-0-9a-f]*\.m4s)", text)
        durations = {name: float(d) for d, name in extinf}
        for name in re.findall(r"seg[-0-9a-f]*\.m4s", text):
            if name in seen:
                continue
            seen.add(name)
            if first:
                continue  # already there before we looked: when it appeared is unknown
            seg = Segment(name, now, seconds=durations.get(name))
            segments.append(seg)
            pending.append(asyncio.ensure_future(measure(seg)))
        first = False
        await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - tick)))
    await asyncio.gather(*pending)
    return segments


# ---- 2b: player latency (headless Chromium) --------------------------------------------------------

GRAB_JS = """() => {
  const live = window.unionhubLive;
  const v = (live && live.video) || document.querySelector('video');
  if (!v || v.readyState < 2 || !v.videoWidth) return null;
  const w = Math.round(v.videoWidth / 4), h = Math.round(v.videoHeight / 4);
  const c = window.__benchCanvas || (window.__benchCanvas = document.createElement('canvas'));
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(v, 0, 0, w, h);
  const now = Date.now();
  const d = ctx.getImageData(0, 0, w, h).data;
  const gray = new Array(w * h);
  for (let i = 0; i < w * h; i++) gray[i] = (d[4 * i] * 299 + d[4 * i + 1] * 587 + d[4 * i + 2] * 114) / 1000 | 0;
  const hls = live && live.hls;
  const b = v.buffered;
  return {
    now, w, h, gray, currentTime: v.currentTime, paused: v.paused,
    bufferedEnd: b.length ? b.end(b.length - 1) : null,
    hlsLatency: hls && Number.isFinite(hls.latency) ? hls.latency : null,
    hlsTarget: hls && Number.isFinite(hls.targetLatency) ? hls.targetLatency : null,
  };
}"""

PLAYING_JS = """() => {
  const live = window.unionhubLive;
  const v = (live && live.video) || document.querySelector('video');
  return !!v && v.readyState >= 2 && v.currentTime > 0 && !v.paused;
}"""

FALLBACK_JS = """(src) => {
  document.body.innerHTML = '<video muted autoplay playsinline></video>';
  const video = document.querySelector('video');
  const hls = new window.Hls({ enableWorker: false });
  hls.loadSource(src);
  hls.attachMedia(video);
  hls.on(window.Hls.Events.MANIFEST_PARSED, () => video.play());
  window.unionhubLive = { hls, video };
}"""


async def player_latency(url: str, chromium: str, clock: SendClock, seconds: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    samples: list[dict[str, Any]] = []
    info: dict[str, Any] = {"page": f"/live/{ROOM}"}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1000, "height": 700}, bypass_csp=True)
            page = await context.new_page()
            opened = time.monotonic()
            await page.goto(f"{url}/live/{ROOM}")
            if not await page.evaluate("() => !!window.unionhubLive"):
                # no viewer page on this server: play the stream with hls.js in a page of our own
                info["page"] = "fallback (hls.js from /vendor/hls.min.js)"
                await page.goto(f"{url}/api/live/{ROOM}")
                await page.add_script_tag(url=f"{url}/vendor/hls.min.js")
                await page.evaluate(FALLBACK_JS, f"/live/{ROOM}/hls/index.m3u8")
            await page.wait_for_function(PLAYING_JS, timeout=60_000, polling=100)
            info["time_to_play_s"] = round(time.monotonic() - opened, 2)
            await asyncio.sleep(1.0)
            offset = time.time() - time.monotonic()  # wall clock of the page → our monotonic clock
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                tick = time.monotonic()
                grab = await page.evaluate(GRAB_JS)
                if grab is not None:
                    gray = np.asarray(grab.pop("gray"), np.uint8).reshape(grab["h"], grab["w"])
                    n = read_number(gray)
                    seen = grab["now"] / 1000 - offset
                    sent = clock.sent(n, seen) if n is not None else None
                    samples.append({
                        "frame": n,
                        "latency_s": round(seen - sent, 3) if sent is not None else None,
                        "hls_latency_s": grab["hlsLatency"], "hls_target_s": grab["hlsTarget"],
                        "current_time": grab["currentTime"], "buffered_end": grab["bufferedEnd"],
                        "paused": grab["paused"], "mean_luma": round(float(gray.mean()), 1),
                    })
                await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - tick)))
            info["stalls"] = await page.evaluate(
                "() => { const v = (window.unionhubLive || {}).video; "
                "const q = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null; "
                "return q ? {dropped: q.droppedVideoFrames, total: q.totalVideoFrames} : null; }")
        finally:
            await browser.close()
    info["samples"] = samples
    return info


# ---- 3: viewers served (wrk) -----------------------------------------------------------------------

WRK_LUA = r"""
-- one viewer's requests, approximately: the media playlist, then the newest segment it lists
local playlist = "/live/%(room)s/hls/video.m3u8"
local prefix = "/live/%(room)s/hls/"
local newest = nil
local turn = 0
playlists, segments, bad, seg_bytes = 0, 0, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  turn = turn + 1
  if newest == nil or turn %% 2 == 1 then
    return wrk.format("GET", playlist)
  end
  return wrk.format("GET", prefix .. newest)
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    return
  end
  if #body < 16384 and body:sub(1, 7) == "#EXTM3U" then
    playlists = playlists + 1
    local last = nil
    for name in body:gmatch("seg[%%-%%x]*%%.m4s") do last = name end
    if last then newest = last end
  else
    segments = segments + 1
    seg_bytes = seg_bytes + #body
  end
end

function done(summary, latency, requests)
  local p, s, b, sb = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    p = p + t:get("playlists"); s = s + t:get("segments"); b = b + t:get("bad"); sb = sb + t:get("seg_bytes")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "playlists": %%d, "segments": %%d, "non200": %%d, "segment_bytes": %%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, p, s, b, sb))
end
"""


@dataclass
class WrkRun:
    connections: int
    threads: int
    seconds: float
    requests: int
    requests_per_s: float
    errors: int
    errors_detail: dict[str, int]
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    playlist_responses: int
    segment_responses: int
    mean_segment_kb: float | None
    mbytes_per_s: float
    viewers_per_node: int  # requests/s ÷ 1 request/s per viewer
    hub_cpu_percent: float
    worker_cpu_percent: float | None
    wrk_cpu_percent: float
    requests_per_hub_cpu_s: float  # requests served per CPU-second the hub got (the machine is shared)
    hub_frames_in_per_s: float | None = None  # the publisher's frames reaching the hub (compare: cpu section)
    load_average_1m: float | None = None
    served_by: str = "hub"
    nginx_cpu_percent: float | None = None  # master + workers, when nginx serves the files
    raw: dict[str, Any] = field(default_factory=dict)


async def run_wrk(wrk: str, url: str, script: Path, connections: int, threads: int, seconds: float,
                  timeout: float, pids: dict[str, int]) -> WrkRun:
    before = {k: cpu_or_zero(p) for k, p in pids.items()}
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk's CPU: the growth once it is reaped
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", f"--timeout={timeout:g}s", "-s", str(script),
        f"{url}/live/{ROOM}/hls/video.m3u8",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    elapsed = time.monotonic() - t0
    cpu = {k: 100 * (cpu_or_zero(p) - before[k]) / elapsed for k, p in pids.items()}
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    text = out.decode(errors="replace")
    match = re.search(r"WRKJSON (\{.*\})", text)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text[-1500:]} {err.decode()[-1500:]}")
    raw = json.loads(match.group(1))
    duration = raw["duration_us"] / 1e6
    detail = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")}
    rps = raw["requests"] / duration
    return WrkRun(
        connections=connections, threads=threads, seconds=round(duration, 2), requests=raw["requests"],
        requests_per_s=round(rps, 1), errors=sum(detail.values()), errors_detail=detail,
        latency_p50_ms=round(raw["p50_us"] / 1000, 1), latency_p99_ms=round(raw["p99_us"] / 1000, 1),
        latency_max_ms=round(raw["max_us"] / 1000, 1),
        playlist_responses=raw["playlists"], segment_responses=raw["segments"],
        mean_segment_kb=round(raw["segment_bytes"] / raw["segments"] / 1024, 1) if raw["segments"] else None,
        mbytes_per_s=round(raw["bytes"] / duration / 1e6, 1),
        viewers_per_node=int(rps),
        hub_cpu_percent=round(cpu["hub"], 1),
        worker_cpu_percent=round(cpu["worker"], 1) if "worker" in cpu else None,
        served_by="nginx" if any(k.startswith("nginx") for k in cpu) else "hub",
        nginx_cpu_percent=round(sum(v for k, v in cpu.items() if k.startswith("nginx")), 1)
        if any(k.startswith("nginx") for k in cpu) else None,
        wrk_cpu_percent=round(100 * wrk_cpu / elapsed, 1),
        requests_per_hub_cpu_s=round(raw["requests"] / max(1e-9, cpu["hub"] * elapsed / 100), 1),
        load_average_1m=round(os.getloadavg()[0], 2),
        raw=raw,
    )


# ---- report ----------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(round(q * (len(s) - 1))))], 3)


def summarize(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_s": pct(values, 0.5), "p95_s": pct(values, 0.95),
            "min_s": pct(values, 0.0), "max_s": pct(values, 1.0),
            "mean_s": round(statistics.fmean(values), 3) if values else None,
            "goal_s": GOAL_LATENCY_S,
            "meets_goal": (pct(values, 0.95) or 1e9) <= GOAL_LATENCY_S if values else None}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    seg = result["latency"]["segment"]
    series = [("segment listed − newest frame sent", seg["samples_s"], "-"),
              ("segment listed − oldest frame sent", seg["oldest_frame_samples_s"], ":"),
              ("player (Chromium, hls.js): on screen − sent", result["latency"]["player"]["samples_s"], "-")]
    for label, values, style in series:
        if values:
            xs = sorted(values)
            ax1.step(xs, [(i + 1) / len(xs) for i in range(len(xs))], style, where="post",
                     label=f"{label}, n={len(xs)}")
    ax1.axvline(GOAL_LATENCY_S, color="red", ls="--", lw=1, label=f"goal {GOAL_LATENCY_S:g} s")
    ax1.set_xlabel("glass-to-viewer latency (s)")
    ax1.set_ylabel("fraction of samples")
    ax1.set_xlim(left=0)
    ax1.set_title("latency CDF")
    runs = result["viewers"]["runs"]
    if runs:
        ax2.plot([r["connections"] for r in runs], [r["requests_per_s"] for r in runs], "o-",
                 label="requests/s (= viewers at 1 req/s each)")
        ax2.axhline(GOAL_VIEWERS, color="red", ls="--", lw=1, label=f"goal {GOAL_VIEWERS} viewers")
        ax2.set_xscale("log")
    ax2.set_xlabel("concurrent connections (wrk)")
    ax2.set_ylabel("requests/s")
    ax2.set_ylim(bottom=0)
    ax2.set_title("HLS files served (playlist + newest segment)")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    cores = result["hardware"]["cores"]
    fig.suptitle(f"unionhub live stream: one VGA publisher, 854x480 H.264 fMP4 HLS, {cores} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def fmt(v: Any) -> str:
    return "-" if v is None else str(v)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: short durations, c=200 only")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium player latency")
    parser.add_argument("--idle-seconds", type=float, help="hub CPU before going live (default 10)")
    parser.add_argument("--cpu-seconds", type=float, help="worker CPU while live (default 20)")
    parser.add_argument("--segments", type=int, help="segments timed for segment latency (default 15)")
    parser.add_argument("--player-seconds", type=float, help="player sampling time (default 20)")
    parser.add_argument("--connections", help="wrk connection counts (default 500,2000,5000)")
    parser.add_argument("--wrk-seconds", type=float, help="each wrk run (default 10)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-timeout", type=float, default=4.0,
                        help="a request slower than this counts as a timeout error (s)")
    parser.add_argument("--clip-seconds", type=float, help="numbered clip length; it loops (default 30)")
    parser.add_argument("--wrk", default="/usr/bin/wrk")
    parser.add_argument("--serve-with", choices=["hub", "nginx"], default="hub",
                        help="who serves viewers: the hub itself, or nginx on the live folder (docs/DEPLOYMENT.md)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--name", default="hls")
    args = parser.parse_args()
    q = args.quick
    idle_s = args.idle_seconds or (3.0 if q else 10.0)
    cpu_s = args.cpu_seconds or (5.0 if q else 20.0)
    n_segments = args.segments or (3 if q else 15)
    player_s = args.player_seconds or (6.0 if q else 20.0)
    conns = [int(c) for c in (args.connections or ("200" if q else "500,2000,5000")).split(",")]
    wrk_s = args.wrk_seconds or (3.0 if q else 10.0)
    clip_s = args.clip_seconds or (12.0 if q else 30.0)
    fps = 30

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the hub and wrk inherit it
    if not Path(args.wrk).is_file():
        raise SystemExit(f"wrk not found at {args.wrk} (apt-get install wrk)")

    print(f"encoding the numbered clip ({clip_s:g} s VGA VP8 + Opus)...", flush=True)
    video = encode_numbered_video(seconds=clip_s, fps=fps)
    audio = encode_test_audio(seconds=clip_s)
    data_dir = Path(tempfile.mkdtemp(prefix="unionhub-bench-hls-"))
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": hardware(),
        "config": {"publisher": "640x480 VP8 600 kbit/s 30 fps + Opus 32 kbit/s, pre-encoded, 1 publisher",
                   "stream": "854x480 H.264 (x264 veryfast, crf 28) 15 fps + AAC, fMP4 HLS 2 s segments",
                   "clip_seconds": clip_s, "idle_seconds": idle_s, "cpu_seconds": cpu_s,
                   "segments": n_segments, "player_seconds": None if args.no_browser else player_s,
                   "wrk_connections": conns, "wrk_seconds": wrk_s, "wrk_threads": args.wrk_threads,
                   "wrk_timeout_s": args.wrk_timeout, "quick": q,
                   "load_average_at_start": list(os.getloadavg())},
    }
    try:
        async with Hub(data_dir) as hub, aiohttp.ClientSession() as http:
            pub = HubClient(hub.url, ROOM, "Publisher", video=video, audio=audio)
            track = pub.tracks["camera"]
            assert isinstance(track, PreEncodedTrack)
            clock = SendClock(track, frames=int(clip_s * fps), fps=fps)
            try:
                await pub.join(timeout=30)

                async def flowing() -> bool:
                    return (await hub.health())["frames_in"] > 60

                await until(flowing, 60, "the publisher's media at the hub")
                await asyncio.sleep(1.0)

                # 1. CPU: hub before going live, then the live worker and the hub while live
                print(f"\n1. CPU (% of one core): hub not live for {idle_s:g} s, then live for {cpu_s:g} s", flush=True)
                idle = await cpu_window({"hub": hub.pid}, idle_s)
                before = set(hub.descendants())
                await pub.sio.emit("live", {"on": True})
                folder = hub.data_dir / "live" / ROOM
                base = f"{hub.url}/live/{ROOM}/hls"

                async def segments_listed() -> bool:
                    async with http.get(f"{base}/video.m3u8") as r:
                        return r.status == 200 and len(re.findall(r"seg[-0-9a-f]*\.m4s", await r.text())) >= 2

                went_live = time.monotonic()
                await until(segments_listed, 60, "the first HLS segments")
                result["config"]["first_segments_after_s"] = round(time.monotonic() - went_live, 2)
                new = [p for p in hub.descendants() if p not in before]
                workers = [p for p in new if "spawn_main" in cmdline(p)]
                if not workers:
                    raise RuntimeError(f"live worker not found among the hub's new children {new}: "
                                       + "; ".join(cmdline(p) for p in new))
                if len(workers) > 1:
                    print(f"  note: {len(workers)} new worker processes; measuring the busiest", file=sys.stderr)
                pids = {"hub": hub.pid, **{f"w{p}": p for p in workers}}
                frames0 = (await hub.health())["frames_in"]
                live = await cpu_window(pids, cpu_s)
                frames_rate = ((await hub.health())["frames_in"] - frames0) / live["seconds"]
                worker_key = max((k for k in live if k.startswith("w")), key=lambda k: live[k])
                worker_pid = int(worker_key[1:])
                cpu = {
                    "hub_not_live_percent": idle["hub"], "hub_not_live_seconds": idle["seconds"],
                    "hub_live_percent": live["hub"], "worker_percent": live[worker_key],
                    "live_seconds": live["seconds"], "bench_publisher_percent": live["bench"],
                    "worker_rss_mb": round(proc_rss_mb(worker_pid), 1), "hub_rss_mb": round(proc_rss_mb(hub.pid), 1),
                    "worker_cmdline": cmdline(worker_pid)[:200],
                    "hub_frames_in_per_s": round(frames_rate, 1),  # 30 video + 50 audio sent per s
                }
                result["cpu"] = cpu
                print(f"{'process':26} {'CPU %':>6}")
                print(f"{'hub, room not live':26} {cpu['hub_not_live_percent']:>6}")
                print(f"{'hub, room live':26} {cpu['hub_live_percent']:>6}")
                print(f"{'live worker (encoder)':26} {cpu['worker_percent']:>6}")
                print(f"{'bench (publisher)':26} {cpu['bench_publisher_percent']:>6}")
                print(f"worker RSS {cpu['worker_rss_mb']} MB; the publisher's frames reaching the hub: "
                      f"{cpu['hub_frames_in_per_s']}/s (30 video + 50 audio sent)", flush=True)

                # 2a. segment latency
                print(f"\n2a. segment latency: {n_segments} new segments, playlist polled every 50 ms", flush=True)
                segs = await segment_latency(http, base, clock, n_segments, timeout=n_segments * 2 * 3 + 30)
                seg_lat = [s.newest_latency_s for s in segs if s.newest_latency_s is not None]
                seg_old = [s.oldest_latency_s for s in segs if s.oldest_latency_s is not None]
                result["latency"] = {"segment": {
                    **summarize(seg_lat), "samples_s": seg_lat,
                    "oldest_frame": summarize(seg_old), "oldest_frame_samples_s": seg_old,
                    "frames_read": sum(s.decoded for s in segs), "frames": sum(s.frames for s in segs),
                    "repeated_frames": sum(s.repeats for s in segs),
                    "segments": [asdict(s) for s in segs],
                }}
                print(f"{'segment':14} {'EXTINF':>6} {'frames':>6} {'read':>5} {'repeats':>7} {'max step':>8} "
                      f"{'newest→listed s':>15} {'oldest→listed s':>15}")
                for s in segs:
                    print(f"{s.name:14} {fmt(s.seconds):>6} {s.frames:>6} {s.decoded:>5} {s.repeats:>7} "
                          f"{fmt(s.max_step):>8} {fmt(s.newest_latency_s):>15} {fmt(s.oldest_latency_s):>15}")

                # 2b. player latency
                player: dict[str, Any] = {"skipped": True, "samples_s": [], "n": 0}
                if not args.no_browser:
                    print(f"\n2b. player latency: Chromium on /live/{ROOM}, sampled every 0.5 s for {player_s:g} s",
                          flush=True)
                    info = await player_latency(hub.url, args.chromium, clock, player_s)
                    lat = [s["latency_s"] for s in info["samples"] if s["latency_s"] is not None]
                    hls_lat = [s["hls_latency_s"] for s in info["samples"] if s["hls_latency_s"] is not None]
                    player = {"skipped": False, **summarize(lat), "samples_s": lat,
                              "samples_total": len(info["samples"]),
                              "hlsjs_latency": summarize(hls_lat),
                              **{k: v for k, v in info.items() if k != "samples"}, "samples": info["samples"]}
                result["latency"]["player"] = player

                print(f"\n{'latency (s)':34} {'n':>4} {'p50':>7} {'p95':>7} {'max':>7} {'goal ≤6':>8}")
                rows = [("segment: newest frame → listed", result["latency"]["segment"]),
                        ("segment: oldest frame → listed", result["latency"]["segment"]["oldest_frame"])]
                if not player["skipped"]:
                    rows += [("player: glass → screen (decoded)", player),
                             ("player: hls.js own estimate", player["hlsjs_latency"])]
                for label, s in rows:
                    print(f"{label:34} {s['n']:>4} {fmt(s['p50_s']):>7} {fmt(s['p95_s']):>7} {fmt(s['max_s']):>7} "
                          f"{fmt(s['meets_goal']):>8}")
                if not player["skipped"]:
                    print(f"player: {player['page']}, playing {player.get('time_to_play_s')} s after opening, "
                          f"frames read in {player['n']}/{player['samples_total']} samples, "
                          f"video quality {player.get('stalls')}", flush=True)

                # 3. viewers served
                print(f"\n3. viewers served: wrk -t{args.wrk_threads} -d{wrk_s:g}s, playlist + newest segment "
                      "alternately (assumption: 1 viewer = 1 playlist + 1 segment per 2 s = 1 request/s)",
                      flush=True)
                script = data_dir / "hls.lua"
                script.write_text(WRK_LUA % {"room": ROOM})
                runs: list[WrkRun] = []
                print(f"{'conns':>6} {'req/s':>8} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'seg KB':>7} "
                      f"{'MB/s':>6} {'viewers':>8} {'hub%':>5} {'req/hub-cpu-s':>13} {'worker%':>7} {'wrk%':>5} "
                      f"{'in fr/s':>7} "
                      f"{'load':>5} {'nginx%':>6}")
                serving = contextlib.ExitStack()
                serve_url, pids = hub.url, {"hub": hub.pid, "worker": worker_pid}
                if args.serve_with == "nginx":
                    serve_url, nginx_pid = serving.enter_context(serve_live_folder(hub.data_dir / "live"))
                    pids |= {f"nginx{i}": p for i, p in enumerate([nginx_pid, *descendants(nginx_pid)])}
                    print(f"   served by nginx at {serve_url} ({len(pids) - 2} processes)", flush=True)
                for c in conns:
                    h0, t0 = (await hub.health())["frames_in"], time.monotonic()
                    r = await run_wrk(args.wrk, serve_url, script, c, args.wrk_threads, wrk_s, args.wrk_timeout, pids)
                    r.hub_frames_in_per_s = round(((await hub.health())["frames_in"] - h0) / (time.monotonic() - t0), 1)
                    runs.append(r)
                    print(f"{r.connections:>6} {r.requests_per_s:>8} {r.errors:>7} {r.latency_p50_ms:>8} "
                          f"{r.latency_p99_ms:>8} {fmt(r.mean_segment_kb):>7} {r.mbytes_per_s:>6} "
                          f"{r.viewers_per_node:>8} {r.hub_cpu_percent:>5} {r.requests_per_hub_cpu_s:>13} "
                          f"{fmt(r.worker_cpu_percent):>7} {r.wrk_cpu_percent:>5} {fmt(r.hub_frames_in_per_s):>7} "
                          f"{fmt(r.load_average_1m):>5} {fmt(r.nginx_cpu_percent):>6}", flush=True)
                    if r.errors:
                        print(f"       errors: {r.errors_detail}", flush=True)
                    await asyncio.sleep(2.0)
                serving.close()
                best = max(runs, key=lambda r: r.requests_per_s)
                result["viewers"] = {
                    "served_by": args.serve_with,
                    "assumption": "one viewer = 1 playlist + 1 segment request per 2 s segment = 1 request/s; "
                                  "viewers per node = requests/s",
                    "note": f"wrk, the hub, the live worker and the bench (publisher) share "
                            f"{os.cpu_count()} cores; loopback network. The viewer page also polls "
                            "/api/live/<room> every 5 s (0.2 request/s per viewer), not counted here",
                    "runs": [asdict(r) for r in runs],
                    "viewers_per_node": best.viewers_per_node,
                    "at_connections": best.connections,
                    "requests_per_hub_cpu_second_best": max(r.requests_per_hub_cpu_s for r in runs),
                    "goal": GOAL_VIEWERS,
                    "meets_goal": best.viewers_per_node >= GOAL_VIEWERS,
                }
                print(f"viewers per node (best run, c={best.connections}): {best.viewers_per_node} "
                      f"(goal ≥ {GOAL_VIEWERS}: {'met' if best.viewers_per_node >= GOAL_VIEWERS else 'not met'}); "
                      f"requests per hub CPU-second: up to {result['viewers']['requests_per_hub_cpu_second_best']}")
                await pub.sio.emit("live", {"on": False})

                async def ended() -> bool:
                    return folder.joinpath("video.m3u8").is_file() and "#EXT-X-ENDLIST" in (
                        folder / "video.m3u8").read_text()

                try:
                    await until(ended, 30, "the end of the stream")
                except RuntimeError as e:
                    print(f"  warning: {e}", file=sys.stderr)
            finally:
                await pub.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    result["config"]["load_average_at_end"] = list(os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / f"{args.name}.png")
    print(f"wrote {args.out / (args.name + '.json')} and .png")


if __name__ == "__main__":
    asyncio.run(main())
