"""Word error rate, for tests and benchmarks of transcription quality."""

from __future__ import annotations

from .policy import normalise


def words(text: str) -> list[str]:
    return [w for w in (normalise(t) for t in text.replace("-", " ").split()) if w]


def wer(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over normalised words, divided by the reference length."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return float(bool(hyp))
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)
