"""What the hub's offers ask of browsers beyond aiortc's defaults: Opus with FEC and DTX.

aiortc offers Opus without an ``a=fmtp`` line, so browsers send it without in-band forward
error correction and keep sending 50 packets a second through silence. The offer is the
receiver's wish list (RFC 7587 §7): ``useinbandfec=1`` lets a lossy link recover a lost frame
from the next one, ``usedtx=1`` lets a silent microphone send a packet every ~400 ms instead,
``stereo=0`` says mono speech is enough. aiortc's own Opus decoder (used only where captions or
recordings need audio) handles all three; gaps from DTX are filled by the audio tap.
"""

from __future__ import annotations

import re

#: The Opus parameters the hub offers, in the order browsers write them.
OPUS_FMTP: dict[str, str] = {"minptime": "10", "useinbandfec": "1", "usedtx": "1", "stereo": "0"}

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) opus/48000(/\d+)?$", re.IGNORECASE)


def _fmtp_line(pt: str, existing: str | None) -> str:
    params: dict[str, str] = {}
    if existing:
        for part in existing.split(";"):
            key, _, value = part.strip().partition("=")
            if key:
                params[key] = value
    params.update(OPUS_FMTP)
    return f"a=fmtp:{pt} " + ";".join(f"{k}={v}" for k, v in params.items())


def with_opus_options(sdp: str) -> str:
    """``sdp`` with :data:`OPUS_FMTP` on every Opus payload type (merged into an existing fmtp)."""
    lines = sdp.split("\r\n")
    opus = {m.group(1) for line in lines if (m := _RTPMAP.match(line))}
    if not opus:
        return sdp
    out: list[str] = []
    pending: str | None = None  # the Opus payload type whose fmtp is still to be written
    for line in lines:
        if pending is not None and line.startswith(f"a=fmtp:{pending} "):
            out.append(_fmtp_line(pending, line.split(" ", 1)[1]))
            pending = None
            continue
        if pending is not None and not line.startswith(("a=rtcp-fb:", "a=fmtp:")):
            out.append(_fmtp_line(pending, None))  # after the rtpmap's own rtcp-fb lines
            pending = None
        out.append(line)
        m = _RTPMAP.match(line)
        if m and m.group(1) in opus:
            pending = m.group(1)
    if pending is not None:
        out.append(_fmtp_line(pending, None))
    return "\r\n".join(out)
