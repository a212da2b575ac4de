"""Which language an utterance is captioned in when speakers may switch (captioning/language.py).

The probabilities are of the shape Whisper gives (most likely first); the cases are the mistakes
measured on real speech (docs/BENCHMARKS.md, "Language detection"): the first seconds of
Portuguese heard as English, Romanian or Russian, Spanish as Arabic. The rule with real speech
through the hub: tests/test_language_switching.py.
"""

from __future__ import annotations

import json

import numpy as np

from captioning.language import MIN_SECONDS, LanguageHint, choose_language, fixed_language
from captioning.remote import Kind, decode_request, encode_request


def test_a_language_nobody_in_the_room_reads_never_wins_over_one_they_do() -> None:
    hint = LanguageHint.for_speaker("en", {"pt", "es"})
    heard = [("gl", 0.55), ("pt", 0.30), ("es", 0.05), ("en", 0.02)]
    lang, share = choose_language(heard, hint)
    assert lang == "pt" and share > 0.8


def test_an_unsure_detection_keeps_the_speakers_own_language() -> None:
    hint = LanguageHint.for_speaker("en", {"pt"})
    assert choose_language([("pt", 0.45), ("en", 0.40), ("es", 0.1)], hint) == ("en", 0.0)
    # sure enough among the room's languages: the speaker switched
    assert choose_language([("pt", 0.80), ("en", 0.10)], hint)[0] == "pt"
    # nothing expected heard at all (music, noise): the declared language stands
    assert choose_language([("ja", 0.9), ("zh", 0.1)], hint) == ("en", 0.0)


def test_without_a_declared_language_or_room_whisper_decides() -> None:
    assert choose_language([("sv", 0.7), ("nn", 0.2)], LanguageHint(None))[0] == "sv"
    assert choose_language([("nn", 0.4), ("sv", 0.35)], LanguageHint(None, ("de", "sv")))[0] == "sv"


def test_the_speakers_language_is_always_expected_and_the_hint_falls_back_to_it() -> None:
    hint = LanguageHint.for_speaker("de", {"en", "fr"})
    assert hint.expected == ("de", "en", "fr") and hint.declared == "de"
    assert fixed_language(hint) == "de" and fixed_language("pt") == "pt" and fixed_language(None) is None


def test_after_switching_an_unsure_or_short_utterance_stays_in_the_new_language() -> None:
    hint = LanguageHint.for_speaker("en", {"pt"}, previous="pt")
    assert choose_language([("en", 0.45), ("pt", 0.40)], hint) == ("pt", 0.0)
    assert fixed_language(hint) == "pt"
    # a second of audio (pre-roll and a syllable) is not enough to tell: no detection at all
    assert not hint.detects(1.1) and hint.detects(MIN_SECONDS)
    # ... unless there is nothing to fall back on
    assert LanguageHint(None, ("en", "pt"), min_seconds=MIN_SECONDS).detects(1.1)


def test_the_rule_travels_to_a_clusters_caption_worker() -> None:
    hint = LanguageHint.for_speaker("en", {"pt"})
    fields = encode_request(Kind.ASR, (np.zeros(160, np.float32), hint, None))
    assert json.loads(fields["args"])[0]["expected"] == ["en", "pt"]
    raw = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}
    _audio, language, prompt = decode_request(Kind.ASR, raw)
    assert language == hint and prompt is None
    fields = encode_request(Kind.ASR, (np.zeros(160, np.float32), "pt", "previous"))
    raw = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}
    assert decode_request(Kind.ASR, raw)[1:] == ("pt", "previous")
