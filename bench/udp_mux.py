"""Forwarding CPU with every connection on one UDP port (``--udp-port``) vs a socket per connection.

Two hubs run side by side as subprocesses, one default (aioice's ephemeral socket per
connection), one with ``--udp-port``; trials alternate between them under the same machine load.
Each trial is ``bench/sfu_forwarding.py``'s: one publisher (pre-encoded VGA VP8 + Opus) and M
subscribers from this process; the hub's CPU seconds per forwarded stream-second over the window.

    .venv/bin/python bench/udp_mux.py --subscribers 4,16 --seconds 10 --repeats 3

Results: docs/BENCHMARKS.md ("One UDP port").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from sfu_forwarding import Server, Trial, hardware, run_trial  # noqa: E402
from testkit.rtc_client import encode_test_audio, encode_test_video  # noqa: E402


class PortServer(Server):
    """The forwarding hub with extra ``serve`` arguments, labelled ``label``."""

    def __init__(self, label: str, *extra: str) -> None:
        super().__init__("forward")
        self.mode = label
        self.extra = list(extra)

    async def __aenter__(self) -> PortServer:
        exe = Path(sys.executable).with_name("unionhub")
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(self.port), "--data-dir", f"/tmp/unionhub-bench-{self.mode}",
             "--log-level", "warning", "--max-participants", "500", "--asr-model", "none", *self.extra],
            stdout=subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):  # (not listening yet)
                    async with session.get(self.url + "/healthz") as r:
                        if r.status == 200:
                            return self
                await asyncio.sleep(0.1)
        raise RuntimeError("server did not start")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", default="4,16")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    clip = (encode_test_video(seconds=4, width=640, height=480, bit_rate=600_000), encode_test_audio(seconds=4))
    trials: list[Trial] = []
    async with contextlib.AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(PortServer("sockets")),
            await stack.enter_async_context(PortServer("udp-port", "--udp-port", str(free_udp_port()))),
        ]
        for m in [int(x) for x in args.subscribers.split(",")]:
            for repeat in range(args.repeats):
                for server in servers if repeat % 2 == 0 else servers[::-1]:
                    trial = await run_trial(server, 1, m, args.seconds, clip, repeat)
                    trials.append(trial)
                    print(f"{trial.mode:9} M={m:3} {1000 * trial.cpu_per_stream_second:6.3f} ms/stream-s "
                          f"CPU {trial.server_cpu_percent:5.1f}% loss {trial.loss_percent:.2f}% "
                          f"flowing={trial.flowing} load {trial.load_average}", flush=True)
    print(f"\nmedians ({args.repeats} runs each; {hardware().get('cpu', '')}, {os.cpu_count()} cores):")
    by: dict[tuple[str, int], list[Any]] = {}
    for t in trials:
        by.setdefault((t.mode, t.subscribers), []).append(t)
    for (mode, m), ts in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"| {mode} | {m} | {ts[0].streams} | "
              f"{1000 * statistics.median(t.cpu_per_stream_second for t in ts):.3f} | "
              f"{statistics.median(t.server_cpu_percent for t in ts):.1f} | "
              f"{statistics.median(t.loss_percent for t in ts):.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
