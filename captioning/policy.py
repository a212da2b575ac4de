"""LocalAgreement-2: a word is shown as settled once two consecutive hypotheses agree on it.

Whisper re-transcribes the growing utterance every step; words at the end of the buffer change
as more audio arrives. Following whisper_streaming (Macháček et al., 2023), the longest common
prefix of the last two hypotheses is committed and never taken back during the utterance.
"""

from __future__ import annotations

import re

_PUNCT = re.compile(r"[^\w']+", re.UNICODE)


def normalise(word: str) -> str:
    return _PUNCT.sub("", word.lower())


class LocalAgreement:
    """Tracks the committed (stable) prefix of one utterance's hypotheses."""

    def __init__(self) -> None:
        self.committed: list[str] = []
        self._previous: list[str] = []

    def update(self, hypothesis: list[str]) -> tuple[list[str], list[str]]:
        """Feed a new hypothesis (words); returns (committed, tentative) words."""
        prev = [normalise(w) for w in self._previous]
        cur = [normalise(w) for w in hypothesis]
        agree = 0
        while agree < min(len(prev), len(cur)) and prev[agree] == cur[agree]:
            agree += 1
        if agree > len(self.committed):
            self.committed = hypothesis[:agree]
        self._previous = hypothesis
        n = len(self.committed)
        consistent = [normalise(w) for w in hypothesis[:n]] == [normalise(w) for w in self.committed]
        tentative = hypothesis[n:] if consistent else hypothesis[len(self.committed):]
        return list(self.committed), list(tentative)

    def reset(self) -> None:
        self.committed = []
        self._previous = []
