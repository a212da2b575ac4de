"""media_server/fastsend.py: the synchronous send path for forwarded media.

Unit tests drive a real aiortc ``RTCRtpSender`` (its ``send()`` starts the installed
``_run_rtp``) over a DTLS transport whose SRTP session uses a known key and whose nominated
ICE pair writes into a list, so every packet can be decrypted and parsed the way a receiver
would. Hub tests check the path is really used between real participants, and that the
fallback to aiortc's own loop still carries media.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import av
import pytest
from aioice.ice import StunProtocol
from aioice.turn import TurnTransport
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCRtpSender
from aiortc.codecs import HEADER_EXTENSIONS
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtcpParameters, RTCRtpCodecParameters, RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpByePacket, RtcpPacket, RtcpSrPacket, RtpPacket, is_rtcp, unwrap_rtx
from pylibsrtp import Policy, Session

from hubtest import RunningHub as Hub
from media_server import fastsend
from media_server.fastsend import MAX_WRITE_BUFFER, RTP_HISTORY_SIZE, FastSender
from media_server.forwarding import EncodedFrame, ForwardedTrack, is_keyframe
from sigclient import until
from testkit.rtc_client import HubClient, encode_test_audio, encode_test_video

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96})
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
SRTP_KEY = bytes(range(30))  # AES128_CM_SHA1_80: 16-byte key + 14-byte salt
MID = "3"


@pytest.fixture(scope="module")
def vp8() -> list[av.Packet]:
    """Real VP8 with a keyframe every 10 frames (keyframes span several RTP packets)."""
    return encode_test_video(seconds=1, gop=10)


def frames_of(packets: list[av.Packet]) -> list[EncodedFrame]:
    return [EncodedFrame(bytes(p), int(p.pts), is_keyframe("vp8", bytes(p)), "vp8") for p in packets]


def srtp_session(outbound: bool) -> Session:
    """The policy aiortc derives from DTLS, with a key the test knows."""
    policy = Policy(
        key=SRTP_KEY,
        ssrc_type=Policy.SSRC_ANY_OUTBOUND if outbound else Policy.SSRC_ANY_INBOUND,
        srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)


class Socket:
    """Stands in for the UDP ``asyncio.DatagramTransport`` of the nominated ICE pair."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.buffered = 0

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.buffered


class Pair:
    """The nominated ICE candidate pair, as FastSender reads it."""

    def __init__(self, protocol: StunProtocol) -> None:
        self.protocol = protocol
        self.remote_addr = ("127.0.0.1", 9)


class Link:
    """One subscriber's sender on a connected transport; what went out is in ``socket``."""

    def __init__(self, kind: str, codecs: list[RTCRtpCodecParameters]) -> None:
        self.keyframe_requests = 0
        self.track = ForwardedTrack(kind, self._request_keyframe)
        self.socket = Socket()
        self.gatherer = RTCIceGatherer()
        self.dtls = RTCDtlsTransport(RTCIceTransport(self.gatherer), [RTCCertificate.generateCertificate()])
        self.dtls._state = DtlsState.CONNECTED
        self.dtls._tx_srtp = srtp_session(outbound=True)
        connection = self.dtls.transport._connection
        protocol = StunProtocol(connection)  # aioice's, for host and server-reflexive pairs
        protocol.transport = self.socket  # type: ignore[assignment]
        connection._nominated[1] = Pair(protocol)
        self.sender = RTCRtpSender(self.track, self.dtls)
        self.installed = fastsend.install(self.sender, self.track)
        self.params = RTCRtpSendParameters(
            codecs=codecs, headerExtensions=HEADER_EXTENSIONS[kind], muxId=MID,
            rtcp=RTCRtcpParameters(cname="test", ssrc=1),
        )
        self.ext_map = HeaderExtensionsMap()
        self.ext_map.configure(self.params)
        self.rx = srtp_session(outbound=False)

    def _request_keyframe(self) -> None:
        self.keyframe_requests += 1

    async def start(self) -> FastSender:
        await self.sender.send(self.params)
        for _ in range(10):  # the RTP task starts on the next loop iterations
            if self.track._direct is not None:
                break
            await asyncio.sleep(0)
        assert self.track._direct is not None, "the sender's RTP task did not attach a FastSender"
        fast = self.track._direct.__self__  # type: ignore[attr-defined]
        assert isinstance(fast, FastSender)
        return fast

    def rtp(self) -> list[bytes]:
        return [d for d in self.socket.sent if not is_rtcp(d)]

    def parse(self, data: bytes) -> RtpPacket:
        return RtpPacket.parse(self.rx.unprotect(data), self.ext_map)

    def packets(self) -> list[RtpPacket]:
        return [self.parse(d) for d in self.rtp()]

    async def close(self) -> None:
        await self.sender.stop()
        await self.gatherer._connection.close()


@pytest.fixture
async def make_link() -> AsyncIterator[Callable[..., Link]]:
    links: list[Link] = []

    def make(kind: str = "video", codecs: list[RTCRtpCodecParameters] | None = None) -> Link:
        link = Link(kind, codecs or ([VP8] if kind == "video" else [OPUS]))
        links.append(link)
        return link

    yield make
    for link in links:
        await link.close()


def vp8_frame_data(packets: list[RtpPacket]) -> list[bytes]:
    """What a VP8 depacketizer rebuilds: payloads after the descriptor, up to each marker."""
    frames: list[bytes] = []
    current = b""
    for packet in packets:
        _, rest = VpxPayloadDescriptor.parse(packet.payload)
        current += rest
        if packet.marker:
            frames.append(current)
            current = b""
    assert current == b"", "a frame without a marker bit on its last packet"
    return frames


# -- RTP on the wire ----------------------------------------------------------------------------


async def test_vp8_frames_go_out_as_valid_rtp_that_rebuilds_the_frames(
    make_link: Callable[..., Link], vp8: list[av.Packet]
) -> None:
    link = make_link()
    fast = await link.start()
    frames = frames_of(vp8)
    for frame in frames:
        link.track.push(frame)  # synchronous: on the wire when push() returns
    packets = link.packets()
    assert len(packets) > len(frames)  # keyframes need several packets
    assert vp8_frame_data(packets) == [f.data for f in frames]
    assert {p.ssrc for p in packets} == {link.sender._ssrc}
    assert {p.payload_type for p in packets} == {VP8.payloadType}
    assert [p.version for p in packets] == [2] * len(packets)
    seqs = [p.sequence_number for p in packets]
    assert [(b - a) & 0xFFFF for a, b in itertools.pairwise(seqs)] == [1] * (len(seqs) - 1)
    # one RTP timestamp per frame, offset from the frame's own clock by one constant
    by_frame: dict[int, set[int]] = {}
    frame_index = 0
    for p in packets:
        by_frame.setdefault(frame_index, set()).add(p.timestamp)
        frame_index += p.marker
    assert all(len(ts) == 1 for ts in by_frame.values())
    offsets = {(ts.pop() - f.timestamp) & 0xFFFFFFFF for ts, f in zip(by_frame.values(), frames)}
    assert len(offsets) == 1
    # VP8 picture ids count frames, so a receiver can tell a whole frame went missing
    ids = [VpxPayloadDescriptor.parse(p.payload)[0].picture_id for p in packets if p.marker]
    assert [(b - a) & 0x7FFF for a, b in itertools.pairwise(ids)] == [1] * (len(ids) - 1)
    assert fast.sent_packets == len(packets) and fast.errors == 0
    assert link.track.forwarded == len(frames) and link.track.dropped == 0


async def test_header_extensions_carry_mid_and_abs_send_time(
    make_link: Callable[..., Link], vp8: list[av.Packet]
) -> None:
    link = make_link()
    await link.start()
    before = (fastsend.ntp_now() >> 14) & 0xFFFFFF
    for frame in frames_of(vp8)[:3]:
        link.track.push(frame)
    after = (fastsend.ntp_now() >> 14) & 0xFFFFFF
    packets = link.packets()
    assert packets and all(p.extensions.mid == MID for p in packets)  # BUNDLE demuxes on this
    # 6.18 fixed-point seconds, wrapping every 64 s
    window = (after - before) & 0xFFFFFF
    assert all((p.extensions.abs_send_time - before) & 0xFFFFFF <= window for p in packets)


async def test_opus_frames_are_one_marked_packet_each(make_link: Callable[..., Link]) -> None:
    link = make_link("audio")
    await link.start()
    frames = [EncodedFrame(bytes([i]) * (40 + i), i * 960, True, "opus") for i in range(20)]
    for frame in frames:
        link.track.push(frame)
    packets = link.packets()
    assert [p.payload for p in packets] == [f.data for f in frames]
    assert all(p.marker == 1 and p.payload_type == OPUS.payloadType for p in packets)
    assert all(p.extensions.mid == MID for p in packets)
    assert len({(p.timestamp - f.timestamp) & 0xFFFFFFFF for p, f in zip(packets, frames)}) == 1


async def test_sequence_numbers_and_timestamps_wrap_around(
    make_link: Callable[..., Link], vp8: list[av.Packet]
) -> None:
    link = make_link()
    fast = await link.start()
    fast._seq = 0xFFFF - 3
    fast._ts_origin = 0xFFFFFFFF - 5000
    for frame in frames_of(vp8)[:6]:
        link.track.push(frame)
    packets = link.packets()  # SRTP decryption also has to follow the rollover
    seqs = [p.sequence_number for p in packets]
    assert seqs == [(0xFFFF - 3 + i) & 0xFFFF for i in range(len(packets))]
    assert 0 in seqs and 0xFFFF in seqs
    marked = [p.timestamp for p in packets if p.marker]
    assert marked[0] == 0xFFFFFFFF - 5000  # first frame has timestamp 0
    assert marked[-1] < marked[0]  # wrapped past 2**32
    assert [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(marked)] == [3000] * 5


# -- NACK / RTX ----------------------------------------------------------------------------------


async def test_nack_retransmits_the_identical_packet_without_rtx(
    make_link: Callable[..., Link], vp8: list[av.Packet]
) -> None:
    link = make_link()
    await link.start()
    for frame in frames_of(vp8)[:5]:
        link.track.push(frame)
    sent = link.rtp()
    wanted = [link.parse(d).sequence_number for d in sent]
    for seq in wanted:
        await link.sender._retransmit(seq)
    # aiortc re-serializes its history: bytes equal to the original mean same header and extensions
    assert link.rtp()[len(sent):] == sent


async def test_nack_retransmits_over_rtx(make_link: Callable[..., Link], vp8: list[av.Packet]) -> None:
    link = make_link(codecs=[VP8, RTX])
    await link.start()
    for frame in frames_of(vp8)[:3]:
        link.track.push(frame)
    originals = link.packets()
    lost = originals[1]
    await link.sender._retransmit(lost.sequence_number)
    [rtx_bytes] = link.rtp()[len(originals):]
    rtx = link.parse(rtx_bytes)
    assert rtx.payload_type == RTX.payloadType and rtx.ssrc == link.sender._rtx_ssrc
    repaired = unwrap_rtx(rtx, payload_type=VP8.payloadType, ssrc=link.sender._ssrc)
    assert (repaired.sequence_number, repaired.timestamp, repaired.marker, repaired.payload) == (
        lost.sequence_number, lost.timestamp, lost.marker, lost.payload,
    )


async def test_history_keeps_the_last_packets_only(make_link: Callable[..., Link]) -> None:
    link = make_link("audio")
    await link.start()
    for i in range(RTP_HISTORY_SIZE + 10):
        link.track.push(EncodedFrame(b"opus%d" % i, i * 960, True, "opus"))
    sent = link.rtp()
    first, last = link.parse(sent[0]).sequence_number, link.parse(sent[-1]).sequence_number
    await link.sender._retransmit(first)  # overwritten by a newer packet: nothing to resend
    assert len(link.rtp()) == len(sent)
    await link.sender._retransmit(last)
    assert link.rtp()[-1] == sent[-1]


# -- RTCP sender reports and stats -----------------------------------------------------------


async def test_sent_packets_leave_no_objects_for_the_garbage_collector(make_link: Callable[..., Link]) -> None:
    """A meeting of N has 2·N·(N−1) senders: if each kept its recent packets as objects, the
    collector would walk hundreds of thousands of them and stop the hub for whole collections."""
    link = make_link("audio")
    await link.start()
    gc.collect()
    before = len(gc.get_objects())
    for i in range(RTP_HISTORY_SIZE):  # a full history
        link.track.push(EncodedFrame(b"opus%d" % i, i * 960, True, "opus"))
    gc.collect()
    assert len(gc.get_objects()) - before < RTP_HISTORY_SIZE // 4
    await link.sender._retransmit(link.parse(link.rtp()[-1]).sequence_number)  # and NACKs still work
    assert link.rtp()[-1] == link.rtp()[-2]


async def test_sender_report_and_stats_count_what_was_sent(
    make_link: Callable[..., Link], vp8: list[av.Packet]
) -> None:
    link = make_link()
    await link.start()
    frames = frames_of(vp8)[:10]
    for frame in frames:
        link.track.push(frame)
    packets = link.packets()
    octets = sum(len(p.payload) for p in packets)
    stats = await link.sender.getStats()
    outbound = next(s for s in stats.values() if s.type == "outbound-rtp")
    assert (outbound.packetsSent, outbound.bytesSent) == (len(packets), octets)
    transport = next(s for s in stats.values() if s.type == "transport")
    assert transport.packetsSent == len(packets)
    assert transport.bytesSent == sum(len(d) for d in link.rtp())
    # the next periodic SR tells the receiver the same counts and the last frame's timestamp
    report: RtcpSrPacket | None = None
    deadline = time.monotonic() + 10
    while report is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        for data in (d for d in link.socket.sent if is_rtcp(d)):
            for item in RtcpPacket.parse(link.rx.unprotect_rtcp(data)):
                if isinstance(item, RtcpSrPacket):
                    report = item
    assert report is not None, "no RTCP sender report"
    assert report.ssrc == link.sender._ssrc
    info = report.sender_info
    assert (info.packet_count, info.octet_count) == (len(packets), octets)
    assert info.rtp_timestamp == packets[-1].timestamp
    assert abs(info.ntp_timestamp / (1 << 32) - fastsend.NTP_OFFSET - time.time()) < 60


class Rtcp:
    """The RTCP a link sent, each packet unprotected once (SRTCP refuses a replay)."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.items: list[Any] = []
        self._read = 0

    def read(self) -> list[Any]:
        sent = self.link.socket.sent
        for data in sent[self._read:]:
            if is_rtcp(data):
                self.items.extend(RtcpPacket.parse(self.link.rx.unprotect_rtcp(data)))
        self._read = len(sent)
        return self.items

    def reports(self) -> list[RtcpSrPacket]:
        return [item for item in self.read() if isinstance(item, RtcpSrPacket)]


async def test_a_sender_with_nothing_to_send_sends_no_reports(
    make_link: Callable[..., Link], vp8: list[av.Packet]
) -> None:
    """A paused video (last-N) or a silent speaker's audio: aiortc would send a report about
    nothing every second, from each of a subscriber's N senders."""
    link = make_link()
    rtcp = Rtcp(link)
    await link.start()
    await asyncio.sleep(3.2)  # at least two of aiortc's intervals (0.5–1.5 s)
    assert rtcp.reports() == []
    for frame in frames_of(vp8)[:5]:
        link.track.push(frame)
    deadline = time.monotonic() + 5
    while not rtcp.reports() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert len(rtcp.reports()) == 1  # sending again: reported within an interval
    await asyncio.sleep(3.2)
    assert len(rtcp.reports()) == 1  # nothing new sent: nothing new reported
    await link.sender.stop()
    assert [item.sources for item in rtcp.read() if isinstance(item, RtcpByePacket)] == [[link.sender._ssrc]]


# -- a subscriber that cannot keep up -------------------------------------------------------------


async def test_full_socket_buffer_drops_frames_for_that_subscriber_only(
    make_link: Callable[..., Link], vp8: list[av.Packet]
) -> None:
    slow, healthy = make_link(), make_link()
    await slow.start()
    await healthy.start()
    frames = frames_of(vp8)  # keyframes at 0, 10, 20
    requests_before = slow.keyframe_requests
    for i, frame in enumerate(frames):
        slow.socket.buffered = MAX_WRITE_BUFFER + 1 if 3 <= i < 6 else 0
        slow.track.push(frame)
        healthy.track.push(frame)
    assert vp8_frame_data(healthy.packets()) == [f.data for f in frames]
    # frames 3-5 were refused; the decoder then misses a reference, so it resumes at keyframe 10
    assert vp8_frame_data(slow.packets()) == [f.data for f in frames[:3] + frames[10:]]
    assert slow.track.dropped == 7
    assert slow.keyframe_requests == requests_before + 1


async def test_write_buffer_at_the_limit_still_sends(make_link: Callable[..., Link]) -> None:
    link = make_link("audio")
    await link.start()
    link.socket.buffered = MAX_WRITE_BUFFER
    link.track.push(EncodedFrame(b"opus", 0, True, "opus"))
    link.socket.buffered = MAX_WRITE_BUFFER + 1
    link.track.push(EncodedFrame(b"late", 960, True, "opus"))
    assert [p.payload for p in link.packets()] == [b"opus"]
    assert link.track.dropped == 1


async def test_nothing_is_sent_while_the_sender_is_disabled_or_dtls_down(
    make_link: Callable[..., Link],
) -> None:
    link = make_link("audio")
    fast = await link.start()
    link.sender._enabled = False  # transceiver went inactive
    assert fast.send(EncodedFrame(b"a", 0, True, "opus")) is False
    link.sender._enabled = True
    link.dtls._state = DtlsState.CLOSED
    assert fast.send(EncodedFrame(b"b", 960, True, "opus")) is False
    link.dtls._state = DtlsState.CONNECTED
    assert fast.send(EncodedFrame(b"c", 1920, True, "opus")) is True
    assert [p.payload for p in link.packets()] == [b"c"]


# -- the sender's task and the in-task fallback ----------------------------------------------


async def test_stopping_the_sender_ends_the_track(make_link: Callable[..., Link]) -> None:
    link = make_link("audio")
    await link.start()
    await asyncio.wait_for(link.sender.stop(), 5)
    assert link.track.readyState == "ended"
    assert link.track._direct is None
    link.track.push(EncodedFrame(b"x", 0, True, "opus"))
    assert link.rtp() == []


async def test_unusable_extension_ids_fall_back_to_aiortc(
    make_link: Callable[..., Link], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fastsend, "_extension_block", lambda ids, mid: None)  # ids need two-byte form
    link = make_link("audio")
    with caplog.at_level(logging.WARNING, logger="media_server.fastsend"):
        await link.sender.send(link.params)
        link.track.push(EncodedFrame(b"via aiortc", 0, True, "opus"))
        deadline = time.monotonic() + 5
        while not link.rtp() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    assert link.track._direct is None
    assert any("fast send path unavailable" in r.getMessage() for r in caplog.records)
    [packet] = link.packets()  # aiortc's own loop read the queued frame and sent it
    assert packet.payload == b"via aiortc" and packet.extensions.mid == MID


# -- through the hub -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video() -> list[av.Packet]:
    return encode_test_video(seconds=4, gop=30)


@pytest.fixture(scope="module")
def audio() -> list[av.Packet]:
    return encode_test_audio(seconds=4)  # a steady tone: some Opus frames repeat


def received(sub: HubClient, pub: HubClient, kind: str) -> list[bytes]:
    assert pub.id is not None
    return [f.data for r in sub.received_from(pub.id, kind) for f in r.frames]


def assert_forwarded_in_order(sub: HubClient, pub: HubClient) -> None:
    """What arrived is a gap-free run of what the publisher sent (its clip loops), byte for byte.

    Opus frames of a steady tone repeat, so the run is matched as a whole, not frame by frame.
    """
    for kind, source in (("video", "camera"), ("audio", "mic")):
        sent = pub.tracks[source].sent_payloads  # type: ignore[attr-defined]
        got = received(sub, pub, kind)
        assert got, f"no {kind} received"
        starts = [i for i, data in enumerate(sent) if data == got[0]]
        assert any(
            all(g == sent[(start + k) % len(sent)] for k, g in enumerate(got)) for start in starts
        ), f"{kind}: frames altered, lost or reordered"


async def call(pub: HubClient, sub: HubClient) -> None:
    """Join both and wait until the subscriber has a few seconds of the publisher's media."""
    await pub.join()
    await sub.join()
    await until(lambda: len(received(sub, pub, "video")) >= 60 and len(received(sub, pub, "audio")) >= 100)


def subscriber_senders(
    hub: Hub, room: str, participant: str | None
) -> list[tuple[RTCRtpSender, ForwardedTrack]]:
    assert participant is not None
    peer = hub.server.sfu.rooms[room].peers[participant]
    pairs = [(t.sender, s.track) for t, s in peer._slots.items() if s.role == "subscribe"]
    assert len(pairs) == 2 and all(isinstance(track, ForwardedTrack) for _, track in pairs)
    return pairs  # type: ignore[return-value]


async def test_subscriptions_carry_no_bitrate_estimator_but_publishers_keep_theirs(
    hub: Hub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    """aiortc gives every video receiver a REMB estimator of 1,000 bucket objects, also the unused
    receiver of each send-only subscription: N·(N−1) of them in a meeting of N. The hub keeps only
    those of the videos it receives (REMB to publishers), and forwarding is unaffected."""
    pub = HubClient(hub.url, "estimators", "Ana", video=video, audio=audio)
    sub = HubClient(hub.url, "estimators", "Bo")
    try:
        await call(pub, sub)
        assert_forwarded_in_order(sub, pub)
        peers = hub.server.sfu.rooms["estimators"].peers
        subscribing = [t for t in peers[sub.id or ""].pc.getTransceivers() if t.direction == "sendonly"]
        publishing = [t for t in peers[pub.id or ""].pc.getTransceivers()
                      if t.direction == "recvonly" and t.kind == "video"]
        assert len(subscribing) == 2 and len(publishing) == 1
        assert all(getattr(t.receiver, fastsend._ESTIMATOR) is None for t in subscribing)
        assert getattr(publishing[0].receiver, fastsend._ESTIMATOR) is not None
    finally:
        await pub.close()
        await sub.close()


async def test_hub_forwards_byte_identical_frames_through_fastsender(
    hub: Hub, video: list[av.Packet], audio: list[av.Packet]
) -> None:
    pub, sub = HubClient(hub.url, "fast", "Ana", video=video, audio=audio), HubClient(hub.url, "fast", "Bo")
    try:
        await call(pub, sub)
        assert_forwarded_in_order(sub, pub)
        for sender, track in subscriber_senders(hub, "fast", sub.id):
            assert "_run_rtp" in vars(sender), "fastsend.install was not applied"
            fast = getattr(track._direct, "__self__", None)
            assert isinstance(fast, FastSender), f"{track.kind} is not going through FastSender"
            assert fast.sent_packets > 0 and fast.errors == 0
            assert track.queued == 0  # nothing waits for aiortc's loop
    finally:
        await pub.close()
        await sub.close()


@pytest.mark.parametrize(
    "break_internal",
    [
        pytest.param(
            lambda mp: mp.setattr(fastsend, "_REQUIRED", (*fastsend._REQUIRED, "_RTCRtpSender__renamed")),
            id="sender-attribute-missing",
        ),
    ],
)
async def test_hub_falls_back_to_aiortc_when_internals_differ(
    hub: Hub,
    video: list[av.Packet],
    audio: list[av.Packet],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    break_internal: Callable[[pytest.MonkeyPatch], None],
) -> None:
    break_internal(monkeypatch)
    pub = HubClient(hub.url, "fallback", "Ana", video=video, audio=audio)
    sub = HubClient(hub.url, "fallback", "Bo")
    try:
        with caplog.at_level(logging.WARNING, logger="media_server.fastsend"):
            await call(pub, sub)
        assert_forwarded_in_order(sub, pub)
        for sender, track in subscriber_senders(hub, "fallback", sub.id):
            assert "_run_rtp" not in vars(sender)  # aiortc's own loop
            assert track._direct is None
        warnings = [r for r in caplog.records if r.name == fastsend.__name__ and r.levelno == logging.WARNING]
        assert warnings and all("aiortc's own send path" in r.getMessage() for r in warnings)
    finally:
        await pub.close()
        await sub.close()


# -- regressions (found by these tests, fixed) ------------------------------------------------------

class TurnInner:
    """The TURN client protocol under aioice 0.13's TurnTransport: records what it relays."""

    def __init__(self) -> None:
        self.relayed: list[bytes] = []

        class _T:
            def is_closing(self) -> bool:
                return False

        self.transport = _T()

    async def send_data(self, data: bytes, addr: Any) -> None:
        self.relayed.append(data)


async def test_a_turn_relayed_subscriber_does_not_break_the_send_path(make_link: Callable[..., Link]) -> None:
    """With aioice 0.13 a relayed pair's protocol is a StunProtocol whose transport is a
    TurnTransport, which has no get_write_buffer_size(): the frame still goes out, relayed."""
    link = make_link("audio")
    fast = await link.start()
    inner = TurnInner()
    turn = TurnTransport(inner)  # type: ignore[arg-type]
    connection = link.dtls.transport._connection
    protocol = StunProtocol(connection)  # aioice 0.13 relayed candidates: StunProtocol over TURN
    protocol.transport = turn  # type: ignore[assignment]
    connection._nominated[1] = Pair(protocol)
    link.track.push(EncodedFrame(b"opus", 0, True, "opus"))  # (raised AttributeError before the fix)
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(inner.relayed) == 1 and fast.errors == 0


async def test_the_first_sequence_number_leaves_room_before_the_wrap(
    make_link: Callable[..., Link], monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastSender draws its first sequence number from 0..65535; aiortc draws from 0..32767
    (rtcrtpsender.random_sequence_number) because a receiver whose first packet arrives after
    a wrap guesses the SRTP rollover counter wrong and can never decrypt that stream."""
    import media_server.fastsend as fastsend

    class Top:  # the largest value fastsend's own call can return
        randint = staticmethod(lambda a, b: b)
        getrandbits = staticmethod(lambda k: 0)

    monkeypatch.setattr(fastsend, "random", Top)
    link = make_link("audio")
    await link.start()
    for i in range(5):
        link.track.push(EncodedFrame(b"opus%d" % i, i * 960, True, "opus"))
    _first_lost, *rest = link.rtp()  # one packet lost on the way (or before the browser's SRTP was ready)
    decrypted = []
    for data in rest:
        try:
            decrypted.append(link.parse(data).payload)
        except Exception:
            pass
    assert decrypted == [b"opus%d" % i for i in range(1, 5)]
