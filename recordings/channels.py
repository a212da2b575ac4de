"""Interpreter channels in live streams and recordings (issue #14): what a channel sounds like.

A call's listener mixes the interpreter and the floor in the browser at the volume they choose.
A stream or a recording cannot ask: each channel is encoded once, as the call sounds by default
(the live interpreter, the floor underneath at :data:`FLOOR_UNDER`), and while nobody
interprets into it (a hand-over gap, a break) it carries the floor at full volume, as the call's
listeners then hear the floor. The floor itself never carries an interpreter.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

# (no signalling import here: the live worker and the composer run this in their own processes)
__all__ = ["FLOOR_UNDER", "SILENT_AFTER", "channel_mix", "channel_name", "remux"]

#: The floor's gain under an interpreter: the call's default floor volume (20 of 100).
FLOOR_UNDER = 0.2
#: Seconds without a packet from a channel's interpreter after which the channel is the floor
#: (browsers send a comfort-noise packet every 400 ms even while a microphone is silent).
SILENT_AFTER = 1.0

#: Language names as their speakers write them: a player's menu shows the rendition's NAME.
_ENDONYMS = {
    "ar": "العربية", "de": "Deutsch", "en": "English", "es": "Español", "fr": "Français",
    "hi": "हिन्दी", "it": "Italiano", "ja": "日本語", "ko": "한국어", "nl": "Nederlands",
    "pl": "Polski", "pt": "Português", "pt-BR": "Português (Brasil)", "ru": "Русский",
    "sw": "Kiswahili", "tr": "Türkçe", "uk": "Українська", "zh": "中文",
}


def channel_name(lang: str) -> str:
    """A channel's display name (its language's own name; the code if we do not know it)."""
    return _ENDONYMS.get(lang) or _ENDONYMS.get(lang.split("-")[0]) or lang


def channel_mix(floor: np.ndarray, interpreters: np.ndarray, live: bool) -> np.ndarray:
    """One block of a channel: the interpreters over the floor (``live``), else the floor."""
    if not live:
        return floor.copy()
    mixed = interpreters + FLOOR_UNDER * floor
    np.clip(mixed, -1.0, 1.0, out=mixed)
    return mixed


def _packets(container: Any, stream: Any, order: int) -> Iterator[tuple[float, int, Any]]:
    """(time, tie-break, packet) of one stream, for merging two files in time order."""
    for packet in container.demux(stream):
        if packet.dts is None or packet.size == 0:
            continue  # the demuxer's flush packet
        yield float(packet.dts * stream.time_base), order, packet


def remux(video: Path, audio: Path, out: Path) -> None:
    """``out``: the video stream of ``video`` with the audio stream of ``audio`` (no re-encoding).

    A recording's channel file: the video is encoded once, each channel only adds its audio."""
    with av.open(str(video)) as vin, av.open(str(audio)) as ain, \
            av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as target:
        vstream, astream = vin.streams.video[0], ain.streams.audio[0]
        outputs = {0: target.add_stream_from_template(vstream), 1: target.add_stream_from_template(astream)}
        merged = heapq.merge(_packets(vin, vstream, 0), _packets(ain, astream, 1), key=lambda item: item[:2])
        for _, order, packet in merged:
            packet.stream = outputs[order]
            target.mux(packet)
