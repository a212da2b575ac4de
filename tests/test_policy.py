"""LocalAgreement-2 and WER: the pieces that decide what a listener sees as settled."""

from __future__ import annotations

from captioning.metrics import wer
from captioning.policy import LocalAgreement


def test_words_settle_once_two_hypotheses_agree() -> None:
    la = LocalAgreement()
    assert la.update("and so my".split()) == ([], ["and", "so", "my"])
    committed, tentative = la.update("And so my fellow".split())
    assert committed == ["And", "so", "my"]  # case and punctuation do not block agreement
    assert tentative == ["fellow"]


def test_settled_words_are_never_taken_back_in_an_utterance() -> None:
    la = LocalAgreement()
    la.update("ask not what".split())
    la.update("ask not what your".split())
    committed, tentative = la.update("ask knot".split())  # a worse hypothesis later on
    assert committed == ["ask", "not", "what"]
    assert tentative == []


def test_reset_starts_a_new_utterance() -> None:
    la = LocalAgreement()
    la.update(["a", "b"])
    la.update(["a", "b"])
    la.reset()
    assert la.update(["c"]) == ([], ["c"])


def test_wer_counts_substitutions_insertions_deletions_on_normalised_words() -> None:
    ref = "And so, my fellow Americans: ask not"
    assert wer(ref, "and so my fellow americans ask not") == 0.0
    assert wer(ref, "and so my fellow americans ask") == 1 / 7
    assert wer(ref, "and so my yellow americans ask not now") == 2 / 7
    assert wer("", "") == 0.0
