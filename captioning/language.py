"""Which language an utterance is in, for speakers who switch (``--spoken-language detect``).

Measured on real speech in 10 languages (docs/BENCHMARKS.md, "Language detection"): Whisper
``base`` named the language of 55 of 55 whole utterances (3.6–14 s) right, but of their first 3 s
only 96 %, their first 2 s 87 %, and their first 1.1 s — what the first partial sees: the pre-roll
and the first syllable — 38 %, nearly all heard as English. So:

* the language is decided on audio of at least ``MIN_SECONDS`` (the final decides on the whole
  utterance; a shorter utterance, or a partial's first seconds, keeps the speaker's previous
  language, or their declared one);
* the candidates are the languages the room reads plus the speaker's own (people in a twinning
  speak the languages of its sides): Whisper's "Galician" or "Romanian" for short Portuguese
  never wins;
* the winner needs ``MIN_PROBABILITY`` of the candidates' probability, else the previous (or
  declared) language stands.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Minimum share of the expected languages' probability for a detected language to be used
#: (measured on the multilingual clips: docs/BENCHMARKS.md, "Language detection").
MIN_PROBABILITY = 0.6
#: Shortest audio (s, pre-roll included) a language is detected on; shorter keeps the previous one.
MIN_SECONDS = 3.0


@dataclass(frozen=True)
class LanguageHint:
    """What the ASR worker needs to pick an utterance's language (picklable: crosses processes)."""

    declared: str | None  # the speaker's profile language
    expected: tuple[str, ...] = ()  # the languages spoken in the room; empty: any language
    min_probability: float = MIN_PROBABILITY
    previous: str | None = None  # the language of the speaker's previous utterance
    min_seconds: float = 0.0  # detect on at least this much audio (else keep ``fallback``)

    @classmethod
    def for_speaker(cls, declared: str | None, room_languages: Iterable[str],
                    previous: str | None = None) -> LanguageHint:
        expected = set(room_languages)
        if declared:
            expected.add(declared)
        return cls(declared, tuple(sorted(expected)), previous=previous, min_seconds=MIN_SECONDS)

    @property
    def fallback(self) -> str | None:
        """The language when detection is not used or unsure: the previous utterance's, else the
        declared one."""
        return self.previous or self.declared

    def detects(self, seconds: float) -> bool:
        return seconds >= self.min_seconds or not self.fallback


#: what a speaker's stream transcribes in: a fixed language, a rule to pick one per utterance, or
#: None (Whisper's own pick)
SpokenLanguage = str | LanguageHint | None


def fixed_language(spoken: SpokenLanguage) -> str | None:
    """The language to fall back on: the fixed one, or the hint's fallback."""
    return spoken.fallback if isinstance(spoken, LanguageHint) else spoken


def choose_language(probs: Sequence[tuple[str, float]], hint: LanguageHint) -> tuple[str, float]:
    """(language, its probability among the expected ones) for Whisper's ``probs``.

    Falls back to the hint's fallback (previous, else declared language; probability 0.0) when no
    expected language is likely enough, and to Whisper's top language when there is none.
    """
    expected = set(hint.expected)
    candidates = [(lang, p) for lang, p in probs if not expected or lang in expected]
    total = sum(p for _lang, p in candidates)
    fallback = hint.fallback
    if candidates and total > 0:
        lang, p = max(candidates, key=lambda c: c[1])
        share = p / total
        if share >= hint.min_probability or not fallback:
            return lang, share
    if fallback:
        return fallback, 0.0
    return (probs[0][0], float(probs[0][1])) if probs else ("en", 0.0)
