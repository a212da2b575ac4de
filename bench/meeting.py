"""A meeting on one hub: how many participants, at what CPU, and what each one downloads (#12).

Why: ``sfu_forwarding.py`` measures one publisher fanned out to M subscribers. A meeting is
another shape — N participants who all publish a camera and a microphone and all subscribe to
everyone — and it is the shape issue #12's work (silence suppression, last-N video, camera
limits) is for. This bench measures it, before and after, in the same run:

* ``forward``: this tree's hub at default settings (last-N 8, silence suppression, camera limits);
* ``forward-old``: the forward-everything hub of commit f510ced (the last before #12's work),
  run from a ``git worktree`` made for the run and removed after it (``--old-rev``), or from an
  existing checkout (``--old-tree``), the way ``sfu_forwarding.py`` runs ``forward-old``;
* ``janus``: Janus 1.1.2 VideoRoom (``bench/janus.py``), every participant a publisher and a
  subscriber to all the others' feeds (Janus forwards everything, like ``forward-old``).

Every participant publishes pre-encoded VP8 and Opus, as a browser would send them:

* video: VGA (640×480, 30 fps, ~600 kbit/s), encoded once, in three temporal layers (``L1T3``,
  the TID in each packet's descriptor, as the web client asks browsers to send; the hub sends
  thumbnails the base layer only; ``--no-temporal-layers``: one layer); a keyframe request is answered at
  once with the clip's next keyframe (``PreEncodedTrack(answer_keyframes=True)``), and when the
  hub asks cameras for less (``send-limits``) the camera switches to the encoding of the clip
  made for that cap (``--bitrate`` and one per cap this tree's ``signalling/bandwidth.py`` asks
  for in meetings of up to max(sizes), encoded before the run), as ``setParameters`` would;
* audio (``testkit/speech.py``): speakers send the JFK clip from ``/work/shared/data/speech``
  in 20 ms frames, the others a comfort-noise packet every 400 ms (Opus DTX), every packet with
  the RFC 6464 level and V bit the hub reads. One speaker per ``--turn`` seconds, in a shuffled
  order, the next one starting early every other turn (one or two at a time), so last-N
  follows the speakers.

Participants run in ``--workers`` processes apart from the hub (a subprocess, ``unionhub serve``)
and never decode: a :class:`~testkit.lightreceive.LightReceiver` takes the SRTP packets off each
ICE connection and counts bytes, packets (loss from sequence numbers) and video frames (those
missing between two received ones), and names each frame for the send → arrival delay (same
machine clock, ``time.monotonic``). The hub's CPU is its process's utime + stime over the window
(``/proc/<pid>/stat``); frames the hub never received are ``/healthz`` ``frames_in`` against the
frames sent.

The machine has 2 cores. The participants' processes ("client CPU") compete with the hub for
them, so a failing N can be the clients' limit as well as the hub's (the table gives both). Other
people's work competes too: before each trial the bench waits for the rest of the machine to
be quiet (``--wait-quiet``), and a trial during which other processes used more than
``--max-foreign`` % of a core (or ``--max-foreign-peak`` % in one second) is run again
(``--retries``; the discarded ones are kept in the JSON).

    .venv/bin/python bench/meeting.py --sizes 4,8,13,20,30,40 --seconds 20 --repeats 3

Criteria per (mode, N), on the medians over repeats: packet loss < 1 %, frames lost before the
hub < 1 %, video frames missing < 1 %, p99 added delay < 100 ms, every participant receiving
the video it should (N - 1, or last-N's 8). A mode's sweep stops at its first failing N.
Writes docs/bench/meeting.json (every trial, the medians, the summary) and prints the table;
results in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
from aiortc import RTCConfiguration  # noqa: E402

from bench.janus import JanusPublisher, JanusServer, JanusSubscriber  # noqa: E402
from bench.sfu_forwarding import CLK_TCK, free_port, hardware, proc_cpu_seconds, proc_rss_mb  # noqa: E402
from testkit.layers import EncodedClip, layers_of  # noqa: E402
from testkit.lightreceive import Arrival, LightReceiver, StreamCounters  # noqa: E402
from testkit.rtc_client import HubClient, PreEncodedTrack, encode_test_video  # noqa: E402
from testkit.speech import SpeakingMic, SpeechClip, TurnSchedule, encode_speech, send_audio_levels  # noqa: E402

logger = logging.getLogger(__name__)

SPEECH = ROOT.parent / "shared" / "data" / "speech" / "jfk.wav"
MODES = ("forward", "forward-old", "janus")
MODE_LABELS = {"forward": "unionhub (this tree)", "forward-old": "unionhub f510ced (forward everything)",
               "janus": "Janus 1.1.2 VideoRoom"}
#: The hub's default last-N (media_server/lastn.py DEFAULT_LAST_N), for the flowing check.
DEFAULT_LAST_N = 8
#: Criteria for "this N works".
MAX_LOSS_PERCENT = 1.0
MAX_P99_MS = 100.0
#: Sends older than this before the window still match arrivals in it.
SEND_MARGIN = 2.0
#: Seconds between two looks at how late a participant process's event loop runs.
LAG_TICK = 0.01
#: --beyond-failure goes on past a failing N only while the hub used less than this of a core there.
SPARE_CPU_PERCENT = 80.0
#: Goals from issue #12.
GOAL_RATIO = 3.0
GOAL_DOWNLOAD_KBPS_AT_30 = 1500.0

Packet = tuple[bytes, int, bool, int | None]  # an encoded frame as sent to workers: data, pts, keyframe, VP8 TID


@dataclass(frozen=True)
class CameraVariant:
    """The camera clip encoded for one cap the hub may ask for (``send-limits``), as a browser's
    encoder would send under ``RTCRtpSender.setParameters({maxBitrate, scaleResolutionDownBy})``."""

    max_bitrate: int | None  # the cap (bit/s) it was encoded for; None: the camera's own rate
    scale: float  # 2.0: half width and height
    bps: int  # measured over the clip
    frames: list[Packet]


def pick_variant(ladder: list[CameraVariant], limit: dict[str, Any] | None) -> CameraVariant:
    """The encoding a browser's camera would send under ``limit`` (``send-limits.camera``):
    the best one of that resolution within the cap (5 % slack: an encoder's own rate control)."""
    default = ladder[0]
    cap = int((limit or {}).get("maxBitrate") or 0)
    if cap <= 0 or cap >= default.bps:
        return default
    scale = float((limit or {}).get("scaleResolutionDownBy") or 1.0)
    same = [v for v in ladder if v.scale == scale] or ladder
    fitting = [v for v in same if v.bps <= cap * 1.05]
    return max(fitting, key=lambda v: v.bps) if fitting else min(same, key=lambda v: v.bps)


def run_queue_wait_seconds(pid: int) -> float:
    """Seconds the process's main thread (the event loop) was ready to run but waited for a CPU
    (``/proc/<pid>/schedstat``, field 2): how much the machine's other work held it back."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent running processes since boot (``/proc/stat``: user, nice,
    system, steal; not irq and softirq, which the kernel does not charge to any process — the
    bench's own loopback packets are most of it)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + steal) / CLK_TCK


class ForeignCpu:
    """Samples, once a second, the CPU the rest of the machine uses besides this bench's own
    processes (the hub, the participant processes, this one): another engineer's test run
    (Chromium, partly at raised priority) can stall the hub for seconds on a 2-core machine,
    and such a trial measures the neighbour, not the hub."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.samples: list[float] = []  # foreign cores, per second
        self._task: asyncio.Task[None] | None = None

    def _ours(self) -> float:
        total = 0.0
        for pid in self.pids:
            with contextlib.suppress(OSError):
                total += proc_cpu_seconds(pid)
        return total

    async def _run(self) -> None:
        busy, ours, t = machine_busy_seconds(), self._ours(), time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            busy1, ours1, t1 = machine_busy_seconds(), self._ours(), time.monotonic()
            self.samples.append(max(0.0, (busy1 - busy) - (ours1 - ours)) / (t1 - t))
            busy, ours, t = busy1, ours1, t1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> tuple[float, float]:
        """(mean, highest one-second) foreign CPU, in cores."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.samples:
            return 0.0, 0.0
        return statistics.mean(self.samples), max(self.samples)


async def wait_for_quiet(pids: list[int], limit: float, patience: float) -> float:
    """Wait (at most ``patience`` s) until other processes use less than ``limit`` % of a core
    over 3 s; returns the seconds waited."""
    start = time.monotonic()
    while True:
        sampler = ForeignCpu(pids)
        sampler.start()
        await asyncio.sleep(3.0)
        mean, _ = await sampler.stop()
        waited = time.monotonic() - start
        if 100 * mean <= limit or waited >= patience:
            return waited
        await asyncio.sleep(5.0)


def cpu_pressure() -> float:
    """The machine's CPU pressure (``/proc/pressure/cpu``, "some" avg10, %): the share of the
    last 10 s in which some runnable task waited for a CPU."""
    try:
        return float(Path("/proc/pressure/cpu").read_text().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return 0.0


# ------------------------------------------------------------------------------------------------
# participant processes


@dataclass
class Member:
    """One meeting participant inside a worker process."""

    index: int
    name: str
    camera: PreEncodedTrack
    mic: SpeakingMic
    publisher_id: str = ""
    hub: HubClient | None = None
    jpub: JanusPublisher | None = None
    jsub: JanusSubscriber | None = None
    light: LightReceiver | None = None
    start_counters: dict[int, tuple[str, str, StreamCounters]] = field(default_factory=dict)
    start_rtcp: int = 0
    start_switches: int = 0
    start_keyframes: int = 0
    variant: CameraVariant | None = None  # what the camera sends now (hub's camera limit applied)
    limit_changes: int = 0

    def switches(self) -> int:
        """``forwarding`` events received so far (last-N changed whose video it gets)."""
        return sum(1 for event, _ in self.hub.events if event == "forwarding") if self.hub else 0

    async def close(self) -> None:
        for part in (self.hub, self.jsub, self.jpub):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.close()


def _packets(frames: list[Packet]) -> list[av.Packet]:
    out = []
    for data, pts, key, _ in frames:
        p = av.Packet(data)
        p.pts = pts
        p.is_keyframe = key
        out.append(p)
    layers = [tid for *_, tid in frames]
    # a layered clip: the camera's sender writes each frame's TID in its payload descriptor
    return EncodedClip(out, layers) if all(tid is not None for tid in layers) else out


class Worker:
    """Hosts some participants of each trial; driven by the main process over a pipe."""

    def __init__(self, conn: Connection, ladder: list[CameraVariant], speech: SpeechClip) -> None:
        self.conn = conn
        self.ladder = ladder
        self.clips = {id(v): _packets(v.frames) for v in ladder}
        self.video = self.clips[id(ladder[0])]
        self.speech = speech
        self.members: dict[int, Member] = {}
        self.config = RTCConfiguration(iceServers=[])  # everything is on this machine: no STUN
        self.schedule: TurnSchedule | None = None
        self.window_start = 0.0
        self._ticker: asyncio.Task[None] | None = None
        self._lags: list[float] = []

    async def run(self) -> None:
        while True:
            msg: dict[str, Any] = await asyncio.to_thread(self.conn.recv)
            if msg["op"] == "exit":
                await self.leave()
                self.conn.send({"ok": True})
                return
            try:
                reply = await getattr(self, "op_" + msg["op"])(**msg.get("args", {}))
            except Exception as exc:
                logger.exception("worker op %s failed", msg["op"])
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            self.conn.send(reply)

    def _member(self, index: int) -> Member:
        assert self.schedule is not None
        camera = PreEncodedTrack("video", self.video, 90000, answer_keyframes=True)
        camera.send_log = []
        mic = SpeakingMic(self.speech, self.schedule.speaking(index), offset=97 * index)
        return Member(index, f"p{index:02d}", camera, mic, variant=self.ladder[0])

    def _apply_limit(self, member: Member, limit: dict[str, Any] | None) -> None:
        """The hub's ``send-limits``: switch the camera to the encoding a browser would send."""
        variant = pick_variant(self.ladder, limit)
        if variant is not member.variant:
            member.camera.switch(self.clips[id(variant)])
            member.variant = variant
            member.limit_changes += 1

    async def op_schedule(self, participants: int, start: float, turn: float) -> dict[str, Any]:
        self.schedule = TurnSchedule(participants, start, turn)
        return {"ok": True}

    async def op_join(self, url: str, room: str, index: int, participants: int) -> dict[str, Any]:
        member = self._member(index)
        self.members[index] = member
        client = HubClient(url, room, member.name, config=self.config, light=True)
        client.tracks = {"camera": member.camera, "mic": member.mic}
        client.on_camera_limit = lambda limit: self._apply_limit(member, limit)
        member.hub = client
        member.light = client.light
        await client.join(timeout=60)
        member.publisher_id = client.id or ""
        return {"id": member.publisher_id}

    async def op_janus_publish(self, url: str, room: str, index: int, participants: int) -> dict[str, Any]:
        member = self._member(index)
        self.members[index] = member
        # (bench/janus.py builds its own tracks from these; they are replaced before joining)
        pub = JanusPublisher(url, room, member.name, self.video, self.video, max_publishers=participants + 1)
        pub.tracks = {"camera": member.camera, "mic": member.mic}
        member.jpub = pub
        await pub.join(timeout=60)
        for transceiver in pub.pc.getTransceivers():
            if transceiver.sender.track is member.mic:
                send_audio_levels(transceiver.sender, member.mic)
        member.publisher_id = str(pub.feed)
        return {"id": member.publisher_id}

    async def op_janus_subscribe(self, url: str, room: str, feeds: list[int]) -> dict[str, Any]:
        for member in self.members.values():
            others = [f for f in feeds if str(f) != member.publisher_id]
            sub = JanusSubscriber(url, room, others, member.name + "-sub")
            member.jsub = sub
            await sub.join(timeout=60)
            light = LightReceiver(sub.pc)
            light.describe(sub.pc.remoteDescription.sdp, {mid: r.participant for mid, r in sub.received.items()})
            light.install()
            member.light = light
        return {"ok": True}

    async def op_status(self) -> dict[str, Any]:
        return {"videos": {i: len(m.light.flowing("video")) if m.light else 0 for i, m in self.members.items()}}

    async def _tick(self) -> None:
        """How late this process's event loop wakes up (a stalled client delays what it receives)."""
        while True:
            due = time.monotonic() + LAG_TICK
            await asyncio.sleep(LAG_TICK)
            self._lags.append(time.monotonic() - due)

    async def op_start(self) -> dict[str, Any]:
        # A full collection of this process's heap (every participant's aiortc objects) takes
        # 80-200 ms, during which nothing is received: the delays measured would be the load
        # generator's. So: collect now, freeze what is left, and collect nothing in the window.
        gc.collect()
        gc.freeze()
        gc.disable()
        now = self.window_start = time.monotonic()
        self._lags = []
        self._ticker = asyncio.create_task(self._tick())
        for m in self.members.values():
            assert m.light is not None
            m.start_counters = m.light.counters()
            m.start_rtcp = m.light.rtcp_bytes
            m.start_switches = m.switches()
            m.start_keyframes = m.camera.keyframes_answered
            m.light.arrivals.clear()
            m.light.record = True
            for log in (m.camera.send_log, m.mic.send_log):
                assert log is not None
                log[:] = [e for e in log if e[1] >= now - SEND_MARGIN]
        return {"t": now, "cpu": proc_cpu_seconds(os.getpid()), "wait": run_queue_wait_seconds(os.getpid())}

    async def op_stop(self) -> dict[str, Any]:
        now = time.monotonic()
        cpu = proc_cpu_seconds(os.getpid())
        wait = run_queue_wait_seconds(os.getpid())
        gc.enable()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        lags = sorted(self._lags) or [0.0]
        members: dict[int, dict[str, Any]] = {}
        arrivals: list[Arrival] = []
        sends: list[tuple[str, int, float]] = []
        for i, m in self.members.items():
            assert m.light is not None and m.camera.send_log is not None
            m.light.record = False
            end = m.light.counters()
            stats: dict[str, Any] = {"packets": 0, "expected": 0, "video_bytes": 0, "audio_bytes": 0, "payload_bytes": 0,
                                     "video_frames": 0, "missing_frames": 0, "audio_frames": 0,
                                     "videos": 0, "audios": 0}
            for ssrc, (_, kind, c1) in end.items():
                c0 = m.start_counters.get(ssrc, ("", kind, StreamCounters()))[2]
                frames = c1.frames - c0.frames
                stats["packets"] += c1.packets - c0.packets
                stats["expected"] += c1.expected - c0.expected
                stats[f"{kind}_bytes"] += c1.bytes - c0.bytes
                stats["payload_bytes"] += c1.payload - c0.payload
                if kind == "video":
                    stats["video_frames"] += frames
                    stats["missing_frames"] += c1.missing_frames - c0.missing_frames
                    stats["videos"] += frames > 0
                else:
                    stats["audio_frames"] += frames
                    stats["audios"] += frames > 0
            stats["rtcp_bytes"] = m.light.rtcp_bytes - m.start_rtcp
            stats["switches"] = m.switches() - m.start_switches
            stats["keyframes_answered"] = m.camera.keyframes_answered - m.start_keyframes
            stats["unknown_packets"] = m.light.unknown_packets
            up = [(k, t) for k, t in [*m.camera.send_log, *m.mic.send_log] if t <= now]
            window = [k for k, t in up if t >= self.window_start]
            stats["upload_bytes"] = sum(k >> 32 for k in window)  # payload bytes
            stats["camera_bytes"] = sum(k >> 32 for k, t in m.camera.send_log if self.window_start <= t <= now)
            stats["camera_limit_bps"] = (m.variant.max_bitrate or 0) if m.variant else 0
            stats["limit_changes"] = m.limit_changes
            stats["frames_sent"] = len(window)
            members[i] = stats
            arrivals.extend(a for a in m.light.arrivals if a[3] <= now)
            sends.extend((m.publisher_id, k, t) for k, t in up)
            m.light.arrivals.clear()
        return {"t": now, "cpu": cpu, "wait": wait, "members": members, "arrivals": arrivals, "sends": sends,
                "lag_p99": percentile(lags, 0.99), "lag_max": lags[-1], "window": now - self.window_start}

    async def leave(self) -> dict[str, Any]:
        members = list(self.members.values())
        self.members.clear()
        await asyncio.gather(*(m.close() for m in members))
        gc.unfreeze()  # the trial's participants are garbage now
        gc.collect()
        return {"ok": True}

    async def op_leave(self) -> dict[str, Any]:
        return await self.leave()


def worker_main(conn: Connection, ladder: list[CameraVariant], speech: SpeechClip, level: int) -> None:
    logging.basicConfig(level=level, format=f"worker {os.getpid()} %(levelname)s %(name)s: %(message)s")
    asyncio.run(Worker(conn, ladder, speech).run())


# ------------------------------------------------------------------------------------------------
# the main process: servers, workers, trials


class WorkerHandle:
    """A participant process and the pipe that drives it."""

    def __init__(self, ladder: list[CameraVariant], speech: SpeechClip) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, ladder, speech, logging.WARNING), daemon=True)
        self.proc.start()
        child.close()
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    async def call(self, op: str, timeout: float = 300.0, **args: Any) -> dict[str, Any]:
        async with self._lock:
            await asyncio.to_thread(self.conn.send, {"op": op, "args": args})
            if not await asyncio.to_thread(self.conn.poll, timeout):
                raise RuntimeError(f"worker {self.pid} did not answer {op!r} within {timeout:.0f} s")
            reply: dict[str, Any] = await asyncio.to_thread(self.conn.recv)
        if "error" in reply:
            raise RuntimeError(f"worker {self.pid}, {op}: {reply['error']}")
        return reply

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.call("exit", timeout=60)
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


class HubProcess:
    """``unionhub serve`` as a subprocess (``tree``: another checkout's code, via PYTHONPATH, as
    ``join_time.start_server`` and ``sfu_forwarding.Server`` do), with a throwaway data dir."""

    def __init__(self, mode: str, tree: Path | None) -> None:
        self.mode = mode
        self.tree = tree
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._data = Path(tempfile.mkdtemp(prefix=f"unionhub-meeting-{mode}-"))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def __aenter__(self) -> HubProcess:
        exe = Path(sys.executable).with_name("unionhub")
        env = {**os.environ, "PYTHONPATH": str(self.tree)} if self.tree is not None else None  # ahead of this tree
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(self.port), "--data-dir", str(self._data), "--asr-model", "none",
             "--log-level", "warning", "--max-participants", "500"],
            stdout=subprocess.DEVNULL, env=env,
        )
        for _ in range(300):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                await self.health()
                return self
            await asyncio.sleep(0.1)
        await self.__aexit__()
        raise RuntimeError(f"hub ({self.mode}) did not start")

    async def health(self) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            with urllib.request.urlopen(self.url + "/healthz", timeout=5) as r:
                return dict(json.loads(r.read()))

        return await asyncio.to_thread(get)

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self._data, ignore_errors=True)


Server = HubProcess | JanusServer


@dataclass
class Trial:
    mode: str
    participants: int
    repeat: int
    seconds: float
    flowing: bool  # every participant received the video it should before the window
    join_seconds: float  # first join → everyone's video flowing
    hub_cpu_percent: float  # of one core, over the window
    hub_ms_per_participant_s: float  # hub CPU ms per participant-second
    participants_per_core: float  # N / hub cores used (all-in: fixed costs included)
    loss_percent: float  # RTP packets lost (sequence gaps), all streams of all participants
    video_frames_missing_percent: float  # video frames absent between received ones (not pauses)
    delay_p50_ms: float | None
    delay_p99_ms: float | None
    delay_samples: int
    delay_p99_video_ms: float | None
    delay_p99_audio_ms: float | None
    unmatched_frames_percent: float  # received frames no send matched (damaged by loss)
    hub_ingress_loss_percent: float | None  # frames sent that the hub never received (/healthz frames_in)
    download_kbps_mean: float  # per participant: SRTP/SRTCP bytes received (no IP/UDP headers)
    download_kbps_max: float
    video_kbps_mean: float
    audio_kbps_mean: float
    download_payload_kbps_mean: float  # per participant: RTP payload (as a browser's inbound-rtp counts)
    upload_kbps_mean: float  # per participant: encoded payload sent (camera and microphone)
    camera_kbps_mean: float  # per participant: the camera's part of it
    camera_limit_kbps: float  # median of the caps applied (send-limits; 0: none)
    videos_received_mean: float  # video streams with frames in the window, per participant
    audio_streams_mean: float  # audio streams with frames in the window, per participant
    video_fps_per_stream: float
    switches_per_participant_minute: float  # last-N changes announced (forwarding events)
    keyframes_answered: int  # keyframe requests the sources answered at once, in the window
    client_cpu_percent: float  # all participant processes, of one core
    client_lag_p99_ms: float  # how late the participant processes' event loops ran (worst process)
    client_lag_max_ms: float
    hub_rss_mb: float
    load_average: float  # 1-minute, at the end of the window (the machine is shared)
    hub_wait_percent: float = 0.0  # of the window, the hub's event loop waited for a CPU (runnable, not running)
    client_wait_percent: float = 0.0  # the same for the most held-back participant process
    cpu_pressure: float = 0.0  # /proc/pressure/cpu "some" avg10 at the end of the window
    foreign_cpu_percent: float = 0.0  # of one core: the machine's CPU use besides the bench's processes
    foreign_cpu_max_percent: float = 0.0  # its highest one-second value
    error: str = ""  # the meeting never came together (a join failed): nothing was measured

    def contended(self, mean_limit: float, max_limit: float) -> bool:
        """Whether other work on the machine used enough CPU to hold the hub back."""
        return self.foreign_cpu_percent > mean_limit or self.foreign_cpu_max_percent > max_limit
    hub_stats: dict[str, int] = field(default_factory=dict)  # /healthz counters over the window
    expected_videos: int = 0

    def failures(self) -> list[str]:
        if self.error:
            return [self.error]
        out = []
        if not self.flowing:
            out.append("video not flowing")
        if self.loss_percent >= MAX_LOSS_PERCENT:
            out.append(f"loss {self.loss_percent:.2f} %")
        if self.hub_ingress_loss_percent is not None and self.hub_ingress_loss_percent >= MAX_LOSS_PERCENT:
            out.append(f"hub ingress loss {self.hub_ingress_loss_percent:.2f} %")
        if self.video_frames_missing_percent >= MAX_LOSS_PERCENT:
            out.append(f"frames missing {self.video_frames_missing_percent:.2f} %")
        if self.delay_p99_ms is None or self.delay_p99_ms >= MAX_P99_MS:
            out.append(f"p99 {self.delay_p99_ms} ms")
        return out


def percentile(values: list[float], q: float) -> float:
    return values[int(q * (len(values) - 1))]


def match_delays(sends: list[tuple[str, int, float]], arrivals: list[Arrival]) -> tuple[dict[str, list[float]], int]:
    """Send → arrival of each received frame, by kind: the latest send of the same publisher and
    frame before it arrived (a clip loops, so a frame is sent again every few seconds).
    Returns (delays by kind, frames no send matched)."""
    index: dict[tuple[str, int], list[float]] = {}
    for publisher, key, t in sends:
        index.setdefault((publisher, key), []).append(t)
    for times in index.values():
        times.sort()
    delays: dict[str, list[float]] = {"video": [], "audio": []}
    unmatched = 0
    for publisher, kind, key, t in arrivals:
        times = index.get((publisher, key), [])
        j = bisect.bisect_right(times, t) - 1
        if j < 0:
            unmatched += 1
            continue
        delays.setdefault(kind, []).append(t - times[j])
    return delays, unmatched


async def wait_flowing(workers: list[WorkerHandle], expected: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        statuses = await asyncio.gather(*(w.call("status") for w in workers))
        counts = [c for s in statuses for c in s["videos"].values()]
        if counts and min(counts) >= expected:
            return True
        if time.monotonic() > deadline:
            logger.warning("video not flowing after %.0f s: received %s, expected %d each", timeout, counts, expected)
            return False
        await asyncio.sleep(0.5)


HUB_COUNTERS = ("frames_in", "plis", "audio_frames_suppressed", "video_pauses", "video_resumes", "congestion_steps_down",
                "congestion_probes", "frames_thinned")


async def run_trial(mode: str, server: Server, workers: list[WorkerHandle], n: int, repeat: int,
                    args: argparse.Namespace) -> Trial:
    room = f"meeting-{mode}-{n}-{repeat}"
    janus = isinstance(server, JanusServer)
    assert server.proc is not None
    pid = server.proc.pid
    start = time.monotonic() + 1.0
    await asyncio.gather(*(w.call("schedule", participants=n, start=start, turn=args.turn) for w in workers))

    def owner(i: int) -> WorkerHandle:
        return workers[i % len(workers)]

    t_join = time.monotonic()
    ids: dict[int, str] = {}
    op = "janus_publish" if janus else "join"
    expected = min(n - 1, args.last_n) if mode == "forward" else n - 1
    try:
        for i in range(n):  # one at a time, as people arrive
            ids[i] = (await owner(i).call(op, url=server.url, room=room, index=i, participants=n))["id"]
        if janus:
            feeds = [int(ids[i]) for i in range(n)]
            await asyncio.gather(*(w.call("janus_subscribe", url=server.url, room=room, feeds=feeds) for w in workers))
    except RuntimeError as exc:  # a join the server did not answer: this N failed, the run goes on
        logger.warning("%s, N = %d: %s", mode, n, exc)
        await asyncio.gather(*(w.call("leave") for w in workers))
        await asyncio.sleep(5.0)
        return failed_trial(mode, n, repeat, expected, f"join failed after {len(ids)} joined: {exc}")
    flowing = await wait_flowing(workers, expected, timeout=30 + 2 * n)
    join_seconds = time.monotonic() - t_join
    await asyncio.sleep(args.warmup)
    health0 = {} if janus else await server.health()  # type: ignore[union-attr]
    foreign = ForeignCpu([pid, os.getpid(), *(w.pid for w in workers)])
    starts = await asyncio.gather(*(w.call("start") for w in workers))
    cpu0, wait0, t0 = proc_cpu_seconds(pid), run_queue_wait_seconds(pid), time.monotonic()
    foreign.start()
    await asyncio.sleep(args.seconds)
    cpu1, wait1, t1 = proc_cpu_seconds(pid), run_queue_wait_seconds(pid), time.monotonic()
    foreign_mean, foreign_max = await foreign.stop()
    pressure = cpu_pressure()
    stops = await asyncio.gather(*(w.call("stop") for w in workers))
    rss = proc_rss_mb(pid)
    load = os.getloadavg()[0]
    health1 = {} if janus else await server.health()  # type: ignore[union-attr]
    await asyncio.gather(*(w.call("leave") for w in workers))
    if isinstance(server, HubProcess):
        for _ in range(100):
            if (await server.health())["peers"] == 0:
                break
            await asyncio.sleep(0.2)
    else:
        await asyncio.sleep(1.0)  # Janus tears handles down asynchronously
    # each worker reads its own CPU at the window's ends (within milliseconds of the hub's)
    client_cpu = sum(s["cpu"] for s in stops) - sum(s["cpu"] for s in starts)
    client_wait = max(b["wait"] - a["wait"] for a, b in zip(starts, stops, strict=True))
    trial = summarize_trial(mode, n, repeat, t1 - t0, cpu1 - cpu0, client_cpu, stops, flowing, join_seconds, rss,
                            load, health0, health1, expected)
    trial.hub_wait_percent = round(100 * (wait1 - wait0) / (t1 - t0), 1)
    trial.client_wait_percent = round(100 * client_wait / (t1 - t0), 1)
    trial.cpu_pressure = pressure
    trial.foreign_cpu_percent = round(100 * foreign_mean, 1)
    trial.foreign_cpu_max_percent = round(100 * foreign_max, 1)
    return trial


def failed_trial(mode: str, n: int, repeat: int, expected: int, error: str) -> Trial:
    """A trial whose meeting never came together (nothing measured)."""
    return Trial(mode=mode, participants=n, repeat=repeat, seconds=0.0, flowing=False, join_seconds=0.0,
                 hub_cpu_percent=0.0, hub_ms_per_participant_s=0.0, participants_per_core=0.0, loss_percent=100.0,
                 video_frames_missing_percent=100.0, delay_p50_ms=None, delay_p99_ms=None, delay_samples=0,
                 delay_p99_video_ms=None, delay_p99_audio_ms=None, unmatched_frames_percent=0.0,
                 hub_ingress_loss_percent=None, download_kbps_mean=0.0, download_kbps_max=0.0, video_kbps_mean=0.0,
                 audio_kbps_mean=0.0, download_payload_kbps_mean=0.0, upload_kbps_mean=0.0, camera_kbps_mean=0.0,
                 camera_limit_kbps=0.0, videos_received_mean=0.0, audio_streams_mean=0.0, video_fps_per_stream=0.0,
                 switches_per_participant_minute=0.0, keyframes_answered=0, client_cpu_percent=0.0,
                 client_lag_p99_ms=0.0, client_lag_max_ms=0.0, hub_rss_mb=0.0, load_average=round(os.getloadavg()[0], 2),
                 expected_videos=expected, error=error)


def summarize_trial(mode: str, n: int, repeat: int, elapsed: float, cpu: float, client_cpu: float,
                    stops: list[dict[str, Any]], flowing: bool, join_seconds: float, rss: float, load: float,
                    health0: dict[str, Any], health1: dict[str, Any], expected: int) -> Trial:
    members = [m for s in stops for m in s["members"].values()]
    total = {k: sum(m[k] for m in members) for k in members[0]} if members else {}
    lost = max(0, total.get("expected", 0) - total.get("packets", 0))
    frames, missing = total.get("video_frames", 0), total.get("missing_frames", 0)
    # frames of temporal layers the hub chose not to send a thumbnail leave gaps in its RTP
    # timestamps on purpose: they are not missing (a hub without layers reports none)
    missing = max(0, missing - (int(health1.get("frames_thinned", 0)) - int(health0.get("frames_thinned", 0))))
    by_kind, unmatched = match_delays([x for s in stops for x in s["sends"]], [x for s in stops for x in s["arrivals"]])
    delays = sorted(d for ds in by_kind.values() for d in ds)
    p99 = {kind: round(1000 * percentile(sorted(ds), 0.99), 2) if ds else None for kind, ds in by_kind.items()}
    received = len(delays) + unmatched
    kbps = [8 * (m["video_bytes"] + m["audio_bytes"] + m["rtcp_bytes"]) / elapsed / 1000 for m in members]
    videos = total.get("videos", 0)
    # frames were counted over each worker's own window, which a loaded machine opens and closes
    # later than the hub's (t1 - t0): a stream's rate is its frames over that window
    stream_seconds = sum(m["videos"] * s.get("window", elapsed) for s in stops for m in s["members"].values())
    cores = cpu / elapsed
    return Trial(
        mode=mode,
        participants=n,
        repeat=repeat,
        seconds=round(elapsed, 2),
        flowing=flowing,
        join_seconds=round(join_seconds, 1),
        hub_cpu_percent=round(100 * cores, 1),
        hub_ms_per_participant_s=round(1000 * cores / n, 2),
        participants_per_core=round(n / cores, 1) if cores > 0 else 0.0,
        loss_percent=round(100 * lost / total["expected"], 3) if total.get("expected") else 100.0,
        video_frames_missing_percent=round(100 * missing / (frames + missing), 3) if frames + missing else 100.0,
        delay_p50_ms=round(1000 * statistics.median(delays), 2) if delays else None,
        delay_p99_ms=round(1000 * percentile(delays, 0.99), 2) if delays else None,
        delay_samples=len(delays),
        delay_p99_video_ms=p99.get("video"),
        delay_p99_audio_ms=p99.get("audio"),
        unmatched_frames_percent=round(100 * unmatched / received, 3) if received else 0.0,
        hub_ingress_loss_percent=None if "frames_in" not in health1 or not total.get("frames_sent") else round(
            100 * max(0, total["frames_sent"] - (health1["frames_in"] - health0["frames_in"])) / total["frames_sent"], 3),
        download_kbps_mean=round(statistics.mean(kbps), 1) if kbps else 0.0,
        download_kbps_max=round(max(kbps), 1) if kbps else 0.0,
        video_kbps_mean=round(8 * total.get("video_bytes", 0) / elapsed / 1000 / n, 1),
        audio_kbps_mean=round(8 * total.get("audio_bytes", 0) / elapsed / 1000 / n, 1),
        download_payload_kbps_mean=round(8 * total.get("payload_bytes", 0) / elapsed / 1000 / n, 1),
        upload_kbps_mean=round(8 * total.get("upload_bytes", 0) / elapsed / 1000 / n, 1),
        camera_kbps_mean=round(8 * total.get("camera_bytes", 0) / elapsed / 1000 / n, 1),
        camera_limit_kbps=statistics.median(m["camera_limit_bps"] for m in members) / 1000 if members else 0.0,
        videos_received_mean=round(videos / n, 2),
        audio_streams_mean=round(total.get("audios", 0) / n, 2),
        video_fps_per_stream=round(frames / stream_seconds, 1) if stream_seconds else 0.0,
        switches_per_participant_minute=round(60 * total.get("switches", 0) / elapsed / n, 2),
        keyframes_answered=total.get("keyframes_answered", 0),
        client_cpu_percent=round(100 * client_cpu / elapsed, 1),
        client_lag_p99_ms=round(1000 * max(s["lag_p99"] for s in stops), 1),
        client_lag_max_ms=round(1000 * max(s["lag_max"] for s in stops), 1),
        hub_rss_mb=round(rss, 1),
        load_average=round(load, 2),
        hub_stats={k: int(health1[k]) - int(health0.get(k, 0)) for k in HUB_COUNTERS if k in health1},
        expected_videos=expected,
    )


# ------------------------------------------------------------------------------------------------
# medians, capacity, goals, output


def median_trial(ts: list[Trial]) -> Trial:
    """Per-field median of one (mode, N)'s repeats, over those whose video flowed (all, if none)."""
    use = [t for t in ts if t.flowing] or ts
    out: dict[str, Any] = {}
    for key, value in asdict(use[0]).items():
        values = [getattr(t, key) for t in use]
        if key in ("mode", "participants", "expected_videos"):
            out[key] = value
        elif key == "flowing":
            out[key] = any(t.flowing for t in ts)
        elif key == "repeat":
            out[key] = len(ts)  # in the medians: how many repeats
        elif key == "hub_stats":
            out[key] = {k: statistics.median(v[k] for v in values if k in v) for k in value}
        elif key == "error":
            out[key] = value if all(t.error for t in use) else ""
        else:
            present = [v for v in values if v is not None]
            out[key] = statistics.median(present) if present else None
    return Trial(**out)


def project_capacity(ts: list[Trial]) -> dict[str, Any] | None:
    """The N at which the hub would use one whole core: interpolated between the two sizes around
    it, or extrapolated along the line through the two largest (an estimate of the hub's own
    limit when the clients, latency or the sizes run out first)."""
    ts = sorted(ts, key=lambda t: t.participants)
    if len(ts) < 2:
        return None
    pairs = list(itertools.pairwise(ts))
    a, b = next(((x, y) for x, y in pairs if x.hub_cpu_percent < 100 <= y.hub_cpu_percent), pairs[-1])
    slope = (b.hub_cpu_percent - a.hub_cpu_percent) / (b.participants - a.participants)
    if slope <= 0:
        return None
    n = a.participants + (100 - a.hub_cpu_percent) / slope
    return {"participants_at_one_core": round(n, 1), "from": [a.participants, b.participants],
            "extrapolated": b.hub_cpu_percent < 100, "hub_cpu_percent_per_participant": round(slope, 2)}


def summarize(table: list[Trial], modes: list[str], args: argparse.Namespace) -> dict[str, Any]:
    summary: dict[str, Any] = {"modes": {}}
    for mode in modes:
        ts = sorted((t for t in table if t.mode == mode), key=lambda t: t.participants)
        best: Trial | None = None
        first_fail: Trial | None = None
        for t in ts:
            if t.failures():
                first_fail = t
                break
            best = t
        summary["modes"][mode] = {
            "label": MODE_LABELS[mode],
            "sizes": [t.participants for t in ts],
            "max_participants": best.participants if best else 0,
            "hub_cpu_percent_at_max": best.hub_cpu_percent if best else None,
            "participants_per_core_at_max": best.participants_per_core if best else None,
            "download_kbps_at_max": best.download_kbps_mean if best else None,
            "first_failing": None if first_fail is None else {
                "participants": first_fail.participants, "why": first_fail.failures(),
                "hub_cpu_percent": first_fail.hub_cpu_percent, "client_cpu_percent": first_fail.client_cpu_percent},
            "projection": project_capacity([t for t in ts if t.flowing]),
        }
    new, old = summary["modes"].get("forward"), summary["modes"].get("forward-old")
    if new and old and old["max_participants"]:
        summary["ratio_max_participants"] = round(new["max_participants"] / old["max_participants"], 2)
        if new["participants_per_core_at_max"] and old["participants_per_core_at_max"]:
            summary["ratio_participants_per_core"] = round(
                new["participants_per_core_at_max"] / old["participants_per_core_at_max"], 2)
        pn, po = new["projection"], old["projection"]
        if pn and po and pn["participants_at_one_core"] and po["participants_at_one_core"]:
            summary["ratio_projected_at_one_core"] = round(pn["participants_at_one_core"] / po["participants_at_one_core"], 2)
        by_n = {(t.mode, t.participants): t for t in table}
        summary["hub_cpu_new_over_old_by_n"] = {
            str(n): round(by_n[("forward", n)].hub_cpu_percent / by_n[("forward-old", n)].hub_cpu_percent, 3)
            for (mode, n) in by_n if mode == "forward" and ("forward-old", n) in by_n
            and by_n[("forward-old", n)].hub_cpu_percent > 0}
    at30 = next((t for t in table if t.mode == "forward" and t.participants == 30), None)
    summary["goals"] = {
        "participants_per_core_ge_3x_old": None if "ratio_max_participants" not in summary
        else summary["ratio_max_participants"] >= GOAL_RATIO,
        # as a browser's inbound-rtp bytesReceived counts (RTP payload); the SRTP bytes on the wire beside it
        "download_le_1500_kbps_at_30": None if at30 is None
        else at30.download_payload_kbps_mean <= GOAL_DOWNLOAD_KBPS_AT_30,
        "download_payload_kbps_at_30": None if at30 is None else at30.download_payload_kbps_mean,
        "download_srtp_kbps_at_30": None if at30 is None else at30.download_kbps_mean,
    }
    return summary


HEADER = (f"{'mode':11} {'N':>3} {'hub CPU%':>8} {'ms/part-s':>9} {'part/core':>9} {'loss%':>6} {'in-loss%':>8} {'miss%':>6} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'down kb/s':>9} {'videos':>6} {'audios':>6} {'fps':>5} {'cli CPU%':>8} "
          f"{'hub wait%':>9} {'other%':>6} {'load':>5} verdict")


def row(t: Trial) -> str:
    failures = t.failures()
    ingress = "—" if t.hub_ingress_loss_percent is None else f"{t.hub_ingress_loss_percent:.2f}"
    return (f"{t.mode:11} {t.participants:>3} {t.hub_cpu_percent:>8.1f} {t.hub_ms_per_participant_s:>9.2f} "
            f"{t.participants_per_core:>9.1f} {t.loss_percent:>6.2f} {ingress:>8} {t.video_frames_missing_percent:>6.2f} "
            f"{t.delay_p50_ms!s:>7} {t.delay_p99_ms!s:>7} {t.download_kbps_mean:>9.0f} {t.videos_received_mean:>6.1f} "
            f"{t.audio_streams_mean:>6.1f} {t.video_fps_per_stream:>5.1f} {t.client_cpu_percent:>8.1f} "
            f"{t.hub_wait_percent:>9.1f} {t.foreign_cpu_percent:>6.1f} {t.load_average:>5.2f} "
            f"{'ok' if not failures else 'FAIL: ' + ', '.join(failures)}")


def markdown(table: list[Trial]) -> str:
    head = ["mode", "N", "hub CPU % of a core", "hub ms / participant-s", "participants / hub core", "loss %",
            "hub ingress loss %", "video frames missing %", "delay p50 / p99 ms", "download kbit/s per participant (max)",
            "videos received", "client CPU %", "hub waited for a CPU %", "other processes' CPU %", "load",
            "meets criteria"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for t in table:
        p50 = "—" if t.delay_p50_ms is None else f"{t.delay_p50_ms:.1f}"
        p99 = "—" if t.delay_p99_ms is None else f"{t.delay_p99_ms:.0f}"
        lines.append("| " + " | ".join([
            t.mode, str(t.participants), f"{t.hub_cpu_percent:.1f}", f"{t.hub_ms_per_participant_s:.1f}",
            f"{t.participants_per_core:.0f}", f"{t.loss_percent:.2f}",
            "—" if t.hub_ingress_loss_percent is None else f"{t.hub_ingress_loss_percent:.2f}",
            f"{t.video_frames_missing_percent:.2f}",
            f"{p50} / {p99}", f"{t.download_kbps_mean:.0f} ({t.download_kbps_max:.0f})",
            f"{t.videos_received_mean:.1f}", f"{t.client_cpu_percent:.0f}", f"{t.hub_wait_percent:.0f}",
            f"{t.foreign_cpu_percent:.0f}", f"{t.load_average:.1f}",
            "yes" if not t.failures() else "no: " + ", ".join(t.failures())]) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# checkouts and the run


@contextlib.contextmanager
def worktree(rev: str) -> Any:
    """A detached ``git worktree`` of ``rev`` under /tmp, removed (and pruned) afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"unionhub-meeting-{rev}-"))
    path.rmdir()
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), rev], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)


def describe_tree(path: Path) -> dict[str, Any]:
    """Which code a hub ran: the commit, and what was uncommitted in the checkout at the time."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", "-C", str(path), *argv], capture_output=True, text=True).stdout.strip()

    return {"path": str(path), "commit": git("describe", "--always", "--dirty"),
            "uncommitted": git("status", "--porcelain", "--", "media_server", "signalling", "unionhub", "core").splitlines()}


def camera_ladder(args: argparse.Namespace, sizes: list[int]) -> list[CameraVariant]:
    """The camera clip (VGA at ``--bitrate``) and an encoding for each cap this tree's hub asks
    for in meetings of up to max(sizes) cameras (``signalling/bandwidth.py``; none if absent)."""
    caps: set[tuple[int, float]] = set()
    try:
        from signalling.bandwidth import camera_limit
    except ImportError:
        logger.warning("this tree has no camera limits (signalling/bandwidth.py): one encoding only")
    else:
        for cameras in range(2, max(sizes) + 1):
            limit = camera_limit(cameras, args.last_n)
            if limit is not None and limit.max_bitrate < args.bitrate:
                caps.add((limit.max_bitrate, limit.scale_down))

    def encode(cap: int | None, scale: float) -> CameraVariant:
        target = args.bitrate if cap is None else int(0.95 * cap)  # an encoder holding a cap stays under it
        packets = encode_test_video(seconds=args.clip_seconds, width=int(640 / scale), height=int(480 / scale),
                                    bit_rate=target, gop=args.gop, temporal_layers=args.temporal_layers)
        layers = layers_of(packets) or [None] * len(packets)
        frames = [(bytes(p), int(p.pts or 0), bool(p.is_keyframe), tid) for p, tid in zip(packets, layers, strict=True)]
        bps = int(8 * sum(len(f[0]) for f in frames) / args.clip_seconds)
        return CameraVariant(cap, scale, bps, frames)

    ladder = [encode(None, 1.0), *(encode(cap, scale) for cap, scale in sorted(caps, reverse=True))]
    print("camera encodings: " + ", ".join(
        f"{640 / v.scale:.0f}x{480 / v.scale:.0f} {v.bps // 1000} kbit/s"
        + (f" (cap {v.max_bitrate // 1000})" if v.max_bitrate else "") for v in ladder), flush=True)
    return ladder


async def run(args: argparse.Namespace, modes: list[str], sizes: list[int]) -> dict[str, Any]:
    ladder = camera_ladder(args, sizes)
    speech = encode_speech(str(args.speech))
    trials: list[Trial] = []
    contended: list[Trial] = []  # trials run again because the machine held the hub back
    trees: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as checkouts:
        old_tree = args.old_tree
        if "forward-old" in modes and old_tree is None:
            old_tree = checkouts.enter_context(worktree(args.old_rev))
        new_tree = args.new_tree
        if new_tree is None and args.new_rev:
            new_tree = checkouts.enter_context(worktree(args.new_rev))
        if "forward" in modes:
            trees["forward"] = describe_tree(new_tree or ROOT)
        if "forward-old" in modes:
            trees["forward-old"] = describe_tree(old_tree)
        async with contextlib.AsyncExitStack() as stack:
            servers: dict[str, Server] = {}
            for mode in modes:  # every server stays up for the whole run: trials interleave under one load
                server: Server = (JanusServer(free_port()) if mode == "janus"
                                  else HubProcess(mode, old_tree if mode == "forward-old" else new_tree))
                servers[mode] = await stack.enter_async_context(server)
            workers = [WorkerHandle(ladder, speech) for _ in range(args.workers)]
            stack.push_async_callback(lambda: asyncio.gather(*(w.close() for w in workers)))
            print(HEADER, flush=True)
            active = list(modes)
            failed: dict[str, int] = {}  # mode -> the first N it failed at
            for n in sizes:
                if not active:
                    break
                for repeat in range(args.repeats):
                    for mode in active if repeat % 2 == 0 else active[::-1]:  # no mode always goes first
                        for attempt in range(args.retries + 1):
                            pids = [servers[mode].proc.pid, os.getpid(), *(w.pid for w in workers)]  # type: ignore[union-attr]
                            waited = await wait_for_quiet(pids, args.max_foreign, args.wait_quiet)
                            if waited > 10:
                                print(f"  (waited {waited:.0f} s for the machine's other work to calm down)", flush=True)
                            t = await run_trial(mode, servers[mode], workers, n, repeat, args)
                            print(row(t), flush=True)
                            if not t.contended(args.max_foreign, args.max_foreign_peak) or attempt == args.retries:
                                break
                            # the machine's other work held the hub back: not this hub's limit
                            print(f"  (other processes used {t.foreign_cpu_percent} % of a core, up to "
                                  f"{t.foreign_cpu_max_percent} % in one second: contended, again in "
                                  f"{args.retry_pause:.0f} s)", flush=True)
                            contended.append(t)
                            await asyncio.sleep(args.retry_pause)
                        trials.append(t)
                for mode in list(active):
                    med = median_trial([t for t in trials if t.mode == mode and t.participants == n])
                    if not med.failures() and mode not in failed:
                        continue
                    failed.setdefault(mode, n)
                    beyond = sum(1 for m in sizes if failed[mode] < m <= n)
                    if beyond < args.beyond_failure and med.hub_cpu_percent < SPARE_CPU_PERCENT:
                        print(f"  {mode} fails at N = {n} ({', '.join(med.failures()) or 'after failing before'}) "
                              f"with {med.hub_cpu_percent} % of a core: measured further (--beyond-failure)", flush=True)
                        continue
                    print(f"  {mode} stops at N = {n}: {', '.join(med.failures()) or 'beyond its failure'}", flush=True)
                    active.remove(mode)
    table = sorted((median_trial([t for t in trials if t.mode == m and t.participants == n])
                    for m in modes for n in sizes if any(t.mode == m and t.participants == n for t in trials)),
                   key=lambda t: (modes.index(t.mode), t.participants))
    return {"trials": trials, "table": table, "trees": trees, "contended": contended,
            "camera_encodings": [{"cap_bps": v.max_bitrate, "scale_down": v.scale, "measured_bps": v.bps} for v in ladder]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4,8,13,20,30,40", help="meeting sizes N, ascending")
    parser.add_argument("--modes", default="forward,forward-old,janus", help=f"comma-separated: {', '.join(MODES)}")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per trial")
    parser.add_argument("--repeats", type=int, default=3, help="trials per (mode, N); results use the medians")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds between everyone flowing and the window")
    parser.add_argument("--turn", type=float, default=3.0, help="seconds per speaking turn")
    parser.add_argument("--workers", type=int, default=2, help="participant processes")
    parser.add_argument("--max-foreign", type=float, default=30.0,
                        help="run a trial again if processes other than the bench's used more than this %% of a "
                             "core over its window (a neighbour, not the meeting, held the hub back) ...")
    parser.add_argument("--max-foreign-peak", type=float, default=150.0, help="... or more than this in one second")
    parser.add_argument("--wait-quiet", type=float, default=300.0,
                        help="before each trial, wait at most this long for other processes to use less than "
                             "--max-foreign (0: never wait)")
    parser.add_argument("--retries", type=int, default=3, help="how often a contended trial runs again")
    parser.add_argument("--retry-pause", type=float, default=30.0, help="seconds before a contended trial runs again")
    parser.add_argument("--beyond-failure", type=int, default=0,
                        help="measure a mode at up to this many larger N after it fails the criteria, while its hub "
                             f"used less than {SPARE_CPU_PERCENT:.0f} %% of a core (CPU and download beyond a latency "
                             "failure; those N never count as met)")
    parser.add_argument("--last-n", type=int, default=DEFAULT_LAST_N, help="the hub's default last-N (flowing check)")
    parser.add_argument("--old-rev", default="f510ced", help="forward-old: the commit to check out in a worktree")
    parser.add_argument("--old-tree", type=Path, help="forward-old: an existing checkout instead of --old-rev")
    parser.add_argument("--new-rev", help="forward: run this commit (a worktree) instead of this tree")
    parser.add_argument("--new-tree", type=Path, help="forward: run this checkout instead of this tree")
    parser.add_argument("--bitrate", type=int, default=600_000, help="the VGA clip's VP8 bit rate")
    parser.add_argument("--gop", type=int, default=60, help="the clip's keyframe interval (frames)")
    parser.add_argument("--temporal-layers", action=argparse.BooleanOptionalAction, default=True,
                        help="cameras send VP8 in three temporal layers (L1T3), as the web client asks browsers to")
    parser.add_argument("--clip-seconds", type=float, default=8.0)
    parser.add_argument("--speech", type=Path, default=SPEECH)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--name", default="meeting")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {sorted(unknown)}")
    sizes = sorted(int(x) for x in args.sizes.split(",") if x)
    if not sizes or sizes[0] < 2:
        parser.error("--sizes: meetings of at least 2")
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # asyncio.run cancels the run: servers, workers, worktree cleaned up

    signal.signal(signal.SIGTERM, interrupted)
    result = asyncio.run(run(args, modes, sizes))
    table: list[Trial] = result["table"]
    print(f"medians over {args.repeats} repeat(s):")
    print(HEADER)
    for t in table:
        print(row(t))
    summary = summarize(table, modes, args)
    for mode, s in summary["modes"].items():
        print(f"{mode}: largest N meeting the criteria {s['max_participants']} "
              f"(hub {s['hub_cpu_percent_at_max']} % of a core, {s['participants_per_core_at_max']} participants per "
              f"core, {s['download_kbps_at_max']} kbit/s down each); first failing: {s['first_failing']}; "
              f"projection: {s['projection']}")
    for key in ("ratio_max_participants", "ratio_participants_per_core", "ratio_projected_at_one_core"):
        if key in summary:
            print(f"{key}: {summary[key]}")
    print(f"goals: {summary['goals']}")
    print(markdown(table))
    note = (f"{os.cpu_count()} cores shared by the hub and {args.workers} participant processes: client CPU competes "
            "with the hub, so a failing N may be the clients' limit (see client_cpu_percent and hub_cpu_percent)")
    print("note: " + note)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{args.name}.json"
    out.write_text(json.dumps({
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "hardware": hardware(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "note": note,
        "settings": {"sizes": sizes, "modes": modes, "seconds": args.seconds, "repeats": args.repeats,
                     "warmup": args.warmup, "turn_seconds": args.turn, "workers": args.workers, "last_n": args.last_n,
                     "rerun_if_foreign_cpu_percent_over": [args.max_foreign, args.max_foreign_peak],
                     "beyond_failure": args.beyond_failure,
                     "retries": args.retries,
                     "video": f"VP8 640x480 30 fps {args.bitrate // 1000} kbit/s, keyframe every {args.gop} frames "
                              "and on request; under the hub's send-limits, the encoding below that fits the cap"
                              + ("; three temporal layers (L1T3)" if args.temporal_layers else ""),
                     "camera_encodings": result["camera_encodings"],
                     "audio": f"Opus mono 32 kbit/s from {args.speech.name}, DTX when silent",
                     "criteria": {"loss_percent_lt": MAX_LOSS_PERCENT, "video_frames_missing_percent_lt": MAX_LOSS_PERCENT,
                                  "delay_p99_ms_lt": MAX_P99_MS}},
        "trees": result["trees"],
        "table": [asdict(t) for t in table],
        "trials": [asdict(t) for t in result["trials"]],
        "contended_trials_run_again": [asdict(t) for t in result["contended"]],
        "summary": summary,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
