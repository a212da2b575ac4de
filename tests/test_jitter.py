"""FrameAssembler: frames leave on their marker bit; loss is bounded and flagged."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from levelkit import SILENT, SPEAKING, audio_packet
from media_server.forwarding import depayloaded
from media_server.jitter import AssembledFrame, FrameAssembler


def pkt(seq: int, ts: int, data: bytes, marker: bool = False) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq & 0xFFFF, timestamp=ts & 0xFFFFFFFF)
    p.marker = int(marker)
    p._data = data  # type: ignore[attr-defined]  # as aiortc's receiver does: see forwarding.depayloaded
    return p


def frames_of(result: tuple[bool, AssembledFrame | None]) -> list[AssembledFrame]:
    _, frame = result
    return [] if frame is None else [frame, *frame.more]


def test_video_frame_is_released_by_its_last_packet_not_the_next_frame() -> None:
    asm = FrameAssembler(depayloaded)
    assert frames_of(asm.add(pkt(10, 3000, b"a"))) == []
    assert frames_of(asm.add(pkt(11, 3000, b"b"))) == []
    out = frames_of(asm.add(pkt(12, 3000, b"c", marker=True)))
    assert [(f.data, f.timestamp, f.discontinuity) for f in out] == [(b"abc", 3000, False)]


def test_reordered_packets_are_put_back_in_order() -> None:
    asm = FrameAssembler(depayloaded)
    asm.add(pkt(100, 0, b"1"))
    assert frames_of(asm.add(pkt(102, 0, b"3", marker=True))) == []
    out = frames_of(asm.add(pkt(101, 0, b"2")))
    assert [f.data for f in out] == [b"123"]


def test_retransmission_releases_the_held_frames_together_in_order() -> None:
    asm = FrameAssembler(depayloaded)
    asm.add(pkt(1, 0, b"a"))
    # packet 2 (end of frame 0) is lost for now; frame 1 completes behind it
    assert frames_of(asm.add(pkt(3, 3000, b"b", marker=True))) == []
    out = frames_of(asm.add(pkt(2, 0, b"A", marker=True)))  # NACK repaired it
    assert [(f.data, f.timestamp) for f in out] == [(b"aA", 0), (b"b", 3000)]
    assert not any(f.discontinuity for f in out)


def test_unrepaired_loss_is_dropped_after_max_wait_and_flagged() -> None:
    asm = FrameAssembler(depayloaded, max_wait=0.1)  # 9000 ticks at 90 kHz
    asm.add(pkt(1, 0, b"x"))
    asm.add(pkt(3, 0, b"x3", marker=True))  # packet 2 of frame 0 never arrives
    pli, frame = asm.add(pkt(4, 3000, b"y", marker=True))
    assert (pli, frame) == (False, None)  # still waiting for a retransmission
    pli, frame = asm.add(pkt(5, 12000, b"z", marker=True))  # media is now 133 ms ahead
    out = frames_of((pli, frame))
    assert pli is True
    assert [(f.data, f.discontinuity) for f in out] == [(b"y", True), (b"z", False)]
    assert asm.frames_lost == 1
    # a late copy of the dropped frame's packet is ignored
    assert frames_of(asm.add(pkt(2, 0, b"late"))) == []


def test_loss_with_an_unknown_frame_boundary_restarts_at_the_next_known_one() -> None:
    asm = FrameAssembler(depayloaded, max_wait=0.1)
    asm.add(pkt(1, 0, b"x"))
    asm.add(pkt(3, 3000, b"y", marker=True))  # seq 2 lost: y's start is unknown
    out = frames_of(asm.add(pkt(4, 12000, b"z", marker=True)))
    assert [(f.data, f.discontinuity) for f in out] == [(b"z", True)]


def test_sequence_numbers_wrap() -> None:
    asm = FrameAssembler(depayloaded)
    asm.add(pkt(65534, 0, b"a"))
    asm.add(pkt(65535, 0, b"b"))
    out = frames_of(asm.add(pkt(0, 0, b"c", marker=True)))
    assert [f.data for f in out] == [b"abc"]
    out = frames_of(asm.add(pkt(1, 3000, b"d", marker=True)))
    assert [f.data for f in out] == [b"d"]


def test_memory_is_bounded_when_a_frame_never_completes() -> None:
    asm = FrameAssembler(depayloaded, capacity=16, max_wait=100.0)
    for seq in range(1, 200):  # no marker ever: a broken sender
        asm.add(pkt(seq, seq * 10, b"."))
        assert len(asm._packets) <= 16


def test_audio_passes_through_without_prefetch_and_drops_duplicates() -> None:
    asm = FrameAssembler(depayloaded, is_video=False)
    out = frames_of(asm.add(pkt(7, 960, b"opus1")))
    assert [(f.data, f.timestamp) for f in out] == [(b"opus1", 960)]
    assert frames_of(asm.add(pkt(7, 960, b"opus1"))) == []
    assert [f.data for f in frames_of(asm.add(pkt(9, 2880, b"opus3")))] == [b"opus3"]
    assert frames_of(asm.add(pkt(8, 1920, b"opus2"))) == []  # too late to be useful


def test_audio_frames_keep_the_level_their_packet_carried() -> None:
    asm = FrameAssembler(depayloaded, is_video=False)
    levels = []
    for seq, level in enumerate([SPEAKING, SILENT, None]):
        packet = audio_packet(seq, seq * 960, level, voice=level == SPEAKING)  # parsed by aiortc
        packet._data = packet.payload  # type: ignore[attr-defined]  # (aiortc's depayloading)
        levels += [f.audio_level for f in frames_of(asm.add(packet))]
    assert levels == [(True, SPEAKING), (False, SILENT), None]
