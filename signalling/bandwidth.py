"""Camera send limits: what the hub asks publishers' browsers to send so everyone can receive it.

A forwarding hub never re-encodes, so it cannot shrink a video for one viewer: what a
participant downloads is the sum of the videos last-N gives it. With many cameras on, the hub
therefore asks every browser to cap its camera (``RTCRtpSender.setParameters``: ``maxBitrate``,
and ``scaleResolutionDownBy`` when the cap is too low for VGA to look good), so that the videos
one participant receives fit :data:`DOWNLOAD_BUDGET`. A host can also turn on a "low bandwidth
room" (:data:`LOW_BANDWIDTH`), for meetings where most people are on weak links. Screen shares
are never capped (text needs its pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Bits/s of video a participant should need at most with default settings (audio comes on top:
#: one or two speakers at a time, ~30-40 kbit/s each, silence suppressed).
DOWNLOAD_BUDGET = 1_400_000
#: A per-camera cap at least this high changes nothing worth asking for.
NO_CAP_FROM = 1_000_000
#: Never ask for less than this (below it VP8 at QVGA falls apart).
MIN_BITRATE = 150_000
#: Under this cap, halve the resolution too: VGA at such rates is blurred blocks.
HALVE_BELOW = 300_000


@dataclass(frozen=True, slots=True)
class CameraLimit:
    """What every camera in a room should send at most."""

    max_bitrate: int  # bits/s
    scale_down: float = 1.0  # 2.0: half the width and height

    def public(self) -> dict[str, Any]:
        return {"maxBitrate": self.max_bitrate, "scaleResolutionDownBy": self.scale_down}


#: A host's "low bandwidth room": every camera small and cheap, whatever the number of cameras.
LOW_BANDWIDTH = CameraLimit(200_000, 2.0)


def camera_limit(cameras: int, last_n: int, low_bandwidth: bool = False) -> CameraLimit | None:
    """The cap for every camera of a room where ``cameras`` are on and each participant gets at
    most ``last_n`` others' video; None: no cap."""
    if low_bandwidth:
        return LOW_BANDWIDTH
    shown = min(cameras - 1, last_n)
    if shown <= 0:
        return None
    per_video = DOWNLOAD_BUDGET // shown
    if per_video >= NO_CAP_FROM:
        return None
    per_video = max(per_video, MIN_BITRATE)
    return CameraLimit(per_video, 2.0 if per_video < HALVE_BELOW else 1.0)


def public(limit: CameraLimit | None) -> dict[str, Any]:
    """The ``send-limits`` payload (and ``joined.sendLimits``)."""
    return {"camera": limit.public() if limit is not None else None}
