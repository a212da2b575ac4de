"""``GET /metrics``: the hub's state in Prometheus' text format, for an operator's dashboards.

A custom collector (prometheus-client's ``Collector``) reads the live state when Prometheus
scrapes — rooms from the room store, media from the SFU, captions, recordings and live streams
from their features — so nothing is counted twice and nothing can drift. What only exists over
time (event-loop lag, counters that must survive participants leaving, RTT) comes from the
:class:`~unionhub.monitor.Monitor`. With ``UNIONHUB_API_KEY`` set, scrapes must send it
(``Authorization: Bearer <key>``, Prometheus' ``authorization.credentials``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, GC_COLLECTOR, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from captioning.feature import CaptionsFeature
from core.http import json_error
from media_server import ForwardedTrack
from recordings.feature import LiveFeature, RecordingFeature
from signalling import SignallingServer
from signalling.auth import api_key_matches

from .monitor import Monitor

#: A subscriber's loss report counts while it is younger than this (s); browsers report every 1–5 s.
LOSS_FRESH = 10.0


def _stats(values: Sequence[float]) -> dict[str, float]:
    """Median, 95th percentile and worst of a set of per-subscriber values."""
    ordered = sorted(values)
    if not ordered:
        return {}
    return {"p50": ordered[len(ordered) // 2], "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
            "max": ordered[-1]}


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class HubCollector:
    """Reads one hub's live state at scrape time (see the module docstring)."""

    def __init__(self, server: SignallingServer, monitor: Monitor) -> None:
        self._server = server
        self._monitor = monitor

    def collect(self) -> Iterator[Metric]:
        yield from self._rooms()
        yield from self._media()
        yield from self._feedback()
        yield _gauge("unionhub_event_loop_lag_seconds",
                     "Longest the event loop was late to wake a task in the last 10 s", self._monitor.loop_lag)
        for feature in self._server.features:
            if isinstance(feature, CaptionsFeature):
                yield from self._captions(feature)
            elif isinstance(feature, RecordingFeature):
                yield _gauge("unionhub_recordings_in_progress", "Rooms being recorded now",
                             sum(feature.manager.state(room)["on"] for room in list(self._server.sfu.rooms)))
                yield _gauge("unionhub_compositions_waiting", "Stopped recordings waiting to be composed",
                             feature.manager.compositions_waiting)
                yield _gauge("unionhub_compositions_running", "Recordings being composed now (one at a time)",
                             int(feature.manager.composing is not None))
            elif isinstance(feature, LiveFeature):
                yield from self._live(feature)

    def _rooms(self) -> Iterator[Metric]:
        store = self._server.store
        yield _gauge("unionhub_rooms", "Rooms with someone in them", store.count())
        yield _gauge("unionhub_participants", "Participants connected to a room", len(store.sids()))

    def _media(self) -> Iterator[Metric]:
        rooms = list(self._server.sfu.rooms.values())
        publications = GaugeMetricFamily("unionhub_publications", "Tracks published to the SFU", labels=["kind"])
        for kind in ("audio", "video"):
            publications.add_metric([kind], sum(p.kind == kind for r in rooms for p in r.publications.values()))
        yield publications
        streams = GaugeMetricFamily("unionhub_forwarded_streams",
                                    "Tracks forwarded to subscribers (paused: held back by last-N or congestion)",
                                    labels=["kind", "state"])
        tracks = [t for r in rooms for peer in r.peers.values() for t in peer.subscribed_tracks()
                  if isinstance(t, ForwardedTrack)]
        for kind in ("audio", "video"):
            for state, paused in (("sending", False), ("paused", True)):
                streams.add_metric([kind, state], sum(t.kind == kind and t.paused == paused for t in tracks))
        yield streams
        yield _gauge("unionhub_congested_subscribers", "Subscribers whose downlink holds back video now",
                     sum(len(r.congested) for r in rooms))
        m = self._monitor
        received = CounterMetricFamily("unionhub_received_frames", "Frames received from publishers", labels=["kind"])
        forwarded = CounterMetricFamily("unionhub_forwarded_frames", "Frames forwarded to subscribers", labels=["kind"])
        rate = GaugeMetricFamily("unionhub_forwarded_frames_per_second", "Frames forwarded per second, last 0.25 s",
                                 labels=["kind"])
        for kind in ("audio", "video"):
            received.add_metric([kind], m.frames_in[kind].total)
            forwarded.add_metric([kind], m.frames_forwarded[kind].total)
            rate.add_metric([kind], m.frames_forwarded[kind].rate)
        yield from (received, forwarded, rate)
        yield CounterMetricFamily("unionhub_forwarded_bytes", "Media payload bytes forwarded to subscribers",
                                  value=m.bytes_forwarded.total)
        yield CounterMetricFamily("unionhub_dropped_frames", "Frames not forwarded to a subscriber that fell behind",
                                  value=m.frames_dropped.total)
        yield CounterMetricFamily("unionhub_keyframe_requests", "Keyframe requests (PLI) sent to publishers",
                                  value=m.keyframe_requests.total)

    def _feedback(self) -> Iterator[Metric]:
        """Subscribers' loss and RTT (RTCP receiver reports), as median, p95 and worst."""
        since = time.monotonic() - LOSS_FRESH
        losses = [t.reported_loss for r in list(self._server.sfu.rooms.values()) for peer in r.peers.values()
                  for t in peer.subscribed_tracks() if isinstance(t, ForwardedTrack) and t.reported_at >= since]
        loss = GaugeMetricFamily("unionhub_subscriber_loss_ratio",
                                 "Fraction lost that subscribers report for forwarded tracks (RTCP)", labels=["stat"])
        for stat, value in _stats(losses).items():
            loss.add_metric([stat], value)
        yield loss
        yield _gauge("unionhub_subscriber_loss_reports", "Forwarded tracks with a loss report in the last 10 s",
                     len(losses))
        rtt = GaugeMetricFamily("unionhub_subscriber_rtt_seconds",
                                "Round-trip time hub → subscriber (RTCP sender/receiver reports)", labels=["stat"])
        for stat, value in _stats(list(self._monitor.rtt.values())).items():
            rtt.add_metric([stat], value)
        yield rtt

    def _captions(self, feature: CaptionsFeature) -> Iterator[Metric]:
        service = feature.service
        model = service.config.asr_model
        stats = service.stats()
        yield GaugeMetricFamily("unionhub_caption_speakers", "Audio publications being captioned",
                                value=stats["speakers"])
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "pending": GaugeMetricFamily("unionhub_caption_queue_depth", "Transcription jobs waiting", labels=["model"]),
            "busy": GaugeMetricFamily("unionhub_caption_workers_busy", "Speech workers transcribing now",
                                      labels=["model"]),
            "final_lag_p50": GaugeMetricFamily("unionhub_caption_lag_seconds",
                                               "Median wait of the last 100 final captions", labels=["model"]),
            "finals_dropped": CounterMetricFamily("unionhub_caption_finals_dropped",
                                                  "Final captions dropped because the queue was full", labels=["model"]),
        }
        for key, family in families.items():
            if key in stats:
                family.add_metric([model], stats[key])
            yield family
        latency = GaugeMetricFamily("unionhub_translation_seconds",
                                    "Time to translate a caption into every language wanted (last 100)", labels=["stat"])
        for stat in ("p50", "max"):
            if f"translation_{stat}" in stats:
                latency.add_metric([stat], stats[f"translation_{stat}"])
        yield latency
        yield CounterMetricFamily("unionhub_captions", "Captions sent", value=stats["emitted"])
        yield CounterMetricFamily("unionhub_caption_translations", "Caption translations made",
                                  value=stats["translations"])

    def _live(self, feature: LiveFeature) -> Iterator[Metric]:
        live = [room for room in list(self._server.sfu.rooms) if feature.manager.is_live(room)]
        yield _gauge("unionhub_live_streams", "Rooms streaming live (HLS) now", len(live))
        # viewers are the audience pages that polled the status API in the last 15 s
        yield _gauge("unionhub_hls_viewers", "Audience members watching live streams",
                     sum(feature.manager.status(room, None)["viewers"] for room in live))


def registry_for(server: SignallingServer, monitor: Monitor) -> CollectorRegistry:
    """The hub's own registry (not prometheus-client's global one: a process may run several
    hubs, e.g. in tests), with the process' CPU, memory and file descriptors too."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(server, monitor))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(GC_COLLECTOR)
    return registry


def add_routes(app: web.Application, server: SignallingServer) -> Monitor:
    """``GET /metrics``, and the monitor task that runs with the app."""
    monitor = Monitor(server.sfu)
    registry = registry_for(server, monitor)

    async def metrics(request: web.Request) -> web.Response:
        key = server.security.api_key
        if key and not api_key_matches(key, request.headers.get("Authorization")):
            response = json_error(401, "unauthorized", "Send 'Authorization: Bearer <API key>'.")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(app: web.Application) -> None:
        monitor.start()

    async def stop(app: web.Application) -> None:
        await monitor.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/metrics", metrics, allow_head=False)  # (a scrape is a GET)
    return monitor
