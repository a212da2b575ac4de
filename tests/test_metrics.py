"""``GET /metrics`` (issue #18 item 5): Prometheus text that prometheus-client's own parser reads,
whose values follow a real call through the hub (aiortc clients publishing and subscribing), and
that only the API key opens when one is set."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import av
import pytest
from prometheus_client.parser import text_string_to_metric_families

from captioning.service import CaptionConfig
from hubtest import RunningHub
from sigclient import until
from signalling.auth import Security
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video

KEY = "metrics-test-key-" + "0123456789abcdef" * 2

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(hub: RunningHub, key: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as session, session.get(f"{hub.url}/metrics", headers=headers) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        text = await r.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def sampled(hub: RunningHub, ready: Callable[[Samples], bool], timeout: float = 10) -> Samples:
    """The first scrape that shows what ``ready`` looks for: the monitor samples totals once a second."""
    async def poll() -> Samples:
        while not ready(samples := await scrape(hub)):
            await asyncio.sleep(0.25)
        return samples

    return await asyncio.wait_for(poll(), timeout)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def stat_values(samples: Samples, name: str) -> dict[str, float]:
    return {dict(labels)["stat"]: v for (n, labels), v in samples.items() if n == name}


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=30)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)


async def test_metrics_follow_a_call_start_to_end(
    make_hub: Callable[..., Awaitable[RunningHub]], tmp_path: Path, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    hub = await make_hub(captions=CaptionConfig(models_dir=tmp_path / "models", asr_model="none"))
    idle = await scrape(hub)
    assert value(idle, "unionhub_rooms") == 0 and value(idle, "unionhub_participants") == 0
    assert value(idle, "unionhub_forwarded_frames_total", kind="video") == 0
    assert value(idle, "unionhub_recordings_in_progress") == 0
    assert ("unionhub_caption_speakers", ()) in idle  # captions configured: their metrics are there
    assert value(idle, "process_resident_memory_bytes") > 0

    ana = HubClient(hub.url, "metrics", "Ana", video=video, audio=audio)
    bo = HubClient(hub.url, "metrics", "Bo")
    try:
        await ana.join()
        await bo.join()
        assert ana.id is not None
        await until(lambda: sum(len(r.frames) for r in bo.received_from(ana.id or "", "video")) >= 30)
        during = await scrape(hub)
        assert value(during, "unionhub_rooms") == 1
        assert value(during, "unionhub_participants") == 2
        assert value(during, "unionhub_publications", kind="video") == 1
        assert value(during, "unionhub_publications", kind="audio") == 1
        assert value(during, "unionhub_forwarded_streams", kind="video", state="sending") == 1
        assert value(during, "unionhub_forwarded_streams", kind="audio", state="sending") == 1
        # someone joining a running call must start at a keyframe: the hub asks Ana for one
        cy = HubClient(hub.url, "metrics", "Cy")
        try:
            await cy.join()
            await until(lambda: sum(len(r.frames) for r in cy.received_from(ana.id or "", "video")) >= 10)
        finally:
            await cy.close()
        # the totals are sampled once a second: the first sample after Cy's keyframe shows the request
        later = await sampled(hub, lambda s: value(s, "unionhub_keyframe_requests_total") > value(
            during, "unionhub_keyframe_requests_total"))
        for kind in ("audio", "video"):
            assert value(later, "unionhub_received_frames_total", kind=kind) > value(
                during, "unionhub_received_frames_total", kind=kind)
        assert value(later, "unionhub_forwarded_frames_total", kind="video") > value(
            during, "unionhub_forwarded_frames_total", kind="video")
        assert value(later, "unionhub_forwarded_bytes_total") > value(during, "unionhub_forwarded_bytes_total")
        assert value(later, "unionhub_forwarded_frames_per_second", kind="video") > 0

        # Bo's aiortc sends receiver reports: loss (clean loopback: 0) and, from sender/receiver
        # report pairs, aiortc's round-trip estimate
        async def rtcp_seen() -> Samples:
            while True:
                samples = await scrape(hub)
                if stat_values(samples, "unionhub_subscriber_rtt_seconds") and value(
                        samples, "unionhub_subscriber_loss_reports") > 0:
                    return samples
                await asyncio.sleep(0.5)

        samples = await asyncio.wait_for(rtcp_seen(), 20)
        rtt = stat_values(samples, "unionhub_subscriber_rtt_seconds")
        assert 0 <= rtt["p50"] <= rtt["max"] < 1.0, rtt  # loopback
        assert stat_values(samples, "unionhub_subscriber_loss_ratio")["max"] < 0.05

        # a host starts recording: in progress until stopped
        await ana.sio.call("record", {"on": True}, timeout=10)
        assert value(await scrape(hub), "unionhub_recordings_in_progress") == 1
        await asyncio.sleep(2.0)  # some media recorded (a recording without any is discarded)
        await ana.sio.call("record", {"on": False}, timeout=10)
        stopped = await scrape(hub)
        assert value(stopped, "unionhub_recordings_in_progress") == 0
        # the stopped recording is composed next (waiting or running), then neither
        assert value(stopped, "unionhub_compositions_waiting") + value(stopped, "unionhub_compositions_running") == 1
        composed = None
        for _ in range(240):
            composed = await scrape(hub)
            if value(composed, "unionhub_compositions_waiting") + value(composed, "unionhub_compositions_running") == 0:
                break
            await asyncio.sleep(0.25)
        assert composed is not None and value(composed, "unionhub_compositions_running") == 0
    finally:
        await bo.close()
        await ana.close()
    await until(lambda: not hub.server.sfu.rooms)
    after = await sampled(hub, lambda s: value(s, "unionhub_forwarded_frames_per_second", kind="video") == 0)
    assert value(after, "unionhub_rooms") == 0 and value(after, "unionhub_participants") == 0
    assert value(after, "unionhub_publications", kind="video") == 0
    # counters do not fall when the objects that counted leave
    assert value(after, "unionhub_forwarded_frames_total", kind="video") >= value(
        later, "unionhub_forwarded_frames_total", kind="video")
    assert value(after, "unionhub_forwarded_frames_per_second", kind="video") == 0


async def test_metrics_need_the_api_key_when_one_is_set(make_hub: Callable[..., Awaitable[RunningHub]]) -> None:
    hub = await make_hub(security=Security(api_key=KEY))
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            async with session.get(f"{hub.url}/metrics", headers=headers) as r:
                assert r.status == 401
                assert (await r.json())["error"]["code"] == "unauthorized"
                assert "unionhub_rooms" not in await r.text()
    assert value(await scrape(hub, KEY), "unionhub_rooms") == 0


async def test_metrics_are_open_without_an_api_key(hub: RunningHub) -> None:
    assert value(await scrape(hub), "unionhub_participants") == 0


async def test_the_grafana_dashboard_plots_only_metrics_the_hub_exports(
    make_hub: Callable[..., Awaitable[RunningHub]], tmp_path: Path
) -> None:
    """docs/grafana-unionhub.json stays honest: a renamed metric would leave a panel empty."""
    dashboard = json.loads((Path(__file__).parent.parent / "docs/grafana-unionhub.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    plotted = {name for e in exprs for name in re.findall(r"\b(?:unionhub|process)_[a-z_]+\b", e)}
    hub = await make_hub(captions=CaptionConfig(models_dir=tmp_path / "models", asr_model="none"))
    async with aiohttp.ClientSession() as session, session.get(f"{hub.url}/metrics") as r:
        families = list(text_string_to_metric_families(await r.text()))
    # (a family's name, for those without samples yet, such as RTT before anyone subscribes)
    exported = {f.name for f in families} | {s.name for f in families for s in f.samples}
    assert len(plotted) >= 15
    assert plotted <= exported, plotted - exported
