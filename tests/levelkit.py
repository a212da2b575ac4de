"""Audio RTP packets carrying the RFC 6464 level, and a publication on a real aiortc receiver.

Packets are built the way a browser's arrive: serialized with the ssrc-audio-level header
extension, parsed back by aiortc (``RtpPacket.parse`` with a configured
``HeaderExtensionsMap``), and handed to the receiver's own packet handler, which depayloads
them and feeds the forwarding receiver's :class:`~media_server.jitter.FrameAssembler`.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator, Sequence

from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
    RTCRtpReceiveParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media_server.publication import Publication

AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
EXTENSIONS = [RTCRtpHeaderExtensionParameters(id=1, uri=AUDIO_LEVEL_URI)]
OPUS_PT = 111
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_PT)
FRAME = 960  # RTP ticks of one 20 ms Opus frame
SSRC = 4321
#: What a browser's silent microphone reports (RFC 6464: 127 is -127 dBov, digital silence).
SILENT = 127
SPEAKING = 25  # -25 dBov: ordinary talk


def extension_map() -> HeaderExtensionsMap:
    ids = HeaderExtensionsMap()
    ids.configure(RTCRtpParameters(headerExtensions=EXTENSIONS))
    return ids


_IDS = extension_map()


def audio_packet(
    seq: int, timestamp: int, level: int | None, voice: bool = False, payload: bytes | None = None
) -> RtpPacket:
    """An Opus packet as it arrives: on the wire with ``level`` (0..127, None: no extension)."""
    packet = RtpPacket(
        payload_type=OPUS_PT, sequence_number=seq & 0xFFFF, timestamp=timestamp & 0xFFFFFFFF,
        ssrc=SSRC, payload=payload if payload is not None else b"\xfc" + seq.to_bytes(4, "big"),
    )
    packet.marker = 1
    if level is not None:
        packet.extensions.audio_level = (voice, level)
    return RtpPacket.parse(packet.serialize(_IDS), _IDS)


class Publisher:
    """Sends numbered 20 ms Opus packets with given levels to one publication's receiver."""

    def __init__(self, publication: Publication, payloads: Sequence[bytes] = ()) -> None:
        self.publication = publication
        self.seq = 1000
        self.timestamp = 48000
        self.sent: list[bytes] = []  # payloads, in order
        self._payloads = list(payloads)

    async def send(self, *levels: int | None, voice: bool = False) -> None:
        """One packet per level (None: a packet without the extension)."""
        receiver = _RECEIVERS[self.publication]
        for level in levels:
            payload = self._payloads[len(self.sent) % len(self._payloads)] if self._payloads else None
            packet = audio_packet(self.seq, self.timestamp, level, voice, payload)
            self.sent.append(packet.payload)
            await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
            self.seq += 1
            self.timestamp += FRAME

    def skip(self, frames: int) -> None:
        """The publisher sends nothing for ``frames`` frames (Opus DTX)."""
        self.timestamp += frames * FRAME


#: The receiver under each publication made here, for :class:`Publisher` to feed.
_RECEIVERS: weakref.WeakKeyDictionary[Publication, RTCRtpReceiver] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def audio_publication(owner: str = "ana") -> AsyncIterator[Publication]:
    """A microphone publication on a started aiortc receiver that negotiated audio levels."""
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("audio", direction="recvonly")
    track = RemoteStreamTrack("audio")
    receiver = transceiver.receiver
    receiver._track = track  # as RTCPeerConnection does when the remote description adds it
    publication = Publication(owner, "mic", receiver, track)
    _RECEIVERS[publication] = receiver
    await receiver.receive(RTCRtpReceiveParameters(codecs=[OPUS], headerExtensions=EXTENSIONS))
    try:
        yield publication
    finally:
        await publication.close()
        await receiver.stop()
        await pc.close()
