"""A decoding stuck in a loop is recognised and cut back; real repetition is speech and stays."""

from __future__ import annotations

from captioning.asr import MAX_COMPRESSION_RATIO, collapse_repeats, compression_ratio

LOOP = "a consciência da iluminação e o que é" + " o que é" * 60


def test_a_whisper_loop_is_detected_and_collapsed() -> None:
    assert compression_ratio(LOOP) > MAX_COMPRESSION_RATIO
    assert collapse_repeats(LOOP) == "a consciência da iluminação e o que é"


def test_spoken_repetition_and_ordinary_sentences_are_left_alone() -> None:
    spoken = "And here's some more words. Words, words, words, words. And that should be all."
    assert collapse_repeats(spoken) == spoken
    assert collapse_repeats("more words words words words") == "more words words words words"
    sentence = "This is the acoustic corpus. I'm talking pretty fast here. There's nothing else going on."
    assert compression_ratio(sentence) < MAX_COMPRESSION_RATIO
    assert collapse_repeats("no no no no no no no no") == "no"
