"""One participant's RTCPeerConnection and its (server-driven) negotiation.

The server is the only offerer: the client never creates offers, so there is no glare. Each
offer carries a ``tracks`` map from mid to slot so the client knows which transceiver is for
which of its sources and which remote participant's media arrives where.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from core.errors import HubError

from . import fastsend, feedback
from .congestion import Downlink, Kind
from .forwarding import ByteMeter, ForwardedTrack, route_keyframe_requests
from .network import MediaNetwork
from .ports import PortLease
from .publication import Source
from .sdp import with_opus_options

logger = logging.getLogger(__name__)

#: How long a client may take to answer an offer before the peer is considered broken.
ANSWER_TIMEOUT = 20.0
#: Changes arriving within this window go into one offer.
BATCH_DELAY = 0.05

SendOffer = Callable[[dict[str, Any]], Awaitable[None]]
OnTrack = Callable[["Peer", Source, RTCRtpReceiver, MediaStreamTrack], None]


class NegotiationError(HubError):
    """An answer could not be applied; ``code`` is the protocol error code."""


@dataclass
class Slot:
    """What a transceiver is for, as told to the client in each offer."""

    role: str  # "publish" | "subscribe" | "inactive"
    source: Source
    kind: str
    participant: str | None = None
    publication: str | None = None
    track: MediaStreamTrack | None = None  # the forwarded track, for subscribe slots

    def describe(self) -> dict[str, Any]:
        if self.role == "inactive":
            return {"role": "inactive"}
        if self.role == "publish":
            return {"role": "publish", "source": self.source, "kind": self.kind}
        return {
            "role": "subscribe",
            "participant": self.participant,
            "source": self.source,
            "kind": self.kind,
        }


def _prefer_codec(transceiver: RTCRtpTransceiver, codec: str) -> None:
    """Offer only the room's codec (plus RTX), so every publisher and subscriber agree."""
    kind = transceiver.kind
    caps = RTCRtpSender.getCapabilities(kind).codecs
    wanted = "opus" if kind == "audio" else codec.lower()
    chosen = [c for c in caps if c.name.lower() == wanted]
    if kind == "video":
        chosen += [c for c in caps if c.name.lower() == "rtx"]
    if chosen:
        transceiver.setCodecPreferences(chosen)


class Peer:
    """A participant's media connection: publish slots in, subscribe slots out."""

    def __init__(
        self,
        participant: str,
        codec: str,
        send_offer: SendOffer,
        on_track: OnTrack,
        configuration: RTCConfiguration | None = None,
        network: MediaNetwork | None = None,
        lease: PortLease | None = None,
    ) -> None:
        self.participant = participant
        self._network = network
        self._lease = lease  # the ports its host candidates bind (--udp-port(s)); None: any
        self.codec = codec
        self._send_offer = send_offer
        self._on_track = on_track
        config = configuration or RTCConfiguration()
        config.bundlePolicy = RTCBundlePolicy.MAX_BUNDLE
        self.pc = RTCPeerConnection(config)
        self._slots: dict[RTCRtpTransceiver, Slot] = {}
        self._answer: asyncio.Future[None] | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.offers = 0
        #: what this participant's downlink can carry, from the feedback on what it receives
        self.downlink = Downlink()
        #: bytes of forwarded media sent to it, all tracks together
        self.sent = ByteMeter()
        self.pc.on("track", self._handle_track)
        self.pc.on("connectionstatechange", self._log_state)

    # -- slots --------------------------------------------------------------------------

    def add_publish_slot(self, source: Source, kind: str) -> None:
        transceiver = self.pc.addTransceiver(kind, direction="recvonly")
        _prefer_codec(transceiver, self.codec)
        self._slots[transceiver] = Slot("publish", source, kind)
        self.renegotiate()

    def has_publish_slot(self, source: Source) -> bool:
        return any(s.role == "publish" and s.source == source for s in self._slots.values())

    def close_publish_slot(self, source: Source) -> bool:
        for transceiver, slot in self._slots.items():
            if slot.role == "publish" and slot.source == source:
                self._deactivate(transceiver, slot)
                self.renegotiate()
                return True
        return False

    def add_subscribe_slot(
        self, publication: str, participant: str, source: Source, track: MediaStreamTrack
    ) -> None:
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        _prefer_codec(transceiver, self.codec)
        if isinstance(track, ForwardedTrack):
            route_keyframe_requests(transceiver.sender, track)
            fastsend.install(transceiver.sender, track)
            fastsend.rest_receiver(transceiver.receiver)  # send-only: it never receives
            track.meter = self.sent
            feedback.observe_sender(transceiver.sender, self._report_of(track), self._on_estimate)
        self._slots[transceiver] = Slot(
            "subscribe", source, track.kind, participant, publication, track
        )
        self.renegotiate()

    def _report_of(self, track: ForwardedTrack) -> feedback.OnReport:
        kind = Kind(track.kind)

        def on_report(fraction_lost: float) -> None:
            if track.paused:
                return  # a paused video's reports say "nothing lost" of nothing sent
            now = time.monotonic()
            track.reported_loss = fraction_lost
            track.reported_at = now
            self.downlink.on_report(kind, fraction_lost, now)

        return on_report

    def _on_estimate(self, bps: int) -> None:
        self.downlink.on_estimate(bps, time.monotonic())

    def remove_subscribe_slot(self, publication: str) -> MediaStreamTrack | None:
        for transceiver, slot in self._slots.items():
            if slot.role == "subscribe" and slot.publication == publication:
                track = slot.track
                self._deactivate(transceiver, slot)
                self.renegotiate()
                return track
        return None

    def _deactivate(self, transceiver: RTCRtpTransceiver, slot: Slot) -> None:
        slot.role = "inactive"
        slot.track = None
        transceiver.direction = "inactive"

    def subscribes_to(self, publication: str) -> bool:
        return any(s.role == "subscribe" and s.publication == publication for s in self._slots.values())

    def subscribed_tracks(self) -> list[MediaStreamTrack]:
        return [s.track for s in self._slots.values() if s.track is not None]

    # -- negotiation ------------------------------------------------------------------------

    def renegotiate(self) -> None:
        """Schedule an offer; changes are batched, one offer is outstanding at a time."""
        if self._closed:
            return
        self._dirty.set()
        if self._task is None:
            self._task = asyncio.create_task(self._negotiate_loop(), name=f"negotiate-{self.participant}")

    async def _negotiate_loop(self) -> None:
        while not self._closed:
            await self._dirty.wait()
            await asyncio.sleep(BATCH_DELAY)
            self._dirty.clear()
            try:
                await self._negotiate_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("negotiation with %s failed", self.participant)

    async def _negotiate_once(self) -> None:
        if self._lease is not None:
            self._lease.install(self.pc)  # (before the first offer: it gathers the candidates)
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        tracks = {t.mid: slot.describe() for t, slot in self._slots.items() if t.mid is not None}
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        self.offers += 1
        # (only the copy sent is changed: the parameters are the receiver's wishes to the browser)
        sdp = with_opus_options(self.pc.localDescription.sdp)
        if self._network is not None:
            sdp = self._network.announce(sdp)
        await self._send_offer({"type": "offer", "sdp": sdp, "tracks": tracks})
        try:
            await asyncio.wait_for(asyncio.shield(self._answer), ANSWER_TIMEOUT)
        except TimeoutError:
            logger.warning("participant %s did not answer the offer", self.participant)
        finally:
            self._answer = None

    async def handle_answer(self, sdp: str) -> None:
        """Apply the client's answer to the outstanding offer.

        A rejected answer leaves the offer outstanding, so the client can answer again.
        """
        if self._answer is None or self._answer.done():
            raise NegotiationError("no-offer", "There is no offer waiting for an answer.")
        if not sdp.startswith("v=0"):
            raise NegotiationError("bad-sdp", "The answer is not a session description.")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            logger.info("answer from %s rejected: %s", self.participant, exc)
            raise NegotiationError("bad-sdp", f"The answer could not be applied: {exc}") from exc
        self._answered()

    def _answered(self) -> None:
        # (the offer may have timed out while the answer was applied)
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(None)

    # -- events -----------------------------------------------------------------------------

    def _handle_track(self, track: MediaStreamTrack) -> None:
        for transceiver, slot in self._slots.items():
            if transceiver.receiver.track is track and slot.role == "publish":
                self._on_track(self, slot.source, transceiver.receiver, track)
                return
        logger.warning("participant %s sent an unexpected %s track", self.participant, track.kind)

    async def _log_state(self) -> None:
        logger.info("peer %s connection %s", self.participant, self.pc.connectionState)

    @property
    def connection_state(self) -> str:
        return self.pc.connectionState

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for slot in self._slots.values():
            if slot.track is not None:
                slot.track.stop()
        await self.pc.close()
        if self._lease is not None:
            self._lease.release()
