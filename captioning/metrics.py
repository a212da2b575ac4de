"""Word (and character) error rates, for tests and benchmarks of transcription quality."""

from __future__ import annotations

import re

from .policy import normalise

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def words(text: str) -> list[str]:
    return [w for w in (normalise(t) for t in text.replace("-", " ").split()) if w]


def chars(text: str) -> list[str]:
    """Characters without case, spaces or punctuation: the unit for languages written without
    spaces (Japanese, Chinese, Korean is scored the same way to stay comparable)."""
    return list(_NOT_WORD.sub("", text.lower()))


def _distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def error_counts(reference: str, hypothesis: str, characters: bool = False) -> tuple[int, int]:
    """(edit distance, reference length) over normalised words, or characters if asked."""
    split = chars if characters else words
    ref, hyp = split(reference), split(hypothesis)
    return _distance(ref, hyp), len(ref)


def wer(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over normalised words, divided by the reference length."""
    errors, n = error_counts(reference, hypothesis)
    if not n:
        return float(bool(words(hypothesis)))
    return errors / n
