"""Several speakers' finals in one Whisper window: one encoder pass instead of one each.

Whisper's encoder always sees a 30 s window (faster-whisper pads every window to 30 s), and on
a 5 s utterance that pass is 0.97 of the final's 1.26 CPU s (docs/BENCHMARKS.md, "Live
captions: finals sooner"); batching windows in one CTranslate2 call saved nothing on this CPU.
So when finals of the same language wait together, their audio goes into one window instead,
a second of silence between them, and Whisper's timestamped segments are handed back to the
utterance they start in, their times shifted to that utterance's own audio.

The split is where it can go wrong. Whisper often merges the end of one utterance with the start
of the next into one segment, and its timestamps in a packed window are loose: a segment's end
runs on through the silence to where the next one starts (measured: assigning segments by their
start alone made 60 % more errors on the multilingual clips; docs/BENCHMARKS.md, "Finals packed").
So a segment that runs more than ``MERGE_SECONDS`` past where the next utterance's speech begins
(its first loud 20 ms, not the pre-roll) makes both utterances doubtful, as does an utterance
left without words; those are decoded again alone, as unpacked finals — a doubtful split costs
CPU, not text. The words of a packed utterance still change: Whisper's encoder sees the other
utterances, and its decoder continues from their text (measured: about half the packed clips got
other words, 2.6 WER points worse on average), which is why packing is off by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .asr import MAX_COMPRESSION_RATIO, AsrBackend, Segment, Transcript, compression_ratio
from .audio import SAMPLE_RATE

#: silence between two packed utterances (s): Whisper ends a segment there
GAP_SECONDS = 1.0
#: most audio one packed window holds (s, gaps included): under Whisper's 30 s window, with room
#: for its timestamps near the end
MAX_PACKED_SECONDS = 24.0
#: a segment ending this far (s) past the next utterance's speech onset took its words: doubtful
MERGE_SECONDS = 0.5
#: speech starts at the first 20 ms frame this loud, relative to the utterance's loud frames
ONSET_SHARE = 0.15
_FRAME = SAMPLE_RATE // 50


class WindowBackend(AsrBackend, Protocol):
    """A backend that decodes one window with timestamps and no repetition check (faster-whisper)."""

    def transcribe_window(self, audio: np.ndarray, language: str) -> Transcript: ...


@dataclass(frozen=True)
class Packed:
    """Utterances laid end to end with silence between: the audio, each one's (start, end) s, and
    where each one's speech begins (s, in the packed audio)."""

    audio: np.ndarray
    spans: tuple[tuple[float, float], ...]
    onsets: tuple[float, ...]


def speech_onset(audio: np.ndarray) -> float:
    """Seconds into ``audio`` of its first frame louder than ``ONSET_SHARE`` of its loud frames
    (the 90th percentile): after the pre-roll's quiet."""
    frames = len(audio) // _FRAME
    if frames == 0:
        return 0.0
    rms = np.sqrt(np.mean(np.square(audio[: frames * _FRAME].reshape(frames, _FRAME)), axis=1))
    loud = float(np.percentile(rms, 90))
    return float(np.argmax(rms >= ONSET_SHARE * loud)) * _FRAME / SAMPLE_RATE


def packed_seconds(lengths: Sequence[int], gap: float = GAP_SECONDS) -> float:
    """Seconds of audio the utterances of ``lengths`` samples take packed together."""
    return sum(lengths) / SAMPLE_RATE + gap * max(0, len(lengths) - 1)


def fits(lengths: Sequence[int], limit: float = MAX_PACKED_SECONDS, gap: float = GAP_SECONDS) -> bool:
    return packed_seconds(lengths, gap) <= limit


def pack(audios: Sequence[np.ndarray], gap: float = GAP_SECONDS) -> Packed:
    silence = np.zeros(int(gap * SAMPLE_RATE), np.float32)
    parts: list[np.ndarray] = []
    spans: list[tuple[float, float]] = []
    position = 0
    for i, audio in enumerate(audios):
        if i:
            parts.append(silence)
            position += len(silence)
        parts.append(audio.astype(np.float32, copy=False))
        spans.append((position / SAMPLE_RATE, (position + len(audio)) / SAMPLE_RATE))
        position += len(audio)
    onsets = tuple(span[0] + speech_onset(audio) for span, audio in zip(spans, audios, strict=True))
    return Packed(np.concatenate(parts) if parts else np.zeros(0, np.float32), tuple(spans), onsets)


def _owner(segment: Segment, packed: Packed, gap: float) -> int:
    """The utterance a segment starts in (a start in the second half of a gap: the next one)."""
    return max((i for i, (start, _end) in enumerate(packed.spans) if segment.start >= start - gap / 2), default=0)


def split(whole: Transcript, packed: Packed, gap: float = GAP_SECONDS) -> list[Transcript | None]:
    """Each utterance's transcript out of the packed one; None where the split is doubtful (a
    segment that took the next utterance's first words, no text for the utterance, or text that
    looks like a decoding loop — the unpacked decode has the repetition check): decode that one
    alone."""
    spans = packed.spans
    owned: list[list[Segment]] = [[] for _ in spans]
    doubtful: set[int] = set()
    for segment in whole.segments:
        i = _owner(segment, packed, gap)
        if i + 1 < len(spans) and segment.end > packed.onsets[i + 1] + MERGE_SECONDS:
            doubtful.update((i, i + 1))
        start, end = spans[i]
        owned[i].append(Segment(round(min(max(segment.start - start, 0.0), end - start), 3),
                                round(min(max(segment.end - start, 0.0), end - start), 3), segment.text))
    out: list[Transcript | None] = []
    for i, segments in enumerate(owned):
        text = " ".join(s.text for s in segments).strip()
        if i in doubtful or not text or compression_ratio(text) > MAX_COMPRESSION_RATIO:
            out.append(None)
            continue
        out.append(Transcript(text, whole.language, whole.language_probability, segments=tuple(segments)))
    return out


def transcribe_packed(backend: AsrBackend, audios: Sequence[np.ndarray], language: str) -> list[Transcript]:
    """Each utterance's final, decoded in one window (a lone utterance, or a backend that cannot
    decode a window — openai-whisper —: exactly as unpacked). Runs in the ASR worker, so an
    utterance decoded again alone costs no further round trip."""
    if len(audios) == 1 or not hasattr(backend, "transcribe_window"):
        return [backend.transcribe(audio, language, None) for audio in audios]
    window: WindowBackend = backend  # type: ignore[assignment]
    packed = pack(audios)
    parts = split(window.transcribe_window(packed.audio, language), packed)
    return [part if part is not None else backend.transcribe(audio, language, None)
            for part, audio in zip(parts, audios, strict=True)]
