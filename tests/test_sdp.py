"""media_server/sdp.py: the hub's offers ask browsers for Opus with FEC and DTX, in mono."""

from __future__ import annotations

from typing import TYPE_CHECKING

from media_server.sdp import with_opus_options
from sigclient import Connect

if TYPE_CHECKING:
    from hubtest import RunningHub

OFFER = "\r\n".join([
    "v=0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 96 0",
    "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=rtpmap:96 opus/48000/2",
    "a=rtcp-fb:96 transport-cc",
    "a=rtpmap:0 PCMU/8000",
    "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
    "a=rtpmap:97 VP8/90000",
    "a=rtpmap:98 rtx/90000",
    "a=fmtp:98 apt=97",
    "",
])


def test_opus_gets_fec_dtx_and_mono_after_its_feedback_lines() -> None:
    lines = with_opus_options(OFFER).split("\r\n")
    fmtp = lines.index("a=fmtp:96 minptime=10;useinbandfec=1;usedtx=1;stereo=0")
    assert lines[fmtp - 1] == "a=rtcp-fb:96 transport-cc"
    assert lines[fmtp + 1] == "a=rtpmap:0 PCMU/8000"
    # nothing else changes: other codecs, video, the line endings
    assert [line for line in lines if line != lines[fmtp]] == OFFER.split("\r\n")


def test_an_existing_opus_fmtp_is_merged_not_duplicated() -> None:
    offer = OFFER.replace("a=rtcp-fb:96 transport-cc", "a=fmtp:96 maxplaybackrate=48000;stereo=1")
    lines = with_opus_options(offer).split("\r\n")
    assert [line for line in lines if line.startswith("a=fmtp:96")] == [
        "a=fmtp:96 maxplaybackrate=48000;stereo=0;minptime=10;useinbandfec=1;usedtx=1"
    ]
    assert with_opus_options("\r\n".join(lines)) == "\r\n".join(lines)  # applying twice is a no-op


def test_an_offer_without_opus_is_left_alone() -> None:
    video_only = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\na=rtpmap:97 VP8/90000\r\n"
    assert with_opus_options(video_only) == video_only


async def test_the_hubs_offer_asks_for_fec_dtx_and_audio_levels(hub: RunningHub, connect: Connect) -> None:
    ana = await connect(hub.url)
    await ana.join("dockers", "Ana", audio=True)
    offer = await ana.wait_for("sdp")
    assert "useinbandfec=1" in offer["sdp"] and "usedtx=1" in offer["sdp"] and "stereo=0" in offer["sdp"]
    assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in offer["sdp"]
    # the answer to such an offer is accepted (a browser echoes the parameters it applies)
    assert await ana.answer(offer) == []
