"""What the hub's offers say beyond aiortc's defaults: Opus with FEC and DTX, a public address.

aiortc offers Opus without an ``a=fmtp`` line, so browsers send it without in-band forward
error correction and keep sending 50 packets a second through silence. The offer is the
receiver's wish list (RFC 7587 §7): ``useinbandfec=1`` lets a lossy link recover a lost frame
from the next one, ``usedtx=1`` lets a silent microphone send a packet every ~400 ms instead,
``stereo=0`` says mono speech is enough. aiortc's own Opus decoder (used only where captions or
recordings need audio) handles all three; gaps from DTX are filled by the audio tap.
"""

from __future__ import annotations

import hashlib
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


_CANDIDATE = re.compile(
    r"^a=candidate:(\S+) (\d+) (udp) (\d+) (\S+) (\d+) typ host(.*)$", re.IGNORECASE
)


def _srflx_priority(component: int) -> int:
    """RFC 8445 §5.1.2.1 with aioice's local preference: below every host candidate."""
    return (100 << 24) + (65535 << 8) + (256 - component)


def _foundation(host: str) -> str:
    """RFC 8445 §5.1.1.3: same type, base and transport, same foundation (32 hex digits, as aioice)."""
    return hashlib.md5(f"srflx|udp|{host}".encode("ascii")).hexdigest()


def with_public_address(sdp: str, public_ip: str) -> str:
    """``sdp`` with, after each IPv4 host candidate, the same port on ``public_ip`` (1:1 NAT).

    On a cloud that maps a public address onto the machine's private one (AWS, GCP, Azure), a
    browser outside reaches the hub's socket at ``public_ip`` and the same port. The added
    candidate is server-reflexive (related to the host one, as a STUN server would have found
    it), so browsers on the private network still prefer the host candidate.
    """
    lines = sdp.split("\r\n")
    if any((m := _CANDIDATE.match(line)) and m.group(5) == public_ip for line in lines):
        return sdp  # the machine has the address itself: no NAT to announce
    out: list[str] = []
    seen: set[tuple[str, str]] = set()  # (component, port) already given a public twin here
    for line in lines:
        if line.startswith("m="):
            seen = set()
        out.append(line)
        m = _CANDIDATE.match(line)
        if m is None or ":" in m.group(5):
            continue
        _, component, transport, _, host, port, _ = m.groups()
        if (component, port) in seen:
            continue
        seen.add((component, port))
        out.append(
            f"a=candidate:{_foundation(host)} {component} {transport} {_srflx_priority(int(component))} "
            f"{public_ip} {port} typ srflx raddr {host} rport {port}"
        )
    return "\r\n".join(out)
