"""RTCP feedback seam: what subscribers report about their downlinks, and loss told upstream.

aiortc's senders digest RTCP (receiver reports feed ``getStats()``, REMB goes to a local
encoder) but expose no hook, and its receivers send receiver reports computed from their own
stream only. Two things need more, both done here by wrapping one method of one aiortc *instance*
(as :func:`~media_server.forwarding.route_keyframe_requests` does), so an aiortc upgrade that
renames them breaks in this module only:

* :func:`observe_sender` — every receiver report block and REMB a subscriber's browser sends
  about a forwarded stream reaches a callback (the congestion policy, ``congestion.py``);
* :func:`report_loss_upstream` — the receiver reports the hub sends a *publisher* claim at least
  the loss its subscribers see. A browser's Opus encoder adds in-band FEC in proportion to the
  loss reported to it; on a forwarded call the lossy leg is usually hub → subscriber, which the
  publisher never hears of, so without this a lossy subscriber gets audio without FEC (LiveKit
  reports the worst subscriber's loss upstream for audio for the same reason).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpRrPacket, RtcpSrPacket, unpack_remb_fci

logger = logging.getLogger(__name__)

#: ``(fraction_lost 0..1)`` of one report block about the sender's stream.
OnReport = Callable[[float], None]
#: ``(bits per second)`` of a REMB that names the sender's stream.
OnEstimate = Callable[[int], None]


def observe_sender(sender: RTCRtpSender, on_report: OnReport, on_estimate: OnEstimate) -> bool:
    """Call ``on_report`` / ``on_estimate`` for the RTCP feedback ``sender`` receives, before
    aiortc handles it as usual. False (nothing installed) if this aiortc lacks the method."""
    handle = getattr(sender, "_handle_rtcp_packet", None)
    if handle is None:
        logger.warning("aiortc internals changed: no congestion feedback from subscribers")
        return False

    async def handle_rtcp_packet(packet: Any) -> None:
        try:
            _observe(sender, packet, on_report, on_estimate)
        except Exception:  # feedback is advisory: never break aiortc's own handling
            logger.exception("RTCP feedback observer failed")
        await handle(packet)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]  # aiortc private
    return True


def _observe(sender: RTCRtpSender, packet: Any, on_report: OnReport, on_estimate: OnEstimate) -> None:
    ssrc = sender._ssrc
    if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
        for report in packet.reports:
            if report.ssrc == ssrc:
                on_report(report.fraction_lost / 256)
    elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
        try:
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
        except ValueError:
            return  # another application-layer feedback
        if ssrc in ssrcs:
            on_estimate(bitrate)


def report_loss_upstream(receiver: RTCRtpReceiver, downstream_loss: Callable[[], float]) -> bool:
    """Make the receiver reports ``receiver`` sends claim at least ``downstream_loss()``
    (0..1) as fraction lost. False (nothing installed) if this aiortc lacks the method."""
    send = getattr(receiver, "_send_rtcp", None)
    if send is None:
        logger.warning("aiortc internals changed: subscribers' loss is not reported to publishers")
        return False

    async def send_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpRrPacket):
            try:
                floor = min(255, int(downstream_loss() * 256))
            except Exception:
                logger.exception("downstream loss failed")
                floor = 0
            for report in packet.reports:
                report.fraction_lost = max(report.fraction_lost, floor)
        await send(packet)

    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]  # aiortc private
    return True
